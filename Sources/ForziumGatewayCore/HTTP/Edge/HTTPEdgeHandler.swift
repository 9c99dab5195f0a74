import ForziumJSON
import NIOCore
import NIOHTTP1
import NIOHTTPCompression

/// Per-connection facts shared by the two edge handlers (both run on the connection's event loop).
final class ConnectionActivity {
    /// When the first byte of a request not yet parsed into a head arrived (nil: nothing pending).
    var firstPendingByteAt: NIODeadline?
    /// Set by `HTTPEdgeHandler` while it waits for a request's head.
    var awaitingHead = true
}

/// Sits in front of the HTTP decoder and notes when a request's first byte arrives, so the header timeout runs
/// from there (a parked connection is idle; one dribbling a header block is not).
final class RawActivityHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let activity: ConnectionActivity

    init(activity: ConnectionActivity) {
        self.activity = activity
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if activity.awaitingHead, activity.firstPendingByteAt == nil { activity.firstPendingByteAt = .now() }
        context.fireChannelRead(data)
    }
}

/// The gateway's HTTP/1.1 edge, between the HTTP/1 codec and the rest of the pipeline. It
/// - enforces the connection limit (with eviction of idle connections, see `ConnectionRegistry`);
/// - times out idle connections, slow header blocks, slow or stalled bodies and clients that do not read;
/// - refuses what RFC 9112 forbids before it reaches a handler (Host rules, transfer codings, CONNECT, versions);
/// - answers `Expect: 100-continue` for bodies within `--max-body-bytes`, and adds the request decompressor to the
///   pipeline once a request has a `Content-Encoding`;
/// - answers parser errors with `application/problem+json` (400, 431) instead of an empty 400;
/// - never closes a connection with response bytes still queued: a close waits for the last response to be
///   written (bounded by the write timeout), and on SIGTERM (`ChannelShouldQuiesceEvent`) the responses already
///   owed are sent with `Connection: close`, within the shutdown grace.
final class HTTPEdgeHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private enum Phase {
        /// Waiting for a request; `used` once a request was served on this connection.
        case awaitingRequest(since: NIODeadline, used: Bool)
        /// Headers read, body arriving.
        case readingBody(since: NIODeadline, bytes: Int, lastProgress: NIODeadline)
        /// The request is in; the response is being produced or written.
        case responding
        /// The edge answered this connection itself and closes it: nothing more goes in or out.
        case rejected
    }

    private let configuration: HTTPEdgeConfiguration
    private let registry: ConnectionRegistry
    /// This connection's standing in `registry`: set when the connection is registered (admitted or refused), until
    /// it closes.
    private var ticket: ConnectionRegistry.Ticket?
    private let activity: ConnectionActivity
    private var phase: Phase = .awaitingRequest(since: .now(), used: false)
    /// Requests whose head has been passed on, and responses whose end has been written.
    private var requestsStarted = 0
    private var responsesEnded = 0
    /// The number (as counted by `requestsStarted`) of the request that asked to close the connection.
    private var closingRequest: Int?
    /// A response head was written for the current request (a problem can no longer be sent on this connection).
    private var responseHeadWritten = false
    /// A refusal waiting for the answers owed to the requests before the refused one (HTTP/1.1 answers in request
    /// order), with the parser error to pass on once it is sent.
    private var pendingRejection: (error: GatewayError, requestID: String?, after: Int, cause: (any Error)?)?
    /// The refusal is written: nothing else goes out on this connection.
    private var rejectionSent: Bool {
        if case .rejected = phase { return pendingRejection == nil }
        return false
    }
    /// A close waits for the response bytes queued before it: an empty write queued behind them (the drain marker)
    /// completes once they are on the wire, in the order NIO completes writes. Set while that marker is outstanding.
    private var drainMarkerQueued = false
    private var deferredClose: (mode: CloseMode, promises: [EventLoopPromise<Void>])?
    private var lingerTimer: Scheduled<Void>?
    /// The output is shut and the connection waits for the peer's close (see `finishDeferredClose`).
    private var lingering = false
    private var lingerClosed: EventLoopPromise<Void>?
    private var draining = false
    private var drainDeadline: NIODeadline?
    private var unwritableSince: NIODeadline?
    private var timer: Scheduled<Void>?
    private var timerAt: NIODeadline?
    /// This handler's context, and the HTTP/1 encoder's: a response encoded by the gateway itself
    /// (`writeEncodedResponse`) is written from the encoder's context, so it goes out below it.
    private var context: ChannelHandlerContext?
    private var encoderContext: ChannelHandlerContext?

    /// `--max-body-bytes`, the inflated size a compressed body may reach.
    private let maxBodyBytes: Int
    /// The request decompressor is in the pipeline (added behind this handler by the first request with a
    /// `Content-Encoding`: a plain request never passes through it).
    private var decompressing = false

    init(configuration: HTTPEdgeConfiguration, registry: ConnectionRegistry, activity: ConnectionActivity, maxBodyBytes: Int) {
        self.configuration = configuration
        self.registry = registry
        self.activity = activity
        self.maxBodyBytes = maxBodyBytes
    }

    // MARK: Connection lifetime

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        encoderContext = try? context.pipeline.syncOperations.context(handlerType: HTTPResponseEncoder.self)
        if context.channel.isActive { admit(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        admit(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        lingerTimer?.cancel()
        lingerTimer = nil
        lingerClosed?.succeed(())
        lingerClosed = nil
        if ticket != nil { registry.closed(context.channel) }
        ticket = nil
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        self.context = nil
        encoderContext = nil
    }

    private func admit(context: ChannelHandlerContext) {
        guard ticket == nil else { return }
        phase = .awaitingRequest(since: .now(), used: false)
        let admission: ConnectionRegistry.Admission
        (ticket, admission) = registry.opened(context.channel)
        switch admission {
        case .admitted:
            break
        case .admittedEvicting(let victim):
            victim.close(promise: nil)
        case .refused:
            reject(context: context, GatewayError(.unavailable(retryAfterSeconds: 1),
                                                  "the server has \(registry.limit) connections open (--max-connections)"))
            return
        }
        evaluateTimers(context: context)
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch part {
        case .head(let head):
            if case .rejected = phase { return }
            activity.awaitingHead = false
            activity.firstPendingByteAt = nil
            if let refusal = Self.check(head) {
                reject(context: context, refusal, requestID: head.headers.first(name: "x-request-id"))
                return
            }
            requestsStarted += 1
            let keepAlive = head.isKeepAlive
            responseHeadWritten = false
            if requestsStarted - responsesEnded == 1 { ticket?.busy() }
            if !decompressing, head.headers.count("content-encoding") > 0 {
                // gzip and deflate bodies are inflated (up to `--max-body-bytes`, so a zip bomb stops there) by
                // NIOHTTPCompression's decompressor, which stays for the rest of the connection.
                decompressing = true
                try? context.pipeline.syncOperations.addHandler(NIOHTTPRequestDecompressor(limit: .size(maxBodyBytes)),
                                                               position: .after(self))
            }
            let now = NIODeadline.now()
            let declaredLength = Self.contentLength(head)
            phase = Self.hasBody(head, declaredLength: declaredLength) ? .readingBody(since: now, bytes: 0, lastProgress: now) : .responding
            var forward = head
            var changed = false
            // `Expect: 100-continue` (curl sends it before large bodies and otherwise waits a second): an interim
            // `100 Continue` when the announced body fits `--max-body-bytes`; a larger one gets none, so the client
            // does not upload it and the 413 arrives first. The field goes either way.
            if let expect = head.headers.first(name: "expect"), expect.lowercased() == "100-continue" {
                forward.headers.remove(name: "expect")
                changed = true
                if (declaredLength ?? 0) <= maxBodyBytes {
                    context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))),
                                          promise: nil)
                }
            }
            // Past here only `Connection: close` says the connection ends with this response (the HTTPTypes head
            // has no version): an HTTP/1.0 request without keep-alive, or any request while draining, gets it.
            if draining || !keepAlive {
                forward.headers.replaceOrAdd(name: "connection", value: "close")
                changed = true
            }
            if !keepAlive { closingRequest = requestsStarted }
            context.fireChannelRead(changed ? wrapInboundOut(.head(forward)) : data)
            evaluateTimers(context: context)
        case .body(let buffer):
            if case .rejected = phase { return }
            if case .readingBody(let since, let bytes, _) = phase {
                phase = .readingBody(since: since, bytes: bytes + buffer.readableBytes, lastProgress: .now())
            }
            context.fireChannelRead(data)
        case .end:
            if case .rejected = phase { return }
            if case .readingBody = phase { phase = .responding }
            activity.awaitingHead = true
            context.fireChannelRead(data)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let parserError = error as? HTTPParserError {
            // The error lies in the body being read, or else in a request not yet passed on. A response can be
            // written unless one has started for the request being parsed.
            let inBody: Bool
            if case .readingBody = phase { inBody = true } else { inBody = false }
            if !inBody || !responseHeadWritten {
                reject(context: context, Self.problem(for: parserError), cause: error)
                // Sent once the earlier answers are: until then the handlers behind must not hear of it (they would
                // close the connection under those answers).
                if pendingRejection != nil { return }
            }
        }
        context.fireErrorCaught(error)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if lingering, let event = event as? ChannelEvent, event == .inputClosed {
            lingerTimer?.cancel()
            context.close(mode: .all, promise: lingerClosed)
            lingerClosed = nil
        }
        if event is ChannelShouldQuiesceEvent, !draining {
            draining = true
            drainDeadline = .now() + configuration.shutdownGrace
            evaluateTimers(context: context)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            unwritableSince = nil
        } else if unwritableSince == nil {
            unwritableSince = .now()
            evaluateTimers(context: context)
        }
        context.fireChannelWritabilityChanged()
    }

    // MARK: Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if rejectionSent {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        switch unwrapOutboundIn(data) {
        case .head(let head) where head.status.code >= 200:
            responseHeadWritten = true
            if closesAfterResponse {
                var head = head
                head.headers.replaceOrAdd(name: "connection", value: "close")
                context.write(wrapOutboundOut(.head(head)), promise: promise)
                return
            }
            context.write(data, promise: promise)
        case .head:
            context.write(data, promise: promise)
        case .body:
            context.write(data, promise: promise)
        case .end:
            responsesEnded += 1
            context.write(data, promise: promise)
            responseEnded(context: context)
        }
    }

    /// Whether the response written next ends the connection, and says so with `Connection: close` (RFC 9112 §9.6):
    /// the server is draining, or it answers the request that asked to close (HTTP/1.0 without keep-alive, or
    /// `Connection: close`).
    var closesAfterResponse: Bool { draining || closingRequest == responsesEnded + 1 }

    /// Writes a whole response (status line, fields and body) that its handler encoded as HTTP/1.1 itself, straight
    /// below the HTTP/1 encoder, with the same bookkeeping as a response written part by part (the response counts as
    /// ended; a close waits until it is on the wire). The caller owes the current request its answer (no response head
    /// was written for it) and adds `Connection: close` when `closesAfterResponse`. Returns false, writing nothing,
    /// when nothing may be written any more (the connection was refused, or the pipeline is gone).
    @discardableResult
    func writeEncodedResponse(_ bytes: ByteBuffer) -> Bool {
        guard let context, let encoderContext, !rejectionSent else { return false }
        responseHeadWritten = true
        responsesEnded += 1
        encoderContext.writeAndFlush(NIOAny(IOData.byteBuffer(bytes)), promise: nil)
        responseEnded(context: context)
        return true
    }

    /// What follows the end of a response: the clocks of a request already arriving restart, the connection turns
    /// idle once every request is answered, and a refusal waiting for this answer is sent.
    private func responseEnded(context: ChannelHandlerContext) {
        // A pipelining client's next request waited on this answer (the handlers behind the edge read no more
        // while they owe one): its header and body clocks start again now, so the wait is not charged to it.
        let now = NIODeadline.now()
        if case .readingBody = phase { phase = .readingBody(since: now, bytes: 0, lastProgress: now) }
        if activity.firstPendingByteAt != nil { activity.firstPendingByteAt = now }
        if responsesEnded == requestsStarted {
            if case .responding = phase { phase = .awaitingRequest(since: now, used: true) }
            ticket?.idle(at: now)
            evaluateTimers(context: context)
        }
        if let pending = pendingRejection, responsesEnded >= pending.after {
            pendingRejection = nil
            sendRejection(context: context, pending.error, requestID: pending.requestID)
            if let cause = pending.cause { context.fireErrorCaught(cause) }
        }
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode != .input else {
            context.close(mode: mode, promise: promise)
            return
        }
        guard lingering || responsesEnded > 0 else {
            context.close(mode: mode, promise: promise)
            return
        }
        var close = deferredClose ?? (mode, [])
        if close.mode != mode { close.mode = .all }
        if let promise { close.promises.append(promise) }
        deferredClose = close
        guard !drainMarkerQueued else { return }
        guard let encoderContext, context.channel.isActive else {
            finishDeferredClose(context: context)
            return
        }
        // Responses may still be queued: close once they are on the wire (the write timeout bounds the wait). The
        // marker goes below the HTTP/1 encoder, as raw bytes, so no response part is made of it.
        drainMarkerQueued = true
        let drained = context.eventLoop.makePromise(of: Void.self)
        drained.futureResult.assumeIsolated().whenComplete { [self] _ in
            drainMarkerQueued = false
            finishDeferredClose(context: context)
        }
        encoderContext.writeAndFlush(NIOAny(IOData.byteBuffer(ByteBuffer())), promise: drained)
    }

    /// Runs a close that waited for queued response parts. A connection that sent responses closes lingering: its
    /// output is shut first (the peer gets every byte, then FIN), and the socket stays open until the peer closes
    /// too or `linger` passes. Closing at once would let the kernel reset a connection whose peer has not read
    /// everything yet, or discard what is still queued when the process exits after SIGTERM.
    private func finishDeferredClose(context: ChannelHandlerContext) {
        guard let close = deferredClose else { return }
        let closed = context.eventLoop.makePromise(of: Void.self)
        for promise in close.promises { closed.futureResult.cascade(to: promise) }
        guard close.mode == .all, responsesEnded > 0, context.channel.isActive else {
            deferredClose = nil
            context.close(mode: close.mode, promise: closed)
            return
        }
        deferredClose = nil
        guard !lingering else {
            // A second close while the first lingers: it is done when the channel is.
            context.channel.closeFuture.cascade(to: closed)
            return
        }
        lingering = true
        lingerClosed = closed
        var limit = NIODeadline.now() + configuration.writeTimeout
        if let drainDeadline { limit = min(limit, drainDeadline) }
        TCPSendQueue.check(context.channel) { [self] empty in
            if empty == true {
                context.close(mode: .all, promise: lingerClosed)
                lingerClosed = nil
            } else {
                context.close(mode: .output, promise: nil)
                pollLinger(context: context, until: limit)
            }
        }
    }

    /// Closes a lingering connection once the peer has acknowledged every byte (or closed, or `limit` passed).
    private func pollLinger(context: ChannelHandlerContext, until limit: NIODeadline) {
        lingerTimer = context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(20)) { [self] in
            guard lingering, context.channel.isActive else { return }
            TCPSendQueue.check(context.channel) { [self] empty in
                if NIODeadline.now() >= limit || empty != false {
                    context.close(mode: .all, promise: lingerClosed)
                    lingerClosed = nil
                } else {
                    pollLinger(context: context, until: limit)
                }
            }
        }
    }

    // MARK: Refusals

    /// Answers with `error` as problem+json and `Connection: close`, then closes once it is written. Whatever the
    /// client sends afterwards is dropped, and so is anything the rest of the pipeline still tries to write after
    /// the refusal. HTTP/1.1 answers in request order: requests passed on before the refused one (a pipelining
    /// client's) are answered first, and the refusal follows their last answer.
    private func reject(context: ChannelHandlerContext, _ error: GatewayError, requestID: String? = nil, cause: (any Error)? = nil) {
        if case .rejected = phase { return }
        // While a body is read, the refused request is the one whose head was passed on last.
        let earlier: Int
        if case .readingBody = phase { earlier = requestsStarted - 1 } else { earlier = requestsStarted }
        phase = .rejected
        if responsesEnded < earlier {
            pendingRejection = (error, requestID, earlier, cause)
            return
        }
        sendRejection(context: context, error, requestID: requestID)
    }

    private func sendRejection(context: ChannelHandlerContext, _ error: GatewayError, requestID: String?) {
        let id = RequestIDGenerator.client(requestID) ?? RequestIDGenerator.next()
        let body = error.problemBody(requestID: id, instance: nil)
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/problem+json")
        headers.add(name: "content-length", value: String(body.count))
        headers.add(name: "connection", value: "close")
        headers.add(name: "x-request-id", value: id)
        if case .unavailable(let seconds) = error.code { headers.add(name: "retry-after", value: String(seconds ?? 1)) }
        if case .methodNotAllowed(let allow) = error.code { headers.add(name: "allow", value: allow.joined(separator: ", ")) }
        let status = HTTPResponseStatus(statusCode: Int(error.status.code), reasonPhrase: error.status.reasonPhrase)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
        // Lingering close: stop sending, keep reading (and dropping) what the client still sends for a moment, so
        // its unread request bytes do not make the kernel reset the connection before the answer is read.
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { [self] _ in
            context.close(mode: .output, promise: nil)
            lingerTimer = context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(2)) {
                context.close(mode: .all, promise: nil)
            }
        }
        evaluateTimers(context: context)
    }

    /// RFC 9112 rules the HTTP/1 decoder leaves to the server.
    static func check(_ head: HTTPRequestHead) -> GatewayError? {
        guard head.version.major == 1 else {
            return GatewayError(.versionNotSupported, "HTTP/\(head.version.major).\(head.version.minor) is not supported; use HTTP/1.1")
        }
        if head.method == .CONNECT {
            return GatewayError(.notImplemented, "CONNECT is not supported: this is not a proxy")
        }
        let hosts = head.headers.count("host")
        if hosts > 1 {
            return GatewayError(.badRequest, "the request has \(hosts) Host headers; exactly one is allowed (RFC 9112 §3.2)")
        }
        if head.version.minor >= 1, hosts == 0 {
            return GatewayError(.badRequest, "an HTTP/1.1 request must have a Host header (RFC 9112 §3.2)")
        }
        let codings = head.headers.value("transfer-encoding").map {
            $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        } ?? []
        if !codings.isEmpty {
            if head.version.minor == 0 {
                return GatewayError(.badRequest, "Transfer-Encoding is not allowed in an HTTP/1.0 request (RFC 9112 §6.1)")
            }
            if codings != ["chunked"] {
                return GatewayError(.notImplemented, "transfer coding \"\(codings.joined(separator: ", "))\" is not supported; only chunked is")
            }
        }
        return nil
    }

    static func problem(for error: HTTPParserError) -> GatewayError {
        switch error {
        case .headerOverflow:
            GatewayError(.headersTooLarge, "the request's header block is larger than the server accepts")
        case .invalidEOFState, .closedConnection:
            GatewayError(.badRequest, "the connection ended in the middle of the request")
        case .invalidChunkSize:
            GatewayError(.badRequest, "the request's chunked body has an invalid chunk size")
        case .unexpectedContentLength, .invalidContentLength:
            GatewayError(.badRequest, "the request's Content-Length is invalid or conflicts with Transfer-Encoding")
        case .lfExpected:
            GatewayError(.badRequest, "the request's lines must end in CRLF")
        case .invalidCharactersUsed, .invalidHeaderToken, .invalidConstant:
            GatewayError(.badRequest, "the request has invalid characters in its request line or headers")
        case .invalidMethod:
            GatewayError(.badRequest, "the request method is not a valid token")
        case .invalidURL:
            GatewayError(.badRequest, "the request target is not valid")
        case .invalidVersion:
            GatewayError(.badRequest, "the request line has no valid HTTP version (HTTP/0.9 is not supported)")
        default:
            GatewayError(.badRequest, "the request is not valid HTTP/1.1: its framing is ambiguous or malformed (for example both Content-Length and Transfer-Encoding, or an unknown protocol)")
        }
    }

    /// The request's `Content-Length`, when it has one that reads as a number.
    private static func contentLength(_ head: HTTPRequestHead) -> Int? {
        head.headers.value("content-length").flatMap { Int($0) }
    }

    private static func hasBody(_ head: HTTPRequestHead, declaredLength: Int?) -> Bool {
        if head.headers.count("transfer-encoding") > 0 { return true }
        if let declaredLength { return declaredLength > 0 }
        return false
    }

    // MARK: Timers

    /// Acts on any deadline that has passed and arms the timer for the next one. The timer is lazy: a later
    /// deadline does not reschedule it; it re-evaluates when it fires.
    private func evaluateTimers(context: ChannelHandlerContext) {
        let now = NIODeadline.now()
        var next: NIODeadline?
        func consider(_ deadline: NIODeadline) { next = next.map { min($0, deadline) } ?? deadline }

        if let drainDeadline {
            if now >= drainDeadline { context.close(mode: .all, promise: nil); return }
            consider(drainDeadline)
        }
        if let unwritableSince {
            if now >= unwritableSince + configuration.writeTimeout { context.close(mode: .all, promise: nil); return }
            consider(unwritableSince + configuration.writeTimeout)
        }
        switch phase {
        case .awaitingRequest(let since, let used):
            if let first = activity.firstPendingByteAt {
                let deadline = first + configuration.headerTimeout
                if now >= deadline {
                    reject(context: context, GatewayError(.requestTimeout, "the request's headers did not arrive within the header timeout"))
                    return
                }
                consider(deadline)
            } else {
                let deadline = since + (used ? configuration.idleTimeout : configuration.headerTimeout)
                if now >= deadline { context.close(mode: .all, promise: nil); return }
                consider(deadline)
            }
        case .readingBody(_, _, _) where requestsStarted - responsesEnded > 1:
            // Earlier answers are still owed, and the handlers behind the edge read no more until they are written:
            // a body that does not arrive meanwhile is not the client's doing (its clocks restart at each answer).
            consider(now + configuration.headerTimeout)
        case .readingBody(let since, let bytes, let lastProgress):
            let stalled = now >= lastProgress + configuration.headerTimeout
            let elapsed = now - since
            let slow = elapsed >= configuration.bodyRateGrace
                && Double(bytes) / (Double(elapsed.nanoseconds) / 1e9) < Double(configuration.bodyMinimumBytesPerSecond)
            if stalled || slow {
                let error = GatewayError(.requestTimeout, stalled
                    ? "the request body stalled (nothing for the header timeout)"
                    : "the request body arrived slower than \(configuration.bodyMinimumBytesPerSecond) bytes/s")
                if responseHeadWritten { context.close(mode: .all, promise: nil) } else { reject(context: context, error) }
                return
            }
            consider(now + .seconds(1))
        case .responding, .rejected:
            break
        }
        if let next { arm(at: next, context: context) }
    }

    private func arm(at deadline: NIODeadline, context: ChannelHandlerContext) {
        if let timerAt, timerAt <= deadline { return }
        timer?.cancel()
        timerAt = deadline
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            timer = nil
            timerAt = nil
            evaluateTimers(context: context)
        }
    }
}

