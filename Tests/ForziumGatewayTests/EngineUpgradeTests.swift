#if canImport(Glibc)
import Glibc
#endif
import Foundation
import ForziumJSON
import Testing

/// A directory holding a copy of the gateway with only the engines a test puts beside it (hard links when the
/// filesystem allows, so nothing large is copied). Removed by `remove()`.
struct InstallDirectory {
    let path: String

    init() throws {
        // Beside the build products: same filesystem, so `link` works.
        let base = (buildDirectory as NSString).deletingLastPathComponent
        path = base + "/test-install-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try add("forzium-gateway")
    }

    /// Puts the built `name` into the directory as `as` (atomically: written beside, then renamed over).
    func add(_ name: String, as target: String? = nil) throws {
        let staging = path + "/.staging-\(name)"
        try? FileManager.default.removeItem(atPath: staging)
        if link(buildDirectory + "/" + name, staging) != 0 {
            try FileManager.default.copyItem(atPath: buildDirectory + "/" + name, toPath: staging)
        }
        guard rename(staging, path + "/" + (target ?? name)) == 0 else { throw HTTPClientError(description: "rename failed: \(errno)") }
    }

    /// Writes an executable script called `name` (atomically).
    func addScript(_ name: String, _ text: String) throws {
        let staging = path + "/.staging-\(name)"
        try text.write(toFile: staging, atomically: false, encoding: .utf8)
        chmod(staging, 0o755)
        guard rename(staging, path + "/" + name) == 0 else { throw HTTPClientError(description: "rename failed: \(errno)") }
    }

    var gateway: String { path + "/forzium-gateway" }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// What `/ready` says about the engines.
private func readyEngine(_ gateway: GatewayProcess) throws -> (kind: String, pids: [Int32], states: [String]) {
    let (_, body) = try gateway.ready()
    guard case .string(let kind)? = body["engine"] else { throw HTTPClientError(description: "no engine in /ready") }
    let slots = try gateway.slots()
    return (kind, slots.compactMap(\.pid), slots.map(\.state))
}

@Suite("Hot engine upgrade on SIGHUP", .serialized)
struct EngineUpgradeTests {
    /// A gateway with only `forzium-engine` beside it, under load: a broken `forzium-engine-simd` appears and SIGHUP
    /// changes nothing; the real one replaces it and SIGHUP moves the pool to it. No request fails throughout, later
    /// responses say `simd`, and the old engines exit once they have answered what they had.
    @Test func sighupMovesToTheSIMDEngineUnderLoadAndABrokenOneChangesNothing() throws {
        let install = try InstallDirectory()
        defer { install.remove() }
        try install.add("forzium-engine")
        // PATH without the build directory: the gateway finds only what is in its own directory.
        let gateway = try GatewayProcess(engine: nil, arguments: ["--engines", "2"],
                                         environment: ["PATH": "/usr/bin:/bin"], executable: install.gateway)
        defer { gateway.stop() }
        let before = try readyEngine(gateway)
        #expect(before.kind == "fallback")
        #expect(before.pids.count == 2)

        let load = LoadDriver(port: gateway.port, threads: 4)
        defer { load.stop() }
        // Beside the small requests, larger ones keep the old engines busy when the switch comes: they must finish
        // on the engine they started on.
        let matrix = matrixJSON(rows: 96, cols: 96)
        let heavy = LoadDriver(port: gateway.port, threads: 2, path: "/v1/matmul",
                               body: json(#"{"data":\#(matrix),"matrix_b":\#(matrix)}"#))
        defer { heavy.stop() }
        #expect(load.waitForMore(50))
        #expect(heavy.waitForMore(4))

        // 1. A broken new binary: it answers the handshake with garbage. The old engines go on serving.
        try install.addScript("forzium-engine-simd", "#!/bin/sh\nread line\necho 'this is not JSON-RPC'\nsleep 5\n")
        kill(gateway.process.processIdentifier, SIGHUP)
        #expect(gateway.waitUntil(timeout: 30) { gateway.log.contains("engine upgrade abandoned") }, "\(gateway.log)")
        #expect(load.waitForMore(50))
        let kept = try readyEngine(gateway)
        #expect(kept.kind == "fallback")
        #expect(Set(kept.pids) == Set(before.pids), "the old engines must be untouched")

        // 2. The real SIMD engine replaces it (renamed over, as an install would): SIGHUP switches.
        try install.add("forzium-engine-simd")
        kill(gateway.process.processIdentifier, SIGHUP)
        var switched = false
        _ = try gateway.waitUntil(timeout: 60) {
            let now = try readyEngine(gateway)
            switched = now.kind == "simd" && now.states.allSatisfy { $0 == "ready" } && Set(now.pids).isDisjoint(with: before.pids)
            return switched
        }
        #expect(switched, "\(gateway.log)")
        let switchedAt = Date()
        #expect(load.waitForMore(200))
        load.stop()
        heavy.stop()

        let results = load.results
        #expect(load.failures.count == 0, "\(load.failureSummary())")
        #expect(heavy.failures.count == 0, "\(heavy.failureSummary())")
        #expect(heavy.results.contains { $0.engine == "simd" } && heavy.results.contains { $0.engine == "fallback" })
        // Old engines were closed after answering, not killed.
        #expect(!gateway.log.contains("killing it"))
        let later = results.filter { $0.started > switchedAt }
        #expect(!later.isEmpty)
        #expect(later.allSatisfy { $0.engine == "simd" }, "responses after the switch must come from the SIMD engine")
        #expect(results.contains { $0.engine == "fallback" })
        // The old engines drained and exited; the log tells the story.
        #expect(gateway.waitUntil(timeout: 30) { before.pids.allSatisfy { kill($0, 0) != 0 } })
        let log = gateway.log
        #expect(log.contains("engine upgrade: switched"))
        #expect(log.contains("old engine stopped"))
        #expect(log.contains("failed its engine.info handshake"))
        // The same binary again: nothing to do.
        kill(gateway.process.processIdentifier, SIGHUP)
        #expect(gateway.waitUntil(timeout: 30) { gateway.log.contains("engine unchanged; nothing to upgrade") })
        #expect(try object(try gateway.client.request("GET", "/"))["engine"] == .string("simd"))
    }

    /// `--watch-engines`: no signal at all — the SIMD engine appearing beside the gateway is enough.
    @Test func aWatchedEngineFolderUpgradesWithoutASignal() throws {
        let install = try InstallDirectory()
        defer { install.remove() }
        try install.add("forzium-engine")
        let gateway = try GatewayProcess(engine: nil, arguments: ["--watch-engines", "0.2"],
                                         environment: ["PATH": "/usr/bin:/bin"], executable: install.gateway)
        defer { gateway.stop() }
        #expect(try readyEngine(gateway).kind == "fallback")
        let load = LoadDriver(port: gateway.port, threads: 2)
        defer { load.stop() }
        #expect(load.waitForMore(20))
        try install.add("forzium-engine-simd")
        #expect(try gateway.waitUntil(timeout: 30) { try readyEngine(gateway).kind == "simd" }, "\(gateway.log)")
        #expect(load.waitForMore(20))
        load.stop()
        #expect(load.failures.count == 0, "\(load.failureSummary())")
        #expect(gateway.log.contains("engine executables changed; reloading engines"))
    }
}
