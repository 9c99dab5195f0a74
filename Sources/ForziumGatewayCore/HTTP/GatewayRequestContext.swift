import Hummingbird
import NIOCore

/// The gateway's request context: Hummingbird's core storage, the connection's channel (to notice a client that
/// goes away), and what the middleware learns on the way in — the request id and the matched route.
public struct GatewayRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The connection (its `ClientGoneHandler` tells when the client leaves).
    public let channel: any Channel
    /// The client's valid `X-Request-ID`, or a generated one (set by `RequestIDMiddleware`).
    public var requestID: String = ""
    /// The route table row this request matched (set by `RouteMiddleware`).
    public var route: Route?
    /// The answer of a request `InlineCompute` already served (or refused), which the router returns (or throws) in
    /// place of calling the route's handler.
    var precomputed: (@Sendable () async throws -> Response)?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }
}
