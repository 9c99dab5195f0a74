import Hummingbird
import HummingbirdCore
import HTTPTypes
import Logging
import NIOCore
import NIOHTTPTypes

/// Serves the requests whose whole body comes with them — `Content-Length` under `bodyLimit` and within
/// `--max-body-bytes` (or no body), no `Transfer-Encoding` or `Content-Encoding`, not `HEAD` — from the channel
/// pipeline itself (an `Expect: 100-continue` was answered upstream by `HTTPEdgeHandler`): the request is
/// collected here, answered by the gateway's responder (the same middleware and handlers as every other request) in
/// a task on the connection's event loop, and the response is written straight to the pipeline, head, body and end
/// in one flush.
///
/// Everything else passes on unchanged to Hummingbird's per-connection loop (`NIOAsyncChannel`). That loop's
/// inbound and outbound async streams cost a small request about as much CPU as the HTTP parsing and the socket
/// writes together (bench/edge_bench.py: a bare SwiftNIO HTTP/1 echo serves ~1.9× the requests per second of a
/// bare Hummingbird one on the same machine), which is what this handler saves.
///
/// Order is kept: a request is served inline only when nothing forwarded is still unanswered, and parts that arrive
/// while an inline request is being answered (a pipelining client) are held, with reads paused, and taken up in
/// order after it. The end of input is passed on only after the inline answer, so Hummingbird's loop never closes
/// the connection under it. Sits after Hummingbird's connection state handler, which counts these requests like any
/// other (quiescing waits for them). A request `InlineComputeHandler` passed on with a precomputed answer
/// (`PrecomputedAnswers`) is answered here with it in place of the route's handler.
final class InlineRequestHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// Bodies served inline are shorter than this (by `Content-Length`); longer ones are streamed through
    /// Hummingbird, watched for a departing client, and parsed off the event loop.
    static let bodyLimit = GatewayHTTP.smallBodyBytes

    private enum State {
        /// Between requests (or passing on a forwarded one's body).
        case idle
        /// Collecting an inline request's body (and its precomputed answer, if `InlineComputeHandler` made one).
        case collecting(HTTPRequest, ByteBuffer, (@Sendable () async throws -> Response)?)
        /// An inline request is being answered.
        case answering
    }

    private let responder: any HTTPResponder<GatewayRequestContext>
    /// Answers `InlineComputeHandler` computed for requests it passed on.
    private let answers: PrecomputedAnswers?
    /// `--max-body-bytes`: a longer announced body is passed on, to be refused (413) before it is sent.
    private let maxBodyBytes: Int
    private let logger: Logger
    private var state = State.idle
    /// Forwarded requests whose response has not ended yet.
    private var forwardedUnanswered = 0
    /// Parts (and the end of input) that arrived while an inline request was being answered.
    private var held = HeldInbound<HTTPRequestPart>()
    private var inactive = false

    init(responder: any HTTPResponder<GatewayRequestContext>, answers: PrecomputedAnswers?, maxBodyBytes: Int, logger: Logger) {
        self.responder = responder
        self.answers = answers
        self.maxBodyBytes = maxBodyBytes
        self.logger = logger
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if case .answering = state {
            held.append(.part(part))
            return
        }
        guard held.isEmpty else {
            held.append(.part(part))
            return
        }
        take(part, context: context)
    }

    private func take(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        switch (part, state) {
        case (.head(let head), _):
            let precomputed = answers?.take()
            if forwardedUnanswered == 0, let length = Self.inlineBodyLength(head), length <= maxBodyBytes {
                var body = ByteBuffer()
                if length > 0 { body = context.channel.allocator.buffer(capacity: length) }
                state = .collecting(head, body, precomputed)
            } else {
                forwardedUnanswered += 1
                context.fireChannelRead(wrapInboundOut(part))
            }
        case (.body(var chunk), .collecting(let head, var body, let precomputed)):
            state = .idle  // keep `body` uniquely referenced while it grows
            body.writeBuffer(&chunk)
            state = .collecting(head, body, precomputed)
        case (.end, .collecting(let head, let body, let precomputed)):
            state = .answering
            respond(head, body: body, keepAlive: !Self.closesConnection(head), context: context, precomputed: precomputed)
        default:
            context.fireChannelRead(wrapInboundOut(part))
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed, !held.isEmpty || isAnswering {
            held.append(.inputClosed)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        inactive = true
        held.removeAll()
        context.fireChannelInactive()
    }

    private var isAnswering: Bool {
        if case .answering = state { return true }
        return false
    }

    /// The body length of a request that can be served inline, or nil. (`Expect: 100-continue` was answered and
    /// removed by `HTTPEdgeHandler`, which comes first, for bodies within `--max-body-bytes`.)
    static func inlineBodyLength(_ head: HTTPRequest) -> Int? {
        guard head.method != .head, head.method != .connect else { return nil }
        let fields = head.headerFields
        return wholeBodyLength(transferEncoding: fields[.transferEncoding], contentEncoding: fields[.contentEncoding],
                               expect: fields[.expect], contentLength: fields.value(.contentLength))
    }

    /// The rule both inline handlers apply, on either HTTP layer's fields: the announced length of a body that comes
    /// whole — no transfer or content coding, no `Expect`, `Content-Length` under `bodyLimit` (none: 0) — or nil.
    static func wholeBodyLength(transferEncoding: String?, contentEncoding: String?, expect: String?, contentLength: String?) -> Int? {
        guard transferEncoding == nil, contentEncoding == nil, expect == nil else { return nil }
        guard let declared = contentLength else { return 0 }
        guard let length = Int(declared), length >= 0, length < bodyLimit else { return nil }
        return length
    }

    /// Whether the connection ends with this request's response. `HTTPEdgeHandler` gives every such request
    /// (HTTP/1.0 without keep-alive, a client's `Connection: close`, any request while draining) `Connection: close`.
    static func closesConnection(_ head: HTTPRequest) -> Bool {
        for field in head.headerFields where field.name == .connection {
            if field.value.split(separator: ",").contains(where: { $0.trimmingCharacters(in: .whitespaces).lowercased() == "close" }) {
                return true
            }
        }
        return false
    }

    // MARK: Answering

    /// Answers through the responder chain, in a task on the connection's event loop; `precomputed` (from
    /// `InlineCompute`) stands in for the route's handler.
    private func respond(_ head: HTTPRequest, body: ByteBuffer, keepAlive: Bool, context: ChannelHandlerContext,
                         precomputed: (@Sendable () async throws -> Response)?) {
        let loop = context.eventLoop
        let target = InlineResponseTarget(context: context, handler: self)
        let responder = self.responder
        let request = Request(head: head, body: RequestBody(buffer: body))
        var requestContext = GatewayRequestContext(source: ApplicationRequestContextSource(channel: context.channel, logger: logger))
        requestContext.precomputed = precomputed
        Task(executorPreference: EventLoopTaskExecutor(loop)) {
            var response: Response
            do {
                response = try await responder.respond(to: request, context: requestContext)
            } catch {
                // The problem layer renders every error; this is the last resort Hummingbird also has.
                response = Response(status: .internalServerError)
            }
            response.headers[.date] = HTTPDate.now()
            let written: Bool
            do {
                let head = response.head
                try await response.body.write(InlineBodyWriter(target: target, head: head, length: response.body.contentLength))
                // A body closure that returned without finishing still gets its end (and its head, if it wrote nothing).
                if !target.ended { try await target.write([.head(head), .end(nil)].suffix(target.headWritten ? 1 : 2), flush: true) }
                written = true
            } catch {
                written = false
            }
            target.finished(keepAlive: keepAlive && written)
        }
    }

    /// Runs on the event loop once an inline response has been written (or failed): closes a connection that is not
    /// kept alive, else takes up what arrived meanwhile.
    fileprivate func answered(keepAlive: Bool, context: ChannelHandlerContext) {
        state = .idle
        guard !inactive else { return }
        guard keepAlive else {
            held.removeAll()
            context.close(promise: nil)
            return
        }
        var took = false
        while !isAnswering, let item = held.next() {
            switch item {
            case .part(let part):
                take(part, context: context)
                took = true
            case .inputClosed: context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
            }
        }
        // Parts passed on here arrived in a read that completed long ago: the handlers behind (Hummingbird's async
        // channel hands reads over at read-complete) must hear of a read complete again, or they wait for the
        // client's next bytes.
        if took { context.fireChannelReadComplete() }
        if held.resumesRead() { context.read() }
    }

    // MARK: Outbound

    func read(context: ChannelHandlerContext) {
        if held.allowsRead() { context.read() }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data), forwardedUnanswered > 0 { forwardedUnanswered -= 1 }
        context.write(data, promise: promise)
    }
}

