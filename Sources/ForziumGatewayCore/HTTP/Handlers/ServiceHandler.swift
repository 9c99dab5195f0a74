import ForziumJSON
import ForziumRPC
import HTTPTypes
import Hummingbird
import NIOCore

/// The routes that never reach an engine: `/health`, `/ready`, `/`, `/metrics`, `/openapi.json`, `/docs`. Fixed
/// documents are rendered once, at start-up.
struct ServiceHandler: Sendable {
    let routes: RouteTable
    let pool: EnginePool
    let metrics: GatewayMetrics
    private let health: ByteBuffer
    private let openAPI: ByteBuffer
    private let docsPage: ByteBuffer

    init(routes: RouteTable, pool: EnginePool, metrics: GatewayMetrics, openAPI: [UInt8], apiKeysRequired: Bool) {
        self.routes = routes
        self.pool = pool
        self.metrics = metrics
        self.health = ByteBuffer(string: #"{"status":"ok"}"#)
        self.openAPI = ByteBuffer(bytes: openAPI)
        self.docsPage = ByteBuffer(bytes: DocsPage.html(openAPI: openAPI, title: routes.title, apiKeysRequired: apiKeysRequired))
    }

    func respond(to route: Route) -> Response {
        switch route.handler {
        case .health: return Self.json(health)
        case .ready: return readiness()
        case .info: return Self.json(ByteBuffer(bytes: serviceInfo()))
        case .metrics:
            pool.publishMetrics()
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: metrics.render())))
        case .openapi: return Self.json(openAPI)
        case .docs:
            var headers = HTTPFields()
            headers[.contentType] = "text/html; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: docsPage))
        case .compute, .operation, .stream, .v2:
            preconditionFailure("engine routes are not service routes")
        }
    }

    /// `/ready`: 200 while an engine can take work, else 503 with Retry-After; the engine kind and each slot's
    /// state (never paths on disk: the route needs no key).
    private func readiness() -> Response {
        let ready = pool.isReady
        let doc: [(key: String, value: JSONValue)] = [
            ("status", .string(ready ? "ready" : "unavailable")),
            ("engine", .string(pool.engineKind)),
            ("queued", .number(JSONNumber(Double(pool.queued)))),
            ("engines", .array(pool.slotStatuses.map { slot in
                .object(JSONObject([
                    ("slot", .number(JSONNumber(Double(slot.slot)))),
                    ("pid", slot.pid.map { .number(JSONNumber(Double($0))) } ?? .null),
                    ("state", .string(slot.state)),
                    ("in_flight", .number(JSONNumber(Double(slot.inFlight)))),
                    ("restarts", .number(JSONNumber(Double(slot.restarts)))),
                ]))
            })),
        ]
        var out: [UInt8] = []
        JSONWriter.write(.object(JSONObject(doc)), options: .document, into: &out)
        var response = Self.json(ByteBuffer(bytes: out), status: ready ? .ok : .serviceUnavailable)
        response.headers[.xForziumEngine] = pool.engineKind
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
            ("engine", .string(pool.engineKind)),
            ("docs", .string("/docs")),
            ("openapi", .string("/openapi.json")),
            ("routes", .array(routes.routes.map { .string("\($0.method) \($0.path)") })),
        ]))
        JSONWriter.write(doc, options: .document, into: &out)
        // engine.info is spliced raw (it is compact JSON already).
        out.removeLast()
        out.append(contentsOf: #","engine_info":"#.utf8)
        out.append(contentsOf: pool.engineInfo.utf8)
        out.append(UInt8(ascii: "}"))
        return out
    }

    private static func json(_ body: ByteBuffer, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: body))
    }
}
