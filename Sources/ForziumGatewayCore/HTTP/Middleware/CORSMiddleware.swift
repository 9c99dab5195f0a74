import HTTPTypes
import Hummingbird

/// CORS for the allowed origins (`--cors-origin`): answers preflights for known paths and marks responses,
/// problems included. Absent when no origin is configured.
struct CORSMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext
    let origins: [String]
    let routes: RouteTable

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard !origins.isEmpty else { return try await next(request, context) }
        let origin = allowedOrigin(request)
        if request.method == .options, let methods = routes.methods(for: request.uri.path) {
            var headers = HTTPFields()
            if origin != nil {
                headers[.accessControlAllowMethods] = methods.joined(separator: ", ")
                headers[.accessControlAllowHeaders] = "Content-Type, Authorization, X-API-Key, X-Request-ID, X-Forzium-Timeout-Ms"
                headers[.accessControlMaxAge] = "600"
            }
            var response = Response(status: .noContent, headers: headers)
            mark(&response, origin: origin)
            return response
        }
        var response = try await next(request, context)
        mark(&response, origin: origin)
        return response
    }

    private func allowedOrigin(_ request: Request) -> String? {
        guard let origin = request.headers[.origin] else { return nil }
        if origins.contains("*") { return "*" }
        return origins.contains(origin) ? origin : nil
    }

    private func mark(_ response: inout Response, origin: String?) {
        guard let origin else { return }
        response.headers[.accessControlAllowOrigin] = origin
        response.headers[.accessControlExposeHeaders] = "X-Request-ID, X-Forzium-Engine, Retry-After"
        if origin != "*" { response.headers.append(HTTPField(name: .vary, value: "Origin")) }
    }
}
