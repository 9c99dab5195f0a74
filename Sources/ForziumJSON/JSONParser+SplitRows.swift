import Synchronization

/// Two threads on one matrix's rows (`Options.contiguousRows` with `Options.threads` ≥ 2), streamed or not.
///
/// At a row start, with the bytes of a block ahead available (up to `splitBlock`), the scanner picks the first place
/// past the block's middle that looks like a row start (a `[` after `],`, whitespace allowed) and reads rows from there
/// on a second thread, into their own buffer, while it reads the rows before that place itself. Each thread stops at
/// the first thing that is not a plain row of `cols` numbers followed by `,` and the next row: the helper keeps the
/// rows it finished, the scanner backs up to the start of the row it was in.
///
/// When the scanner's own rows bring it exactly to the helper's starting place, that place is an element start of the
/// array being read, so the helper's rows are the rows the scanner would have read (the same primitives on the same
/// bytes): they are appended and the scanner jumps past them. Otherwise (a guess inside a string, or a row that
/// breaks the pattern), the helper's work is dropped. Everything either thread stopped at is read again by the
/// ordinary one-thread loop, so the value and every error (message and offset) are exactly the one-thread parse's.
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
        /// At a row start (the same one, when nothing was gained).
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
        var mine = SplitRowsHelper.Rows()
        let rowsBefore = rows
        withUnsafeMutablePointer(to: &self) { scanner in
            withUnsafeMutablePointer(to: &storage) { storage in
                let shared = SplitRowsShared(scanner: scanner, storage: storage)
                withUnsafeMutablePointer(to: &helper) { helperPointer in
                    let helperShared = SplitRowsHelperPointer(pointer: helperPointer)
                    ForkJoinPool.shared(threads: 2).run(parts: 2) { part in
                        if part == 0 {
                            mine = shared.scanner.pointee.ownRows(until: start, cols: cols, storage: &shared.storage.pointee)
                        } else {
                            helperShared.pointer.pointee.run()
                        }
                    }
                }
            }
        }
        rows = rowsBefore + mine.count
        guard pos == start, helper.rows.count > 0 else { return .atRowStart }
        helper.values.withUnsafeBufferPointer { storage.append(contentsOf: $0[0 ..< helper.rows.count * cols]) }
        rows += helper.rows.count
        valueBytes &+= helper.rows.count &* cols &* 8
        Self.splitBlocksTaken.add(1, ordering: .relaxed)
        pos = start + helper.rows.end
        anchor = pos
        return .afterRow
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

    /// The scanner's share: plain rows from `pos` (a row start) until the row start `until`, appended to `storage`.
    /// Stops at the start of the first row that is not plain (or not followed by `,` and another row), with that row's
    /// values removed again; `pos` is then that row's start.
    mutating func ownRows(until: Int, cols: Int, storage: inout [Double]) -> SplitRowsHelper.Rows {
        var done = SplitRowsHelper.Rows()
        while pos < until {
            let rowStart = pos
            let before = storage.count
            var plain = false
            pos += 1
            skipWhitespace()
            if pos < until, startsNumber(base[pos]) {
                plain = (try? appendNumberRun(to: &storage)) == true && storage.count - before == cols
            }
            if plain {
                skipWhitespace()
                if pos < until && base[pos] == ASCII.comma {
                    pos += 1
                    skipWhitespace()
                    plain = pos <= until && base[pos] == ASCII.openBracket
                } else {
                    plain = false
                }
            }
            guard plain else {
                storage.removeSubrange(before...)
                pos = rowStart
                break
            }
            done.count += 1
        }
        anchor = pos
        return done
    }
}

/// The helper thread's share: rows from the start of its bytes, each plain (`cols` numbers) and followed by `,` and
/// the next row or by anything else, which ends its run (as do an error and the end of its bytes).
struct SplitRowsHelper {
    struct Rows {
        /// Rows finished.
        var count = 0
        /// Offset just past the last finished row's `]` (relative to the helper's start).
        var end = 0
    }

    var scanner: JSONScanner
    let cols: Int
    var values: [Double] = []
    var rows = Rows()

    init(base: UnsafePointer<UInt8>, count: Int, cols: Int, allowNonFinite: Bool, contiguousRows: Bool, maxDepth: Int) {
        var options = JSONParser.Options()
        options.allowNonFiniteNumbers = allowNonFinite
        options.contiguousRows = contiguousRows
        options.maxDepth = maxDepth
        scanner = JSONScanner(base: base, count: count, options: options)
        scanner.singleLine = true  // its errors are dropped: no need to count lines for them
        self.cols = cols
    }

    mutating func run() {
        values.reserveCapacity(scanner.end / 16)
        while scanner.pos < scanner.end && scanner.base[scanner.pos] == ASCII.openBracket {
            let before = values.count
            scanner.pos += 1
            scanner.skipWhitespace()
            guard scanner.pos < scanner.end, scanner.startsNumber(scanner.base[scanner.pos]),
                  (try? scanner.appendNumberRun(to: &values)) == true, values.count - before == cols,
                  scanner.pos < scanner.end  // the row's `]` was not the last byte: its text may go on
            else {
                values.removeSubrange(before...)
                return
            }
            rows.count += 1
            rows.end = scanner.pos
            scanner.skipWhitespace()
            guard scanner.pos < scanner.end, scanner.base[scanner.pos] == ASCII.comma else { return }
            scanner.pos += 1
            scanner.skipWhitespace()
        }
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
