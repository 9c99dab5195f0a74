import Dispatch
import Foundation
import ForziumJSON
import ForziumRPC
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle

/// Limits and policies of the pool.
public struct EnginePoolConfiguration: Sendable {
    /// Engine processes kept running.
    public var engines: Int
    /// Requests in flight on one engine's pipe at once.
    public var perEngineConcurrency: Int
    /// Requests allowed to wait for an engine.
    public var queueDepth: Int
    /// First restart delay after a crash; doubles per crash up to `maxRestartDelay`.
    public var minRestartDelay: Duration
    public var maxRestartDelay: Duration
    /// Crashes within `breakerWindow` that open a slot's breaker.
    public var breakerCrashes: Int
    public var breakerWindow: Duration
    /// How long an open breaker waits before one more attempt.
    public var breakerCooldown: Duration
    /// Deadline of the `engine.info` handshake.
    public var handshakeTimeout: Duration
    /// How long shutdown waits for engines to exit after their stdin closes.
    public var shutdownGrace: Duration

    public init(
        engines: Int = 1, perEngineConcurrency: Int = 16, queueDepth: Int = 64,
        minRestartDelay: Duration = .milliseconds(100), maxRestartDelay: Duration = .seconds(5),
        breakerCrashes: Int = 5, breakerWindow: Duration = .seconds(30), breakerCooldown: Duration = .seconds(30),
        handshakeTimeout: Duration = .seconds(10), shutdownGrace: Duration = .seconds(5)
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
/// Requests go to the ready engine with the fewest in flight (up to `perEngineConcurrency` each); when every
/// engine is full they wait in a FIFO of at most `queueDepth` (beyond: 503 + Retry-After). A crashed engine fails
/// its in-flight requests with 502 and is restarted with exponential backoff; `breakerCrashes` crashes within
/// `breakerWindow` open the slot's breaker (no restarts until `breakerCooldown` passes). A request past its
/// deadline gets 504 and its engine is replaced. Runs as a `Service`: on graceful shutdown it stops taking work,
/// waits for in-flight requests, closes every engine's stdin, waits for them to exit, then kills stragglers.
public final class EnginePool: Service, @unchecked Sendable {
    private enum SlotState: String { case starting, ready, backoff, broken, stopped }

    private struct Slot {
        var process: EngineProcess?
        var generation = 0
        var state: SlotState = .starting
        var inFlight = 0
        var crashTimes: [ContinuousClock.Instant] = []
        var restartDelay: Duration
        var restarts = 0
    }

    private struct Waiter {
        var id: Int
        var deadline: ContinuousClock.Instant
        var continuation: CheckedContinuation<EngineProcess, any Error>
    }

    private struct State {
        var slots: [Slot]
        var waiters: [Waiter] = []
        var nextID = 1
        var shuttingDown = false
    }

    /// The engine every slot runs.
    public let engine: EngineCandidate
    /// What the handshake reported (`engine.info` result), compact JSON.
    public var engineInfo: String { info.withLockedValue { $0 } }
    private let info = NIOLockedValueBox("{}")
    public let configuration: EnginePoolConfiguration
    private let logger: Logger
    private let metrics: GatewayMetrics
    private let state: NIOLockedValueBox<State>

    public init(engine: EngineCandidate, configuration: EnginePoolConfiguration, metrics: GatewayMetrics, logger: Logger) {
        self.engine = engine
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
        self.state = NIOLockedValueBox(State(slots: Array(
            repeating: Slot(restartDelay: configuration.minRestartDelay), count: configuration.engines)))
    }

    // MARK: Start and stop

    /// Starts every engine and waits for their handshakes. Throws when none could start.
    public func start() async throws {
        startDeadlineSweeper()
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
        let generation = state.withLockedValue { s -> Int in
            s.slots[slot].generation += 1
            s.slots[slot].state = .starting
            return s.slots[slot].generation
        }
        let process: EngineProcess
        do {
            process = try EngineProcess(
                executable: engine.path, arguments: engine.arguments, slot: slot, generation: generation, logger: logger,
                onExit: { [weak self] process, exit in self?.engineExited(process, exit) })
        } catch {
            logger.error("engine start failed", metadata: ["slot": "\(slot)", "error": "\(error)"])
            // Not a process exit: account for it like a crash so the breaker sees spawn loops.
            recordCrashAndScheduleRestart(slot: slot, generation: generation, reason: "\(error)")
            return "\(error)"
        }
        state.withLockedValue { $0.slots[slot].process = process }
        do {
            let info = try await EngineHandshake.run(process: process, id: 0, timeout: configuration.handshakeTimeout)
            try engine.check(info: info)
            self.info.withLockedValue { $0 = CompactJSON.string(info) }
        } catch {
            logger.error("engine handshake failed", metadata: ["slot": "\(slot)", "pid": "\(process.pid)", "error": "\(error)"])
            process.terminate(reason: "handshake failed", expected: false)
            return "\(error)"
        }
        let ready = state.withLockedValue { s -> Bool in
            guard s.slots[slot].generation == generation, !s.shuttingDown, !process.isClosed else { return false }
            s.slots[slot].state = .ready
            s.slots[slot].inFlight = 0
            return true
        }
        guard ready else { return "engine exited during start" }
        logger.info("engine ready", metadata: ["slot": "\(slot)", "pid": "\(process.pid)", "engine": "\(engine.kind)"])
        dispatchWaiters()
        publishMetrics()
        return nil
    }

    public func run() async throws {
        try? await gracefulShutdown()
        await shutdown()
    }

    /// Stops taking work, waits for in-flight requests, closes engines' stdin, waits, then kills what is left.
    public func shutdown() async {
        let waiters = state.withLockedValue { s -> [Waiter] in
            s.shuttingDown = true
            let w = s.waiters
            s.waiters = []
            return w
        }
        for w in waiters { w.continuation.resume(throwing: GatewayError(.unavailable(retryAfterSeconds: 1), "the gateway is shutting down")) }
        let clock = ContinuousClock()
        let deadline = clock.now + configuration.shutdownGrace
        while clock.now < deadline, state.withLockedValue({ $0.slots.contains { $0.inFlight > 0 && $0.process != nil } }) {
            try? await Task.sleep(for: .milliseconds(10))
        }
        let processes = state.withLockedValue { s in s.slots.compactMap { $0.process } }
        for p in processes { p.closeInput() }
        let exitDeadline = clock.now + configuration.shutdownGrace
        while clock.now < exitDeadline, processes.contains(where: { !$0.isClosed }) {
            try? await Task.sleep(for: .milliseconds(10))
        }
        for p in processes where !p.isClosed { p.terminate(reason: "shutdown", expected: true) }
        logger.info("engines stopped")
    }

    // MARK: Requests

    /// Sends `method` with `params` (raw JSON text of an object, spliced as-is; CR/LF become spaces) and returns
    /// the engine's response. Throws `GatewayError` for 502/503/504.
    package func call(method: String, params: ByteBuffer, deadline: ContinuousClock.Instant) async throws -> EngineResponse {
        let process = try await acquire(deadline: deadline)
        defer { release(process) }
        let id = nextRequestID()
        let parts = Self.requestParts(id: id, method: method, params: params)
        return try await withCheckedThrowingContinuation { continuation in
            process.send(id: id, parts: parts, deadline: deadline, sink: .single(continuation))
        }
    }

    /// A streamed request in progress: its events, and a way to abandon it (client gone).
    package struct EngineStream: Sendable {
        package var events: AsyncThrowingStream<EngineStreamEvent, any Error>
        /// Stops waiting for the engine: the request is dropped from the pending table and its slot freed.
        package var cancel: @Sendable () -> Void
    }

    /// Like `call`, for methods that send `stream.rows` notifications before their final response.
    package func stream(method: String, params: ByteBuffer, deadline: ContinuousClock.Instant) async throws -> EngineStream {
        let process = try await acquire(deadline: deadline)
        let id = nextRequestID()
        let parts = Self.requestParts(id: id, method: method, params: params)
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: EngineStreamEvent.self, throwing: (any Error).self)
        continuation.onTermination = { [weak self] termination in
            if case .cancelled = termination {
                // The client went away: stop waiting; the engine's later lines for this id are dropped.
                process.cancel(id: id, error: GatewayError(.engineFailed, "client disconnected"))
            }
            self?.release(process)
        }
        process.send(id: id, parts: parts, deadline: deadline, sink: .stream(continuation))
        return EngineStream(events: stream, cancel: {
            process.cancel(id: id, error: GatewayError(.engineFailed, "client disconnected"))
        })
    }

    /// Every 10 ms: fails requests past their deadline with 504 (replacing the engines that ran them) and drops
    /// queued requests past theirs. One sweeper instead of a timer per request.
    private func startDeadlineSweeper() {
        Task.detached { [weak self] in
            while true {
                try? await Task.sleep(for: .milliseconds(10))
                guard let self, !self.state.withLockedValue({ $0.shuttingDown }) else { return }
                self.sweepDeadlines(now: .now)
            }
        }
    }

    private func sweepDeadlines(now: ContinuousClock.Instant) {
        let (processes, expiredWaiters) = state.withLockedValue { s -> ([EngineProcess], [Waiter]) in
            var expired: [Waiter] = []
            s.waiters.removeAll { waiter in
                if waiter.deadline <= now { expired.append(waiter); return true }
                return false
            }
            return (s.slots.compactMap(\.process), expired)
        }
        for waiter in expiredWaiters {
            waiter.continuation.resume(throwing: GatewayError(.deadline, "the request waited for an engine past its deadline"))
        }
        for process in processes where process.expire(now: now) > 0 {
            logger.warning("request past its deadline; replacing its engine", metadata: ["pid": "\(process.pid)"])
            process.terminate(reason: "the engine was replaced after another request's deadline", expected: true)
        }
        // Gauges are sampled here (100 Hz) rather than written on every request.
        publishMetrics()
    }

    private func nextRequestID() -> Int {
        state.withLockedValue { s in
            let id = s.nextID
            s.nextID &+= 1
            if s.nextID <= 0 { s.nextID = 1 }
            return id
        }
    }

    /// The request line as parts: the envelope head (`RPCEncoder.requestHead`), the params as they arrived (a JSON
    /// value without raw CR/LF), and the tail; a body holding CR or LF (whitespace between tokens) is copied once with
    /// those turned into spaces.
    package static func requestParts(id: Int, method: String, params: ByteBuffer) -> [ByteBuffer] {
        var head: [UInt8] = []
        RPCEncoder.requestHead(id: id, method: method, into: &head)
        let hasBreaks = params.withUnsafeReadableBytes { raw in
            raw.count > 0 && (memchr(raw.baseAddress!, 0x0A, raw.count) != nil || memchr(raw.baseAddress!, 0x0D, raw.count) != nil)
        }
        guard hasBreaks else { return [ByteBuffer(bytes: head), params, ByteBuffer(bytes: RPCEncoder.requestTail)] }
        var flattened = params
        flattened.withUnsafeMutableReadableBytes { raw in
            for index in raw.indices where raw[index] == 0x0A || raw[index] == 0x0D { raw[index] = 0x20 }
        }
        return [ByteBuffer(bytes: head), flattened, ByteBuffer(bytes: RPCEncoder.requestTail)]
    }

    private func acquire(deadline: ContinuousClock.Instant) async throws -> EngineProcess {
        enum Decision { case engine(EngineProcess), wait(Int), fail(GatewayError) }
        let decision = state.withLockedValue { s -> Decision in
            if s.shuttingDown { return .fail(GatewayError(.unavailable(retryAfterSeconds: 1), "the gateway is shutting down")) }
            if let process = Self.pickLeastBusy(&s, limit: configuration.perEngineConcurrency) { return .engine(process) }
            if s.slots.allSatisfy({ $0.state == .broken || $0.state == .stopped }) {
                return .fail(GatewayError(.unavailable(retryAfterSeconds: Int(configuration.breakerCooldown.components.seconds)),
                                          "no engine is available (crash-looping engines are held by the breaker)"))
            }
            if s.waiters.count >= configuration.queueDepth {
                return .fail(GatewayError(.unavailable(retryAfterSeconds: 1), "the request queue is full; retry later"))
            }
            let id = s.nextID
            s.nextID &+= 1
            return .wait(id)
        }
        switch decision {
        case .engine(let p):
            return p
        case .fail(let e): throw e
        case .wait(let waiterID):
            let process = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<EngineProcess, any Error>) in
                let immediate = state.withLockedValue { s -> EngineProcess? in
                    // An engine may have freed up in between.
                    if let p = Self.pickLeastBusy(&s, limit: configuration.perEngineConcurrency) { return p }
                    s.waiters.append(Waiter(id: waiterID, deadline: deadline, continuation: continuation))
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
            return process
        }
    }

    private static func pickLeastBusy(_ s: inout State, limit: Int) -> EngineProcess? {
        var best: Int?
        for i in s.slots.indices where s.slots[i].state == .ready && s.slots[i].inFlight < limit && s.slots[i].process != nil {
            if best == nil || s.slots[i].inFlight < s.slots[best!].inFlight { best = i }
        }
        guard let b = best else { return nil }
        s.slots[b].inFlight += 1
        return s.slots[b].process
    }

    private func release(_ process: EngineProcess) {
        state.withLockedValue { s in
            if s.slots[process.slot].generation == process.generation, s.slots[process.slot].inFlight > 0 {
                s.slots[process.slot].inFlight -= 1
            }
        }
        dispatchWaiters()
    }

    private func dispatchWaiters() {
        var handoffs: [(Waiter, EngineProcess)] = []
        var failures: [Waiter] = []
        state.withLockedValue { s in
            while !s.waiters.isEmpty, let p = Self.pickLeastBusy(&s, limit: configuration.perEngineConcurrency) {
                handoffs.append((s.waiters.removeFirst(), p))
            }
            if !s.waiters.isEmpty, s.slots.allSatisfy({ $0.state == .broken || $0.state == .stopped }) {
                failures = s.waiters
                s.waiters = []
            }
        }
        for (w, p) in handoffs { w.continuation.resume(returning: p) }
        for w in failures { w.continuation.resume(throwing: GatewayError(.unavailable(retryAfterSeconds: 5), "no engine is available")) }
    }

    // MARK: Crashes and restarts

    private func engineExited(_ process: EngineProcess, _ exit: EngineProcess.Exit) {
        let current = state.withLockedValue { s -> Bool in
            guard s.slots[process.slot].generation == process.generation else { return false }
            s.slots[process.slot].process = nil
            s.slots[process.slot].inFlight = 0
            if s.shuttingDown { s.slots[process.slot].state = .stopped }
            return !s.shuttingDown
        }
        guard current else { return }
        if exit.expected {
            logger.warning("engine replaced", metadata: ["slot": "\(process.slot)", "pid": "\(process.pid)", "status": "\(exit.description)"])
            metrics.recordEngineRestart(reason: "replaced")
            state.withLockedValue { $0.slots[process.slot].restarts += 1 }
            scheduleRestart(slot: process.slot, after: .zero)
        } else {
            logger.error("engine crashed", metadata: ["slot": "\(process.slot)", "pid": "\(process.pid)", "status": "\(exit.description)"])
            recordCrashAndScheduleRestart(slot: process.slot, generation: process.generation, reason: exit.description)
        }
    }

    private func recordCrashAndScheduleRestart(slot: Int, generation: Int, reason: String) {
        let now = ContinuousClock.now
        enum Next { case restart(Duration), breaker, none }
        let next = state.withLockedValue { s -> Next in
            guard s.slots[slot].generation == generation, !s.shuttingDown else { return .none }
            s.slots[slot].process = nil
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
        case .none: return
        case .restart(let delay):
            metrics.recordEngineRestart(reason: "crash")
            logger.warning("restarting engine", metadata: ["slot": "\(slot)", "delay": "\(delay)", "reason": "\(reason)"])
            scheduleRestart(slot: slot, after: delay)
        case .breaker:
            logger.error("engine breaker open: too many crashes; not restarting for now",
                         metadata: ["slot": "\(slot)", "crashes": "\(configuration.breakerCrashes)", "window": "\(configuration.breakerWindow)"])
            dispatchWaiters()
            let cooldown = configuration.breakerCooldown
            Task.detached { [weak self] in
                try? await Task.sleep(for: cooldown)
                guard let self else { return }
                let retry = self.state.withLockedValue { s -> Bool in
                    guard s.slots[slot].state == .broken, !s.shuttingDown else { return false }
                    s.slots[slot].crashTimes = []
                    return true
                }
                if retry { _ = await self.startSlot(slot) }
            }
        }
        publishMetrics()
    }

    private func scheduleRestart(slot: Int, after delay: Duration) {
        Task.detached { [weak self] in
            if delay > .zero { try? await Task.sleep(for: delay) }
            guard let self, !self.state.withLockedValue({ $0.shuttingDown }) else { return }
            _ = await self.startSlot(slot)
        }
    }

    // MARK: Status

    /// True when at least one engine is ready.
    public var isReady: Bool { state.withLockedValue { s in s.slots.contains { $0.state == .ready } } }

    /// Per-slot status, for `/ready`.
    public var slotStatuses: [EngineSlotStatus] {
        state.withLockedValue { s in
            s.slots.enumerated().map { i, slot in
                EngineSlotStatus(slot: i, pid: slot.process?.pid, state: slot.state.rawValue, inFlight: slot.inFlight, restarts: slot.restarts)
            }
        }
    }

    /// Requests waiting for an engine.
    public var queued: Int { state.withLockedValue { $0.waiters.count } }

    private func publishMetrics() {
        let (queued, inFlight, ready) = state.withLockedValue { s in
            (s.waiters.count, s.slots.reduce(0) { $0 + $1.inFlight }, s.slots.filter { $0.state == .ready }.count)
        }
        metrics.recordPool(queueDepth: queued, inFlight: inFlight, enginesReady: ready)
    }
}
