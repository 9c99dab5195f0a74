import Hummingbird
import Logging

/// Turns whatever the inner layers throw into a response here, so the middleware outside (CORS, request id,
/// metrics, access log) sees and marks every answer: `HTTPResponseError`s (`GatewayError`) render themselves as
/// problem+json (on `/v2` routes as the protocol's `{"error"}`, `V2Error`); a cancelled request (the client left) becomes 499 for the metrics; anything else is logged and
/// answered as a 500 problem without internals.
struct ProblemMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as GatewayError {
            if error.status.code >= 500 {
                logger.warning("request failed", metadata: [
                    "request_id": "\(context.requestID)", "status": "\(error.status.code)", "detail": "\(error.detail)",
                ])
            }
            if V2Error.applies(to: request.uri.path) { return V2Error.response(error) }
            return try error.response(from: request, context: context)
        } catch is CancellationError {
            return Response(status: .init(code: 499, reasonPhrase: "Client Closed Request"))
        } catch {
            logger.error("unexpected error", metadata: ["request_id": "\(context.requestID)", "error": "\(error)"])
            let failure = GatewayError(.engineInternal, "internal error")
            if V2Error.applies(to: request.uri.path) { return V2Error.response(failure) }
            return try failure.response(from: request, context: context)
        }
    }
}
