#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Fast paths for the shape Forzium writes most: a row-major matrix as `[[...],...]`.
///
/// The text is byte-for-byte what `write(_:into:)` produces for the equivalent `.array` of `.numbers` rows
/// (non-finite elements become `null`), but the numbers go straight from the storage into the output
/// buffer, with no intermediate `JSONValue`.
extension JSONWriter {
    /// Upper bound of the bytes one element takes: the longest double text (24 bytes) plus its comma. The formatter's
    /// stores never reach past 24 bytes from a number's start, so elements can be packed in this room.
    static let maxElementLength = 25

    /// Writes the `rows × cols` row-major matrix in `storage` (`storage.count == rows * cols`) as `[[...],...]`.
    /// A matrix with no rows is written as `[]`; rows with no columns as `[]` each.
    public static func writeMatrix(
        rows: Int, cols: Int, _ storage: UnsafeBufferPointer<Double>, into buffer: inout [UInt8]
    ) {
        precondition(rows >= 0 && cols >= 0 && storage.count == rows * cols, "matrix storage does not match its shape")
        if buffer.isEmpty {
            buffer = writeRows(0..<rows, cols: cols, storage, first: true, last: true)
            return
        }
        // Straight after what the buffer holds (e.g. a reply's head), in one new array: no second copy of the text.
        appendInPlace(to: &buffer, bound: rowsBound(rows, cols: cols)) { out in
            writeRows(0..<rows, cols: cols, storage, first: true, last: true, to: out)
        }
    }

    /// Upper bound of the text of `rows` rows.
    static func rowsBound(_ rows: Int, cols: Int) -> Int { rows * (cols * maxElementLength + 3) + 2 }

    /// Appends at most `bound` bytes that `write(out)` writes at `out` and counts, without an intermediate array: a new
    /// array of `buffer.count + bound` bytes is made, the old bytes copied in, and `write` fills the rest. Pages of the
    /// bound that are never written are never touched (so they take no memory).
    static func appendInPlace(to buffer: inout [UInt8], bound: Int, _ write: (UnsafeMutablePointer<UInt8>) -> Int) {
        let head = buffer.count
        let grown = [UInt8](unsafeUninitializedCapacity: head + bound) { out, count in
            let base = out.baseAddress!
            HugePages.advise(UnsafeMutableRawPointer(base), bytes: out.count)
            buffer.withUnsafeBufferPointer { old in
                if head > 0 { base.update(from: old.baseAddress!, count: head) }
            }
            count = head + write(base + head)
        }
        buffer = grown
    }

    /// Writes the `rows × cols` row-major matrix in `storage` as `[[...],...]` (see the buffer-pointer variant).
    public static func writeMatrix(rows: Int, cols: Int, _ storage: [Double], into buffer: inout [UInt8]) {
        storage.withUnsafeBufferPointer { writeMatrix(rows: rows, cols: cols, $0, into: &buffer) }
    }

