#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import ForziumJSON
import ForziumRPC
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// Limits and policies of the pool.
public struct EnginePoolConfiguration: Sendable {
    /// Engine processes kept running.
    public var engines: Int
    /// Requests in flight on one engine's pipe at once (a cancelled request counts until the engine answers it).
    public var perEngineConcurrency: Int
    /// Requests allowed to wait for an engine.
    public var queueDepth: Int
    /// First restart delay after a crash; doubles per crash up to `maxRestartDelay`.
    public var minRestartDelay: Duration
    public var maxRestartDelay: Duration
    /// Crashes and replacements within `breakerWindow` that open a slot's breaker.
    public var breakerCrashes: Int
    public var breakerWindow: Duration
    /// How long an open breaker waits before one more attempt.
    public var breakerCooldown: Duration
    /// Deadline of the `engine.info` handshake.
    public var handshakeTimeout: Duration
    /// How long shutdown waits for in-flight requests, then for engines to exit after their stdin closes.
    public var shutdownGrace: Duration
    /// How long an engine may take to answer a cancelled request before it is replaced.
    public var cancelGrace: Duration
    /// Silence (requests outstanding, no line) before a liveness ping, and how long the ping may go unanswered.
    public var pingTimeout: Duration
    /// Idle time before a liveness ping.
    public var idlePingInterval: Duration
    /// How long an unresponsive engine gets (out of rotation) before it is replaced.
    public var unresponsiveGrace: Duration
    /// After an engine upgrade, how long an old engine may take to finish the requests it has before it is killed
    /// (the gateway sets it to the request deadline plus the cancel grace: no request outlives its deadline anyway).
    public var drainGrace: Duration

    public init(
        engines: Int = 1, perEngineConcurrency: Int = 16, queueDepth: Int = 64,
        minRestartDelay: Duration = .milliseconds(100), maxRestartDelay: Duration = .seconds(5),
        breakerCrashes: Int = 5, breakerWindow: Duration = .seconds(30), breakerCooldown: Duration = .seconds(30),
        handshakeTimeout: Duration = .seconds(10), shutdownGrace: Duration = .seconds(5),
        cancelGrace: Duration = .seconds(2), pingTimeout: Duration = .milliseconds(900), idlePingInterval: Duration = .seconds(2),
        unresponsiveGrace: Duration = .seconds(3), drainGrace: Duration = .seconds(60)
    ) {
        self.engines = max(1, engines)
        self.perEngineConcurrency = max(1, perEngineConcurrency)
        self.queueDepth = max(0, queueDepth)
        self.minRestartDelay = minRestartDelay
        self.maxRestartDelay = maxRestartDelay
        self.breakerCrashes = max(1, breakerCrashes)
        self.breakerWindow = breakerWindow
        self.breakerCooldown = breakerCooldown
        self.handshakeTimeout = handshakeTimeout
        self.shutdownGrace = shutdownGrace
        self.cancelGrace = cancelGrace
        self.pingTimeout = pingTimeout
        self.idlePingInterval = idlePingInterval
        self.unresponsiveGrace = unresponsiveGrace
        self.drainGrace = drainGrace
    }

    var watchSettings: EngineWatchSettings {
        var settings = EngineWatchSettings()
        settings.busySilence = TimeAmount(pingTimeout)
        settings.pingTimeout = TimeAmount(pingTimeout)
        settings.idlePing = TimeAmount(idlePingInterval)
        settings.cancelGrace = TimeAmount(cancelGrace)
        settings.exitGrace = TimeAmount(shutdownGrace)
        return settings
    }
}

/// A snapshot of one pool slot, for `/ready`.
public struct EngineSlotStatus: Sendable {
    public var slot: Int
    public var pid: Int32?
    public var state: String
    public var inFlight: Int
    public var restarts: Int
}

/// A pool of engine processes behind one queue.
///
/// Engines are spread over the event loops (slot `i` on loop `i % loops`; the gateway runs one engine per loop). A
/// request goes to the ready engine with the fewest in flight (up to `perEngineConcurrency` each), counting
/// `crossLoopPenalty` more for an engine on another loop than the caller's, so a connection's small requests and their
/// answers stay on its own thread; when every engine is full they wait in a FIFO of at most `queueDepth` (beyond: 503 +
/// Retry-After).
///
/// - Deadlines and clients going away: the caller gets 504 (or its task ends) at once. A queued request just leaves
///   the queue; one on an engine is withdrawn if unwritten, else the engine gets `$/cancelRequest` and the slot keeps
///   counting the request until the engine answers (the late answer is dropped). An engine that leaves a cancel
///   unanswered past `cancelGrace` is replaced.
/// - Liveness: engines are pinged when silent with work outstanding (`pingTimeout`) or idle (`idlePingInterval`).
///   A ping unanswered for `pingTimeout` takes the slot out of rotation (`unresponsive`); still silent after
///   `unresponsiveGrace`, it is replaced. (An engine that answered the handshake ping with an error — one that may
///   not answer pings while it computes — is only replaced this way when it was idle; its stuck requests still end
///   through their deadlines and the cancel grace.)
/// - Re-routing: a request not completely written to an engine that dies, is replaced or stops answering goes to
///   another engine (or the front of the queue); only requests whose line was written fail with 502.
/// - Crashes and replacements restart the slot with exponential backoff; `breakerCrashes` of them within
///   `breakerWindow`, with no request answered in between, open its breaker (no restarts until `breakerCooldown`
///   passes).
///
/// As a `Service`, `run()` owns the timed work (restarts, breaker cooldowns, replacements) in a task group; on graceful
/// shutdown it stops taking work, waits for in-flight requests, closes every engine's stdin, waits for them to exit,
/// then kills stragglers.
public final class EnginePool: Service, @unchecked Sendable {
    /// `draining`: an old engine after an upgrade, finishing what it has (no new work); `retired`: gone for good.
    private enum SlotState: String {
        case starting, ready, unresponsive, restarting, backoff, broken, stopped, draining, retired

