import ForziumJSON
import NIOCore

/// Takes the binary part of a v2 inference request as it arrives and turns the request into an engine call.
///
/// A large FP64 input goes straight from the arriving bytes into a shared-memory segment from the gateway's pool (one
/// copy, into pages the segment already holds when it has been used before); a small one, or an FP32 one (widened
/// first), is gathered and then written in the engine boundary's binary form (base64 below
/// `BinaryMatrix.sharedMemoryThreshold` elements). No element ever becomes decimal text.
///
/// Segments taken from the pool belong to the assembler until `finish()` hands them to the `V2PreparedCall`; when the
/// request fails first (a client mistake, a body cut short), they go back to the pool as the assembler is released.
final class V2TensorAssembler {
    private enum Target {
        /// Bytes written so far into a pooled segment.
        case segment(SharedSegmentPool.Segment, filled: Int)
        /// Bytes gathered in memory.
        case gathered([UInt8])
        /// A JSON input: nothing in the binary part.
        case json
    }

    private let header: V2InferRequest.Header
    private let pool: SharedSegmentPool?
    private var targets: [Target] = []
    /// The input taking bytes now (index into `header.inputs`).
    private var current = 0
    /// Bytes of the binary part received.
    private var received = 0
    private var finished = false

    init(_ header: V2InferRequest.Header, pool: SharedSegmentPool?) {
        self.header = header
        self.pool = pool
        targets.reserveCapacity(header.inputs.count)
    }

    deinit {
        guard !finished else { return }
        for case .segment(let segment, _) in targets { pool?.release(segment) }
    }

    /// Bytes the binary part must have.
    var expectedBytes: Int {
        header.inputs.reduce(0) { total, input in
            let (sum, overflow) = total.addingReportingOverflow(input.binaryBytes)
            return overflow ? Int.max : sum
        }
    }

    /// Takes the next bytes of the binary part.
    func feed(_ bytes: UnsafeRawBufferPointer) throws {
        var rest = bytes
        while !rest.isEmpty {
            try openTargets()
            guard current < header.inputs.count else {
                throw V2InferRequest.invalid("more binary data follow the last binary input than the inputs' binary_data_size add up to (\(expectedBytes) bytes)")
            }
            let need = header.inputs[current].binaryBytes - filled(current)
            let take = min(need, rest.count)
            let piece = UnsafeRawBufferPointer(rebasing: rest[0..<take])
            switch targets[current] {
            case .segment(let segment, let filled):
                guard segment.write(piece, at: filled) else {
                    // /dev/shm is full: keep what came so far in memory and go on there.
                    var bytes = [UInt8](repeating: 0, count: filled)
                    _ = bytes.withUnsafeMutableBytes { segment.read(into: $0, at: 0) }
                    bytes.append(contentsOf: piece)
                    pool?.release(segment)
                    targets[current] = .gathered(bytes)
                    break
                }
                targets[current] = .segment(segment, filled: filled + take)
            case .gathered(var bytes):
                targets[current] = .json // drop the array's second reference before appending
                bytes.append(contentsOf: piece)
                targets[current] = .gathered(bytes)
            case .json:
                preconditionFailure("a JSON input takes no binary bytes")
            }
            received += take
            rest = UnsafeRawBufferPointer(rebasing: rest[take...])
        }
    }

