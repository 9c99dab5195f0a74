import Hummingbird

/// Counts every request by route, method and status, and times it (`forzium_http_requests_total`,
/// `forzium_http_request_duration_seconds`). Outermost, so it sees the final status of every answer.
struct MetricsMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext
    let metrics: GatewayMetrics
    let routes: RouteTable

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        let response = try await next(request, context)
        metrics.recordRequest(route: routes.label(for: request.uri.path), method: request.method.rawValue,
                              status: response.status.code, duration: started.duration(to: .now))
        return response
    }
}