        /// A slot that will not take work again without an operator or the breaker (checked for every request).
        var isOutOfService: Bool {
            switch self {
            case .broken, .stopped, .draining, .retired: true
            case .starting, .ready, .unresponsive, .restarting, .backoff: false
            }
        }
    }

    private struct Slot {
        /// The executable this slot runs (slots added by an upgrade run the new one).
        var engine: EngineCandidate
        /// The slot's last `engine.info` answer, compact JSON.
        var info: String?
        /// Set by an upgrade: the slot takes no new work, is never restarted, and its engine's stdin is closed once
        /// its requests are answered.
        var retiring = false
        var inputClosed = false
        /// Started by an upgrade that has not switched yet: a failure ends the upgrade instead of restarting the slot.
        var onTrial = false
        var process: EngineProcess?
        var generation = 0
        var state: SlotState = .starting
        var inFlight = 0
        var crashTimes: [ContinuousClock.Instant] = []
        var restartDelay: Duration
        var restarts = 0
        /// Why the gateway killed the current process (nil: it died by itself).
        var replacing: String?
    }

    private enum Location {
        /// Waiting in the pool's queue (or between engines).
        case queued
        case engine(slot: Int, generation: Int, process: EngineProcess)
    }

    private struct Tracked {
        var request: EngineRequest
        var location: Location
    }

    private struct State {
        var slots: [Slot]
        var queue = CircularBuffer<Int>()
        var requests: [Int: Tracked] = [:]
        var shuttingDown = false
        /// Completed when nothing is in flight any more (shutdown).
        var drained: EventLoopPromise<Void>?
        var upgrading = false
        /// When the armed deadline sweep runs (`sweepDeadlines`): the earliest deadline among `requests` when it was
        /// armed; nil when none is armed. A request due earlier arms another.
        var sweepAt: ContinuousClock.Instant?
        /// Identifies the armed sweep; an older one that still fires only expires what is due.
        var sweepToken = 0
    }

    /// Timed work for `run()`.
    private enum Job: Sendable {
        case restart(slot: Int, after: Duration)
        case breakerCooldown(slot: Int)
        case replaceIfUnresponsive(slot: Int, generation: Int)
        case drainDeadline(slot: Int, generation: Int)
    }

    /// The engine new requests go to (the one every slot runs, but for old engines draining after an upgrade).
    public var engine: EngineCandidate { current.withLockedValue { $0 } }
    /// `engine.kind`, which every answer names.
    public var engineKind: String { current.withLockedValue { $0.kind } }
    /// The engine new slots run and responses name (`engine`): apart from `state`, so that answers name it without
    /// taking the lock that requests and replies take. Changed only under `state`'s lock, by `upgrade(to:)`.
    private let current: NIOLockedValueBox<EngineCandidate>
    /// What the handshake reported (`engine.info` result), compact JSON.
    public var engineInfo: String { info.withLockedValue { $0 } }
    private let info = NIOLockedValueBox("{}")
    public let configuration: EnginePoolConfiguration
    /// Shared-memory segments that carry requests' matrices to the engines, reused from request to request (a warm
    /// segment costs one copy; a new one also the kernel's page allocation). Released segments are kept up to
    /// `retainedSegmentBytes`; all are removed at shutdown.
    public let segments = SharedSegmentPool(retainedBytes: EnginePool.retainedSegmentBytes)
    /// What the segment pool keeps between requests: the inputs of a few 1024×1024 requests.
    public static let retainedSegmentBytes = 64 << 20
    private let logger: Logger
    private let metrics: GatewayMetrics
    private let group: any EventLoopGroup
    /// The group's event loops; slot `i` runs its engine's pipes on `loops[i % loops.count]`, so with one engine per
    /// loop every connection has an engine on its own thread.
    private let loops: [any EventLoop]
    private let state: NIOLockedValueBox<State>
    /// Request ids are counted outside `state`'s lock (every request takes one, from every event loop).
    private let requestCounter = Atomic<UInt64>(0)
    private let jobs = AsyncStream<Job>.makeStream()

    public init(engine: EngineCandidate, configuration: EnginePoolConfiguration, metrics: GatewayMetrics, logger: Logger,
                eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
        self.group = eventLoopGroup
        self.loops = Array(eventLoopGroup.makeIterator())
        self.current = NIOLockedValueBox(engine)
        self.state = NIOLockedValueBox(State(slots: Array(
            repeating: Slot(engine: engine, restartDelay: configuration.minRestartDelay), count: configuration.engines)))
    }

    // MARK: Start and stop

    /// Starts every engine and waits for their handshakes. Throws when none could start.
    public func start() async throws {
        // Segments left by processes that are gone (an earlier gateway or engine that was killed).
        SharedMatrixSegment.removeOrphans()
        var failures: [String] = []
        await withTaskGroup(of: String?.self) { group in
            for slot in 0..<configuration.engines {
                group.addTask { await self.startSlot(slot) }
            }
            for await failure in group { if let failure { failures.append(failure) } }
        }
        if failures.count == configuration.engines {
            throw EngineSpawnError(message: "no engine started: \(failures.joined(separator: "; "))")
        }
    }