/// Where an inline response goes: the pipeline below `InlineRequestHandler`, reached on the connection's event loop
/// (a body written from elsewhere, e.g. deflated off the loop, hops there).
private final class InlineResponseTarget: @unchecked Sendable {
    private let loop: any EventLoop
    private let context: NIOLoopBound<ChannelHandlerContext>
    private let handler: NIOLoopBound<InlineRequestHandler>

    init(context: ChannelHandlerContext, handler: InlineRequestHandler) {
        loop = context.eventLoop
        self.context = NIOLoopBound(context, eventLoop: context.eventLoop)
        self.handler = NIOLoopBound(handler, eventLoop: context.eventLoop)
    }

    /// Set once the response's head, and its end, have been handed to the pipeline (read after the writes return).
    private(set) var headWritten = false
    private(set) var ended = false

    /// Writes `parts`; flushes when `flush` or when the socket is full, and then waits until it has taken them.
    func write(_ parts: [HTTPResponsePart], flush: Bool) async throws {
        for part in parts {
            switch part {
            case .head: headWritten = true
            case .end: ended = true
            case .body: break
            }
        }
        if loop.inEventLoop {
            if let pending = writeOnLoop(parts, flush: flush) { try await pending.get() }
        } else {
            try await loop.flatSubmit { [self] in
                writeOnLoop(parts, flush: flush) ?? loop.makeSucceededVoidFuture()
            }.get()
        }
    }

