import ForziumJSON
import ForziumRPC
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1

/// The hot route — `POST /compute` or `POST /v1/{operation}` with a small body — answered on the connection's event
/// loop in no task (`InlineComputeHandler` calls it): the body is parsed and validated where it was collected
/// (`EngineRequestReader.decode`), handed to the engine pool with a callback (`EnginePool.submit`), and a small result
/// is printed and written as soon as the engine's line arrives. No `Request`, `Response`, HTTPTypes head, middleware
/// closure, continuation or task is made for it.
///
/// Only the plain answer is written here: a 200 whose body is under the compression threshold, with the request id,
/// the `Date` and the request counted in the metrics exactly as the responder chain does. Every other outcome — a
/// problem, a result large enough to be printed off the loop or to be compressed — is handed to the gateway's
/// responder chain as precomputed (`GatewayRequestContext.precomputed`), so problems, compression, CORS and the
/// request id come from the same middleware as for any request, and nothing is parsed or computed twice. Requests
/// the middleware would treat specially are not taken at all (`route(for:)`): with the access log on, with an
/// `Origin` when CORS is configured, without a valid API key when keys are set, or with an unusual target.
///
/// A class: each request's engine callback holds it, and holding one reference is cheaper than copying its fields.
final class InlineCompute: Sendable {
    let routes: RouteTable
    let reader: EngineRequestReader
    let pool: EnginePool
    let metrics: GatewayMetrics
    let apiKeys: APIKeyMiddleware
    let corsEnabled: Bool
    let accessLog: Bool
    let compression: ResponseCompression
    let logger: Logger
    /// Whether each request's timings are logged (debug level; the level is fixed for the process's life).
    private let logsTimings: Bool
    /// The routes served here, with their paths.
    private let hotRoutes: [(path: String, route: Route)]
    /// The request metrics of each route served here (its 200s), fetched once.
    private let recorders: [ObjectIdentifier: GatewayMetrics.RequestRecorder]

    init(routes: RouteTable, reader: EngineRequestReader, pool: EnginePool, metrics: GatewayMetrics, apiKeys: APIKeyMiddleware,
         corsEnabled: Bool, accessLog: Bool, compression: ResponseCompression, logger: Logger) {
        self.routes = routes
        self.reader = reader
        self.pool = pool
        self.metrics = metrics
        self.apiKeys = apiKeys
        self.corsEnabled = corsEnabled
        self.accessLog = accessLog
        self.compression = compression
        self.logger = logger
        self.logsTimings = logger.logLevel <= .debug
        var recorders: [ObjectIdentifier: GatewayMetrics.RequestRecorder] = [:]
        var hotRoutes: [(path: String, route: Route)] = []
        for route in routes.routes where route.method == "POST" && (route.handler == .compute || route.handler == .operation) {
            recorders[ObjectIdentifier(route)] = metrics.requestRecorder(route: route.path, method: "POST", status: 200)
            if !route.path.contains("{") { hotRoutes.append((route.path, route)) }
        }
        // ForziumAPI's `/compute` first: the route most requests take.
        hotRoutes.sort { ($0.route.handler == .compute ? 0 : 1) < ($1.route.handler == .compute ? 0 : 1) }
        self.hotRoutes = hotRoutes
        self.recorders = recorders
    }

    /// How a request served here ends.
    enum Outcome: Sendable {
        /// The whole answer, to be encoded by the connection's handler (which knows whether the connection closes).
        case answer(InlineAnswer)
        /// The responder chain finishes it, with this in place of the route's handler.
        case chain(@Sendable () async throws -> Response)
    }

    /// The route of a request this serves, or nil (the request then goes through the responder chain as it is).
    /// `head` comes from `HTTPEdgeHandler`, which has already applied RFC 9112's rules to it.
    func route(for head: HTTPRequestHead) -> Route? {
        guard head.method == .POST, !accessLog else { return nil }
        let uri = head.uri
        // The routes served here by their exact paths, compared in turn (a short path compares as two words); the
        // route table's hashed lookup only for any other target.
        guard let route = hotRoutes.first(where: { $0.path == uri })?.route
                ?? (Self.isPlainPath(uri) ? (try? routes.match(method: "POST", path: uri)) : nil),
              route.handler == .compute || route.handler == .operation
        else { return nil }
        let headers = head.headers
        if corsEnabled, headers.value("origin") != nil { return nil }
        if !apiKeys.keys.isEmpty, !route.isPublic,
           (try? apiKeys.authorize(authorization: headers.value("authorization"), apiKey: headers.value("x-api-key"))) == nil {
            return nil
        }
        return route
    }