    /// Spawns the slot's process and handshakes; returns a failure description, or nil when ready.
    private func startSlot(_ slot: Int) async -> String? {
        let started: (Int, EngineCandidate)? = state.withLockedValue { s in
            guard !s.shuttingDown, !s.slots[slot].retiring else { return nil }
            s.slots[slot].generation += 1
            s.slots[slot].state = .starting
            s.slots[slot].process = nil
            s.slots[slot].replacing = nil
            s.slots[slot].inFlight = 0
            return (s.slots[slot].generation, s.slots[slot].engine)
        }
        guard let (generation, engine) = started else { return "the gateway is shutting down, or the slot was retired" }
        let process: EngineProcess
        do {
            process = try await EngineProcess.start(
                executable: engine.path, arguments: engine.arguments, slot: slot, generation: generation,
                group: loops[slot % loops.count],
                settings: configuration.watchSettings, logger: logger,
                onEvent: { [weak self] event in self?.handle(event, slot: slot, generation: generation) })
        } catch {
            logger.error("engine start failed", metadata: ["slot": "\(slot)", "error": "\(error)"])
            // Not a process exit: account for it like a crash so the breaker sees spawn loops.
            recordCrash(slot: slot, generation: generation, reason: "\(error)", replaced: nil)
            return "\(error)"
        }
        process.exit.whenSuccess { [weak self] exit in self?.engineExited(slot: slot, generation: generation, pid: process.pid, exit) }
        state.withLockedValue { s in
            if s.slots[slot].generation == generation { s.slots[slot].process = process }
        }
        let answersPings: Bool
        do {
            let info = try await EngineHandshake.run(process: process, id: nextRequestID(), timeout: configuration.handshakeTimeout)
            try engine.check(info: info)
            let text = JSONWriter.string(info, options: .document)
            let isCurrent = state.withLockedValue { s in
                s.slots[slot].info = text
                return current.withLockedValue { $0 } == engine
            }
            if isCurrent { self.info.withLockedValue { $0 = text } }
            // Any answer to a ping proves liveness; a result (not "method not found") promises answers while busy.
            let pong = try? await process.call(id: nextRequestID(), method: "ping", timeout: configuration.handshakeTimeout)
            answersPings = pong != nil && pong?.error == nil
        } catch {
            logger.error("engine handshake failed", metadata: ["slot": "\(slot)", "pid": "\(process.pid)", "error": "\(error)"])
            process.kill()
            return "\(error)"
        }
        let ready = state.withLockedValue { s -> Bool in
            guard s.slots[slot].generation == generation, s.slots[slot].state == .starting, !s.shuttingDown, process.isOpen else {
                return false
            }
            s.slots[slot].state = .ready
            return true
        }
        guard ready else {
            // Exited, replaced or shutting down meanwhile: make sure this process does not outlive its slot.
            process.kill()
            return "engine exited during start"
        }
        process.startLiveness(answersPingsWhileBusy: answersPings)
        logger.info("engine ready", metadata: [
            "slot": "\(slot)", "pid": "\(process.pid)", "engine": "\(engine.kind)", "busy_pings": "\(answersPings)",
        ])
        drainQueue()
        return nil
    }

    /// Runs the pool's timed work until graceful shutdown, then shuts the engines down.
    public func run() async throws {
        await withDiscardingTaskGroup { group in
            await withGracefulShutdownHandler {
                for await job in jobs.stream {
                    group.addTask { await self.perform(job) }
                }
            } onGracefulShutdown: {
                self.jobs.continuation.finish()
            }
            await shutdown()
            group.cancelAll()
        }
    }

    private func perform(_ job: Job) async {
        switch job {
        case .restart(let slot, let delay):
            if delay > .zero {
                do { try await Task.sleep(for: delay) } catch { return }
            }
            _ = await startSlot(slot)
        case .breakerCooldown(let slot):
            do { try await Task.sleep(for: configuration.breakerCooldown) } catch { return }
            let retry = state.withLockedValue { s -> Bool in
                guard s.slots[slot].state == .broken, !s.shuttingDown else { return false }
                s.slots[slot].crashTimes = []
                return true
            }
            if retry { _ = await startSlot(slot) }
        case .replaceIfUnresponsive(let slot, let generation):
            do { try await Task.sleep(for: configuration.unresponsiveGrace) } catch { return }
            replace(slot: slot, generation: generation, only: .unresponsive,
                    reason: "the engine did not answer liveness pings for \(configuration.unresponsiveGrace)")
        case .drainDeadline(let slot, let generation):
            do { try await Task.sleep(for: configuration.drainGrace) } catch { return }
            let process = state.withLockedValue { s -> EngineProcess? in
                guard s.slots[slot].generation == generation, s.slots[slot].retiring else { return nil }
                return s.slots[slot].process
            }
            if let process {
                logger.warning("old engine still busy after the drain grace: killing it",
                               metadata: ["slot": "\(slot)", "pid": "\(process.pid)", "grace": "\(configuration.drainGrace)"])
                process.kill()
            }
        }
    }

    /// Stops taking work, waits for in-flight requests, closes engines' stdin, waits, then kills what is left.
    public func shutdown() async {
        let loop = group.next()
        let (queued, drained) = state.withLockedValue { s -> ([EngineRequest], EventLoopFuture<Void>) in
            s.shuttingDown = true
            let queued = s.queue.compactMap { s.requests.removeValue(forKey: $0)?.request }
            s.queue.removeAll()
            let promise = s.drained ?? loop.makePromise(of: Void.self)
            s.drained = promise
            if !s.slots.contains(where: { $0.inFlight > 0 && $0.process != nil }) { promise.succeed() }
            return (queued, promise.futureResult)
        }
        for request in queued {
            request.sink.fail(GatewayError(.unavailable(retryAfterSeconds: 1), "the gateway is shutting down"))
        }
        _ = await Self.wait(for: drained, upTo: configuration.shutdownGrace, on: loop)
        let processes = state.withLockedValue { s in s.slots.compactMap { $0.process } }
        for process in processes { process.closeInput() }
        let exits = EventLoopFuture.andAllComplete(processes.map { $0.exit.map { _ in } }, on: loop)
        if await !Self.wait(for: exits, upTo: configuration.shutdownGrace, on: loop) {
            for process in processes { process.kill() }
            _ = await Self.wait(for: exits, upTo: .seconds(5), on: loop)
        }
        segments.removeAll()
        logger.info("engines stopped")
    }

