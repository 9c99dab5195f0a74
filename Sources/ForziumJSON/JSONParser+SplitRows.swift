import Synchronization

/// Two threads on one matrix's rows (`Options.contiguousRows` with `Options.threads` ≥ 2), streamed or not.
///
/// At a row start, with the bytes of a block ahead available (up to `splitBlock`), the scanner picks the first place
/// past the block's middle that looks like a row start (a `[` after `],`, whitespace allowed) and reads rows from there
/// on a second thread, into their own buffer, while it reads the rows before that place itself. Both read with one
/// loop (`plainRows`), which stops at the first thing that is not a plain row of `cols` numbers followed by `,` and
/// the next row, keeping the rows it finished.
///
/// When the scanner's own rows bring it exactly to the helper's starting place, that place is an element start of the
/// array being read, so the helper's rows are the rows the scanner would have read (the same primitives on the same
/// bytes): they are appended and the scanner jumps past them. Otherwise (a guess inside a string, or a row that
/// breaks the pattern), the helper's work is dropped and the scanner goes on from just past its own last row.
/// Everything either thread stopped at is read again by the ordinary one-thread loop, so the value and every error
/// (message and offset) are exactly the one-thread parse's.
///
/// The scanner's thread never reads past the helper's starting place, which lies below `refillAt`: while the helper
/// runs, nothing asks the window for bytes or hands any back.
extension JSONScanner {
    /// Bytes ahead of a row start read by the two threads together (about half each).
    static let splitBlock = 1 << 20
    /// Fewer bytes than this ahead: not worth a second thread (its hand-off costs a few microseconds).
    static let splitMinimum = 96 << 10
    /// How far past the middle the helper's starting place is looked for.
    static let splitSearch = 16 << 10
    /// Blocks whose second half came from the helper thread, since the process started (for tests and diagnostics).
    package static let splitBlocksTaken = Atomic<Int>(0)

    /// How `splitRows` left the scanner.
    enum SplitOutcome {
        /// At the same row start: nothing was read.
        case atRowStart
        /// Just past a row's `]` (the helper's last row).
        case afterRow
    }

    /// At the start of row `rows` (a `[`, `pos`), with `rows * cols` values in `storage` and `cols` ≥ 1: reads rows
    /// on two threads as far as a block ahead allows. Never throws: whatever is not plainly rows is left to the caller.
    mutating func splitRows(cols: Int, storage: inout [Double], rows: inout Int) -> SplitOutcome {
        if !complete && end - pos < Self.splitBlock {
            refill(target: pos + Self.splitBlock)
        }
        let limit = Swift.min(end, pos &+ Self.splitBlock)
        guard limit - pos >= Self.splitMinimum, let start = helperStart(from: pos + (limit - pos) / 2, below: Swift.min(limit, refillAt)) else {
            return .atRowStart
        }
        var helper = SplitRowsHelper(
            base: base + start, count: limit - start, cols: cols, allowNonFinite: allowNonFinite, contiguousRows: contiguousRows,
            maxDepth: maxDepth)
        var mine = PlainRows(end: pos)
        let rowsBefore = rows
        withUnsafeMutablePointer(to: &self) { scanner in
            withUnsafeMutablePointer(to: &storage) { storage in
                let shared = SplitRowsShared(scanner: scanner, storage: storage)
                withUnsafeMutablePointer(to: &helper) { helperPointer in
                    let helperShared = SplitRowsHelperPointer(pointer: helperPointer)
                    ForkJoinPool.shared(threads: 2).run(parts: 2) { part in
                        if part == 0 {
                            mine = shared.scanner.pointee.plainRows(below: start, cols: cols, into: &shared.storage.pointee)
                        } else {
                            helperShared.pointer.pointee.run()
                        }
                    }
                }
            }
        }
        rows = rowsBefore + mine.count
        if mine.next == start && helper.rows.count > 0 {
            helper.values.withUnsafeBufferPointer { storage.append(contentsOf: $0[0 ..< helper.rows.count * cols]) }
            rows += helper.rows.count
            valueBytes &+= helper.rows.count &* cols &* 8
            Self.splitBlocksTaken.add(1, ordering: .relaxed)
            pos = start + helper.rows.end
        }
        anchor = pos
        return rows > rowsBefore ? .afterRow : .atRowStart
    }

