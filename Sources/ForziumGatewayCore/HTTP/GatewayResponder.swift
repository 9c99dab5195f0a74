import ForziumJSON
import ForziumRPC
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

extension HTTPField.Name {
    static let xRequestID = Self("X-Request-ID")!
    static let xForziumEngine = Self("X-Forzium-Engine")!
    static let xForziumTimeout = Self("X-Forzium-Timeout-Ms")!
    static let xAPIKey = Self("X-API-Key")!
}

/// The gateway's one HTTP responder: route table lookup (404/405), API keys (401), CORS, body limits (413),
/// content type (415), JSON parse (400) and schema validation (422), then the engine pool. Bodies are written
/// as bytes: engine results are spliced into the response without being parsed or re-encoded.
public struct GatewayResponder: HTTPResponder {
    public typealias Context = BasicRequestContext

    public let configuration: GatewayConfiguration
    public let routes: RouteTable
    public let pool: EnginePool
    public let validator: any BodyValidator
    public let metrics: GatewayMetrics
    /// The OpenAPI document served at `/openapi.json`.
    public let openAPI: [UInt8]
    private let docsPage: [UInt8]
    private let logger: Logger
    /// Request body bytes held at once across all requests (`--max-buffered-bytes`).
    let bodyBudget: RequestBodyBudget

    public init(configuration: GatewayConfiguration, routes: RouteTable, pool: EnginePool, validator: any BodyValidator,
                metrics: GatewayMetrics, openAPI: [UInt8], logger: Logger) {
        self.configuration = configuration
        self.routes = routes
        self.pool = pool
        self.validator = validator
        self.metrics = metrics
        self.openAPI = openAPI
        self.docsPage = DocsPage.html(openAPI: openAPI, title: routes.title)
        self.logger = logger
        self.bodyBudget = RequestBodyBudget(limit: configuration.maxBufferedBodyBytes)
    }

    public func respond(to request: Request, context: Context) async throws -> Response {
        let started = ContinuousClock.now
        let requestID = Self.requestID(from: request.headers[.xRequestID])
        let path = request.uri.path
        let method = request.method.rawValue
        var routeLabel = "unmatched"
        var response: Response
        do {
            if method == "OPTIONS", !configuration.corsOrigins.isEmpty, routes.methods(for: path) != nil {
                response = preflight(request: request, path: path)
            } else {
                let route = try routes.match(method: method, path: path)
                routeLabel = route.path
                if !route.isPublic { try authorize(request) }
                response = try await handle(route: route, request: request, requestID: requestID, started: started)
            }
        } catch let error as GatewayError {
            response = problem(error, requestID: requestID, path: path)
        } catch is CancellationError {
            // The client went away (ClientDisconnect cancels the task): nobody reads this; 499 is for the metrics only.
            response = Response(status: .init(code: 499, reasonPhrase: "Client Closed Request"))
        } catch {
            logger.error("unexpected error", metadata: ["request_id": "\(requestID)", "error": "\(error)"])
            response = problem(GatewayError(.engineInternal, "internal error"), requestID: requestID, path: path)
        }
        response.headers[.xRequestID] = requestID
        applyCORS(request: request, response: &response)
        metrics.recordRequest(route: routeLabel, method: method, status: response.status.code, duration: started.duration(to: .now))
        return response
    }

    // MARK: Routing

