#if canImport(Glibc)
import Glibc
#endif
import Foundation
import ForziumJSON
import Testing

/// Runs `threads` client loops for `seconds`, each sending `request` back to back; returns every status seen
/// (0 for a transport failure). Bounded by time and by the client's receive timeout.
private func load(_ gateway: GatewayProcess, threads: Int, seconds: Double,
                  _ request: @escaping @Sendable (TestHTTPClient) throws -> HTTPReply) -> [Background<[Int]>] {
    let client = gateway.client
    let stop = Date().addingTimeInterval(seconds)
    return (0..<threads).map { _ in
        Background {
            var statuses: [Int] = []
            while Date() < stop {
                do { statuses.append(try request(client).status) } catch { statuses.append(0) }
            }
            return statuses
        }
    }
}

private func collect(_ workers: [Background<[Int]>]) throws -> [Int] {
    try workers.flatMap { try $0.value(timeout: 120) }
}

private let smallSum = json(#"{"data":[[1,2],[3,4]]}"#)
/// A sum over a body large enough (≥ 64 KiB) for the gateway to watch its connection while it waits.
private let watchedSum = json(#"{"data":\#(matrixJSON(rows: 200, cols: 200))}"#)

/// A request of a few milliseconds to a few tens (a 120×120 convolution with a 20×20 kernel).
private let mediumConvolution = json(#"{"data":\#(matrixJSON(rows: 120, cols: 120)),"kernel":\#(matrixJSON(rows: 20, cols: 20, seed: 3))}"#)

@Suite("Engine pool resilience over real sockets and engines", .serialized)
struct EnginePoolResilienceTests {
    @Test("deadline attack: 1 ms deadlines on two connections never fail other clients or kill the engine", arguments: engineBinaries)
    func deadlineAttack(engine: String) throws {
        let gateway = try GatewayProcess(engine: engine)
        let before = try gateway.slots()
        let pid = try #require(before.first?.pid)
        // One connection with 1 ms deadlines (mostly refused before reaching the engine), one with deadlines that
        // run out while the engine computes (those get `$/cancelRequest`).
        let instant = load(gateway, threads: 1, seconds: 3) { client in
            try client.request("POST", "/v1/sum", body: smallSum, headers: [("X-Forzium-Timeout-Ms", "1")])
        }
        let onEngine = load(gateway, threads: 1, seconds: 3) { client in
            try client.request("POST", "/v1/conv2d", body: mediumConvolution, headers: [("X-Forzium-Timeout-Ms", String(Int.random(in: 2...12)))])
        }
        let attackers = instant + onEngine
        let normal = load(gateway, threads: 4, seconds: 3) { client in
            try client.request("POST", "/v1/sum", body: smallSum)
        }
        let attacked = try collect(attackers)
        let served = try collect(normal)
        print("deadlineAttack[\(engine)]: normal=\(served.count) attack=\(attacked.count) attack504=\(attacked.filter { $0 == 504 }.count)")
        #expect(served.count > 20, "too few normal requests completed: \(served.count)")
        let failures = served.filter { $0 != 200 }
        #expect(failures.isEmpty, "normal requests failed: \(Dictionary(grouping: failures, by: { $0 }).mapValues(\.count))")
        #expect(attacked.allSatisfy { $0 == 504 || $0 == 200 }, "attack statuses: \(Set(attacked))")
        #expect(attacked.contains(504))
        let metrics = try gateway.client.request("GET", "/metrics").text
        #expect(metrics.contains(#"forzium_requests_abandoned_total{where="engine"}"#), "no request was cancelled on the engine")
        // The engine answered its cancels (or finished first): it was never replaced.
        #expect(try gateway.waitUntil(timeout: 10) { try gateway.slots().first?.inFlight == 0 })
        let after = try gateway.slots()
        #expect(after.first?.pid == pid, "the engine was replaced")
        #expect(after.first?.restarts == 0)
        #expect(!gateway.log.contains("replacing engine"))
        #expect(gateway.stop() == 0)
    }

    @Test("SIGKILL under load: only requests already written to the killed engine fail (502); queued ones succeed")
    func killsUnderLoad() throws {
        let gateway = try GatewayProcess(engine: "forzium-engine-simd", arguments: [
            "--engines", "2", "--engine-concurrency", "1", "--queue-depth", "64", "--breaker-crashes", "100",
        ])
        #expect(try gateway.waitUntil(timeout: 30) { try gateway.slots().allSatisfy { $0.state == "ready" } })
        let workers = load(gateway, threads: 5, seconds: 5) { client in
            try client.request("POST", "/v1/conv2d", body: mediumConvolution)
        }
        var kills = 0
        let killDeadline = Date().addingTimeInterval(3.5)
        while Date() < killDeadline {
            usleep(400_000)
            let slots = try gateway.slots()
            // Kill a ready engine that is working (one request written, others waiting in the queue).
            guard let victim = slots.filter({ $0.state == "ready" && $0.inFlight > 0 }).compactMap(\.pid).randomElement() else { continue }
            if kill(victim, SIGKILL) == 0 { kills += 1 }
        }
        let statuses = try collect(workers)
        let failures = statuses.filter { $0 != 200 }
        print("killsUnderLoad: kills=\(kills) requests=\(statuses.count) failures=\(failures.count)")
        #expect(kills >= 3, "only \(kills) kills happened")
        #expect(statuses.count > kills * 2, "too few requests: \(statuses.count)")
        #expect(failures.allSatisfy { $0 == 502 }, "unexpected statuses: \(Set(failures))")
        // With one request in flight per engine, each kill can fail at most the one request written to it.
        #expect(failures.count <= kills, "\(failures.count) failures for \(kills) kills")
        #expect(try gateway.waitUntil(timeout: 30) { try gateway.slots().allSatisfy { $0.state == "ready" } })
        let reply = try gateway.client.request("POST", "/v1/sum", body: smallSum)
        #expect(reply.status == 200)
        gateway.stop()
    }

    @Test("SIGSTOP: the engine leaves /ready within 2 s, requests go to the other engine, SIGCONT or replacement restores it")
    func stoppedEngine() throws {
        let gateway = try GatewayProcess(engine: "forzium-engine-simd", arguments: ["--engines", "2"])
        #expect(try gateway.waitUntil(timeout: 30) { try gateway.slots().allSatisfy { $0.state == "ready" } })
        let stoppedPID = try #require(try gateway.slots()[0].pid)

        // Part 1: stopped under load, continued before it is replaced.
        let workers = load(gateway, threads: 3, seconds: 4.5) { client in
            try client.request("POST", "/v1/sum", body: smallSum)
        }
        usleep(300_000)
        #expect(kill(stoppedPID, SIGSTOP) == 0)
        let stoppedAt = Date()
        #expect(try gateway.waitUntil(timeout: 5) { try gateway.slots()[0].state != "ready" })
        let detected = Date().timeIntervalSince(stoppedAt)
        print("stoppedEngine: left ready after \(detected) s")
        #expect(detected < 2.5, "the stopped engine stayed ready for \(detected) s")
        let (readyStatus, _) = try gateway.ready()
        #expect(readyStatus == 200, "the other engine keeps the gateway ready")
        // Requests keep succeeding through the other engine meanwhile.
        for _ in 0..<5 { #expect(try gateway.client.request("POST", "/v1/sum", body: smallSum).status == 200) }
        usleep(500_000)
        #expect(kill(stoppedPID, SIGCONT) == 0)
        #expect(try gateway.waitUntil(timeout: 10) { try gateway.slots()[0].state == "ready" })
        #expect(try gateway.slots()[0].pid == stoppedPID, "a continued engine is taken back, not replaced")
        let statuses = try collect(workers)
        // Requests written to the stopped engine finish once it continues: nothing failed.
        #expect(statuses.allSatisfy { $0 == 200 }, "statuses: \(Dictionary(grouping: statuses, by: { $0 }).mapValues(\.count))")

        // Part 2: stopped while idle and never continued: replaced.
        #expect(kill(stoppedPID, SIGSTOP) == 0)
        #expect(try gateway.waitUntil(timeout: 15) {
            let slot = try gateway.slots()[0]
            return slot.state == "ready" && slot.pid != nil && slot.pid != stoppedPID
        }, "the stopped engine was not replaced")
        kill(stoppedPID, SIGCONT)
        #expect(try gateway.client.request("POST", "/v1/sum", body: smallSum).status == 200)
        #expect(gateway.log.contains("replacing engine"))
        gateway.stop()
    }

    @Test("a client that disconnects while queued frees its queue slot at once")
    func disconnectWhileQueued() throws {
        let gateway = try GatewayProcess(engine: "forzium-engine", arguments: ["--engines", "1", "--engine-concurrency", "1", "--queue-depth", "1"])
        let slow = Background { try gateway.client.request("POST", "/v1/conv2d", body: slowConvolutionBody) }
        #expect(try gateway.waitUntil { try gateway.slot0().inFlight == 1 })
        #expect(watchedSum.count >= 64 << 10)
        try gateway.client.sendThenClose("/v1/sum", body: watchedSum)
        usleep(200_000)
        #expect(try gateway.waitUntil(timeout: 2) { try gateway.slot0().queued == 0 }, "the abandoned request kept its queue slot")
        // The engine is still busy with the slow request, and the freed slot takes a new request (no 503).
        #expect(try gateway.slot0().inFlight == 1)
        let next = Background { try gateway.client.request("POST", "/v1/sum", body: smallSum) }
        #expect(try gateway.waitUntil(timeout: 5) { try gateway.slot0().queued == 1 })
        #expect(try slow.value().status == 200)
        #expect(try next.value().status == 200)
        gateway.stop()
    }
}