    /// The same text as `writeMatrix(rows:cols:_:into:)`, formatted by up to `threads` threads (the process's
    /// `ForkJoinPool`): the rows are split into contiguous blocks, each written straight into the result.
    /// Small matrices (under ~16k elements) and `threads <= 1` run on the calling thread.
    public static func writeMatrix(
        rows: Int, cols: Int, _ storage: UnsafeBufferPointer<Double>, threads: Int, into buffer: inout [UInt8]
    ) {
        precondition(rows >= 0 && cols >= 0 && storage.count == rows * cols, "matrix storage does not match its shape")
        let workers = min(threads, rows, max(1, (rows * cols) / 16_384))
        if workers <= 1 {
            writeMatrix(rows: rows, cols: cols, storage, into: &buffer)
            return
        }
        // Each block is written straight into the result at the offset its predecessors' bounds leave for it, then the
        // blocks are moved down over the gaps in order: the text exists once (no per-block arrays to concatenate).
        var offsets = [Int](repeating: 0, count: workers + 1)
        for w in 0..<workers {
            offsets[w + 1] = offsets[w] + rowsBound(ForkJoinPool.range(part: w, of: workers, count: rows).count, cols: cols)
        }
        var lengths = [Int](repeating: 0, count: workers)
        appendInPlace(to: &buffer, bound: offsets[workers]) { out in
            lengths.withUnsafeMutableBufferPointer { lengthSlots in
                let shared = SharedPointers(out: out, lengths: lengthSlots, storage: storage)
                offsets.withUnsafeBufferPointer { offsets in
                    ForkJoinPool.shared(threads: workers).run(parts: workers) { w in
                        shared.lengths[w] = writeRows(
                            ForkJoinPool.range(part: w, of: workers, count: rows), cols: cols, shared.storage,
                            first: w == 0, last: w == workers - 1, to: shared.out + offsets[w])
                    }
                }
            }
            var end = lengths[0]
            for w in 1..<workers {
                memmove(out + end, out + offsets[w], lengths[w])
                end += lengths[w]
            }
            return end
        }
    }

    /// Parallel variant over an array (see the buffer-pointer variant).
    public static func writeMatrix(rows: Int, cols: Int, _ storage: [Double], threads: Int, into buffer: inout [UInt8]) {
        storage.withUnsafeBufferPointer { writeMatrix(rows: rows, cols: cols, $0, threads: threads, into: &buffer) }
    }

    /// `rows` of the matrix as text: with the opening `[` when `first`, the closing `]` when `last`,
    /// and a `,` before each row that is not the matrix's first.
    static func writeRows(
        _ rowRange: Range<Int>, cols: Int, _ storage: UnsafeBufferPointer<Double>, first: Bool, last: Bool
    ) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: rowsBound(rowRange.count, cols: cols)) { out, count in
            count = writeRows(rowRange, cols: cols, storage, first: first, last: last, to: out.baseAddress!)
        }
    }

    /// The same text at `out` (room for `rowsBound(rowRange.count, cols:)` bytes); returns its length.
    static func writeRows(
        _ rowRange: Range<Int>, cols: Int, _ storage: UnsafeBufferPointer<Double>, first: Bool, last: Bool,
        to base: UnsafeMutablePointer<UInt8>
    ) -> Int {
        var p = base
        if first {
            p.pointee = ASCII.openBracket
            p += 1
        }
        guard let values = storage.baseAddress else {
            if last {
                p.pointee = ASCII.closeBracket
                p += 1
            }
            return p - base
        }
        for r in rowRange {
            if r != 0 {
                p.pointee = ASCII.comma
                p += 1
            }
            p = writeRow(values + r &* cols, count: cols, to: p)
        }
        if last {
            p.pointee = ASCII.closeBracket
            p += 1
        }
        return p - base
    }
}

extension JSONWriter {
    /// `[d,d,...]` for `count` doubles at `values`, written at `out`; returns the end of the text. Each number is
    /// followed by a comma and the last comma becomes the `]`, so the loop has no branch on the element's position.
    @inline(never)
    static func writeRow(_ values: UnsafePointer<Double>, count: Int, to out: UnsafeMutablePointer<UInt8>)
        -> UnsafeMutablePointer<UInt8>
    {
        out.pointee = ASCII.openBracket
        guard count > 0 else {
            out[1] = ASCII.closeBracket
            return out + 2
        }
        var p = out + 1
        var source = values
        let end = values + count
        // Two at a time while both are finite and nonzero (the usual case): both numbers' digits are found before
        // either is written, so their multiply chains run side by side.
        while end - source >= 2 {
            let a = source[0].bitPattern
            let b = source[1].bitPattern
            let magnitudeA = a & 0x7FFF_FFFF_FFFF_FFFF
            let magnitudeB = b & 0x7FFF_FFFF_FFFF_FFFF
            guard magnitudeA &- 1 < 0x7FF0_0000_0000_0000 &- 1, magnitudeB &- 1 < 0x7FF0_0000_0000_0000 &- 1 else {
                // A zero, infinity or NaN among them: one at a time.
                p += formatNumber(source[0], to: p)
                p.pointee = ASCII.comma
                p += formatNumber(source[1], to: p + 1) + 1
                p.pointee = ASCII.comma
                p += 1
                source += 2
                continue
            }
            let (digitsA, exponentA) = DoubleFormatting.shortestDecimal(magnitudeA)
            let (digitsB, exponentB) = DoubleFormatting.shortestDecimal(magnitudeB)
            p += DoubleFormatting.writeDecimal(a, digits: digitsA, exponent: exponentA, to: p)
            p.pointee = ASCII.comma
            p += 1
            p += DoubleFormatting.writeDecimal(b, digits: digitsB, exponent: exponentB, to: p)
            p.pointee = ASCII.comma
            p += 1
            source += 2
        }
        while source != end {
            p += formatNumber(source.pointee, to: p)
            p.pointee = ASCII.comma
            p += 1
            source += 1
        }
        p[-1] = ASCII.closeBracket
        return p
    }
}

