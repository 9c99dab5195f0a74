import ForziumJSON
import ForziumRPC
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// `POST /compute` and `POST /v1/{operation}`: the validated body goes to the engine pool with its matrices as
/// binary (shared memory or base64, never decimal text again), and the result is spliced into
/// `{"result":…,"operation":…,"engine":…,"execution_time_ms":…}` without being parsed.
struct ComputeHandler: Sendable {
    let reader: EngineRequestReader
    let pool: EnginePool
    let logger: Logger

    func respond(to request: Request, route: Route, requestID: String) async throws -> Response {
        let started = ContinuousClock.now
        let (decoded, params, received) = try await reader.readForEngine(request, route: route, started: started)
        defer { params.release() }
        let encodedAt = ContinuousClock.now
        let reply = try await pool.call(method: decoded.engineMethod, params: params.text, deadline: decoded.deadline)
        let answeredAt = ContinuousClock.now
        let matrix = try Self.binaryResult(of: reply)
        let result = try await Offload.run(if: Self.isLarge(reply, matrix)) { ResultText.text(reply, binary: matrix) }
        if logger.logLevel <= .debug {
            logger.debug("request timings", metadata: [
                "request_id": "\(requestID)", "bytes": "\(decoded.bodyBytes)",
                "receive_parse_validate_ms": "\(started.duration(to: received).milliseconds)",
                "params_ms": "\(received.duration(to: encodedAt).milliseconds)",
                "engine_ms": "\(encodedAt.duration(to: answeredAt).milliseconds)",
                "print_ms": "\(answeredAt.duration(to: .now).milliseconds)",
            ])
        }
        let kind = pool.engineKind
        return Response(status: .ok, headers: Self.fields(kind: kind),
                        body: EngineAnswer.body(head: Self.resultHead, result,
                                                tail: Self.tail(operation: decoded.operation, kind: kind, milliseconds: started.duration(to: answeredAt).milliseconds)))
    }

    /// The reply's result in binary form (nil when it is other JSON); an engine error becomes its problem.
    static func binaryResult(of reply: RPCReply) throws -> BinaryMatrix? {
        if let error = reply.error { throw EngineAnswer.map(engineError: error) }
        return reply.takeBinaryResult()
    }

    /// Whether printing the result is heavy enough to leave the event loop.
    static func isLarge(_ reply: RPCReply, _ matrix: BinaryMatrix?) -> Bool {
        (matrix?.storage.count ?? 0) * 8 > Offload.inlineBytes || reply.resultBytes.count > Offload.inlineBytes
    }

    /// The fields of every answer: JSON, and which engine kind computed it (`InlineCompute` writes the same pairs).
    static func fieldPairs(kind: String) -> [(name: String, value: String)] {
        [("Content-Type", "application/json"), ("X-Forzium-Engine", kind)]
    }

    static func fields(kind: String) -> HTTPFields {
        HTTPFields(fieldPairs(kind: kind).map { HTTPField(name: HTTPField.Name($0.name)!, value: $0.value) })
    }

    /// What follows the result: `,"operation":…,"engine":…,"execution_time_ms":…}`.
    static func tail(operation: String, kind: String, milliseconds: Double) -> ByteBuffer {
        var tail = ByteBuffer()
        tail.reserveCapacity(tailCapacity(operation: operation, kind: kind))
        writeTail(operation: operation, kind: kind, milliseconds: milliseconds, into: &tail)
        return tail
    }

    /// Room for `tail`'s bytes (the fixed keys and a time take under 64).
    private static func tailCapacity(operation: String, kind: String) -> Int { 64 + operation.utf8.count + kind.utf8.count }

    /// Appends `tail`'s bytes: the summary fields and the closing `}`.
    private static func writeTail(operation: String, kind: String, milliseconds: Double, into out: inout ByteBuffer) {
        writeSummary(operation: operation, kind: kind, milliseconds: milliseconds, into: &out)
        out.writeInteger(UInt8(ascii: "}"))
    }

    /// Room for `writeSmallAnswer`'s bytes.
    static func smallAnswerCapacity(_ text: UnsafeRawBufferPointer, operation: String, kind: String) -> Int {
        resultHead.readableBytes + text.count + tailCapacity(operation: operation, kind: kind)
    }

    /// Appends a small answer: `{"result":` `text`, the summary fields, `}` (what `EngineAnswer.whole` makes of
    /// `resultHead`, `text` and `tail`, without the two intermediate buffers).
    static func writeSmallAnswer(_ text: UnsafeRawBufferPointer, operation: String, kind: String, milliseconds: Double, into out: inout ByteBuffer) {
        out.writeImmutableBuffer(resultHead)
        out.writeBytes(text)
        writeTail(operation: operation, kind: kind, milliseconds: milliseconds, into: &out)
    }

    /// `,"operation":…,"engine":…,"execution_time_ms":…`: the fields after a result (`/compute`) or a stream's shape.
    static func writeSummary(operation: String, kind: String, milliseconds: Double, into out: inout ByteBuffer) {
        out.writeStaticString(#","operation":"#)
        EngineAnswer.writeJSONString(operation, into: &out)
        out.writeStaticString(#","engine":"#)
        EngineAnswer.writeJSONString(kind, into: &out)
        out.writeStaticString(#","execution_time_ms":"#)
        EngineAnswer.writeMilliseconds(milliseconds, into: &out)
    }

    static let resultHead = ByteBuffer(string: #"{"result":"#)
}
