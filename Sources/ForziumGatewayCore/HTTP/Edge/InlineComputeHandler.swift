import Hummingbird
import NIOCore
import NIOHTTP1

/// Answers the hot route (`InlineCompute`) right behind `HTTPEdgeHandler`, on NIOHTTP1's parts: such a request never
/// reaches the HTTPTypes conversion, Hummingbird's connection state handler, `InlineRequestHandler` or a task, and its
/// answer goes straight to the HTTP/1 encoder. On this machine that path is about 10 µs of CPU shorter per request
/// than answering the same request from `InlineRequestHandler` (bench/edge_bench.py; README).
///
/// A request is taken only when it is eligible (`InlineCompute.route(for:)`, a whole body under
/// `GatewayHTTP.smallBodyBytes` announced by `Content-Length`, no transfer or content coding, no `Expect`) and nothing
/// passed on is still unanswered, so answers leave in request order (the answer is encoded here, `InlineAnswer`, and
/// written by the edge below the HTTP/1 encoder); parts arriving meanwhile (a pipelining client)
/// are held, with reads paused, and taken up after it. An outcome that is not the plain answer is passed on as the
/// request itself with its precomputed answer (`PrecomputedAnswers`), which `InlineRequestHandler` — idle, as
/// nothing was outstanding — hands to the responder chain in place of the route's handler: nothing is parsed or
/// computed twice. A close asked for while an answer is owed (Hummingbird's connection state handler quiescing on
/// SIGTERM, which does not see these requests) waits until it is written.
final class InlineComputeHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        /// Between requests, or passing on a request's parts.
        case idle
        /// Collecting the body of a request this answers.
        case collecting(HTTPRequestHead, Route, ByteBuffer)
        /// Waiting for the engine's answer to this request (kept here, not in the engine callback: the callback
        /// captures only the way back to this handler).
        case answering(HTTPRequestHead, ByteBuffer)
    }

    private let compute: InlineCompute
    /// The connection's edge, which writes the encoded answers (`HTTPEdgeHandler.writeEncodedResponse`).
    private let edge: HTTPEdgeHandler
    private let answers: PrecomputedAnswers
    private let maxBodyBytes: Int
    private var state = State.idle
    /// The `Content-Length` of the request being collected.
    private var announcedLength = 0
    /// Requests passed on whose response has not ended yet.
    private var passedOn = 0
    private var held = HeldInbound<HTTPServerRequestPart>()
    private var inactive = false
    /// An answer was written while the socket was full: held parts and reads wait until it drains (a client that
    /// pipelines requests without reading the answers gets no more answered than the socket can take).
    private var waitingForWritable = false
    /// Parts went to the handlers behind since a read complete last did (see `channelReadComplete`).
    private var partsPassedSinceReadComplete = false
    /// A close asked for while this handler owed an answer, done once nothing is owed.
    private var pendingClose: (mode: CloseMode, promises: [EventLoopPromise<Void>])?

    init(compute: InlineCompute, edge: HTTPEdgeHandler, answers: PrecomputedAnswers, maxBodyBytes: Int) {
        self.compute = compute
        self.edge = edge
        self.answers = answers
        self.maxBodyBytes = maxBodyBytes
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .answering = state {
            held.append(.part(unwrapInboundIn(data)))
        } else if !held.isEmpty || waitingForWritable {
            held.append(.part(unwrapInboundIn(data)))
        } else {
            take(unwrapInboundIn(data), context: context)
        }
    }

    private func take(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        // No `switch (part, state)`: the tuple would hold a second reference to the body being collected, and each
        // chunk written into it would copy the whole buffer first.
        switch part {
        case .head(let head):
            if passedOn == 0, let length = eligibleLength(head), let route = compute.route(for: head) {
                announcedLength = length
                state = .collecting(head, route, ByteBuffer())
            } else {
                passedOn += 1
                passOn(part, context: context)
            }
        case .body(var chunk):
            guard case .collecting(let head, let route, var body) = state else { return passOn(part, context: context) }
            state = .idle  // keeps `body` uniquely referenced while it grows
            if body.readableBytes == 0, chunk.readableBytes == announcedLength {
                // The whole body in one part (the usual small request): kept as it came, not copied.
                body = chunk
            } else {
                if body.capacity == 0 { body = context.channel.allocator.buffer(capacity: announcedLength) }
                body.writeBuffer(&chunk)
            }
            state = .collecting(head, route, body)
        case .end:
            guard case .collecting(let head, let route, let body) = state else { return passOn(part, context: context) }
            serve(head, route: route, body: body, context: context)
        }
    }

    /// The announced body length of a request whose whole body can be collected here (`InlineRequestHandler`'s rule,
    /// within `--max-body-bytes`), or nil.
    private func eligibleLength(_ head: HTTPRequestHead) -> Int? {
        let headers = head.headers
        guard let length = InlineRequestHandler.wholeBodyLength(
            transferEncoding: headers.value("transfer-encoding"), contentEncoding: headers.value("content-encoding"),
            expect: headers.value("expect"), contentLength: headers.value("content-length")),
            length <= maxBodyBytes
        else { return nil }
        return length
    }

    /// Passes a part on to the handlers behind.
    private func passOn(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        partsPassedSinceReadComplete = true
        context.fireChannelRead(wrapInboundOut(part))
    }

    private func passReadComplete(context: ChannelHandlerContext) {
        partsPassedSinceReadComplete = false
        context.fireChannelReadComplete()
    }

    /// A read complete goes on only when parts went on since the last one: a read whose requests this handler answers
    /// (or holds) leaves the handlers behind nothing to hand over, and its read complete would only walk the pipeline.
    func channelReadComplete(context: ChannelHandlerContext) {
        if partsPassedSinceReadComplete { passReadComplete(context: context) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed, owesAnswer || !held.isEmpty || waitingForWritable {
            held.append(.inputClosed)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        inactive = true
        held.removeAll()
        if let close = pendingClose {
            pendingClose = nil
            for promise in close.promises { promise.succeed() }
        }
        context.fireChannelInactive()
    }

    private var isAnswering: Bool {
        if case .answering = state { return true }
        return false
    }

    private var owesAnswer: Bool {
        switch state {
        case .idle: false
        case .collecting, .answering: true
        }
    }

    // MARK: Answering

    private func serve(_ head: HTTPRequestHead, route: Route, body: ByteBuffer, context: ChannelHandlerContext) {
        state = .answering(head, body)
        let loop = context.eventLoop
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: loop)
        let immediate = compute.serve(head, body: body, route: route) { (outcome: consuming InlineCompute.Outcome) in
            if loop.inEventLoop {
                bound.value.handler.finish(consume outcome, context: bound.value.context)
            } else {
                let crossing = consume outcome
                loop.execute { bound.value.handler.finish(crossing, context: bound.value.context) }
            }
        }
        if let immediate { finish(immediate, context: context) }
    }

    /// Writes the outcome of the request being answered (its head and body are in `state`), or passes the request on.
    private func finish(_ outcome: consuming InlineCompute.Outcome, context: ChannelHandlerContext) {
        guard case .answering(let head, let body) = state else { return }
        state = .idle
        guard !inactive else { return }
        switch consume outcome {
        case .answer(let answer):
            edge.writeEncodedResponse(answer.encoded(close: edge.closesAfterResponse))
            guard head.isKeepAlive else {
                held.removeAll()
                pendingClose = (.all, pendingClose?.promises ?? [])
                closeIfAsked(context: context)
                return
            }
        case .chain(let precomputed):
            answers.set(precomputed)
            passedOn += 1
            passOn(.head(head), context: context)
            if body.readableBytes > 0 { passOn(.body(body), context: context) }
            passOn(.end(nil), context: context)
            passReadComplete(context: context)
        }
        closeIfAsked(context: context)
        waitingForWritable = !context.channel.isWritable
        takeUpHeld(context: context)
    }

    /// Takes up what was held while an answer was owed, until another answer is owed or the socket is full; then
    /// lets a paused read go.
    private func takeUpHeld(context: ChannelHandlerContext) {
        while !isAnswering, !waitingForWritable, let item = held.next() {
            switch item {
            case .part(let part): take(part, context: context)
            case .inputClosed: context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
            }
        }
        // Parts passed on here arrived in a read that completed long ago: the handlers behind (Hummingbird's async
        // channel hands reads over at read-complete) must hear of a read complete again, or they wait for the
        // client's next bytes.
        if partsPassedSinceReadComplete { passReadComplete(context: context) }
        if !waitingForWritable, held.resumesRead() { context.read() }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if waitingForWritable, context.channel.isWritable {
            waitingForWritable = false
            takeUpHeld(context: context)
        }
        context.fireChannelWritabilityChanged()
    }

    // MARK: Outbound

    func read(context: ChannelHandlerContext) {
        if held.allowsRead(paused: waitingForWritable) { context.read() }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data), passedOn > 0 {
            passedOn -= 1
            context.write(data, promise: promise)
            closeIfAsked(context: context)
            return
        }
        context.write(data, promise: promise)
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode != .input, owesAnswer || (pendingClose != nil && passedOn > 0) else {
            context.close(mode: mode, promise: promise)
            return
        }
        var close = pendingClose ?? (mode, [])
        if close.mode != mode { close.mode = .all }
        if let promise { close.promises.append(promise) }
        pendingClose = close
    }

    /// Runs a close that waited for this handler's answers (and those of requests passed on since).
    private func closeIfAsked(context: ChannelHandlerContext) {
        guard let close = pendingClose, !owesAnswer, passedOn == 0 else { return }
        pendingClose = nil
        let closed = context.eventLoop.makePromise(of: Void.self)
        for promise in close.promises { closed.futureResult.cascade(to: promise) }
        context.close(mode: close.mode, promise: closed)
    }
}

/// The precomputed answer of the request `InlineComputeHandler` has just passed on, for `InlineRequestHandler` (one
/// per connection; both handlers run on its event loop).
final class PrecomputedAnswers: @unchecked Sendable {
    private var next: (@Sendable () async throws -> Response)?

    func set(_ answer: @escaping @Sendable () async throws -> Response) { next = answer }

    /// The answer of the request whose head is arriving, if it has one; each head takes what is there.
    func take() -> (@Sendable () async throws -> Response)? {
        defer { next = nil }
        return next
    }
}