    /// Writes on the loop; returns a future to wait for when the channel cannot take more now.
    private func writeOnLoop(_ parts: [HTTPResponsePart], flush: Bool) -> EventLoopFuture<Void>? {
        let context = self.context.value
        let last = parts.count - 1
        guard context.channel.isWritable else {
            let promise = loop.makePromise(of: Void.self)
            for (index, part) in parts.enumerated() {
                context.write(NIOAny(part), promise: index == last ? promise : nil)
            }
            context.flush()
            return promise.futureResult
        }
        for part in parts { context.write(NIOAny(part), promise: nil) }
        if flush { context.flush() }
        return nil
    }

    func finished(keepAlive: Bool) {
        if loop.inEventLoop {
            handler.value.answered(keepAlive: keepAlive, context: context.value)
        } else {
            loop.execute { [self] in handler.value.answered(keepAlive: keepAlive, context: context.value) }
        }
    }
}

/// The response body writer of an inline answer: the head goes out with the first body part, and head, body and
/// end of a one-buffer response leave in a single flush. A body part that does not complete the body's declared
/// length (or of a body of unknown length, such as an NDJSON stream) is flushed at once.
private struct InlineBodyWriter: ResponseBodyWriter {
    let target: InlineResponseTarget
    var head: HTTPResponse?
    /// Body bytes still to come, when the length is declared.
    var remaining: Int?

    init(target: InlineResponseTarget, head: HTTPResponse, length: Int?) {
        self.target = target
        self.head = head
        self.remaining = length
    }

    mutating func write(_ buffer: ByteBuffer) async throws {
        if let remaining { self.remaining = remaining - buffer.readableBytes }
        let flush = remaining != 0
        if let head {
            self.head = nil
            try await target.write([.head(head), .body(buffer)], flush: flush)
        } else {
            try await target.write([.body(buffer)], flush: flush)
        }
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        if let head {
            try await target.write([.head(head), .end(trailingHeaders)], flush: true)
        } else {
            try await target.write([.end(trailingHeaders)], flush: true)
        }
    }
}