    /// Waits for `future` at most `timeout`; false on timeout.
    private static func wait(for future: EventLoopFuture<Void>, upTo timeout: Duration, on loop: any EventLoop) async -> Bool {
        let outcome = loop.makePromise(of: Bool.self)
        let settled = NIOLockedValueBox(false)
        let settle: @Sendable (Bool) -> Void = { value in
            let first = settled.withLockedValue { done -> Bool in
                defer { done = true }
                return !done
            }
            if first { outcome.succeed(value) }
        }
        let timer = loop.scheduleTask(in: TimeAmount(timeout)) { settle(false) }
        future.whenComplete { _ in
            timer.cancel()
            settle(true)
        }
        return (try? await outcome.futureResult.get()) ?? false
    }

    // MARK: Requests

    /// Sends `method` with `params` (raw JSON text of an object, spliced as-is; CR/LF become spaces) and returns
    /// the engine's response. Throws `GatewayError` for 502/503/504, and `CancellationError` when the calling task is
    /// cancelled (the request then leaves the queue, or its engine gets a cancel).
    package func call(method: String, params: ByteBuffer, deadline: ContinuousClock.Instant) async throws -> EngineResponse {
        let sink = ReplySink()
        let id = nextRequestID()
        let request = EngineRequest(id: id, parts: Self.requestParts(id: id, method: method, params: params), deadline: deadline, sink: sink)
        try admit(request)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in sink.attach(continuation) }
        } onCancel: {
            self.abandon(request, error: CancellationError())
        }
    }

    /// Like `call`, for a caller that waits in no task: `completion` gets the response or the error once, on the
    /// thread that resolves the request (the engine's event loop, or the deadline timer's). A refusal (queue full,
    /// no engine, deadline already past) is thrown here, and `completion` is then never called.
    package func submit(method: String, params: ByteBuffer, deadline: ContinuousClock.Instant,
                        completion: @escaping @Sendable (Result<EngineResponse, any Error>) -> Void) throws {
        let id = nextRequestID()
        let request = EngineRequest(id: id, parts: Self.requestParts(id: id, method: method, params: params), deadline: deadline,
                                    sink: ReplySink(callback: completion))
        try admit(request)
    }

    /// A streamed request in progress: its events, and a way to abandon it (client gone).
    package struct EngineStream: Sendable {
        package var events: AsyncThrowingStream<EngineStreamEvent, any Error>
        /// Stops waiting for the engine: the request leaves the queue, or its engine gets a cancel.
        package var cancel: @Sendable () -> Void
    }

    /// Like `call`, for methods that send `stream.rows` notifications before their final response.
    package func stream(method: String, params: ByteBuffer, deadline: ContinuousClock.Instant) async throws -> EngineStream {
        let (events, continuation) = AsyncThrowingStream.makeStream(of: EngineStreamEvent.self, throwing: (any Error).self)
        let id = nextRequestID()
        let request = EngineRequest(id: id, parts: Self.requestParts(id: id, method: method, params: params), deadline: deadline,
                                    sink: ReplySink(stream: continuation))
        let gone = GatewayError(.engineFailed, "client disconnected")
        continuation.onTermination = { [weak self] termination in
            if case .cancelled = termination { self?.abandon(request, error: gone) }
        }
        try admit(request)
        return EngineStream(events: events, cancel: { [weak self] in self?.abandon(request, error: gone) })
    }

    private func nextRequestID() -> Int {
        // 1 ..< pingIDBase, then round again (ids of requests still in flight are long gone by then).
        let count = requestCounter.wrappingAdd(1, ordering: .relaxed).newValue
        return 1 + Int((count &- 1) % UInt64(EngineRPCHandler.pingIDBase - 1))
    }

    /// The request line as buffers: a large body without raw CR/LF is written from the buffer it arrived in, between
    /// the envelope head (`RPCEncoder.requestHead`) and the tail (three parts, no copy). A small body, or one holding
    /// CR or LF (whitespace between tokens, turned into spaces), is copied once into a single line buffer.
    package static func requestParts(id: Int, method: String, params: ByteBuffer) -> [ByteBuffer] {
        let hasBreaks = params.withUnsafeReadableBytes { raw in
            raw.count > 0 && (memchr(raw.baseAddress!, 0x0A, raw.count) != nil || memchr(raw.baseAddress!, 0x0D, raw.count) != nil)
        }
        if !hasBreaks, params.readableBytes >= copyBelow {
            var head = ByteBufferAllocator().buffer(capacity: headCapacity + method.utf8.count)
            RPCEncoder.writeRequestHead(id: id, method: method) { head.writeBytes($0) }
            return [head, params, ByteBuffer(bytes: RPCEncoder.requestTail)]
        }
        var line = ByteBufferAllocator().buffer(capacity: headCapacity + method.utf8.count + params.readableBytes + RPCEncoder.requestTail.count)
        RPCEncoder.writeRequestHead(id: id, method: method) { line.writeBytes($0) }
        let start = line.writerIndex - line.readerIndex
        line.writeImmutableBuffer(params)
        if hasBreaks {
            line.withUnsafeMutableReadableBytes { raw in
                for index in start..<raw.count where raw[index] == 0x0A || raw[index] == 0x0D { raw[index] = 0x20 }
            }
        }
        line.writeBytes(RPCEncoder.requestTail)
        return [line]
    }

    /// Bodies shorter than this are copied into one line buffer (one write instead of three).
    static let copyBelow = 32 << 10

    /// Room for a request head but its method name (a longer one, with escapes, only makes the buffer grow).
    private static let headCapacity = 64

    /// Takes a new request: to an engine, into the queue, or refused at once (thrown: queue full, no engine,
    /// shutting down, deadline already passed).
    private func admit(_ request: EngineRequest) throws {
        if request.deadline <= .now {
            throw GatewayError(.deadline, "the request's deadline passed before it could be sent to an engine")
        }
        enum Outcome { case send(EngineProcess), queued, refuse(GatewayError) }
        let (outcome, sweep) = state.withLockedValue { s -> (Outcome, (token: Int, at: ContinuousClock.Instant)?) in
            if let refusal = refusal(s, queueFull: s.queue.count >= configuration.queueDepth) { return (.refuse(refusal), nil) }
            let outcome: Outcome
            if let (slot, generation, process) = Self.pickLeastBusy(&s, limit: configuration.perEngineConcurrency) {
                s.requests[request.id] = Tracked(request: request, location: .engine(slot: slot, generation: generation, process: process))
                outcome = .send(process)
            } else {
                s.requests[request.id] = Tracked(request: request, location: .queued)
                s.queue.append(request.id)
                outcome = .queued
            }
            if let armed = s.sweepAt, armed <= request.deadline { return (outcome, nil) }
            s.sweepToken += 1
            s.sweepAt = request.deadline
            return (outcome, (s.sweepToken, request.deadline))
        }
        if let sweep { armSweep(token: sweep.token, at: sweep.at) }
        switch outcome {
        case .send(let process):
            send(request, to: process)
        case .queued:
            break
        case .refuse(let error):
            throw error
        }
    }

    // MARK: Deadlines
    //
    // Requests carry their deadline; no timer is made per request. One sweep is armed for the earliest deadline in
    // flight: it abandons every request that is due (504) and arms itself again for the earliest one left. Under
    // steady load the earliest request in flight is answered long before its deadline, so the sweep runs about once
    // per timeout and finds nothing to do; a request with a deadline earlier than the armed sweep arms another.

    /// Runs `sweepDeadlines` at `at`, on the calling thread's event loop (no other thread's timer heap to lock).
    private func armSweep(token: Int, at deadline: ContinuousClock.Instant) {
        let loop = MultiThreadedEventLoopGroup.currentEventLoop ?? group.next()
        loop.scheduleTask(deadline: deadline.nioDeadline) { [weak self] in self?.sweepDeadlines(token: token) }
    }

    /// Abandons the requests whose deadline has passed; the current sweep (`token`) arms the next.
    private func sweepDeadlines(token: Int) {
        let now = ContinuousClock.now
        let (due, next) = state.withLockedValue { s -> ([EngineRequest], (token: Int, at: ContinuousClock.Instant)?) in
            var due: [EngineRequest] = []
            var earliest: ContinuousClock.Instant?
            for tracked in s.requests.values where !tracked.request.sink.isResolved {
                let deadline = tracked.request.deadline
                if deadline <= now {
                    due.append(tracked.request)
                } else if earliest.map({ deadline < $0 }) ?? true {
                    earliest = deadline
                }
            }
            guard token == s.sweepToken else { return (due, nil) }
            s.sweepToken += 1
            s.sweepAt = earliest
            return (due, earliest.map { (s.sweepToken, $0) })
        }
        for request in due.sorted(by: { $0.id < $1.id }) {
            abandon(request, error: GatewayError(.deadline, "the request did not finish within its deadline"))
        }
        if let next { armSweep(token: next.token, at: next.at) }
    }

    /// Why a request cannot be taken now, if it cannot.
    private func refusal(_ s: State, queueFull: Bool) -> GatewayError? {
        if s.shuttingDown { return GatewayError(.unavailable(retryAfterSeconds: 1), "the gateway is shutting down") }
        if s.slots.allSatisfy({ $0.state.isOutOfService }) {
            return GatewayError(.unavailable(retryAfterSeconds: Int(configuration.breakerCooldown.components.seconds)),
                                "no engine is available (crash-looping engines are held by the breaker)")
        }
        if queueFull, !s.slots.contains(where: { $0.state == .ready && $0.inFlight < configuration.perEngineConcurrency }) {
            return GatewayError(.unavailable(retryAfterSeconds: 1), "the request queue is full; retry later")
        }
        return nil
    }

    private func send(_ request: EngineRequest, to process: EngineProcess) {
        let slot = process.slot, generation = process.generation
        process.submit(request) { [weak self] request in
            self?.takeBack(request, slot: slot, generation: generation)
        }
    }

    /// The caller gave up (deadline, client gone): resolve its sink now; withdraw or cancel the request.
    private func abandon(_ request: EngineRequest, error: any Error) {
        guard request.sink.fail(error) else { return }
        let process = state.withLockedValue { s -> EngineProcess? in
            guard let tracked = s.requests[request.id] else { return nil }
            switch tracked.location {
            case .queued:
                s.requests.removeValue(forKey: request.id)
                if let index = s.queue.firstIndex(of: request.id) { s.queue.remove(at: index) }
                return nil
            case .engine(_, _, let process):
                return process
            }
        }
        process?.cancel(id: request.id)
        metrics.recordAbandoned(where: process == nil ? "queue" : "engine")
    }

    /// A request that was not completely written comes back from engine `slot`/`generation`: send it elsewhere.
    private func takeBack(_ request: EngineRequest, slot: Int, generation: Int) {
        enum Outcome { case send(EngineProcess), queued, none, fail(GatewayError) }
        var retiredProcess: EngineProcess?
        defer { retiredProcess?.closeInput() }
        let outcome = state.withLockedValue { s -> Outcome in
            guard var tracked = s.requests[request.id], case .engine(let from, let gen, _) = tracked.location,
                  from == slot, gen == generation else { return .none }
            if s.slots[slot].generation == generation, s.slots[slot].inFlight > 0 { s.slots[slot].inFlight -= 1 }
            retiredProcess = Self.drainedProcess(&s, slot: slot, generation: generation)
            if request.sink.isResolved {
                s.requests.removeValue(forKey: request.id)
                return .none
            }
            if let refusal = refusal(s, queueFull: false) {
                s.requests.removeValue(forKey: request.id)
                return .fail(refusal)
            }
            if let (to, toGeneration, process) = Self.pickLeastBusy(&s, limit: configuration.perEngineConcurrency) {
                tracked.location = .engine(slot: to, generation: toGeneration, process: process)
                s.requests[request.id] = tracked
                return .send(process)
            }
            // Back to the head of the queue: it was admitted before anything waiting there.
            tracked.location = .queued
            s.requests[request.id] = tracked
            s.queue.prepend(request.id)
            return .queued
        }
        switch outcome {
        case .send(let process):
            metrics.recordReroute()
            logger.debug("request re-routed", metadata: ["id": "\(request.id)", "from_slot": "\(slot)", "to_slot": "\(process.slot)"])
            send(request, to: process)
        case .queued:
            metrics.recordReroute()
        case .fail(let error):
            request.sink.fail(error)
        case .none:
            break
        }
        drainQueue()
    }

    /// Request `id` left engine `slot`/`generation` (answered, failed or withdrawn).
    private func finished(id: Int, slot: Int, generation: Int, answered: Bool) {
        let (retired, queued) = state.withLockedValue { s -> (EngineProcess?, Bool) in
            guard let tracked = s.requests[id], case .engine(let from, let gen, _) = tracked.location,
                  from == slot, gen == generation else { return (nil, !s.queue.isEmpty) }
            // An engine that answers a client's request is not crash-looping: only failures with no such answer in
            // between open the breaker (an engine killed from outside every few seconds while it serves is restarted,
            // never held back). The start-up handshake does not count.
            if answered, s.slots[slot].generation == generation { s.slots[slot].crashTimes = [] }
            s.requests.removeValue(forKey: id)
            if s.slots[slot].generation == generation, s.slots[slot].inFlight > 0 { s.slots[slot].inFlight -= 1 }
            checkDrained(&s)
            return (Self.drainedProcess(&s, slot: slot, generation: generation), !s.queue.isEmpty)
        }
        // An old engine that has answered everything it had after an upgrade: close its stdin, it exits.
        retired?.closeInput()
        if queued { drainQueue() }
    }

    /// The process of a retiring slot that has nothing in flight any more, once (its stdin is to be closed).
    private static func drainedProcess(_ s: inout State, slot: Int, generation: Int) -> EngineProcess? {
        guard s.slots[slot].generation == generation, s.slots[slot].retiring, !s.slots[slot].inputClosed,
              s.slots[slot].inFlight == 0, let process = s.slots[slot].process else { return nil }
        s.slots[slot].inputClosed = true
        return process
    }

    private func checkDrained(_ s: inout State) {
        guard let drained = s.drained, s.shuttingDown else { return }
        if !s.slots.contains(where: { $0.inFlight > 0 && $0.process != nil }) {
            s.drained = nil
            drained.succeed()
        }
    }

    /// Moves queued requests onto engines with room; fails them when no engine can come back.
    private func drainQueue() {
        var sends: [(EngineRequest, EngineProcess)] = []
        var failures: [(EngineRequest, GatewayError)] = []
        state.withLockedValue { s in
            while let id = s.queue.first {
                guard var tracked = s.requests[id] else {
                    s.queue.removeFirst()
                    continue
                }
                if tracked.request.sink.isResolved {
                    s.queue.removeFirst()
                    s.requests.removeValue(forKey: id)
                    continue
                }
                guard let (slot, generation, process) = Self.pickLeastBusy(&s, limit: configuration.perEngineConcurrency) else { break }
                s.queue.removeFirst()
                tracked.location = .engine(slot: slot, generation: generation, process: process)
                s.requests[id] = tracked
                sends.append((tracked.request, process))
            }
            if !s.queue.isEmpty, let refusal = refusal(s, queueFull: false) {
                for id in s.queue {
                    guard let tracked = s.requests.removeValue(forKey: id) else { continue }
                    failures.append((tracked.request, refusal))
                }
                s.queue.removeAll()
            }
        }
        for (request, process) in sends { send(request, to: process) }
        for (request, error) in failures { request.sink.fail(error) }
    }

    /// How many more requests in flight an engine on the calling thread's event loop may have than one on another loop
    /// and still be chosen: a request and its answer that cross no thread save two wake-ups of the other loop, which is
    /// worth more than a few requests' wait on an engine that answers small ones in microseconds.
    static let crossLoopPenalty = 4

    /// The ready engine with the fewest requests in flight, counting `crossLoopPenalty` more for one whose pipe is not
    /// served by the calling thread's event loop; of equals, the one on the calling loop.
    private static func pickLeastBusy(_ s: inout State, limit: Int) -> (Int, Int, EngineProcess)? {
        let here = MultiThreadedEventLoopGroup.currentEventLoop
        func rank(_ i: Int) -> (Int, Int) {
            let local = here.map { s.slots[i].process?.eventLoop === $0 } == true
            return (s.slots[i].inFlight + (local ? 0 : crossLoopPenalty), local ? 0 : 1)
        }
        var best: Int?
        for i in s.slots.indices where s.slots[i].state == .ready && s.slots[i].inFlight < limit && s.slots[i].process != nil {
            if best == nil || rank(i) < rank(best!) { best = i }
        }
        guard let b = best, let process = s.slots[b].process else { return nil }
        s.slots[b].inFlight += 1
        return (b, s.slots[b].generation, process)
    }

    // MARK: Engine events

    private func handle(_ event: EngineEvent, slot: Int, generation: Int) {
        switch event {
        case .finished(let id, let answered):
            finished(id: id, slot: slot, generation: generation, answered: answered)
        case .reroute(let request):
            takeBack(request, slot: slot, generation: generation)
        case .closed(let reason):
            state.withLockedValue { s in
                guard s.slots[slot].generation == generation, [.ready, .unresponsive, .starting].contains(s.slots[slot].state) else { return }
                s.slots[slot].state = s.shuttingDown ? .stopped : .restarting
            }
            logger.debug("engine channel closed", metadata: ["slot": "\(slot)", "reason": "\(reason)"])
        case .unresponsive(let busy, let answersPings):
            let marked = state.withLockedValue { s -> Bool in
                guard s.slots[slot].generation == generation, s.slots[slot].state == .ready else { return false }
                s.slots[slot].state = .unresponsive
                return true
            }
            guard marked else { return }
            logger.warning("engine unresponsive: taken out of rotation", metadata: ["slot": "\(slot)", "busy": "\(busy)"])
            if !busy || answersPings {
                jobs.continuation.yield(.replaceIfUnresponsive(slot: slot, generation: generation))
            }
        case .responsive:
            let back = state.withLockedValue { s -> Bool in
                guard s.slots[slot].generation == generation, s.slots[slot].state == .unresponsive else { return false }
                s.slots[slot].state = .ready
                return true
            }
            if back {
                logger.notice("engine answers again: back in rotation", metadata: ["slot": "\(slot)"])
                drainQueue()
            }
        case .cancelIgnored(let id):
            replace(slot: slot, generation: generation, only: nil,
                    reason: "the engine left cancelled request \(id) unanswered for \(configuration.cancelGrace)")
        }
    }

    /// Kills the slot's engine (it is restarted like after a crash, and counts toward the breaker).
    private func replace(slot: Int, generation: Int, only required: SlotState?, reason: String) {
        let process = state.withLockedValue { s -> EngineProcess? in
            guard s.slots[slot].generation == generation, !s.shuttingDown, s.slots[slot].replacing == nil,
                  let process = s.slots[slot].process else { return nil }
            if let required, s.slots[slot].state != required { return nil }
            guard [.ready, .unresponsive].contains(s.slots[slot].state) else { return nil }
            s.slots[slot].replacing = reason
            s.slots[slot].state = .restarting
            return process
        }
        guard let process else { return }
        logger.warning("replacing engine", metadata: ["slot": "\(slot)", "pid": "\(process.pid)", "reason": "\(reason)"])
        process.kill()
    }

    private func engineExited(slot: Int, generation: Int, pid: pid_t, _ exit: EngineProcess.Exit) {
        // Result segments the engine made and nobody will read now (it is reaped, so its pid counts as gone).
        SharedMatrixSegment.removeOrphans()
        enum Outcome { case ignore, retired, crashed(replaced: String?) }
        let outcome = state.withLockedValue { s -> Outcome in
            guard s.slots[slot].generation == generation else { return .ignore }
            s.slots[slot].process = nil
            s.slots[slot].inFlight = 0
            if s.slots[slot].retiring {
                s.slots[slot].state = .retired
                checkDrained(&s)
                return .retired
            }
            if s.shuttingDown {
                s.slots[slot].state = .stopped
                checkDrained(&s)
                return .ignore
            }
            return .crashed(replaced: s.slots[slot].replacing)
        }
        switch outcome {
        case .ignore:
            return
        case .retired:
            logger.notice("old engine stopped", metadata: ["slot": "\(slot)", "pid": "\(pid)", "status": "\(exit.description)"])
        case .crashed(let replacedReason):
            if let replacedReason {
                logger.warning("engine replaced", metadata: [
                    "slot": "\(slot)", "pid": "\(pid)", "status": "\(exit.description)", "reason": "\(replacedReason)",
                ])
            } else {
                logger.error("engine crashed", metadata: ["slot": "\(slot)", "pid": "\(pid)", "status": "\(exit.description)"])
            }
            recordCrash(slot: slot, generation: generation, reason: exit.description, replaced: replacedReason)
        }
    }

    /// Counts a crash or replacement and schedules the restart, or opens the breaker.
    private func recordCrash(slot: Int, generation: Int, reason: String, replaced: String?) {
        let now = ContinuousClock.now
        enum Next { case restart(Duration), breaker, none }
        let next = state.withLockedValue { s -> Next in
            guard s.slots[slot].generation == generation, !s.shuttingDown else { return .none }
            s.slots[slot].process = nil
            if s.slots[slot].retiring || s.slots[slot].onTrial {
                s.slots[slot].state = .retired
                s.slots[slot].retiring = true
                return .none
            }
            s.slots[slot].crashTimes.append(now)
            s.slots[slot].crashTimes.removeAll { now - $0 > configuration.breakerWindow }
            s.slots[slot].restarts += 1
            if s.slots[slot].crashTimes.count >= configuration.breakerCrashes {
                s.slots[slot].state = .broken
                return .breaker
            }
            s.slots[slot].state = .backoff
            let delay = s.slots[slot].crashTimes.count <= 1 ? configuration.minRestartDelay : s.slots[slot].restartDelay
            s.slots[slot].restartDelay = min(delay * 2, configuration.maxRestartDelay)
            return .restart(delay)
        }
        switch next {
        case .none:
            return
        case .restart(let delay):
            metrics.recordEngineRestart(reason: replaced == nil ? "crash" : "replaced")
            logger.warning("restarting engine", metadata: ["slot": "\(slot)", "delay": "\(delay)", "reason": "\(replaced ?? reason)"])
            jobs.continuation.yield(.restart(slot: slot, after: delay))
        case .breaker:
            metrics.recordEngineRestart(reason: replaced == nil ? "crash" : "replaced")
            logger.error("engine breaker open: too many crashes or replacements; not restarting for now",
                         metadata: ["slot": "\(slot)", "crashes": "\(configuration.breakerCrashes)", "window": "\(configuration.breakerWindow)"])
            jobs.continuation.yield(.breakerCooldown(slot: slot))
        }
        drainQueue()
    }

    // MARK: Upgrade

    /// What `upgrade(to:)` did.
    package enum UpgradeOutcome: Sendable, Equatable {
        /// New requests go to the new engines; `draining` old engines finish what they have, then exit.
        case switched(from: EngineCandidate, draining: Int)
        /// A new engine failed to start or handshake: the new ones were stopped, the old ones go on serving.
        case failed(String)
        /// Nothing was done (an upgrade already running, or shutting down).
        case refused(String)
    }

    /// Starts `configuration.engines` processes of `candidate` beside the running ones and waits for their
    /// handshakes. When every one is ready, the pool switches: new requests go to the new engines and the old ones
    /// drain — they take no new work, finish what they have, then their stdin is closed and they exit (killed after
    /// `drainGrace`). When any new engine fails, the new ones are stopped and the old ones go on serving.
    package func upgrade(to candidate: EngineCandidate) async -> UpgradeOutcome {
        let reserved = state.withLockedValue { s -> (new: [Int], old: [Int], from: EngineCandidate)? in
            guard !s.shuttingDown, !s.upgrading else { return nil }
            s.upgrading = true
            let old = s.slots.indices.filter { !s.slots[$0].retiring }
            let first = s.slots.count
            for _ in 0..<configuration.engines {
                var slot = Slot(engine: candidate, restartDelay: configuration.minRestartDelay)
                slot.onTrial = true
                s.slots.append(slot)
            }
            return (Array(first..<s.slots.count), old, current.withLockedValue { $0 })
        }
        guard let reserved else { return .refused("an upgrade is already running, or the gateway is shutting down") }
        var failures: [String] = []
        await withTaskGroup(of: String?.self) { group in
            for slot in reserved.new { group.addTask { await self.startSlot(slot) } }
            for await failure in group { if let failure { failures.append(failure) } }
        }
        enum Switch { case done(info: String?), failed(String) }
        let outcome = state.withLockedValue { s -> Switch in
            s.upgrading = false
            if failures.isEmpty, s.shuttingDown { failures.append("the gateway is shutting down") }
            if failures.isEmpty, let lost = reserved.new.first(where: { s.slots[$0].state != .ready }) {
                failures.append("new engine in slot \(lost) is \(s.slots[lost].state.rawValue), not ready")
            }
            guard failures.isEmpty else { return .failed(failures[0]) }
            current.withLockedValue { $0 = candidate }
            for slot in reserved.new { s.slots[slot].onTrial = false }
            return .done(info: reserved.new.compactMap { s.slots[$0].info }.first)
        }
        switch outcome {
        case .failed(let reason):
            retire(reserved.new)
            return .failed(reason)
        case .done(let info):
            if let info { self.info.withLockedValue { $0 = info } }
            retire(reserved.old)
            drainQueue()
            return .switched(from: reserved.from, draining: reserved.old.count)
        }
    }

    /// Takes `slots` out of rotation for good: each finishes what it has, then its stdin is closed (it exits);
    /// one still busy after `drainGrace` is killed. Slots without a process are retired at once.
    private func retire(_ slots: [Int]) {
        var close: [EngineProcess] = []
        var watch: [(Int, Int)] = []
        state.withLockedValue { s in
            for slot in slots {
                s.slots[slot].retiring = true
                s.slots[slot].onTrial = false
                guard s.slots[slot].process != nil else {
                    s.slots[slot].state = .retired
                    continue
                }
                s.slots[slot].state = .draining
                watch.append((slot, s.slots[slot].generation))
                if let process = Self.drainedProcess(&s, slot: slot, generation: s.slots[slot].generation) { close.append(process) }
            }
        }
        for process in close { process.closeInput() }
        for (slot, generation) in watch { jobs.continuation.yield(.drainDeadline(slot: slot, generation: generation)) }
    }

    // MARK: Status

    /// True when at least one engine is ready.
    public var isReady: Bool { state.withLockedValue { s in s.slots.contains { $0.state == .ready } } }

    /// Per-slot status, for `/ready`.
    public var slotStatuses: [EngineSlotStatus] {
        state.withLockedValue { s in
            s.slots.enumerated().filter { $0.element.state != .retired }.map { i, slot in
                EngineSlotStatus(slot: i, pid: slot.process?.pid, state: slot.state.rawValue, inFlight: slot.inFlight, restarts: slot.restarts)
            }
        }
    }

    /// Requests waiting for an engine.
    public var queued: Int { state.withLockedValue { $0.queue.count } }

    /// Sets the pool gauges (queue depth, requests in flight, engines ready) from the current state. Called when
    /// `/metrics` is scraped, so the gauges are exact at every scrape and cost nothing per request.
    package func publishMetrics() {
        let (queued, inFlight, ready) = state.withLockedValue { s in
            (s.queue.count, s.slots.reduce(0) { $0 + $1.inFlight }, s.slots.filter { $0.state == .ready }.count)
        }
        metrics.recordPool(queueDepth: queued, inFlight: inFlight, enginesReady: ready)
    }
}
