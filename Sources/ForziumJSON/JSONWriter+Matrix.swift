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
    /// Upper bound of the bytes one element takes: the longest double text plus its comma.
    static let maxElementLength = DoubleFormatting.maxLength - 7

    /// Writes the `rows × cols` row-major matrix in `storage` (`storage.count == rows * cols`) as `[[...],...]`.
    /// A matrix with no rows is written as `[]`; rows with no columns as `[]` each.
    public static func writeMatrix(
        rows: Int, cols: Int, _ storage: UnsafeBufferPointer<Double>, into buffer: inout [UInt8]
    ) {
        precondition(rows >= 0 && cols >= 0 && storage.count == rows * cols, "matrix storage does not match its shape")
        let chunk = writeRows(0..<rows, cols: cols, storage, first: true, last: true)
        if buffer.isEmpty {
            buffer = chunk
        } else {
            buffer.append(contentsOf: chunk)
        }
    }

    /// Writes the `rows × cols` row-major matrix in `storage` as `[[...],...]` (see the buffer-pointer variant).
    public static func writeMatrix(rows: Int, cols: Int, _ storage: [Double], into buffer: inout [UInt8]) {
        storage.withUnsafeBufferPointer { writeMatrix(rows: rows, cols: cols, $0, into: &buffer) }
    }

    /// The same text as `writeMatrix(rows:cols:_:into:)`, formatted by up to `threads` threads: the rows are split
    /// into contiguous blocks, each block is written into its own buffer, and the buffers are concatenated in order.
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
        var blocks = [[UInt8]](repeating: [], count: workers)
        blocks.withUnsafeMutableBufferPointer { slots in
            let shared = SharedPointers(slots: slots, storage: storage)
            ParallelRunner.run(workers) { w in
                let lower = rows * w / workers
                let upper = rows * (w + 1) / workers
                shared.slots[w] = writeRows(
                    lower..<upper, cols: cols, shared.storage, first: w == 0, last: w == workers - 1)
            }
        }
        buffer.reserveCapacity(buffer.count + blocks.reduce(0) { $0 + $1.count })
        for block in blocks { buffer.append(contentsOf: block) }
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
        let bound = rowRange.count * (cols * maxElementLength + 3) + 2
        return [UInt8](unsafeUninitializedCapacity: bound) { out, count in
            let base = out.baseAddress!
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
                count = p - base
                return
            }
            for r in rowRange {
                if r != 0 {
                    p.pointee = ASCII.comma
                    p += 1
                }
                p.pointee = ASCII.openBracket
                p += 1
                let row = values + r * cols
                for c in 0..<cols {
                    if c != 0 {
                        p.pointee = ASCII.comma
                        p += 1
                    }
                    p += formatNumber(row[c], to: p)
                }
                p.pointee = ASCII.closeBracket
                p += 1
            }
            if last {
                p.pointee = ASCII.closeBracket
                p += 1
            }
            count = p - base
        }
    }
}

/// Pointers handed to worker threads; each worker writes only its own slot and reads the storage.
private struct SharedPointers: @unchecked Sendable {
    let slots: UnsafeMutableBufferPointer<[UInt8]>
    let storage: UnsafeBufferPointer<Double>
}

/// Runs `body(0..<count)` on `count` threads (the caller's thread does index 0) and waits for all of them.
enum ParallelRunner {
    private final class Job: @unchecked Sendable {
        let body: (Int) -> Void
        let index: Int
        init(body: @escaping (Int) -> Void, index: Int) {
            self.body = body
            self.index = index
        }
    }

    static func run(_ count: Int, _ body: (Int) -> Void) {
        withoutActuallyEscaping(body) { body in
            var threads: [pthread_t] = []
            threads.reserveCapacity(count - 1)
            var inline: [Int] = [0]
            for i in 1..<max(1, count) {
                let job = Unmanaged.passRetained(Job(body: body, index: i)).toOpaque()
                var thread = pthread_t()
                let status = pthread_create(&thread, nil, { context in
                    let job = Unmanaged<Job>.fromOpaque(context!).takeRetainedValue()
                    job.body(job.index)
                    return nil
                }, job)
                if status == 0 {
                    threads.append(thread)
                } else {
                    // No thread available: do this block here instead.
                    Unmanaged<Job>.fromOpaque(job).release()
                    inline.append(i)
                }
            }
            for i in inline { body(i) }
            for thread in threads { pthread_join(thread, nil) }
        }
    }
}
