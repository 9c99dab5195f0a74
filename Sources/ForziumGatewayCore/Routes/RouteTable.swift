/// What a route does; each kind has one handler (`ComputeHandler`, `StreamHandler`, `ServiceHandler`).
public enum RouteHandler: String, Sendable {
    /// `POST /compute`: ForziumAPI body, engine method `compute`.
    case compute
    /// `POST /stream`: like compute, answered as NDJSON rows while the engine produces them.
    case stream
    /// `POST /v1/{operation}`: the body is that method's params.
    case operation
    case info, health, ready, metrics, openapi, docs
    /// `/v2…`: the Open Inference Protocol (KServe / Triton v2), answered by `V2Handler`.
    case v2
}

/// One row of the route table (`gateway/routes.json`). A class: requests carry their route through the handlers and
/// closures of the hot path, and one reference is cheaper to copy than a dozen strings.
public final class Route: Sendable {
    /// HTTP method, upper case.
    public let method: String
    /// Exact path, or a template whose `{name}` segments match any one non-empty segment (`/v2/models/{model}`).
    public let path: String
    public let handler: RouteHandler
    /// Engine method called, for engine-backed routes.
    public let engineMethod: String?
    /// Schema of the request body, relative to `schemas/` (e.g. `methods/matmul.params.json`).
    public let params: String?
    /// Schema of the engine's result, relative to `schemas/`.
    public let result: String?
    /// True for routes exempt from API keys (health and probes).
    public let isPublic: Bool
    /// OpenAPI tag, summary and description.
    public let tag: String
    public let summary: String
    public let description: String
    /// The `$id` of the params schema.
    public let paramsSchemaURI: String?

    public init(method: String, path: String, handler: RouteHandler, engineMethod: String? = nil, params: String? = nil,
                result: String? = nil, isPublic: Bool = false, tag: String, summary: String, description: String) {
        self.method = method
        self.path = path
        self.handler = handler
        self.engineMethod = engineMethod
        self.params = params
        self.result = result
        self.isPublic = isPublic
        self.tag = tag
        self.summary = summary
        self.description = description
        paramsSchemaURI = params.map { RouteTable.schemaBaseURI + $0 }
    }
}

/// The gateway's routes, generated from `gateway/routes.json` by `scripts/embed-routes.py` into
/// `RouteTable+Generated.swift` (a test fails when that file is stale).
public struct RouteTable: Sendable {
    /// Base of every schema `$id`.
    public static let schemaBaseURI = "https://forzium.dev/schemas/"

    public var title: String
    public var version: String
    public var description: String
    public var routes: [Route]
    private var byPath: [String: [Route]]
    /// Template paths (with `{…}` segments), split into segments, in table order.
    private var templates: [(path: String, segments: [Substring])]

    public init(title: String, version: String, description: String, routes: [Route]) {
        self.title = title
        self.version = version
        self.description = description
        self.routes = routes
        self.byPath = Dictionary(grouping: routes, by: \.path)
        var templates: [(path: String, segments: [Substring])] = []
        for route in routes where route.path.contains("{") && !templates.contains(where: { $0.path == route.path }) {
            templates.append((route.path, route.path.split(separator: "/", omittingEmptySubsequences: false)))
        }
        self.templates = templates
    }

    /// The table's path for a request path: itself when listed, else the first template it fits; nil when none.
    public func tablePath(for path: String) -> String? {
        if byPath[path] != nil { return path }
        guard !templates.isEmpty else { return nil }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        for template in templates where template.segments.count == segments.count {
            let fits = zip(template.segments, segments).allSatisfy { pattern, segment in
                pattern.first == "{" && pattern.last == "}" ? !segment.isEmpty : pattern == segment
            }
            if fits { return template.path }
        }
        return nil
    }

    /// The route for `method` and `path`; throws 404 for an unknown path and 405 (with Allow) for a wrong method.
    public func match(method: String, path: String) throws(GatewayError) -> Route {
        // An exact path (every hot route) is looked up once; templates only when it is not one.
        guard let candidates = byPath[path] ?? tablePath(for: path).flatMap({ byPath[$0] }) else {
            throw GatewayError(.notFound, "no route for \(path)")
        }
        if let route = candidates.first(where: { $0.method == method }) { return route }
        if method == "HEAD", let route = candidates.first(where: { $0.method == "GET" }) { return route }
        let allow = candidates.map(\.method) + (candidates.contains { $0.method == "GET" } ? ["HEAD"] : [])
        throw GatewayError(.methodNotAllowed(allow: allow), "\(path) does not accept \(method); allowed: \(allow.joined(separator: ", "))")
    }

    /// The metrics label of a request path: the route's path, or `unmatched`.
    public func label(for path: String) -> String { tablePath(for: path) ?? "unmatched" }

    /// Methods accepted on `path`, or nil for an unknown path.
    public func methods(for path: String) -> [String]? { tablePath(for: path).flatMap { byPath[$0] }?.map(\.method) }
}
