import Hummingbird
import HTTPTypes
import NIOConcurrencyHelpers
import NIOCore

/// Notices a client that closed its side of the connection while a request is being handled (EOF on the socket, or
/// the connection closing), and tells whoever watches. The server allows half-closure, so without this a handler
/// would only learn that the client is gone when it writes the response.
final class ClientGoneHandler: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = Any

    private struct Watchers {
        var gone = false
        var next = 0
        var callbacks: [Int: @Sendable () -> Void] = [:]
    }

    private let watchers = NIOLockedValueBox(Watchers())

    init() {}

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { markGone() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        markGone()
        context.fireChannelInactive()
    }

    private func markGone() {
        let callbacks = watchers.withLockedValue { w -> [@Sendable () -> Void] in
            guard !w.gone else { return [] }
            w.gone = true
            defer { w.callbacks = [:] }
            return Array(w.callbacks.values)
        }
        for callback in callbacks { callback() }
    }

    /// Calls `callback` once when the client goes away (at once if it already has); returns a token for `unwatch`.
    func watch(_ callback: @escaping @Sendable () -> Void) -> Int? {
        let token = watchers.withLockedValue { w -> Int? in
            guard !w.gone else { return nil }
            w.next += 1
            w.callbacks[w.next] = callback
            return w.next
        }
        if token == nil { callback() }
        return token
    }

    func unwatch(_ token: Int?) {
        guard let token else { return }
        watchers.withLockedValue { _ = $0.callbacks.removeValue(forKey: token) }
    }
}

/// Runs POST requests (the engine routes) in a task that is cancelled when the client goes away, so a request still
/// waiting for an engine leaves the queue at once and one on an engine gets a `$/cancelRequest`.
///
/// Bodies under `watchFromBytes` (by `Content-Length`) are not watched: their work is bounded by their few numbers,
/// and the watch (a pipeline lookup on the event loop and a task per request) cost ~10% of the small-request
/// throughput. Chunked bodies, whose size is unknown, are watched.
public struct DisconnectAwareResponder<Inner: HTTPResponder>: HTTPResponder where Inner.Context == GatewayRequestContext {
    public typealias Context = GatewayRequestContext
    public let inner: Inner
    /// Smallest `Content-Length` whose request is watched.
    public let watchFromBytes: Int

    public init(inner: Inner, watchFromBytes: Int = GatewayHTTP.smallBodyBytes) {
        self.inner = inner
        self.watchFromBytes = watchFromBytes
    }

    public func respond(to request: Request, context: Context) async throws -> Response {
        guard request.method == .post,
              (request.headers.value(.contentLength).flatMap { Int($0) } ?? Int.max) >= watchFromBytes,
              let watcher = try? await context.channel.pipeline.handler(type: ClientGoneHandler.self).get() else {
            return try await inner.respond(to: request, context: context)
        }
        let inner = self.inner
        // On the connection's loop like the rest of the request (an unstructured task does not inherit the
        // preference): the body's chunks arrive there, so reading them costs no thread hop per chunk.
        let task = Task(executorPreference: EventLoopTaskExecutor(context.channel.eventLoop)) {
            try await inner.respond(to: request, context: context)
        }
        let token = watcher.watch { task.cancel() }
        defer { watcher.unwatch(token) }
        return try await withTaskCancellationHandler {
            try await task.value
        } onCancel: {
            task.cancel()
        }
    }
}