    private func handle(route: Route, request: Request, requestID: String, started: ContinuousClock.Instant) async throws -> Response {
        switch route.handler {
        case .health:
            return json(Array(#"{"status":"ok"}"#.utf8))
        case .ready:
            return readiness()
        case .info:
            return json(serviceInfo())
        case .metrics:
            pool.publishMetrics()
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: metrics.render())))
        case .openapi:
            return json(openAPI)
        case .docs:
            var headers = HTTPFields()
            headers[.contentType] = "text/html; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: docsPage)))
        case .compute, .operation, .stream:
            return try await engineRoute(route: route, request: request, requestID: requestID, started: started)
        }
    }

    // MARK: Engine routes

    private func engineRoute(route: Route, request: Request, requestID: String, started: ContinuousClock.Instant) async throws -> Response {
        guard Self.isJSON(request.headers[.contentType]) else {
            throw GatewayError(.unsupportedMediaType, "the body must be JSON (Content-Type: application/json)")
        }
        let limit = configuration.maxBodyBytes
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit {
            throw GatewayError(.bodyTooLarge, "the body has \(length) bytes; the limit is \(limit) (--max-body-bytes)")
        }
        let deadline = try deadline(for: request, started: started)
        let (value, bodyBytes) = try await readJSON(request, limit: limit)
        let received = ContinuousClock.now
        guard let schemaURI = route.paramsSchemaURI, let engineMethod = route.engineMethod else {
            throw GatewayError(.engineInternal, "route \(route.path) has no schema or engine method")
        }
        let issues: [PointerIssue]
        do {
            issues = try validator.validate(value, schemaURI: schemaURI)
        } catch {
            logger.error("schema error", metadata: ["schema": "\(schemaURI)", "error": "\(error)"])
            throw GatewayError(.engineInternal, "the request schema could not be applied")
        }
        if !issues.isEmpty {
            throw GatewayError(.validation, "the body does not match the \(route.params ?? "") schema", errors: issues)
        }
        let operation: String
        if route.handler == .operation {
            operation = engineMethod
        } else if case .object(let object) = value, case .string(let op)? = object["operation"] {
            operation = op
        } else {
            throw GatewayError(.validation, "\"operation\" must be a string", errors: [PointerIssue(pointer: "/operation", message: "required string")])
        }
        if route.handler == .stream {
            return try await streamRoute(params: EngineParams(value), operation: operation, requestID: requestID, deadline: deadline, started: started)
        }
        let validatedAt = ContinuousClock.now
        // The engine gets the parsed matrices as binary: it never parses decimal text the gateway already parsed.
        let params = EngineParams(value)
        defer { params.release() }
        let encodedAt = ContinuousClock.now
        let reply = try await pool.call(method: engineMethod, params: params.text, deadline: deadline)
        let answeredAt = ContinuousClock.now
        if let error = reply.error { throw Self.map(engineError: error) }
        let elapsed = started.duration(to: answeredAt).milliseconds
        let result = ResultText.text(reply)
        if logger.logLevel <= .debug {
            logger.debug("request timings", metadata: [
                "request_id": "\(requestID)", "bytes": "\(bodyBytes)",
                "receive_parse_ms": "\(started.duration(to: received).milliseconds)",
                "validate_ms": "\(received.duration(to: validatedAt).milliseconds)",
                "params_ms": "\(validatedAt.duration(to: encodedAt).milliseconds)",
                "engine_ms": "\(encodedAt.duration(to: answeredAt).milliseconds)",
                "print_ms": "\(answeredAt.duration(to: .now).milliseconds)",
            ])
        }
        var tail = ByteBuffer()
        tail.writeString(#","operation":"#)
        tail.writeBytes(Self.jsonString(operation))
        tail.writeString(#","engine":"#)
        tail.writeBytes(Self.jsonString(pool.engine.kind))
        tail.writeString(#","execution_time_ms":"#)
        tail.writeString(Self.milliseconds(elapsed))
        tail.writeString("}")
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        headers[.xForziumEngine] = pool.engine.kind
        return Response(status: .ok, headers: headers, body: Self.body(head: Self.resultHead, result, tail: tail))
    }

    private static let resultHead = ByteBuffer(string: #"{"result":"#)

    /// A response body of `head`, `text` and `tail`. A large text goes out in slices of 1 MiB, each copied into a
    /// buffer only as it is written, so the response never exists twice in memory (a 1024² result is 20 MB of text).
    static func body(head: ByteBuffer, _ text: [UInt8], tail: ByteBuffer) -> ResponseBody {
        let slice = 1 << 20
        guard text.count > slice else {
            var out = ByteBuffer()
            out.reserveCapacity(head.readableBytes + text.count + tail.readableBytes)
            out.writeImmutableBuffer(head)
            out.writeBytes(text)
            out.writeImmutableBuffer(tail)
            return ResponseBody(byteBuffer: out)
        }
        return ResponseBody(contentLength: head.readableBytes + text.count + tail.readableBytes) { writer in
            try await writer.write(head)
            var start = 0
            while start < text.count {
                let end = min(start + slice, text.count)
                try await writer.write(ByteBuffer(bytes: text[start..<end]))
                start = end
            }
            try await writer.write(tail)
            try await writer.finish(nil)
        }
    }

    /// Request bodies: a large one is parsed on two threads (matrix rows read from the middle by the second; same
    /// values and errors as one thread).
    private static let bodyParser: JSONParser = {
        var options = JSONParser.Options()
        options.threads = 2
        return JSONParser(options: options)
    }()

    /// Collects the body (up to `limit` bytes) and parses it once; the body's bytes are released on return.
    /// Parsing runs on the cooperative pool, never on an event loop thread.
    private func readJSON(_ request: Request, limit: Int) async throws -> (JSONValue, Int) {
        // One buffer sized from Content-Length up front: no doubling and copying while a 40 MB body arrives. The
        // bytes are taken from the global body budget first (all at once when the length is known).
        let declared = request.headers[.contentLength].flatMap { Int($0) }
        var reserved = 0
        defer { bodyBudget.release(reserved) }
        func take(_ bytes: Int) throws {
            guard bodyBudget.reserve(bytes) else {
                throw GatewayError(.unavailable(retryAfterSeconds: 1),
                                   "the gateway is holding its limit of request bodies (--max-buffered-bytes); retry shortly")
            }
            reserved += bytes
        }
        var body = ByteBuffer()
        if let declared, declared > 0 {
            try take(declared)
            body.reserveCapacity(declared)
        }
        do {
            for try await chunk in request.body {
                guard body.readableBytes + chunk.readableBytes <= limit else {
                    throw GatewayError(.bodyTooLarge, "the body exceeds the limit of \(limit) bytes (--max-body-bytes)")
                }
                if body.readableBytes + chunk.readableBytes > reserved { try take(body.readableBytes + chunk.readableBytes - reserved) }
                body.writeImmutableBuffer(chunk)
            }
        } catch let error as GatewayError {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch let error as HTTPParserError {
            throw HTTPEdgeHandler.problem(for: error)
        } catch {
            throw GatewayError(.badRequest, "the request body could not be read: \(error)")
        }
        let parsed: Result<JSONValue, JSONParseError> = body.withUnsafeReadableBytes { raw in
            Result { () throws(JSONParseError) -> JSONValue in try Self.bodyParser.parse(raw) }
        }
        switch parsed {
        case .success(let value):
            return (value, body.readableBytes)
        case .failure(let error):
            let location = "line \(error.line), column \(error.column)"
            throw GatewayError(.malformedJSON, "malformed JSON: \(error.message) at \(location)",
                               errors: [PointerIssue(pointer: "", message: "\(error.message) at \(location)")])
        }
    }

    private func streamRoute(params: EngineParams, operation: String, requestID: String, deadline: ContinuousClock.Instant,
                             started: ContinuousClock.Instant) async throws -> Response {
        // The engine has read the input segments once it sends anything: they go after the first event.
        defer { params.release() }
        let events = try await pool.stream(method: "stream", params: params.text, deadline: deadline)
        let iterator = StreamIteratorBox(events.events.makeAsyncIterator())
        let cancel = events.cancel
        // Wait for the first event so an engine error before any row is still a proper problem response.
        let first = try await iterator.next()
        if case .done(let reply)? = first, let error = reply.error { throw Self.map(engineError: error) }
        let engineKind = pool.engine.kind
        let logger = self.logger
        var headers = HTTPFields()
        headers[.contentType] = "application/x-ndjson"
        headers[.xForziumEngine] = engineKind
        let responseBody = ResponseBody { writer in
            var event = first
            while let current = event {
                var out = ByteBuffer()
                switch current {
                case .rows(let line):
                    NDJSONRows.write(notification: line, into: &out)
                case .done(let reply):
                    if let error = reply.error {
                        Self.writeStreamError(Self.map(engineError: error), requestID: requestID, into: &out)
                    } else {
                        out.writeString(#"{"done":true,"#)
                        var shape = reply.resultBytes
                        if shape.first == UInt8(ascii: "{") { shape = shape.dropFirst() }
                        if shape.last == UInt8(ascii: "}") { shape = shape.dropLast() }
                        shape.withUnsafeBytes { _ = out.writeBytes($0) }
                        out.writeString(#","operation":"#)
                        out.writeBytes(Self.jsonString(operation))
                        out.writeString(#","engine":"#)
                        out.writeBytes(Self.jsonString(engineKind))
                        out.writeString(#","execution_time_ms":"#)
                        out.writeString(Self.milliseconds(started.duration(to: .now).milliseconds))
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
        }
        return Response(status: .ok, headers: headers, body: responseBody)
    }

    private static func writeStreamError(_ error: GatewayError, requestID: String, into out: inout ByteBuffer) {
        out.writeString(#"{"error":"#)
        out.writeBytes(error.problemBody(requestID: requestID, instance: "/stream"))
        out.writeString("}\n")
    }

    /// The request's deadline: `--timeout`, lowered by a valid `X-Forzium-Timeout-Ms` header.
    private func deadline(for request: Request, started: ContinuousClock.Instant) throws -> ContinuousClock.Instant {
        var milliseconds = configuration.timeoutMilliseconds
        if let header = request.headers[.xForziumTimeout] {
            guard let value = Int(header.trimmingCharacters(in: .whitespaces)), value > 0 else {
                throw GatewayError(.validation, "X-Forzium-Timeout-Ms must be a positive integer of milliseconds")
            }
            milliseconds = min(milliseconds, value)
        }
        return started + .milliseconds(milliseconds)
    }

    /// Maps a JSON-RPC error from an engine onto the status table.
    static func map(engineError error: RPCError) -> GatewayError {
        switch error.knownCode {
        case .invalidParams?: GatewayError(.validation, error.message, errors: error.issues)
        case .tooLarge?: GatewayError(.bodyTooLarge, error.message)
        case .overloaded?: GatewayError(.unavailable(retryAfterSeconds: 1), "the engine is overloaded: \(error.message)")
        case .shuttingDown?: GatewayError(.unavailable(retryAfterSeconds: 1), "the engine is shutting down")
        case .methodNotFound?: GatewayError(.validation, "the engine does not support this operation: \(error.message)")
        case .internalError?: GatewayError(.engineInternal, "the engine failed: \(error.message)")
        case .requestCancelled?: GatewayError(.deadline, "the request was cancelled: \(error.message)")
        case .parseError?, .invalidRequest?: GatewayError(.engineFailed, "the engine rejected the request: \(error.message)")
        case nil: GatewayError(.engineInternal, "engine error \(error.code): \(error.message)")
        }
    }

    // MARK: Service routes

    private func readiness() -> Response {
        let ready = pool.isReady
        var doc: [(key: String, value: JSONValue)] = [
            ("status", .string(ready ? "ready" : "unavailable")),
            ("engine", .string(pool.engine.kind)),
            ("queued", .number(JSONNumber(Double(pool.queued)))),
        ]
        doc.append(("engines", .array(pool.slotStatuses.map { slot in
            .object(JSONObject([
                ("slot", .number(JSONNumber(Double(slot.slot)))),
                ("pid", slot.pid.map { .number(JSONNumber(Double($0))) } ?? .null),
                ("state", .string(slot.state)),
                ("in_flight", .number(JSONNumber(Double(slot.inFlight)))),
                ("restarts", .number(JSONNumber(Double(slot.restarts)))),
            ]))
        })))
        var out: [UInt8] = []
        CompactJSON.write(.object(JSONObject(doc)), into: &out)
        var response = json(out, status: ready ? .ok : .serviceUnavailable)
        response.headers[.xForziumEngine] = pool.engine.kind
        if !ready { response.headers[.retryAfter] = "5" }
        return response
    }

    private func serviceInfo() -> [UInt8] {
        var out: [UInt8] = []
        let doc: JSONValue = .object(JSONObject([
            ("name", .string("forzium-gateway")),
            ("title", .string(routes.title)),
            ("version", .string(ForziumVersion.string)),
            ("api_version", .string(routes.version)),
            ("engine", .string(pool.engine.kind)),
            ("docs", .string("/docs")),
            ("openapi", .string("/openapi.json")),
            ("routes", .array(routes.routes.map { .string("\($0.method) \($0.path)") })),
        ]))
        CompactJSON.write(doc, into: &out)
        // engine.info is spliced raw (it is compact JSON already).
        out.removeLast()
        out.append(contentsOf: #","engine_info":"#.utf8)
        out.append(contentsOf: pool.engineInfo.utf8)
        out.append(UInt8(ascii: "}"))
        return out
    }

    // MARK: Security

    private func authorize(_ request: Request) throws {
        guard !configuration.apiKeys.isEmpty else { return }
        var presented: String?
        if let auth = request.headers[.authorization], auth.lowercased().hasPrefix("bearer ") {
            presented = String(auth.dropFirst(7)).trimmingCharacters(in: .whitespaces)
        } else if let key = request.headers[.xAPIKey] {
            presented = key.trimmingCharacters(in: .whitespaces)
        }
        guard let key = presented, configuration.apiKeys.contains(where: { Self.constantTimeEqual($0, key) }) else {
            throw GatewayError(.unauthorized, presented == nil
                ? "an API key is required (Authorization: Bearer <key> or X-API-Key)"
                : "the API key is not valid")
        }
    }

    private static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var diff: UInt8 = 0
        for i in x.indices { diff |= x[i] ^ y[i] }
        return diff == 0
    }

    private func allowedOrigin(_ request: Request) -> String? {
        guard !configuration.corsOrigins.isEmpty, let origin = request.headers[.origin] else { return nil }
        if configuration.corsOrigins.contains("*") { return "*" }
        return configuration.corsOrigins.contains(origin) ? origin : nil
    }

    private func applyCORS(request: Request, response: inout Response) {
        guard let origin = allowedOrigin(request) else { return }
        response.headers[.accessControlAllowOrigin] = origin
        response.headers[.accessControlExposeHeaders] = "X-Request-ID, X-Forzium-Engine, Retry-After"
        if origin != "*" { response.headers[.vary] = "Origin" }
    }

    private func preflight(request: Request, path: String) -> Response {
        var headers = HTTPFields()
        if allowedOrigin(request) != nil {
            headers[.accessControlAllowMethods] = (routes.methods(for: path) ?? []).joined(separator: ", ")
            headers[.accessControlAllowHeaders] = "Content-Type, Authorization, X-API-Key, X-Request-ID, X-Forzium-Timeout-Ms"
            headers[.accessControlMaxAge] = "600"
        }
        return Response(status: .noContent, headers: headers)
    }

    // MARK: Helpers

    private func json(_ bytes: [UInt8], status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    private func problem(_ error: GatewayError, requestID: String, path: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/problem+json"
        switch error.code {
        case .methodNotAllowed(let allow): headers[.allow] = allow.joined(separator: ", ")
        case .unavailable(let seconds): headers[.retryAfter] = String(seconds ?? 1)
        case .unauthorized: headers[.wwwAuthenticate] = #"Bearer realm="forzium""#
        default: break
        }
        if error.status.code >= 500 {
            logger.warning("request failed", metadata: ["request_id": "\(requestID)", "status": "\(error.status.code)", "detail": "\(error.detail)"])
        }
        return Response(status: error.status, headers: headers,
                        body: .init(byteBuffer: ByteBuffer(bytes: error.problemBody(requestID: requestID, instance: path))))
    }

    static func isJSON(_ contentType: String?) -> Bool {
        guard let contentType else { return false }
        if contentType == "application/json" { return true }
        let mediaType = contentType.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        return mediaType == "application/json" || (mediaType.hasPrefix("application/") && mediaType.hasSuffix("+json"))
    }

    static func requestID(from header: String?) -> String {
        if let header, RequestIDGenerator.isValid(header) { return header }
        return RequestIDGenerator.next()
    }

    /// `12.345`: milliseconds with three decimals, without Foundation formatting.
    static func milliseconds(_ value: Double) -> String {
        let micros = Int((max(0, value) * 1000).rounded())
        let fraction = micros % 1000
        return "\(micros / 1000)." + (fraction < 10 ? "00" : fraction < 100 ? "0" : "") + String(fraction)
    }

    static func jsonString(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        CompactJSON.writeString(s, into: &out)
        return out
    }
}

extension String {
    fileprivate func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}

/// A stream iterator shared between the responder and the response body writer (used by one task at a time).
final class StreamIteratorBox: @unchecked Sendable {
    private var iterator: AsyncThrowingStream<EngineStreamEvent, any Error>.AsyncIterator
    init(_ iterator: AsyncThrowingStream<EngineStreamEvent, any Error>.AsyncIterator) { self.iterator = iterator }
    func next() async throws -> EngineStreamEvent? { try await iterator.next() }
}

/// Request ids: a random per-process prefix and a counter (no system call per request).
enum RequestIDGenerator {
    private static let prefix: String = {
        let value = UInt64.random(in: .min ... .max)
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }()
    private static let counter = NIOLockedValueBox<UInt64>(0)

    /// A client's `X-Request-ID` is kept when it is 1–128 visible ASCII characters.
    static func isValid(_ id: String) -> Bool {
        (1...128).contains(id.utf8.count) && id.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }

    static func next() -> String {
        let n = counter.withLockedValue { c -> UInt64 in c &+= 1; return c }
        let hex = String(n, radix: 16)
        return prefix + String(repeating: "0", count: max(0, 8 - hex.count)) + hex
    }
}