    /// An origin-form target without query, fragment or percent-encoding: one the route table matches as it is.
    private static func isPlainPath(_ uri: String) -> Bool {
        func plain(_ bytes: some Collection<UInt8>) -> Bool {
            bytes.first == UInt8(ascii: "/")
                && !bytes.contains { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "#") }
        }
        return uri.utf8.withContiguousStorageIfAvailable { plain($0) } ?? plain(uri.utf8)
    }

    /// Starts serving `head` and its whole `body` on `route`. Returns the outcome when it is known at once (the body
    /// was refused, or the pool could not take it); otherwise `completion` gets it, once, on the thread that resolves
    /// the engine request (the engine's event loop, or the deadline timer's).
    func serve(_ head: HTTPRequestHead, body: ByteBuffer, route: Route,
               completion: @escaping @Sendable (consuming Outcome) -> Void) -> Outcome? {
        let started = ContinuousClock.now
        // Timings are taken on NIO's clock too: its readings are plain nanoseconds, where a `Duration` between two
        // `ContinuousClock` instants costs a 128-bit conversion to print or record (~1 % of the request's instructions).
        let startedAt = NIODeadline.now()
        let decoded: EngineRequestReader.Decoded
        do {
            decoded = try reader.decode(body: body, headers: .init(head.headers), route: route, started: started)
        } catch {
            return .chain { throw error }
        }
        let params = body.readableBytes <= EngineParams.verbatimBodyLimit ? EngineParams(verbatim: body) : EngineParams(decoded.value)
        let requestID = RequestIDGenerator.client(head.headers.value("x-request-id"))
        // What the answer needs of the request, taken out so the parsed body is freed now, while its memory is
        // still in cache, and not when the engine's reply drops the callback.
        let segments = params.segments
        let operation = decoded.operation, bodyBytes = decoded.bodyBytes
        do {
            try pool.submit(method: decoded.engineMethod, params: params.text, deadline: decoded.deadline) { [self] result in
                EngineParams.release(segments)
                completion(finish(result, operation: operation, bodyBytes: bodyBytes, route: route, startedAt: startedAt,
                                  requestID: requestID))
            }
        } catch {
            params.release()
            return .chain { throw error }
        }
        return nil
    }

    private func finish(_ result: Result<RPCReply, any Error>, operation: String, bodyBytes: Int, route: Route,
                        startedAt: NIODeadline, requestID: String?) -> Outcome {
        let answeredAt = NIODeadline.now()
        let reply: RPCReply
        let matrix: BinaryMatrix?
        do {
            reply = try result.get()
            matrix = try ComputeHandler.binaryResult(of: reply)
        } catch {
            return .chain { throw error }
        }
        let kind = pool.engineKind
        let milliseconds = Self.milliseconds(from: startedAt, to: answeredAt)
        if ComputeHandler.isLarge(reply, matrix) {
            let tail = ComputeHandler.tail(operation: operation, kind: kind, milliseconds: milliseconds)
            return .chain {
                let text = try await Offload.run(if: true) { ResultText.text(reply, binary: matrix) }
                return Response(status: .ok, headers: ComputeHandler.fields(kind: kind),
                                body: EngineAnswer.body(head: ComputeHandler.resultHead, text, tail: tail))
            }
        }
        let answer = ResultText.withText(reply, binary: matrix) { text in
            InlineAnswer(kind: kind, clientRequestID: requestID,
                         bodyCapacity: ComputeHandler.smallAnswerCapacity(text, operation: operation, kind: kind)) {
                ComputeHandler.writeSmallAnswer(text, operation: operation, kind: kind, milliseconds: milliseconds, into: &$0)
            }
        }
        if compression.isEnabled, answer.body.readableBytes >= compression.minBytes {
            let body = answer.body
            return .chain { Response(status: .ok, headers: ComputeHandler.fields(kind: kind), body: ResponseBody(byteBuffer: body)) }
        }
        let printedAt = NIODeadline.now()
        let nanoseconds = (printedAt - startedAt).nanoseconds
        if let recorder = recorders[ObjectIdentifier(route)] {
            recorder.record(nanoseconds: nanoseconds)
        } else {
            metrics.recordRequest(route: route.path, method: "POST", status: 200, duration: .nanoseconds(nanoseconds))
        }
        if logsTimings {
            logger.debug("request timings", metadata: [
                "request_id": "\(answer.requestIDText)", "bytes": "\(bodyBytes)", "inline": "true",
                "until_answer_ms": "\(milliseconds)",
                "print_ms": "\(Self.milliseconds(from: answeredAt, to: printedAt))",
            ])
        }
        return .answer(answer)
    }

    private static func milliseconds(from start: NIODeadline, to end: NIODeadline) -> Double {
        Double((end - start).nanoseconds) / 1e6
    }
}
