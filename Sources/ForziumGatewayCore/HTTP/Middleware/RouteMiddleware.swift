import HTTPTypes
import Hummingbird

/// Matches the request against the generated route table (404; 405 with `Allow`) and records the route in the
/// context for the layers inside.
struct RouteMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext
    let routes: RouteTable

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.route = try routes.match(method: request.method.rawValue, path: request.uri.path)
        return try await next(request, context)
    }
}
