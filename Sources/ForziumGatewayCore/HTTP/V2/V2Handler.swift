import ForziumJSON
import ForziumRPC
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
        try reader.checkContentEncoding(.init(request.headers))
        var headerLength: Int?
        if let text = request.headers[.inferenceHeaderContentLength] {
            guard let value = Int(text.trimmingSpaces), value >= 0 else {
                throw GatewayError(.validation, "Inference-Header-Content-Length must be a non-negative integer")
            }
            headerLength = value
        }
        let deadline = try reader.deadline(for: .init(request.headers), started: started)
        let (call, heldBytes) = try await prepare(request, headerLength: headerLength, model: model)
        defer { reader.bodyBudget.release(heldBytes) }
        let reply: RPCReply
        do {
            reply = try await pool.call(method: model.name, params: call.params, deadline: deadline)
        } catch {
            call.release(engineAnswered: false)
            throw error
        }
        var resultTaken = false
        defer { call.release(engineAnswered: true, resultTaken: resultTaken) }
        if let error = reply.error { throw EngineAnswer.map(engineError: error) }
        let kind = pool.engineKind
        let name = model.name
        // A binary result streams from its segment; JSON text (a JSON result, or a result not in a segment) is printed
        // off the loop unless it is small.
        let (response, took) = try await Offload.run(if: !call.binaryOutput && reply.line.count > Offload.inlineBytes) {
            try V2InferResponse.make(reply, model: name, call: call, engine: kind)
        }
        resultTaken = took
        return response
    }

    /// Reads the body into an engine call; also returns the body bytes still reserved against the body budget (the
    /// inputs' segments hold them until the engine has answered).
    ///
    /// With `Inference-Header-Content-Length`, the JSON part is gathered and checked first, then the binary part goes
    /// into the inputs' segments chunk by chunk as it arrives (`V2TensorAssembler`): never whole in memory, and only a
    /// copy per chunk on the connection's loop. A body that is all JSON is collected and parsed once, off the loop when
    /// it is large.
    private func prepare(_ request: Request, headerLength: Int?, model: V2Model) async throws -> (V2PreparedCall, Int) {
        let validator = reader.validator
        let segments = pool.segments
        guard let headerLength else {
            let heavy = Offload.isHeavy(contentLength: request.headers.value(.contentLength))
            let call = try await Offload.run(if: heavy) {
                try await reader.withBody(request) { body in
                    try V2InferRequest.prepare(body: body, headerLength: nil, model: model, validator: validator, pool: segments)
                }
            }
            return (call, 0)
        }
        try reader.checkDeclaredLength(.init(request.headers))
        var json: [UInt8] = []
        var assembler: V2TensorAssembler?
        var bodyBytes = 0
        let held = try await reader.forEachBodyChunk(request) { chunk in
            bodyBytes += chunk.readableBytes
            try chunk.withUnsafeReadableBytes { bytes in
                var rest = bytes
                if assembler == nil {
                    let take = min(headerLength - json.count, rest.count)
                    json.append(contentsOf: UnsafeRawBufferPointer(rebasing: rest[0..<take]))
                    rest = UnsafeRawBufferPointer(rebasing: rest[take...])
                    guard json.count == headerLength else { return }
                    let header = try json.withUnsafeBytes { try V2InferRequest.header($0, binary: true, model: model, validator: validator) }
                    assembler = V2TensorAssembler(header, pool: segments)
                    json = []
                }
                try assembler?.feed(rest)
            }
        }
        do {
            if assembler == nil, json.count == headerLength { // an empty body with a zero-length JSON part
                assembler = V2TensorAssembler(try json.withUnsafeBytes { try V2InferRequest.header($0, binary: true, model: model, validator: validator) },
                                              pool: segments)
            }
            guard let assembler else { throw V2InferRequest.shortHeader(headerLength, bodyBytes: bodyBytes) }
            return (try assembler.finish(), held)
        } catch {
            reader.bodyBudget.release(held)
            throw error
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
    /// A body of any media type: 413 for a declared length over the limit, else collected as `collectBody` does.
    func withBody<T>(_ request: Request, _ use: (ByteBuffer) throws -> T) async throws -> T {
        try checkDeclaredLength(.init(request.headers))
        return try await collectBody(request, use)
    }
}
