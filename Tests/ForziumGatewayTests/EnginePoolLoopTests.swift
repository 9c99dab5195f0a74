import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing
@testable import ForziumGatewayCore

/// One engine per event loop: a request goes to the engine whose pipe is served by the loop it was submitted on (its
/// answer then crosses no thread), unless that engine is `crossLoopPenalty` requests busier than another.
@Suite("Engine pool: engines pinned to event loops")
struct EnginePoolLoopTests {
    @Test func requestsGoToTheEngineOnTheirOwnLoop() async throws {
        var logger = Logger(label: "pool-loop-tests")
        logger.logLevel = .critical
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let loops = Array(group.makeIterator())
        let pool = EnginePool(
            engine: EngineCandidate(path: buildDirectory + "/forzium-engine", kind: "fallback"),
            // No liveness pings during the test: the stopped engines must stay in rotation however slow the machine is.
            configuration: EnginePoolConfiguration(engines: 2, pingTimeout: .seconds(600), idlePingInterval: .seconds(600)),
            metrics: GatewayMetrics(), logger: logger, eventLoopGroup: group)
        try await pool.start()
        let answered = Atomic<Int>(0)
        let failed = Atomic<Int>(0)
        // Stopped engines keep every request in flight until they are continued.
        let pids = pool.slotStatuses.compactMap(\.pid)
        #expect(pids.count == 2)
        for pid in pids { kill(pid, SIGSTOP) }
        /// Submits a small request on `loop`.
        func submit(on loop: any EventLoop) async throws {
            try await loop.submit {
                try pool.submit(method: "sum", params: ByteBuffer(string: #"{"data":[[1,2]]}"#), deadline: .now + .seconds(60)) { result in
                    switch result {
                    case .success: answered.add(1, ordering: .relaxed)
                    case .failure: failed.add(1, ordering: .relaxed)
                    }
                }
            }.get()
        }
        func inFlight() -> [Int] { pool.slotStatuses.sorted { $0.slot < $1.slot }.map(\.inFlight) }

        // Slot i runs on loops[i]: a request from loop 1 goes to slot 1, though slot 0 is as idle.
        try await submit(on: loops[1])
        #expect(inFlight() == [0, 1])
        try await submit(on: loops[0])
        #expect(inFlight() == [1, 1])
        // Busier by less than the penalty: still the loop's own engine.
        try await submit(on: loops[0])
        try await submit(on: loops[0])
        #expect(inFlight() == [3, 1])
        // Up to the other engine's count plus the penalty (a tie goes to the own loop), then the other engine.
        for _ in 0..<3 { try await submit(on: loops[0]) }
        #expect(inFlight() == [6, 1])
        try await submit(on: loops[0])
        #expect(inFlight() == [6, 2])

        for pid in pids { kill(pid, SIGCONT) }
        let deadline = Date().addingTimeInterval(30)
        while answered.load(ordering: .relaxed) + failed.load(ordering: .relaxed) < 8, Date() < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(answered.load(ordering: .relaxed) == 8)
        #expect(failed.load(ordering: .relaxed) == 0)
        await pool.shutdown()
        try await group.shutdownGracefully()
    }

    /// No timer per request: one sweep armed for the earliest deadline in flight. Whatever order requests come in, each
    /// fails with 504 once its own deadline has passed (not before), and a request with a distant deadline stays.
    @Test func eachRequestFailsAtItsOwnDeadline() async throws {
        var logger = Logger(label: "pool-deadline-tests")
        logger.logLevel = .critical
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let pool = EnginePool(
            engine: EngineCandidate(path: buildDirectory + "/forzium-engine", kind: "fallback"),
            // The stopped engine is not replaced for ignoring the cancels of the requests that time out (2 s by default).
            configuration: EnginePoolConfiguration(engines: 1, cancelGrace: .seconds(600), pingTimeout: .seconds(600),
                                                   idlePingInterval: .seconds(600)),
            metrics: GatewayMetrics(), logger: logger, eventLoopGroup: group)
        try await pool.start()
        let pids = pool.slotStatuses.compactMap(\.pid)
        #expect(pids.count == 1)
        for pid in pids { kill(pid, SIGSTOP) }
        let start = ContinuousClock.now
        // (label, deadline after start): the distant one arms the first sweep; earlier ones arm earlier sweeps; the
        // last is later than the armed sweep and is found by a sweep that runs for another request.
        let plan: [(String, Duration)] = [("distant", .seconds(60)), ("b", .milliseconds(400)), ("a", .milliseconds(150)),
                                          ("c", .milliseconds(800))]
        let outcomes = Mutex<[(String, Duration, Bool)]>([])
        for (label, after) in plan {
            try pool.submit(method: "sum", params: ByteBuffer(string: #"{"data":[[1,2]]}"#), deadline: start + after) { result in
                var timedOut = false
                if case .failure(let error) = result, let gateway = error as? GatewayError, case .deadline = gateway.code { timedOut = true }
                outcomes.withLock { $0.append((label, start.duration(to: .now), timedOut)) }
            }
        }
        // Only the deadline failures are looked at until the engine runs again.
        func timedOut() -> [(String, Duration, Bool)] { outcomes.withLock { $0.filter { $0.2 } } }
        let waitUntil = Date().addingTimeInterval(30)
        while timedOut().count < 3, Date() < waitUntil { try await Task.sleep(for: .milliseconds(20)) }
        let failed = timedOut()
        #expect(failed.map(\.0) == ["a", "b", "c"])
        for (label, at, _) in failed {
            let due = plan.first { $0.0 == label }!.1
            #expect(at >= due, "\(label) failed at \(at), before its deadline \(due)")
        }
        // The distant request did not time out, and is answered once the engine runs again.
        for pid in pids { kill(pid, SIGCONT) }
        func distant() -> (String, Duration, Bool)? { outcomes.withLock { $0.first { $0.0 == "distant" } } }
        while distant() == nil, Date() < waitUntil { try await Task.sleep(for: .milliseconds(20)) }
        #expect(distant()?.2 == false)
        await pool.shutdown()
        try await group.shutdownGracefully()
    }
}