/// Pointers handed to worker threads; each worker writes only its own region of `out` and its own length slot, and
/// reads the storage.
private struct SharedPointers: @unchecked Sendable {
    let out: UnsafeMutablePointer<UInt8>
    let lengths: UnsafeMutableBufferPointer<Int>
    let storage: UnsafeBufferPointer<Double>
}


extension JSONWriter {
    /// The same text as `writeMatrix(rows:cols:_:threads:into:)`, handed to `emit` in consecutive parts of about
    /// `partBytes` per thread instead of built whole: blocks of rows are formatted (by up to `threads` threads, each its
    /// own rows) into one reused scratch area and emitted in order, so the text of a large matrix never exists at once
    /// (e.g. a reply written to a pipe as it is printed).
    public static func writeMatrix(
        rows: Int, cols: Int, _ storage: UnsafeBufferPointer<Double>, threads: Int, partBytes: Int = 1 << 20,
        emit: (UnsafeRawBufferPointer) -> Void
    ) {
        precondition(rows >= 0 && cols >= 0 && storage.count == rows * cols, "matrix storage does not match its shape")
        if rows == 0 {
            withUnsafeBytes(of: (ASCII.openBracket, ASCII.closeBracket)) { emit($0) }
            return
        }
        let rowsPerPart = max(1, partBytes / rowsBound(1, cols: cols))
        let workers = max(1, min(threads, (rows + rowsPerPart - 1) / rowsPerPart, max(1, (rows * cols) / 16_384)))
        let regionBytes = rowsBound(rowsPerPart, cols: cols)
        let scratch = UnsafeMutablePointer<UInt8>.allocate(capacity: regionBytes * workers)
        defer { scratch.deallocate() }
        var lengths = [Int](repeating: 0, count: workers)
        var blockStart = 0
        while blockStart < rows {
            let blockRows = min(rows - blockStart, rowsPerPart * workers)
            let parts = min(workers, (blockRows + rowsPerPart - 1) / rowsPerPart)
            lengths.withUnsafeMutableBufferPointer { lengthSlots in
                let shared = SharedPointers(out: scratch, lengths: lengthSlots, storage: storage)
                let start = blockStart
                let write = { (w: Int) in
                    let lower = start + w * rowsPerPart
                    let upper = min(start + blockRows, lower + rowsPerPart)
                    shared.lengths[w] = writeRows(
                        lower..<upper, cols: cols, shared.storage, first: lower == 0, last: upper == rows,
                        to: shared.out + w * regionBytes)
                }
                if parts == 1 {
                    write(0)
                } else {
                    ForkJoinPool.shared(threads: parts).run(parts: parts, write)
                }
            }
            for w in 0..<parts { emit(UnsafeRawBufferPointer(start: scratch + w * regionBytes, count: lengths[w])) }
            blockStart += blockRows
        }
    }
}