    /// The first offset in `from ..< below` (searched at most `splitSearch` bytes) holding a `[` that follows `],`
    /// with only whitespace between.
    /// Looks no further back than `pos`.
    func helperStart(from: Int, below: Int) -> Int? {
        var i = from
        let stop = Swift.min(below, from &+ Self.splitSearch)
        while i < stop {
            if base[i] == ASCII.openBracket {
                var j = i - 1
                while j > pos && Self.isWhitespace(base[j]) { j -= 1 }
                if j > pos && base[j] == ASCII.comma {
                    j -= 1
                    while j > pos && Self.isWhitespace(base[j]) { j -= 1 }
                    if base[j] == ASCII.closeBracket { return i }
                }
            }
            i += 1
        }
        return nil
    }

    /// What `plainRows` read.
    struct PlainRows {
        /// Rows appended.
        var count = 0
        /// Just past the last one's `]` (where reading started, when none).
        var end: Int
        /// The start (a `[`) of the row after them, when `,` and a `[` follow them at or below the limit.
        var next: Int?
    }

    /// Plain rows (`cols` numbers each) from the row start `pos`, appended to `values`, for as long as each is followed
    /// by `,` and another row starting below `limit`. Stops before anything else (the values of a row that turns out not
    /// to be plain are removed again), and never reads at or past `limit` except within a row that starts below it. Leaves
    /// `pos` just past the last row read (where it started, when none). Errors are dropped: the caller reads again
    /// whatever was not a plain row.
    mutating func plainRows(below limit: Int, cols: Int, into values: inout [Double]) -> PlainRows {
        var read = PlainRows(end: pos)
        while pos < limit && base[pos] == ASCII.openBracket {
            let before = values.count
            pos += 1
            skipWhitespace()
            guard pos < limit, startsNumber(base[pos]), (try? appendNumberRun(to: &values)) == true,
                  values.count - before == cols else {
                values.removeSubrange(before...)
                break
            }
            read.count += 1
            read.end = pos
            read.next = nil
            skipWhitespace()
            guard pos < limit, base[pos] == ASCII.comma else { break }
            pos += 1
            skipWhitespace()
            if pos <= limit && pos < end && base[pos] == ASCII.openBracket { read.next = pos }
        }
        pos = read.end
        return read
    }
}

/// The helper thread's share: plain rows from the start of its bytes (`JSONScanner.plainRows`), into its own buffer.
struct SplitRowsHelper {
    var scanner: JSONScanner
    let cols: Int
    var values: [Double] = []
    var rows: JSONScanner.PlainRows

    init(base: UnsafePointer<UInt8>, count: Int, cols: Int, allowNonFinite: Bool, contiguousRows: Bool, maxDepth: Int) {
        var options = JSONParser.Options()
        options.allowNonFiniteNumbers = allowNonFinite
        options.contiguousRows = contiguousRows
        options.maxDepth = maxDepth
        scanner = JSONScanner(base: base, count: count, options: options)
        scanner.singleLine = true  // its errors are dropped: no need to count lines for them
        self.cols = cols
        rows = JSONScanner.PlainRows(end: 0)
    }

    mutating func run() {
        values.reserveCapacity(scanner.end / 16)
        rows = scanner.plainRows(below: scanner.end, cols: cols, into: &values)
    }
}

/// The scanner and the matrix storage, handed to the fork–join part that reads the scanner's share (only that part
/// touches them while the job runs).
private struct SplitRowsShared: @unchecked Sendable {
    let scanner: UnsafeMutablePointer<JSONScanner>
    let storage: UnsafeMutablePointer<[Double]>
}

/// The helper, handed to the part that runs it.
private struct SplitRowsHelperPointer: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<SplitRowsHelper>
}
