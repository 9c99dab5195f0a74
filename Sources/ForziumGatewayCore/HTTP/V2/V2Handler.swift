import ForziumJSON
import ForziumSchemaBundle
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPCompression

/// The Open Inference Protocol (KServe / Triton "v2") on the gateway: every operation is a model named after it.
///
/// - `GET /v2`: server metadata (`extensions` lists `binary_tensor_data`);
/// - `GET /v2/health/live`, `GET /v2/health/ready`;
/// - `GET /v2/models/{op}` (metadata: the operation's matrices as inputs, `result` as output), `GET /v2/models/{op}/ready`;
/// - `POST /v2/models/{op}/infer`: `V2InferRequest` → the engine pool → `V2InferResponse`.
///
/// Errors take the protocol's `{"error": "..."}` shape (`V2Error`, applied by `ProblemMiddleware`).
struct V2Handler: Sendable {
    let catalogue: V2Catalogue
    let reader: EngineRequestReader
    let pool: EnginePool
    let serverVersion: String
    let logger: Logger

    init(routes: RouteTable, files: [(path: String, text: String)] = SchemaBundle.files, reader: EngineRequestReader,
         pool: EnginePool, logger: Logger) {
        self.catalogue = V2Catalogue(routes: routes, files: files)
        self.reader = reader
        self.pool = pool
        self.serverVersion = routes.version
        self.logger = logger
    }

    func respond(to request: Request, route: Route, requestID: String) async throws -> Response {
        let segments = request.uri.path.split(separator: "/", omittingEmptySubsequences: false)
        switch route.path {
        case "/v2":
            return Self.json(.object(JSONObject([
                ("name", .string("forzium")),
                ("version", .string(serverVersion)),
                ("extensions", .array([.string("binary_tensor_data")])),
            ])))
        case "/v2/health/live":
            return Self.json(.object(JSONObject([("live", .bool(true))])))
        case "/v2/health/ready":
            guard pool.isReady else { throw GatewayError(.unavailable(retryAfterSeconds: 1), "no engine is ready") }
            return Self.json(.object(JSONObject([("ready", .bool(true))])))
        case "/v2/models/{model}":
            return Self.json(catalogue.metadata(try model(segments)))
        case "/v2/models/{model}/ready":
            let model = try model(segments)
            guard pool.isReady else { throw GatewayError(.unavailable(retryAfterSeconds: 1), "model \"\(model.name)\" is not ready: no engine is ready") }
            return Self.json(.object(JSONObject([("name", .string(model.name)), ("ready", .bool(true))])))
        case "/v2/models/{model}/infer":
            return try await infer(request, model: try model(segments))
        default:
            throw GatewayError(.notFound, "no route for \(request.uri.path)")
        }
    }

    /// The model named by the path's third segment; 404 when there is none.
    private func model(_ segments: [Substring]) throws -> V2Model {
        let name = segments.count > 3 ? String(segments[3]) : ""
        guard let model = catalogue.models[name] else {
            throw GatewayError(.notFound, "unknown model \"\(name)\"; the models are the operations: \(catalogue.names.joined(separator: ", "))")
        }
        return model
    }

    private func infer(_ request: Request, model: V2Model) async throws -> Response {
        let started = ContinuousClock.now
        if let coding = request.headers[.contentEncoding]?.lowercased(), !["gzip", "x-gzip", "deflate", "identity"].contains(coding) {
            throw GatewayError(.unsupportedMediaType, "Content-Encoding \"\(coding)\" is not supported; use gzip or deflate")
        }
        var headerLength: Int?
        if let text = request.headers[.inferenceHeaderContentLength] {
            guard let value = Int(text.trimmingSpaces), value >= 0 else {
                throw GatewayError(.validation, "Inference-Header-Content-Length must be a non-negative integer")
            }
            headerLength = value
        }
        let deadline = try reader.v2Deadline(for: request, started: started)
        let validator = reader.validator
        // Tensors of any size: a large body is read and copied into its segments off the event loop (Offload).
        let heavy = Offload.isHeavy(contentLength: request.headers[.contentLength])
        let call = try await Offload.run(if: heavy) {
            try await reader.withBody(request) { body in
                try V2InferRequest.prepare(body: body, headerLength: headerLength, model: model, validator: validator)
            }
        }
        defer { call.release() }
        let reply = try await pool.call(method: model.name, params: call.params, deadline: deadline)
        if let error = reply.error { throw EngineAnswer.map(engineError: error) }
        let kind = pool.engine.kind
        let name = model.name
        // The result is read from its segment (or its text printed) off the loop unless the request was small.
        return try await Offload.run(if: heavy || reply.line.count > Offload.inlineBytes) {
            try V2InferResponse.make(reply, model: name, call: call, engine: kind)
        }
    }

    static func json(_ value: JSONValue) -> Response {
        var body: [UInt8] = []
        JSONWriter.write(value, options: .document, into: &body)
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

extension String {
    /// Without leading and trailing spaces and tabs (header values).
    fileprivate var trimmingSpaces: Substring {
        var text = self[...]
        while let first = text.first, first == " " || first == "\t" { text.removeFirst() }
        while let last = text.last, last == " " || last == "\t" { text.removeLast() }
        return text
    }
}

extension EngineRequestReader {
    /// The request's deadline: `--timeout`, lowered by a valid `X-Forzium-Timeout-Ms` header.
    func v2Deadline(for request: Request, started: ContinuousClock.Instant) throws -> ContinuousClock.Instant {
        var milliseconds = timeoutMilliseconds
        if let header = request.headers[.xForziumTimeout] {
            guard let value = Int(header.trimmingSpaces), value > 0 else {
                throw GatewayError(.validation, "X-Forzium-Timeout-Ms must be a positive integer of milliseconds")
            }
            milliseconds = min(milliseconds, value)
        }
        return started + .milliseconds(milliseconds)
    }

    /// Collects a body of any media type (up to `--max-body-bytes`, inflated when it is gzip or deflate) into one
    /// buffer sized from Content-Length, holding the bytes against the global body budget, and hands it to `use`;
    /// the buffer is released on return.
    func withBody<T>(_ request: Request, _ use: (ByteBuffer) throws -> T) async throws -> T {
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > maxBodyBytes {
            throw GatewayError(.bodyTooLarge, "the body has \(length) bytes; the limit is \(maxBodyBytes) (--max-body-bytes)")
        }
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
        let limit = maxBodyBytes
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
        } catch NIOHTTPDecompression.DecompressionError.limit {
            throw GatewayError(.bodyTooLarge, "the body inflates past the limit of \(limit) bytes (--max-body-bytes)")
        } catch is NIOHTTPDecompression.DecompressionError, is NIOHTTPDecompression.ExtraDecompressionError {
            throw GatewayError(.badRequest, "the body is not valid for its Content-Encoding")
        } catch {
            throw GatewayError(.badRequest, "the request body could not be read: \(error)")
        }
        return try use(body)
    }
}
