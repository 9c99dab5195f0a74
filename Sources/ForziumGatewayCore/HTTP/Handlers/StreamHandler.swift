import ForziumJSON
import ForziumRPC
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// `POST /stream`: NDJSON, one line per result row as the engine sends row blocks, then a `{"done":true,…}` line
/// (or an `{"error":{problem}}` line when the engine fails after the first row).
struct StreamHandler: Sendable {
    let reader: EngineRequestReader
    let pool: EnginePool
    let logger: Logger

    func respond(to request: Request, route: Route, requestID: String) async throws -> Response {
        let started = ContinuousClock.now
        let heavy = Offload.isHeavy(contentLength: request.headers.value(.contentLength))
        let (decoded, params, _) = try await reader.readForEngine(request, route: route, started: started)
        let operation = decoded.operation
        // The engine has read the input segments once it sends anything: they go after the first event.
        defer { params.release() }
        let events = try await pool.stream(method: "stream", params: params.text, deadline: decoded.deadline)
        let iterator = StreamIteratorBox(events.events.makeAsyncIterator())
        let cancel = events.cancel
        // Wait for the first event so an engine error before any row is still a proper problem response.
        let first = try await iterator.next()
        if case .done(let reply)? = first, let error = reply.error { throw EngineAnswer.map(engineError: error) }
        let engineKind = pool.engineKind
        let logger = self.logger
        var headers = HTTPFields()
        headers[.contentType] = "application/x-ndjson"
        headers[.xForziumEngine] = engineKind
        // Rows are re-framed as they come; for a large input (a long stream) that runs off the event loop.
        let responseBody = ResponseBody { writer in try await Offload.run(if: heavy) {
            var event = first
            while let current = event {
                var out = ByteBuffer()
                switch current {
                case .rows(let line):
                    NDJSONRows.write(notification: line, into: &out)
                case .done(let reply):
                    if let error = reply.error {
                        Self.writeStreamError(EngineAnswer.map(engineError: error), requestID: requestID, into: &out)
                    } else {
                        out.writeString(#"{"done":true,"#)
                        var shape = reply.resultBytes
                        if shape.first == UInt8(ascii: "{") { shape = shape.dropFirst() }
                        if shape.last == UInt8(ascii: "}") { shape = shape.dropLast() }
                        shape.withUnsafeBytes { _ = out.writeBytes($0) }
                        ComputeHandler.writeSummary(operation: operation, kind: engineKind, milliseconds: started.duration(to: .now).milliseconds,
                                                    into: &out)
                        out.writeString("}\n")
                    }
                }
                if out.readableBytes > 0 {
                    do {
                        try await writer.write(out)
                    } catch {
                        // The client went away: stop the engine work's bookkeeping for this request.
                        cancel()
                        throw error
                    }
                }
                do {
                    event = try await iterator.next()
                } catch let error as GatewayError {
                    var tail = ByteBuffer()
                    Self.writeStreamError(error, requestID: requestID, into: &tail)
                    try await writer.write(tail)
                    event = nil
                } catch {
                    logger.error("stream failed", metadata: ["error": "\(error)"])
                    event = nil
                }
            }
            try await writer.finish(nil)
        } }
        return Response(status: .ok, headers: headers, body: responseBody)
    }

    private static func writeStreamError(_ error: GatewayError, requestID: String, into out: inout ByteBuffer) {
        out.writeString(#"{"error":"#)
        out.writeBytes(error.problemBody(requestID: requestID, instance: "/stream"))
        out.writeString("}\n")
    }
}

/// A stream iterator shared between the handler and the response body writer (used by one task at a time).
final class StreamIteratorBox: @unchecked Sendable {
    private var iterator: AsyncThrowingStream<EngineStreamEvent, any Error>.AsyncIterator
    init(_ iterator: AsyncThrowingStream<EngineStreamEvent, any Error>.AsyncIterator) { self.iterator = iterator }
    func next() async throws -> EngineStreamEvent? { try await iterator.next() }
}
