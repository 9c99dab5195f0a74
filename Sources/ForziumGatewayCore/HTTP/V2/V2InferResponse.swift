import ForziumJSON
import ForziumRPC
import HTTPTypes
import Hummingbird
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension HTTPField.Name {
    /// Binary tensor data extension: the length of the JSON part of a request or response body.
    static let inferenceHeaderContentLength = Self("Inference-Header-Content-Length")!
}

/// The answer to a v2 inference request, built from the engine's binary result (the params asked `"$result":"shm"`).
///
/// Binary output: `application/octet-stream`, `Inference-Header-Content-Length` = the JSON part's length, then the
/// result's doubles as the engine left them (little-endian, row-major), read from its shared-memory segment straight
/// into the response buffer — no text, no `[Double]` in between. JSON output: `application/json` with the elements in
/// `data` (flat, row-major; non-finite values as `null`, as everywhere in the JSON API). A scalar result has shape `[]`.
enum V2InferResponse {
    /// The response for `reply`; `resultTaken` when it streams from the call's pooled result segment, which it then
    /// owns (and gives back to the pool once the body is written or dropped).
    static func make(_ reply: RPCReply, model: String, call: V2PreparedCall, engine: String) throws -> (Response, resultTaken: Bool) {
        guard let range = reply.resultRange else { throw GatewayError(.engineFailed, "the engine answered without a result") }
        let form = reply.line.withUnsafeBytes { BinaryMatrix.scanForm(UnsafeRawBufferPointer(rebasing: $0[range])) }
        var headers = HTTPFields()
        headers[.xForziumEngine] = engine
        if case .shared(let rows, let cols, let name)? = form, call.binaryOutput {
            let (count, overflow) = rows.multipliedReportingOverflow(by: cols)
            guard !overflow, count > 0, count <= Int.max / 8 else { throw GatewayError(.engineFailed, "the engine sent a malformed result") }
            let byteCount = count * 8
            // Opened (and its size checked) now, so a missing or wrong segment is an error response, not a cut body.
            let segment: ResultSegment
            let pooled = call.result.flatMap { $0.name == name ? $0 : nil }
            if let pooled {
                guard pooled.currentByteCount() == byteCount else {
                    throw GatewayError(.engineFailed, "the engine's result segment does not hold \(byteCount) bytes")
                }
                segment = ResultSegment(pooled: pooled, pool: call.pool)
            } else {
                segment = ResultSegment(name: name)
                try segment.open(byteCount: byteCount)
            }
            let head = header(model: model, id: call.id, shape: [rows, cols], binarySize: byteCount)
            headers[.contentType] = "application/octet-stream"
            headers[.inferenceHeaderContentLength] = String(head.count)
            let response = Response(status: .ok, headers: headers, body: ResponseBody(contentLength: head.count + byteCount) { writer in
                try await segment.stream(head: head, byteCount: byteCount, to: &writer)
            })
            return (response, pooled != nil)
        }
        // Any other form (base64, a scalar, JSON text from an engine that ignores "$result"): as doubles.
        let (shape, values) = try doubles(reply, keeping: call.result?.name)
        if call.binaryOutput {
            let head = header(model: model, id: call.id, shape: shape, binarySize: values.count * 8)
            var body = ByteBuffer()
            body.reserveCapacity(head.count + values.count * 8)
            body.writeBytes(head)
            for value in values { body.writeInteger(value.bitPattern, endianness: .little) }
            headers[.contentType] = "application/octet-stream"
            headers[.inferenceHeaderContentLength] = String(head.count)
            return (Response(status: .ok, headers: headers, body: .init(byteBuffer: body)), false)
        }
        var head = header(model: model, id: call.id, shape: shape, binarySize: nil)
        head.removeLast(3) // `}]}`
        head.append(contentsOf: #","data":"#.utf8)
        var text: [UInt8] = []
        text.reserveCapacity(values.count * 20 + 2)
        text.append(UInt8(ascii: "["))
        for (index, value) in values.enumerated() {
            if index > 0 { text.append(UInt8(ascii: ",")) }
            JSONWriter.writeDouble(value, into: &text)
        }
        text.append(UInt8(ascii: "]"))
        headers[.contentType] = "application/json"
        return (Response(status: .ok, headers: headers,
                         body: EngineAnswer.body(head: ByteBuffer(bytes: head), text, tail: ByteBuffer(string: "}]}"))), false)
    }

    /// The JSON part: `{"model_name","model_version","id"?,"outputs":[{"name":"result","datatype":"FP64","shape",
    /// "parameters":{"binary_data_size"}?}]}`.
    static func header(model: String, id: String?, shape: [Int], binarySize: Int?) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(160)
        out.append(contentsOf: #"{"model_name":"#.utf8)
        JSONWriter.writeString(model, into: &out)
        out.append(contentsOf: #","model_version":"#.utf8)
        JSONWriter.writeString(V2Catalogue.version, into: &out)
        if let id {
            out.append(contentsOf: #","id":"#.utf8)
            JSONWriter.writeString(id, into: &out)
        }
        out.append(contentsOf: #","outputs":[{"name":"result","datatype":"FP64","shape":["#.utf8)
        out.append(contentsOf: shape.map(String.init).joined(separator: ",").utf8)
        out.append(UInt8(ascii: "]"))
        if let binarySize {
            out.append(contentsOf: #","parameters":{"binary_data_size":"#.utf8)
            out.append(contentsOf: String(binarySize).utf8)
            out.append(UInt8(ascii: "}"))
        }
        out.append(contentsOf: "}]}".utf8)
        return out
    }

    /// The result as a shape and row-major doubles (a shared-memory result is read and its segment removed).
    static func doubles(_ reply: RPCReply, keeping: String? = nil) throws -> ([Int], [Double]) {
        if let matrix = reply.takeBinaryResult(keeping: keeping) {
            return (matrix.isScalar ? [] : [matrix.rows, matrix.cols], matrix.storage)
        }
        let value: JSONValue
        do {
            value = try JSONParser().parse(reply.resultBytes)
        } catch {
            throw GatewayError(.engineFailed, "the engine sent a malformed result")
        }
        if let number = value.doubleValue { return ([], [number]) }
        if let rows = value.arrayValue, let cols = EngineParams.rectangularColumns(rows) {
            var storage: [Double] = []
            storage.reserveCapacity(rows.count * cols)
            for case .numbers(let numbers) in rows { storage.append(contentsOf: numbers) }
            return ([rows.count, cols], storage)
        }
        if case .null = value { return ([], [.nan]) }
        throw GatewayError(.engineFailed, "the engine's result is not a matrix or a number")
    }
}

/// The segment a result is read from for one response: read in pieces straight into the response as the client takes
/// them — the result is never whole in the gateway's memory. Once the response is done with it (or dropped unsent), a
/// segment the engine made is removed, and the gateway's own pooled segment goes back to its pool.
final class ResultSegment: @unchecked Sendable {
    let name: String
    private var descriptor: Int32 = -1
    private let pooled: (segment: SharedSegmentPool.Segment, pool: SharedSegmentPool?)?

    /// Bytes per piece: below glibc's threshold for a mapping of its own, so each piece comes from warm heap memory.
    static let pieceBytes = 256 << 10

    /// A segment the engine made (removed when done).
    init(name: String) {
        self.name = name
        self.pooled = nil
    }

    /// The gateway's pooled segment the engine wrote into (given back when done).
    init(pooled segment: SharedSegmentPool.Segment, pool: SharedSegmentPool?) {
        self.name = segment.name
        self.pooled = (segment, pool)
        self.descriptor = segment.descriptor
    }

    deinit {
        if let pooled {
            pooled.pool?.release(pooled.segment)
        } else {
            if descriptor >= 0 { close(descriptor) }
            SharedMatrixSegment.unlink(name)
        }
    }

    /// Opens the engine's segment, which must hold exactly `byteCount` bytes.
    func open(byteCount: Int) throws {
        do {
            descriptor = try SharedMatrixSegment.open(name, byteCount: byteCount)
        } catch {
            throw GatewayError(.engineFailed, "the engine's result could not be read: \(error.message)")
        }
    }

    /// Writes `head`, then the segment's bytes a piece at a time (each write waits until the client has taken
    /// enough), then ends the body. A segment that cannot be read part-way ends the connection (the length is sent).
    func stream(head: [UInt8], byteCount: Int, to writer: inout any ResponseBodyWriter) async throws {
        var first = ByteBuffer()
        first.reserveCapacity(head.count + min(byteCount, Self.pieceBytes))
        first.writeBytes(head)
        var offset = 0
        var buffer = first
        while offset < byteCount {
            let size = min(Self.pieceBytes, byteCount - offset)
            let ok = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
                SharedMatrixSegment.read(descriptor, into: UnsafeMutableRawBufferPointer(rebasing: out[0..<size]), at: offset) ? size : 0
            }
            guard ok == size else { throw GatewayError(.engineFailed, "the engine's result could not be read") }
            offset += size
            try await writer.write(buffer)
            buffer = ByteBuffer()
            buffer.reserveCapacity(min(Self.pieceBytes, byteCount - offset))
        }
        try await writer.finish(nil)
    }
}
