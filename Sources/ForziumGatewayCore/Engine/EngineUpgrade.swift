#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle
import UnixSignals

/// Which engines the gateway may run, in order of preference, with the arguments each gets. Used at start-up and
/// again on every SIGHUP.
package struct EngineSelection: Sendable {
    /// `auto`, `simd`, `fallback`, or a path (`--engine`).
    package var mode: String
    /// `--engine-arg` values.
    package var arguments: [String]
    /// `--engine-concurrency`: our engines get `--max-in-flight` above it.
    package var engineConcurrency: Int
    package var environment: [String: String]

    package init(mode: String, arguments: [String], engineConcurrency: Int, environment: [String: String]) {
        self.mode = mode
        self.arguments = arguments
        self.engineConcurrency = engineConcurrency
        self.environment = environment
    }

    /// Engines found now (next to the gateway, then on PATH), best first.
    package func candidates(logger: Logger) -> [EngineCandidate] {
        // Our engines stop reading stdin once --max-in-flight requests are queued or computing, and would then miss
        // cancels and pings: give them room for everything the pool may send, plus the control lines. (An executable
        // of another name may be another implementation, so it gets only the arguments it was given.)
        var roomy = arguments.contains(where: { $0.hasPrefix("--max-in-flight") })
            ? arguments : arguments + ["--max-in-flight", String(engineConcurrency + 2)]
        // Their log lines as JSON objects, re-emitted as structured lines of the gateway's log (EngineLogRelay).
        if !arguments.contains(where: { $0.hasPrefix("--log-format") }) { roomy += ["--log-format", "json"] }
        let ours: Set<Substring> = [Substring(EngineDiscovery.simdName), Substring(EngineDiscovery.fallbackName)]
        return EngineDiscovery.candidates(mode: mode, environment: environment, logger: logger).map { candidate in
            let name = candidate.path.split(separator: "/").last ?? ""
            return EngineCandidate(path: candidate.path, kind: candidate.kind, arguments: ours.contains(name) ? roomy : arguments)
        }
    }
}

/// Which file an executable path names now: a rebuilt or replaced binary at the same path is another file.
package struct ExecutableIdentity: Equatable, Sendable {
    var device: UInt64
    var inode: UInt64
    var size: Int64
    var modified: Int64
    var modifiedNanoseconds: Int64

    package init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        modified = Int64(info.st_mtim.tv_sec)
        modifiedNanoseconds = Int64(info.st_mtim.tv_nsec)
    }
}

/// Hot engine upgrade: on SIGHUP the gateway looks for engines again and, when the best one found is not the one
/// running (another kind or path, or the same path holding another file), moves the pool to it without a restart.
///
/// Candidates are taken in order of preference. The first that is the running engine, unchanged, ends the search
/// (nothing to do). The first that is new is probed (started, `engine.info` handshake, stopped); if the probe fails,
/// the search ends too and the running engines go on serving — a broken new binary never replaces a working one, and
/// never makes the gateway fall back to a worse engine. A probe that passes starts the upgrade: `EnginePool.upgrade`.
package final class EngineUpgrader: Sendable {
    private let pool: EnginePool
    private let selection: EngineSelection
    private let logger: Logger
    private let group: any EventLoopGroup
    private let handshakeTimeout: Duration
    /// The running engine's file, as it was when the pool started it.
    private let running: NIOLockedValueBox<ExecutableIdentity?>
    private let busy = NIOLockedValueBox(false)

    package init(pool: EnginePool, selection: EngineSelection, logger: Logger, group: any EventLoopGroup,
                 handshakeTimeout: Duration = .seconds(10)) {
        self.pool = pool
        self.selection = selection
        self.logger = logger
        self.group = group
        self.handshakeTimeout = handshakeTimeout
        self.running = NIOLockedValueBox(ExecutableIdentity(path: pool.engine.path))
    }

    /// What one reload did.
    package enum Outcome: Equatable, Sendable {
        case unchanged
        case upgraded(from: String, to: String)
        case kept(reason: String)
    }

    /// Looks for engines and upgrades the pool when a better or changed one is found. Safe to call concurrently:
    /// a reload while another runs is skipped.
    @discardableResult
    package func reload() async -> Outcome {
        let first = busy.withLockedValue { busy -> Bool in
            defer { busy = true }
            return !busy
        }
        guard first else {
            logger.warning("engine reload requested while one is running; ignored")
            return .kept(reason: "a reload is already running")
        }
        defer { busy.withLockedValue { $0 = false } }
        let current = pool.engine
        logger.notice("reloading engines: looking for engines", metadata: ["running": "\(current.kind) at \(current.path)"])
        for candidate in selection.candidates(logger: logger) {
            let identity = ExecutableIdentity(path: candidate.path)
            // The running engine, unchanged and serving: nothing to do. (Not serving — every slot crash-looping, say — it
            // is probed and started afresh: what was wrong may have been fixed outside the file.)
            if candidate.path == current.path, identity == running.withLockedValue({ $0 }), pool.isReady {
                logger.notice("engine unchanged; nothing to upgrade", metadata: ["engine": "\(current.kind)", "path": "\(current.path)"])
                return .unchanged
            }
            let chosen: EngineCandidate
            do {
                chosen = try await EngineHandshake.probeChoosingKind(candidate, logger: logger, timeout: handshakeTimeout, group: group)
            } catch {
                logger.error("engine upgrade abandoned: the new engine failed its engine.info handshake; the running engines keep serving",
                             metadata: ["new_engine": "\(candidate.kind) at \(candidate.path)", "error": "\(error)",
                                        "running": "\(current.kind) at \(current.path)"])
                return .kept(reason: "\(error)")
            }
            logger.notice("engine upgrade: starting new engines",
                          metadata: ["from": "\(current.kind) at \(current.path)", "to": "\(chosen.kind) at \(chosen.path)",
                                     "engines": "\(pool.configuration.engines)"])
            switch await pool.upgrade(to: chosen) {
            case .switched(let from, let draining):
                running.withLockedValue { $0 = identity }
                logger.notice("engine upgrade: switched; new requests go to the new engines, old ones drain",
                              metadata: ["from": "\(from.kind)", "to": "\(chosen.kind)", "to_path": "\(chosen.path)", "draining": "\(draining)"])
                return .upgraded(from: from.kind, to: chosen.kind)
            case .failed(let reason):
                logger.error("engine upgrade abandoned: a new engine failed to start; the running engines keep serving",
                             metadata: ["new_engine": "\(chosen.kind) at \(chosen.path)", "error": "\(reason)"])
                return .kept(reason: reason)
            case .refused(let reason):
                logger.warning("engine upgrade not started: \(reason)")
                return .kept(reason: reason)
            }
        }
        logger.error("engine reload: no engine found; the running engines keep serving",
                     metadata: ["running": "\(current.kind) at \(current.path)"])
        return .kept(reason: "no engine found")
    }
}

