import Hummingbird
import Logging

/// The innermost responder: sends a matched request to the handler of its route kind.
struct GatewayRouter: HTTPResponder {
    typealias Context = GatewayRequestContext
    let compute: ComputeHandler
    let stream: StreamHandler
    let service: ServiceHandler
    let v2: V2Handler

    func respond(to request: Request, context: Context) async throws -> Response {
        if let precomputed = context.precomputed { return try await precomputed() }
        guard let route = context.route else { throw GatewayError(.notFound, "no route for \(request.uri.path)") }
        switch route.handler {
        case .compute, .operation: return try await compute.respond(to: request, route: route, requestID: context.requestID)
        case .stream: return try await stream.respond(to: request, route: route, requestID: context.requestID)
        case .v2: return try await v2.respond(to: request, route: route, requestID: context.requestID)
        default: return service.respond(to: route)
        }
    }
}

/// A middleware in front of a responder (composed with generics, so the chain costs no existential calls).
struct MiddlewareResponder<Middleware: RouterMiddleware, Next: HTTPResponder>: HTTPResponder
where Middleware.Context == Next.Context {
    typealias Context = Next.Context
    let middleware: Middleware
    let next: Next

    func respond(to request: Request, context: Context) async throws -> Response {
        try await middleware.handle(request, context: context) { request, context in
            try await next.respond(to: request, context: context)
        }
    }
}

extension HTTPResponder {
    /// This responder behind `middleware`.
    func behind<M: RouterMiddleware>(_ middleware: M) -> MiddlewareResponder<M, Self> where M.Context == Context {
        MiddlewareResponder(middleware: middleware, next: self)
    }
}

/// The gateway's HTTP layers, outermost first: access log → metrics → request id → CORS → response compression →
/// problems (errors become problem+json here) → route match (404/405) → API keys → client-disconnect watch → the route's handler.
public enum GatewayHTTP {
    /// A request whose `Content-Length` is under this is small: it is served inline (`InlineRequestHandler`) and
    /// not watched for a departing client (`DisconnectAwareResponder`), its work being bounded by its few numbers.
    public static let smallBodyBytes = 64 << 10

    public static func responder(configuration config: GatewayConfiguration, routes: RouteTable, pool: EnginePool,
                                 validator: any BodyValidator, metrics: GatewayMetrics, openAPI: [UInt8],
                                 logger: Logger) -> some HTTPResponder<GatewayRequestContext> {
        layers(configuration: config, routes: routes, pool: pool, validator: validator, metrics: metrics, openAPI: openAPI,
               logger: logger).responder
    }

    /// The responder chain, and the hot route's task-free path (`InlineCompute`), which shares its body reader (and
    /// so the global body budget) and answers as the chain would.
    static func layers(configuration config: GatewayConfiguration, routes: RouteTable, pool: EnginePool,
                       validator: any BodyValidator, metrics: GatewayMetrics, openAPI: [UInt8],
                       logger: Logger) -> (responder: some HTTPResponder<GatewayRequestContext>, inline: InlineCompute) {
        let reader = EngineRequestReader(maxBodyBytes: config.maxBodyBytes, timeoutMilliseconds: config.timeoutMilliseconds,
                                         validator: validator, bodyBudget: RequestBodyBudget(limit: config.maxBufferedBodyBytes),
                                         logger: logger)
        let apiKeys = APIKeyMiddleware(keys: config.apiKeys)
        let router = GatewayRouter(
            compute: ComputeHandler(reader: reader, pool: pool, logger: logger),
            stream: StreamHandler(reader: reader, pool: pool, logger: logger),
            service: ServiceHandler(routes: routes, pool: pool, metrics: metrics, openAPI: openAPI,
                                    apiKeysRequired: !config.apiKeys.isEmpty),
            v2: V2Handler(routes: routes, reader: reader, pool: pool, logger: logger))
        let responder = DisconnectAwareResponder(inner: router)
            .behind(apiKeys)
            .behind(RouteMiddleware(routes: routes))
            .behind(ProblemMiddleware(logger: logger))
            .behind(CompressionMiddleware(configuration: config.compression))
            .behind(CORSMiddleware(origins: config.corsOrigins, routes: routes))
            .behind(RequestIDMiddleware())
            .behind(MetricsMiddleware(metrics: metrics, routes: routes))
            .behind(AccessLogMiddleware(logger: logger, enabled: config.accessLog))
        let inline = InlineCompute(routes: routes, reader: reader, pool: pool, metrics: metrics, apiKeys: apiKeys,
                                   corsEnabled: !config.corsOrigins.isEmpty, accessLog: config.accessLog,
                                   compression: config.compression, logger: logger)
        return (responder, inline)
    }
}
