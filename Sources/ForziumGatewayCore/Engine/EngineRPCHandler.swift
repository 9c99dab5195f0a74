#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import ForziumRPC
import Logging
import NIOCore

/// The engine protocol on one pipe channel: matches replies to requests by id, writes requests as the pipe drains,
/// sends `$/cancelRequest` for abandoned requests, and watches the engine with pings.
///
/// - Writes: a request is queued here (`enqueue`) and handed to the channel only while the channel is writable, so NIO's outbound
///   buffer holds at most one request past the high-water mark; a request still queued here was never written and can
///   be given back whole (re-routed). Control lines (cancel, ping) go straight to the channel.
/// - Pending table: id → entry from the moment a request arrives until the engine answers it. An entry whose caller
///   already gave up (deadline, client gone) stays until the answer arrives (the late answer is dropped), so the slot
///   keeps counting work the engine is still doing.
/// - Close: entries not completely written are given back (`reroute`); written ones fail with 502.
/// - Liveness: with requests outstanding and no line for `busySilence`, or idle for `idlePing`, a `ping` is sent; no
///   line within `pingTimeout` → `unresponsive` (queued requests are given back); any line → `responsive`.
///
/// Every method runs on the channel's event loop.
final class EngineRPCHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = EngineCommand
    typealias OutboundOut = ByteBuffer

    /// Queued here, or handed to the channel in pump `batch` (completely written once `writtenBatch` reaches it).
    private enum Phase: Equatable { case queued, sent(batch: Int) }

    private struct Entry {
        var request: EngineRequest
        var phase: Phase
        /// The caller is gone; send the cancel as soon as the line is completely written (`cancelsAfterWrite`).
        var cancelWanted = false
        var cancelSent = false
        var graceTimer: Scheduled<Void>?
    }

    /// Ids of liveness pings start here, far above the pool's request ids.
    static let pingIDBase = 1 << 50

    private let settings: EngineWatchSettings
    private let logger: Logger
    private let child: EngineChild
    private let onEvent: @Sendable (EngineEvent) -> Void

    private var context: ChannelHandlerContext?
    private var entries: [Int: Entry] = [:]
    private var writeQueue = CircularBuffer<Int>()
    /// Entries being written or written and unanswered.
    private var onEngine = 0
    /// The latest pump that handed lines to the channel, and the latest whose lines are all written. One promise per
    /// pump, on its last line: NIO completes a channel's writes in order, so that line written means all of them are.
    private var sentBatch = 0
    private var writtenBatch = 0
    /// Entries whose cancel waits for their line to be written.
    private var cancelsAfterWrite: [Int] = []
    private var closed = false
    /// A pump is queued on the event loop (see `flush`).
    private var pumpScheduled = false
    private var failure: String?

    // Liveness.
    private var watching = false
    private var answersPingsWhileBusy = false
    private var lastLine = NIODeadline.now()
    /// When the engine last went from idle to busy or back.
    private var quietSince = NIODeadline.now()
    private var ping: (id: Int, sentAt: NIODeadline)?
    private var nextPingID = EngineRPCHandler.pingIDBase
    private var unresponsive = false
    private var timer: Scheduled<Void>?
    private var timerAt: NIODeadline?

    init(settings: EngineWatchSettings, child: EngineChild, logger: Logger, onEvent: @escaping @Sendable (EngineEvent) -> Void) {
        self.settings = settings
        self.child = child
        self.logger = logger
        self.onEvent = onEvent
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        shutDown(reason: failure ?? "the engine process exited")
        self.context = nil
    }

    // MARK: Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .cancel(let id):
            cancel(id: id)
            promise?.succeed()
        case .startLiveness(let answersPingsWhileBusy):
            self.answersPingsWhileBusy = answersPingsWhileBusy
            watching = true
            lastLine = .now()
            quietSince = .now()
            scheduleCheck()
            promise?.succeed()
        }
    }

    /// Queues `request` and has it written with the others of this event-loop tick (`EngineProcess.submit` calls this
    /// directly on the loop: no pass through the pipeline, no promise). False when the engine takes nothing now
    /// (closed, or not answering pings): the request was not queued and may go elsewhere.
    func enqueue(_ request: EngineRequest) -> Bool {
        guard let context, !closed, !unresponsive else { return false }
        if request.sink.isResolved {
            // Its caller gave up before it got here: nothing to send.
            onEvent(.finished(id: request.id, answered: false))
            return true
        }
        entries[request.id] = Entry(request: request, phase: .queued)
        writeQueue.append(request.id)
        flush(context: context)
        return true
    }

    /// Requests handed in during one event-loop tick go out in one flush (one `write` to the pipe under load, not one
    /// per request): the pump runs after the tasks already queued on the loop, which include the other requests.
    func flush(context: ChannelHandlerContext) {
        guard !pumpScheduled else { return }
        pumpScheduled = true
        context.eventLoop.assumeIsolated().execute { [self] in
            pumpScheduled = false
            pump(context: context)
            context.flush()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { pump(context: context) }
        context.fireChannelWritabilityChanged()
    }

    /// Hands queued requests to the channel while it is writable.
    private func pump(context: ChannelHandlerContext) {
        var last: ByteBuffer?
        while !closed, !unresponsive, context.channel.isWritable, let id = writeQueue.popFirst() {
            guard var entry = entries[id], entry.phase == .queued else { continue }
            if entry.request.sink.isResolved {
                entries.removeValue(forKey: id)
                onEvent(.finished(id: id, answered: false))
                continue
            }
            if last == nil { sentBatch += 1 }
            entry.phase = .sent(batch: sentBatch)
            entries[id] = entry
            becameBusyIfFirst()
            if let previous = last { context.write(wrapOutboundOut(previous), promise: nil) }
            let parts = entry.request.parts
            for part in parts.dropLast() { context.write(wrapOutboundOut(part), promise: nil) }
            last = parts.last ?? ByteBuffer()
        }
        guard let last else { return }
        let written = context.eventLoop.makePromise(of: Void.self)
        context.write(wrapOutboundOut(last), promise: written)
        let batch = sentBatch
        written.futureResult.assumeIsolated().whenSuccess { [self] in batchWritten(batch) }
        context.flush()
    }

    private func batchWritten(_ batch: Int) {
        writtenBatch = max(writtenBatch, batch)
        guard !cancelsAfterWrite.isEmpty else { return }
        let waiting = cancelsAfterWrite
        cancelsAfterWrite = waiting.filter { id in
            guard let entry = entries[id], entry.cancelWanted else { return false }
            guard isWritten(entry) else { return true }
            sendCancel(id: id)
            return false
        }
    }

    private func isWritten(_ entry: Entry) -> Bool {
        if case .sent(let batch) = entry.phase { return batch <= writtenBatch }
        return false
    }

    private func cancel(id: Int) {
        guard var entry = entries[id] else { return }
        switch entry.phase {
        case .queued:
            // Never written: nothing to tell the engine.
            entries.removeValue(forKey: id)
            onEvent(.finished(id: id, answered: false))
        case .sent where isWritten(entry):
            sendCancel(id: id)
        case .sent:
            guard !entry.cancelWanted else { return }
            entry.cancelWanted = true
            entries[id] = entry
            cancelsAfterWrite.append(id)
        }
    }

    private func sendCancel(id: Int) {
        guard let context, !closed, var entry = entries[id], !entry.cancelSent else { return }
        entry.cancelSent = true
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: RPCEncoder.cancelLine(id: id))), promise: nil)
        entry.graceTimer = context.eventLoop.assumeIsolated().scheduleTask(in: settings.cancelGrace) { [self] in
            guard !closed, entries[id] != nil else { return }
            logger.warning("engine ignored a cancelled request past the grace period", metadata: ["id": "\(id)"])
            onEvent(.cancelIgnored(id: id))
        }
        entries[id] = entry
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        lastLine = .now()
        ping = nil
        if unresponsive {
            unresponsive = false
            onEvent(.responsive)
            scheduleCheck()
            pump(context: context)
        }
        let line = Array(buffer.readableBytesView)
        switch RPCReplyReader.classify(line) {
        case .response(let id, let reply):
            if id >= Self.pingIDBase {
                answersPingsWhileBusy = reply.error == nil
                return
            }
            guard let entry = entries.removeValue(forKey: id) else {
                logger.debug("engine answered an unknown request id", metadata: ["id": "\(id)"])
                reply.releaseSharedResult()
                return
            }
            entry.graceTimer?.cancel()
            if entry.phase != .queued { becameIdleIfLast() }
            // A late answer to an abandoned request: nobody reads its result segment, so it goes now.
            if !entry.request.sink.complete(reply) { reply.releaseSharedResult() }
            onEvent(.finished(id: id, answered: true))
        case .rows(let request):
            entries[request]?.request.sink.rows(line)
        case .otherNotification:
            break
        case .garbage(let why):
            let preview = String(decoding: line.prefix(120), as: UTF8.self)
            logger.error("engine protocol error: \(why)", metadata: ["line": "\(preview)"])
            fail(context: context, reason: "the engine sent an invalid protocol line (\(why))")
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let tooLong = error as? EngineLineTooLong {
            logger.error("\(tooLong)")
            fail(context: context, reason: tooLong.description)
        } else {
            fail(context: context, reason: "engine pipe error: \(error)")
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        shutDown(reason: failure ?? "the engine process exited")
        context.fireChannelInactive()
    }

    /// A broken engine: kill it (its exit closes the channel) and close our side.
    private func fail(context: ChannelHandlerContext, reason: String) {
        if failure == nil { failure = reason }
        child.signal(SIGKILL)
        context.close(promise: nil)
    }

    /// Fails written requests, gives back the others; once.
    private func shutDown(reason: String) {
        guard !closed else { return }
        closed = true
        timer?.cancel()
        timer = nil
        let held = entries.values.sorted { $0.request.id < $1.request.id }
        entries = [:]
        writeQueue.removeAll()
        cancelsAfterWrite.removeAll()
        onEvent(.closed(reason: reason))
        for entry in held {
            entry.graceTimer?.cancel()
            let request = entry.request
            if isWritten(entry) {
                request.sink.fail(GatewayError(.engineFailed, "\(reason) while handling the request"))
                onEvent(.finished(id: request.id, answered: false))
            } else if request.sink.isResolved {
                onEvent(.finished(id: request.id, answered: false))
            } else {
                onEvent(.reroute(request))
            }
        }
    }

    // MARK: Liveness

    private func becameBusyIfFirst() {
        onEngine += 1
        guard onEngine == 1 else { return }
        quietSince = .now()
        if watching, ping == nil, !unresponsive { arm(at: quietSince + settings.busySilence) }
    }

    private func becameIdleIfLast() {
        onEngine -= 1
        if onEngine == 0 { quietSince = .now() }
    }

    /// Schedules the next check from the current state.
    private func scheduleCheck() {
        guard watching, !closed, !unresponsive else { return }
        if let ping {
            arm(at: ping.sentAt + settings.pingTimeout)
        } else {
            let interval = onEngine > 0 ? settings.busySilence : settings.idlePing
            arm(at: max(lastLine, quietSince) + interval)
        }
    }

    /// Makes sure a check runs no later than `deadline`.
    private func arm(at deadline: NIODeadline) {
        guard let context else { return }
        if timer != nil, let timerAt, timerAt <= deadline { return }
        timer?.cancel()
        timerAt = deadline
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            timer = nil
            timerAt = nil
            check()
        }
    }

    private func check() {
        guard watching, !closed, !unresponsive, let context else { return }
        let now = NIODeadline.now()
        if let ping {
            if now >= ping.sentAt + settings.pingTimeout {
                unresponsive = true
                let busy = onEngine > 0
                logger.warning("engine did not answer a ping", metadata: ["busy": "\(busy)"])
                onEvent(.unresponsive(busy: busy, answersPingsWhileBusy: answersPingsWhileBusy))
                giveBackQueued()
                return
            }
        } else {
            let interval = onEngine > 0 ? settings.busySilence : settings.idlePing
            if now >= max(lastLine, quietSince) + interval {
                let id = nextPingID
                nextPingID += 1
                ping = (id, now)
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: RPCEncoder.requestLine(id: id, method: "ping", params: nil))), promise: nil)
            }
        }
        scheduleCheck()
    }

    /// Requests not yet handed to the channel go elsewhere while the engine does not answer.
    private func giveBackQueued() {
        while let id = writeQueue.popFirst() {
            guard let entry = entries[id], entry.phase == .queued else { continue }
            entries.removeValue(forKey: id)
            if entry.request.sink.isResolved {
                onEvent(.finished(id: id, answered: false))
            } else {
                onEvent(.reroute(entry.request))
            }
        }
    }
}
