/// Multithreaded writing of large values.
extension JSONWriter {
    /// Below this estimated size a value is written on the calling thread.
    static let parallelThreshold = 256 * 1024

    /// Writes `value` exactly as `write(_:into:)` does, using up to `threads` threads for large arrays:
    /// the outermost array (or number array) whose text is large enough is split into contiguous runs of
    /// elements of about equal size, each run is written into its own buffer on its own thread, and the
    /// buffers are appended in order. Objects on the way to it (e.g. a JSON-RPC envelope around a matrix
    /// result) are written on the calling thread. Small values and `threads <= 1` take the single-threaded path.
    public static func write(_ value: JSONValue, into buffer: inout [UInt8], threads: Int) {
        let estimate = estimatedLength(value)
        guard threads > 1, estimate >= parallelThreshold else {
            write(value, into: &buffer)
            return
        }
        let needed = buffer.count + estimate
        if buffer.capacity < needed { buffer.reserveCapacity(Swift.max(needed, 2 * buffer.capacity)) }
        writeSplitting(value, estimate: estimate, into: &buffer, threads: threads)
    }

    static func writeSplitting(_ value: JSONValue, estimate: Int, into buffer: inout [UInt8], threads: Int) {
        switch value {
        case .object(let object):
            buffer.append(ASCII.openBrace)
            for (i, member) in object.members.enumerated() {
                if i != 0 { buffer.append(ASCII.comma) }
                writeString(member.key, into: &buffer)
                buffer.append(ASCII.colon)
                let size = estimatedLength(member.value)
                if size >= parallelThreshold {
                    writeSplitting(member.value, estimate: size, into: &buffer, threads: threads)
                } else {
                    writeValue(member.value, into: &buffer)
                }
            }
            buffer.append(ASCII.closeBrace)
        case .array(let items) where items.count >= 2:
            // Cut points at equal shares of the estimated size.
            var cuts = [0]
            var running = 0
            let share = Swift.max(1, estimate / threads)
            for (i, item) in items.enumerated() {
                running += estimatedLength(item) + 1
                if running >= share * cuts.count && cuts.count < threads && i + 1 < items.count {
                    cuts.append(i + 1)
                }
            }
            cuts.append(items.count)
            // Threads see the elements through a pointer: touching the shared array itself from several
            // threads would make them fight over its reference count.
            let pieces = items.withUnsafeBufferPointer { all in
                let shared = SharedValues(pointer: all, cuts: cuts)
                return writeInParallel(cuts.count - 1) { piece, out in
                    let lower = shared.cuts[piece]
                    let upper = shared.cuts[piece + 1]
                    var size = 0
                    for i in lower..<upper { size += estimatedLength(shared.pointer[i]) + 1 }
                    out.reserveCapacity(size)
                    for i in lower..<upper {
                        if i != 0 { out.append(ASCII.comma) }
                        writeValue(shared.pointer[i], into: &out)
                    }
                }
            }
            buffer.append(ASCII.openBracket)
            for piece in pieces { buffer.append(contentsOf: piece) }
            buffer.append(ASCII.closeBracket)
        case .numbers(let numbers) where numbers.count >= 2:
            let workers = Swift.min(threads, numbers.count)
            let pieces = numbers.withUnsafeBufferPointer { all in
                let shared = SharedDoubles(pointer: all)
                return writeInParallel(workers) { piece, out in
                    let lower = shared.pointer.count * piece / workers
                    let upper = shared.pointer.count * (piece + 1) / workers
                    out.reserveCapacity((upper - lower) * 20)
                    writeNumberRun(UnsafeBufferPointer(rebasing: shared.pointer[lower..<upper]), leadingComma: piece != 0, into: &out)
                }
            }
            buffer.append(ASCII.openBracket)
            for piece in pieces { buffer.append(contentsOf: piece) }
            buffer.append(ASCII.closeBracket)
        default:
            writeValue(value, into: &buffer)
        }
    }

    /// Runs `body(piece, &out)` for each piece on its own thread; returns the buffers in piece order.
    static func writeInParallel(_ count: Int, _ body: (Int, inout [UInt8]) -> Void) -> [[UInt8]] {
        var pieces = [[UInt8]](repeating: [], count: count)
        pieces.withUnsafeMutableBufferPointer { slots in
            let shared = SharedSlots(slots: slots)
            ForkJoinPool.shared(threads: count).run(parts: count) { piece in
                var out: [UInt8] = []
                body(piece, &out)
                shared.slots[piece] = out
            }
        }
        return pieces
    }

    /// `d,d,...` (no brackets), preceded by a comma when `leadingComma`.
    static func writeNumberRun(_ numbers: UnsafeBufferPointer<Double>, leadingComma: Bool, into buffer: inout [UInt8]) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: chunkSize) { chunk in
            let base = chunk.baseAddress!
            var used = 0
            for (i, value) in numbers.enumerated() {
                if used > chunkSize - DoubleFormatting.maxLength - 2 {
                    buffer.append(contentsOf: UnsafeBufferPointer(start: base, count: used))
                    used = 0
                }
                if i != 0 || leadingComma {
                    base[used] = ASCII.comma
                    used += 1
                }
                used += formatNumber(value, to: base + used)
            }
            buffer.append(contentsOf: UnsafeBufferPointer(start: base, count: used))
        }
    }
}

private struct SharedSlots: @unchecked Sendable {
    let slots: UnsafeMutableBufferPointer<[UInt8]>
}

private struct SharedValues: @unchecked Sendable {
    let pointer: UnsafeBufferPointer<JSONValue>
    let cuts: [Int]
}

private struct SharedDoubles: @unchecked Sendable {
    let pointer: UnsafeBufferPointer<Double>
}