    /// The engine call, once the whole body has been fed.
    func finish() throws -> V2PreparedCall {
        try openTargets()
        if current < header.inputs.count {
            let input = header.inputs[current]
            throw V2InferRequest.invalid("the binary data ends \(expectedBytes - received) bytes short of input \"\(input.name)\"", at: input.pointer)
        }
        var text: [UInt8] = []
        text.reserveCapacity(512)
        text.append(UInt8(ascii: "{"))
        var pooled: [SharedSegmentPool.Segment] = []
        var created: [String] = []
        var ok = false
        defer { if !ok { for name in created { SharedMatrixSegment.unlink(name) } } }
        for (input, target) in zip(header.inputs, targets) {
            if text.count > 1 { text.append(UInt8(ascii: ",")) }
            JSONWriter.writeString(input.name, into: &text)
            text.append(UInt8(ascii: ":"))
            switch target {
            case .segment(let segment, _):
                pooled.append(segment)
                BinaryMatrix.appendShared(rows: input.rows, cols: input.cols, name: segment.name, into: &text)
            case .gathered(let bytes):
                let values: [Double] = bytes.withUnsafeBytes { raw in
                    if input.itemSize == 8 {
                        return (0..<input.count).map { Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self))) }
                    }
                    return (0..<input.count).map { Double(Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)))) }
                }
                append(input, values, into: &text, pooled: &pooled, created: &created)
            case .json:
                append(input, input.values ?? [], into: &text, pooled: &pooled, created: &created)
            }
        }
        for member in header.scalars {
            text.append(UInt8(ascii: ","))
            JSONWriter.writeString(member.key, into: &text)
            text.append(UInt8(ascii: ":"))
            JSONWriter.write(member.value, into: &text)
        }
        // A large result goes into a pooled segment too (the engine resizes it to fit); sized here after the first
        // input, which is what most operations give back (the pool hands out the segment closest in size).
        var result: SharedSegmentPool.Segment?
        if let first = header.inputs.first, first.count >= BinaryMatrix.sharedMemoryThreshold {
            result = pool?.acquire(byteCount: first.count * 8)
        }
        if let result {
            text.append(contentsOf: #","$result":{"shm":"#.utf8)
            JSONWriter.writeString(result.name, into: &text)
            text.append(contentsOf: "}}".utf8)
        } else {
            text.append(contentsOf: #","$result":"shm"}"#.utf8)
        }
        ok = true
        finished = true
        return V2PreparedCall(params: ByteBuffer(bytes: text), pooled: pooled, pool: pool, created: created, result: result,
                              id: header.id, binaryOutput: header.binaryOutput)
    }

    /// Bytes input `index` has received.
    private func filled(_ index: Int) -> Int {
        switch targets[index] {
        case .segment(_, let filled): filled
        case .gathered(let bytes): bytes.count
        case .json: 0
        }
    }

    /// Moves `current` past complete inputs, choosing each next input's target as it comes up.
    private func openTargets() throws {
        while current < header.inputs.count {
            if current == targets.count {
                let input = header.inputs[current]
                if input.values != nil {
                    targets.append(.json)
                } else if input.itemSize == 8, input.count >= BinaryMatrix.sharedMemoryThreshold,
                          let segment = pool?.acquire(byteCount: input.binaryBytes) {
                    targets.append(.segment(segment, filled: 0))
                } else {
                    var bytes: [UInt8] = []
                    bytes.reserveCapacity(input.binaryBytes)
                    targets.append(.gathered(bytes))
                }
            }
            guard filled(current) == header.inputs[current].binaryBytes else { return }
            current += 1
        }
    }

    /// Appends a matrix held as doubles: a pooled segment at or above the shared-memory threshold, else as
    /// `BinaryMatrix.writeShared` does (base64, or a segment of its own without a pool).
    private func append(_ input: V2InferRequest.Header.Input, _ values: [Double], into text: inout [UInt8],
                        pooled: inout [SharedSegmentPool.Segment], created: inout [String]) {
        values.withUnsafeBufferPointer { buffer in
            if buffer.count >= BinaryMatrix.sharedMemoryThreshold, let pool, let segment = pool.acquire(byteCount: buffer.count * 8) {
                #if _endian(big)
                let bytes = buffer.map { $0.bitPattern.littleEndian }
                let written = bytes.withUnsafeBytes { segment.write($0, at: 0) }
                #else
                let written = segment.write(UnsafeRawBufferPointer(buffer), at: 0)
                #endif
                if written {
                    pooled.append(segment)
                    BinaryMatrix.appendShared(rows: input.rows, cols: input.cols, name: segment.name, into: &text)
                    return
                }
                pool.release(segment)
            }
            if let name = BinaryMatrix.writeShared(rows: input.rows, cols: input.cols, buffer, into: &text) { created.append(name) }
        }
    }
}