/// Runs `EngineUpgrader.reload()` on every SIGHUP until graceful shutdown.
package struct EngineReloadService: Service {
    package let upgrader: EngineUpgrader

    package init(upgrader: EngineUpgrader) { self.upgrader = upgrader }

    /// The services of hot engine upgrades for a gateway: SIGHUP always, the watch when `watchMilliseconds` > 0.
    package static func services(pool: EnginePool, selection: EngineSelection, watchMilliseconds: Int, logger: Logger,
                                 group: any EventLoopGroup) -> [ServiceGroupConfiguration.ServiceConfiguration] {
        let upgrader = EngineUpgrader(pool: pool, selection: selection, logger: logger, group: group)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: EngineReloadService(upgrader: upgrader))]
        if watchMilliseconds > 0 {
            services.append(.init(service: EngineWatchService(upgrader: upgrader, selection: selection,
                                                              interval: .milliseconds(watchMilliseconds), logger: logger)))
        }
        return services
    }

    package func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        for await _ in hangups.cancelOnGracefulShutdown() {
            await upgrader.reload()
        }
    }
}

/// `--watch-engines SECONDS`: looks at the engine executables discovery finds (their paths and files) every
/// `interval`; when they differ from the last look and then stay the same for one more interval (a file being copied
/// in is left alone until it stops changing), it runs the same reload as SIGHUP. Any change of a file counts, so even
/// a `touch` of the running engine's executable replaces its processes with fresh ones (gracefully, as an upgrade).
package struct EngineWatchService: Service {
    package let upgrader: EngineUpgrader
    package let selection: EngineSelection
    package let interval: Duration
    package let logger: Logger

    package init(upgrader: EngineUpgrader, selection: EngineSelection, interval: Duration, logger: Logger) {
        self.upgrader = upgrader
        self.selection = selection
        self.interval = interval
        self.logger = logger
    }

    /// Every candidate's path and file identity, in order of preference.
    private func look() -> [String] {
        // Discovery warnings (no SIMD engine found …) would repeat on every look: a silent logger here.
        let quiet = Logger(label: logger.label, factory: { _ in SwiftLogNoOpLogHandler() })
        return selection.candidates(logger: quiet).map { candidate in
            let id = ExecutableIdentity(path: candidate.path)
            return "\(candidate.path) \(id.map { "\($0.device):\($0.inode):\($0.size):\($0.modified).\($0.modifiedNanoseconds)" } ?? "-")"
        }
    }

    package func run() async throws {
        try await cancelWhenGracefulShutdown {
            var seen = look()
            var changed: [String]?
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                let now = look()
                if let pending = changed {
                    if now == pending {
                        logger.notice("engine executables changed; reloading engines")
                        await upgrader.reload()
                        seen = now
                        changed = nil
                    } else {
                        changed = now == seen ? nil : now
                    }
                } else if now != seen {
                    changed = now
                }
            }
        }
    }
}