/// Whether the kernel still holds bytes of a TCP connection that the peer has not acknowledged (Linux `TCP_INFO`:
/// no unacknowledged segments and no unsent bytes). nil where it cannot tell.
enum TCPSendQueue {
    /// The kernel's `struct tcp_info` up to `tcpi_notsent_bytes` (glibc's copy of the struct stops earlier).
    private struct KernelTCPInfo {
        var raw: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                  UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    }

    /// Calls `body` with the answer (on the channel's event loop, at once when called there).
    static func check(_ channel: any Channel, _ body: @escaping (Bool?) -> Void) {
        #if os(Linux)
        guard let provider = channel as? any SocketOptionProvider else { return body(nil) }
        let info: EventLoopFuture<KernelTCPInfo> = provider.unsafeGetSocketOption(level: .tcp, name: .init(rawValue: 11 /* TCP_INFO */))
        info.assumeIsolated().whenComplete { result in
            guard case .success(let info) = result else { return body(nil) }
            body(withUnsafeBytes(of: info.raw) { bytes -> Bool in
                // Offsets in the kernel's layout: 8 bytes of u8 fields, then u32s; tcpi_unacked is the 5th u32 (24),
                // tcpi_notsent_bytes sits at 144 (after four u64 counters and segs_out/segs_in).
                let unacked = bytes.load(fromByteOffset: 24, as: UInt32.self)
                let notSent = bytes.load(fromByteOffset: 144, as: UInt32.self)
                return unacked == 0 && notSent == 0
            })
        }
        #else
        body(nil)
        #endif
    }
}
