#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import CForziumCPU
import ForziumLogging
import ForziumRPC
import ForziumSchemaBundle

/// `forzium-gateway`: the HTTP gateway in front of a pool of engine processes.
public struct GatewayCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "forzium-gateway",
        abstract: "HTTP gateway mapping REST routes onto Forzium engine processes (JSON-RPC over stdio).",
        discussion: """
            Binds 127.0.0.1:8000 by default. Engines are found next to this executable, then on PATH \
            (forzium-engine-simd preferred, forzium-engine as fallback); --engine or FORZIUM_ENGINE overrides. \
            API keys: --api-keys or FORZIUM_API_KEYS (comma-separated). Logs go to stderr. SIGHUP re-discovers engines \
            and moves to a new or changed one without dropping requests.

            """ + EnvironmentOptions(GatewayCommand()).helpTable,
        version: ForziumVersion.string)

    @Option(help: "Address to bind.") var host: String = "127.0.0.1"
    @Option(help: "Port to bind (0 picks a free port; the log says which).") var port: Int = 8000
    @Option(help: "Engine: auto, simd, fallback, or a path (default: FORZIUM_ENGINE, else auto).") var engine: String?
    @Option(help: "Number of engine processes (default: one per event loop thread, at most \(GatewayCommand.defaultEnginesCap); a connection's requests go to the engine on its own thread).")
    var engines: Int?
    @Option(help: "Argument passed to every engine process (repeatable), e.g. --engine-arg=--max-elements=1000000.")
    var engineArg: [String] = []
    @Option(help: "Requests in flight per engine process.") var engineConcurrency: Int = 16
    @Option(help: "Requests allowed to wait for an engine before 503.") var queueDepth: Int = 64
    @Option(help: "Request deadline in seconds (504 past it).") var timeout: Double = 30
    @Option(help: "Largest request body in bytes (413 above).") var maxBodyBytes: Int = 64 << 20
    @Option(help: "Comma-separated API keys (default: FORZIUM_API_KEYS; none = no authentication).") var apiKeys: String?
    @Option(help: "Allowed CORS origin (repeatable; * for any). CORS is off without it.") var corsOrigin: [String] = []
    @Option(help: "NIO event loop threads; small requests are handled on them (default: one per core, at most 16).")
    var eventLoopThreads: Int?
    @Option(help: "Crashes within --breaker-window seconds that stop restarts of an engine.") var breakerCrashes: Int = 5
    @Option(help: "Breaker window in seconds.") var breakerWindow: Int = 30
    @Option(help: "Milliseconds an engine may leave a cancelled request unanswered before it is replaced.")
    var cancelGraceMs: Int = 2000
    @Option(help: "Milliseconds of engine silence (with work outstanding) before a liveness ping, and for the ping's answer.")
    var pingTimeoutMs: Int = 900
    @Option(help: "Milliseconds of idleness before an engine is pinged.") var idlePingMs: Int = 2000
    @Option(help: "Milliseconds an unresponsive engine (out of rotation) gets before it is replaced.")
    var unresponsiveGraceMs: Int = 3000
    @Option(help: "Seconds a keep-alive connection may sit between requests.") var idleTimeout: Double = 30
    @Option(help: "Seconds a request's headers may take from its first byte (and a new connection to send them); 408 past it.")
    var headerTimeout: Double = 10
    @Option(help: "Slowest request body accepted, bytes per second averaged over its first 10 s and later; 408 below it.")
    var bodyMinRate: Int = 1024
    @Option(help: "Seconds a client may leave its response unread before it is disconnected.") var writeTimeout: Double = 30
    @Option(help: "Most open connections (default: the descriptor limit less 128); beyond it idle ones are evicted, else 503.")
    var maxConnections: Int?
    @Option(help: "Request body bytes held at once across all requests (default 4 × --max-body-bytes); 503 beyond it.")
    var maxBufferedBytes: Int?
    @Option(help: "Seconds responses in flight get to finish after SIGTERM.") var shutdownGrace: Double = 20
    @Option(help: "Smallest text response (bytes) sent gzip/deflate-compressed to clients that accept it; off: never.")
    var compressMinBytes: CompressionThreshold = .bytes(1024)
    @Option(help: "zlib level (1 fastest … 9 smallest) for compressed responses.") var compressLevel: Int = 1
    @Option(help: "Seconds between looks at the engine executables; a new or changed one (unchanged for one more look) is moved to as on SIGHUP. 0: off.")
    var watchEngines: Double = 0
    @Option(help: "Read schemas from this directory instead of the embedded copy.") var schemas: String?
    @Option(help: "Log level (trace, debug, info, notice, warning, error, critical).") var logLevel: String = "info"
    @Option(help: "Log line format: text, or json (one object per line; engine lines become fields, not nested text).")
    var logFormat: String = "text"
    @Flag(help: "Log every request at info: method, path, status, bytes, duration, request id, engine.") var accessLog = false
    @Flag(help: "Print the OpenAPI document (pretty JSON) to stdout and exit.") var printOpenapi = false

    public init() {}

    /// The most engines started by default (each idle engine holds ~16 MB, and each already uses every core for a
    /// large request): beyond it, connections on the other event loops reach an engine across threads.
    static let defaultEnginesCap = 4

    /// The CPUs this process may use, by the rule the SIMD engine sizes its kernel threads with (affinity mask capped by
    /// the cgroup CPU quota of its own cgroup and ancestors), and never more than SwiftNIO's count (which reads the quota
    /// at the hierarchy's root only): the default number of event loops, hence of engines.
    static var usableCores: Int { max(1, min(System.coreCount, Int(forzium_cpu_available()))) }

    public func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
        if let engines, !(1...64).contains(engines) { throw ValidationError("--engines must be 1...64") }
        guard engineConcurrency >= 1 else { throw ValidationError("--engine-concurrency must be at least 1") }
        guard queueDepth >= 0 else { throw ValidationError("--queue-depth must not be negative") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
        guard maxBodyBytes > 0 else { throw ValidationError("--max-body-bytes must be positive") }
        if let eventLoopThreads, !(1...16).contains(eventLoopThreads) { throw ValidationError("--event-loop-threads must be 1...16") }
        for (name, value) in [("--cancel-grace-ms", cancelGraceMs), ("--ping-timeout-ms", pingTimeoutMs),
                              ("--idle-ping-ms", idlePingMs), ("--unresponsive-grace-ms", unresponsiveGraceMs)] {
            guard (10...3_600_000).contains(value) else { throw ValidationError("\(name) must be 10...3600000") }
        }
        for (name, value) in [("--idle-timeout", idleTimeout), ("--header-timeout", headerTimeout),
                              ("--write-timeout", writeTimeout), ("--shutdown-grace", shutdownGrace)] {
            guard value > 0, value <= 86_400 else { throw ValidationError("\(name) must be in (0, 86400] seconds") }
        }
        guard bodyMinRate >= 0 else { throw ValidationError("--body-min-rate must not be negative") }
        if let maxConnections, maxConnections < 1 { throw ValidationError("--max-connections must be at least 1") }
        if let maxBufferedBytes, maxBufferedBytes < 1 { throw ValidationError("--max-buffered-bytes must be positive") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
        guard watchEngines >= 0, watchEngines <= 86_400 else { throw ValidationError("--watch-engines must be 0...86400 seconds") }
        guard LogFormat(option: logFormat) != nil else { throw ValidationError("--log-format must be one of: \(LogFormat.choices)") }
    }

    /// The configuration these options describe, with environment fallbacks.
    public func gatewayConfiguration(environment: [String: String]) -> GatewayConfiguration {
        let keys = (apiKeys ?? environment["FORZIUM_API_KEYS"] ?? "")
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let loopThreads = eventLoopThreads ?? min(16, Self.usableCores)
        return GatewayConfiguration(
            host: host, port: port, engine: engine ?? environment["FORZIUM_ENGINE"] ?? "auto",
            engines: engines ?? min(loopThreads, Self.defaultEnginesCap),
            engineConcurrency: engineConcurrency, queueDepth: queueDepth, timeoutMilliseconds: Int((timeout * 1000).rounded()),
            maxBodyBytes: maxBodyBytes, apiKeys: keys, corsOrigins: corsOrigin,
            eventLoopThreads: loopThreads,
            breakerCrashes: breakerCrashes, breakerWindowSeconds: breakerWindow,
            cancelGraceMilliseconds: cancelGraceMs, pingTimeoutMilliseconds: pingTimeoutMs, idlePingMilliseconds: idlePingMs,
            unresponsiveGraceMilliseconds: unresponsiveGraceMs,
            edge: HTTPEdgeConfiguration(
                idleTimeout: Self.time(idleTimeout), headerTimeout: Self.time(headerTimeout),
                bodyMinimumBytesPerSecond: bodyMinRate, writeTimeout: Self.time(writeTimeout),
                maxConnections: maxConnections ?? HTTPEdgeConfiguration.defaultMaxConnections(),
                shutdownGrace: Self.time(shutdownGrace)),
            maxBufferedBodyBytes: maxBufferedBytes ?? 4 * maxBodyBytes, accessLog: accessLog,
            watchEnginesMilliseconds: Int((watchEngines * 1000).rounded()),
            compression: ResponseCompression(minBytes: compressMinBytes.minBytes, level: Int32(min(max(compressLevel, 1), 9))))
    }

    private static func time(_ seconds: Double) -> TimeAmount { .milliseconds(Int64((seconds * 1000).rounded())) }

    public func run() async throws {
        MemoryTuning.returnLargeBuffers()
        let level = Logger.Level(rawValue: logLevel) ?? .info
        ForziumLogging.bootstrap(level: level, format: LogFormat(option: logFormat) ?? .text)
        let logger = Logger(label: "forzium.gateway")
        signal(SIGPIPE, SIG_IGN)
        let environment = ProcessInfo.processInfo.environment
        let config = gatewayConfiguration(environment: environment)

        let files: [(path: String, text: String)]
        do {
            files = try schemas.map { try GatewaySchemas.load(directory: $0) } ?? GatewaySchemas.embedded
        } catch {
            logger.critical("cannot read schemas: \(error)")
            throw ExitCode.failure
        }
        let openAPI = try OpenAPIBuilder(routes: .embedded, files: files).prettyBytes()
        if printOpenapi {
            FileHandle.standardOutput.write(Data(openAPI))
            return
        }
        let validator: SchemaBodyValidator
        do {
            validator = try SchemaBodyValidator(files: files)
        } catch {
            logger.critical("invalid schemas: \(error)")
            throw ExitCode.failure
        }
        try await GatewayServer.run(configuration: config, engineArguments: engineArg, validator: validator, openAPI: openAPI, logger: logger)
    }
}

/// Wires the engine pool and the HTTP application into one service group and runs it until SIGTERM/SIGINT.
public enum GatewayServer {
    public static func run(configuration config: GatewayConfiguration, engineArguments: [String] = [], validator: any BodyValidator,
                           openAPI: [UInt8], logger: Logger) async throws {
        let metrics = GatewayMetrics()
        // One small event loop group for HTTP and the engine pipes alike (engines need the cores).
        let group = MultiThreadedEventLoopGroup(numberOfThreads: config.eventLoopThreads)
        let selection = EngineSelection(mode: config.engine, arguments: engineArguments, engineConcurrency: config.engineConcurrency,
                                        environment: ProcessInfo.processInfo.environment)
        let candidates = selection.candidates(logger: logger)
        let chosen = await EngineHandshake.choose(candidates, logger: logger, timeout: .seconds(10), group: group)
        let engine: EngineCandidate
        if let chosen {
            engine = EngineCandidate(path: chosen.path, kind: chosen.kind, arguments: chosen.arguments)
            logger.notice("using engine \(engine.kind) at \(engine.path)")
        } else {
            logger.error("no working engine found (looked for \(EngineDiscovery.simdName) and \(EngineDiscovery.fallbackName) next to the gateway and on PATH); engine routes answer 503")
            engine = candidates.last ?? EngineCandidate(path: "/nonexistent/\(EngineDiscovery.fallbackName)", kind: "none")
        }
        let pool = EnginePool(
            engine: engine,
            configuration: EnginePoolConfiguration(
                engines: config.engines, perEngineConcurrency: config.engineConcurrency, queueDepth: config.queueDepth,
                breakerCrashes: config.breakerCrashes, breakerWindow: .seconds(config.breakerWindowSeconds),
                breakerCooldown: .seconds(config.breakerCooldownSeconds),
                cancelGrace: .milliseconds(config.cancelGraceMilliseconds), pingTimeout: .milliseconds(config.pingTimeoutMilliseconds),
                idlePingInterval: .milliseconds(config.idlePingMilliseconds),
                unresponsiveGrace: .milliseconds(config.unresponsiveGraceMilliseconds),
                drainGrace: .milliseconds(config.timeoutMilliseconds + config.cancelGraceMilliseconds + 1000)),
            metrics: metrics, logger: logger, eventLoopGroup: group)
        if chosen != nil {
            do { try await pool.start() } catch { logger.error("engines failed to start: \(error)") }
        } else {
            try? await pool.start()
        }
        let (responder, inlineCompute) = GatewayHTTP.layers(configuration: config, routes: .embedded, pool: pool, validator: validator,
                                                            metrics: metrics, openAPI: openAPI, logger: logger)
        let host = config.host
        let maxBody = config.maxBodyBytes
        let registry = ConnectionRegistry(limit: config.edge.maxConnections)
        let app = Application(
            responder: responder,
            server: .gatewayHTTP1(inline: responder, compute: inlineCompute, edge: config.edge, registry: registry, maxBodyBytes: maxBody, additionalChannelHandlers: {
                [ClientGoneHandler()]
            }),
            configuration: ApplicationConfiguration(address: .hostname(host, port: config.port), serverName: nil, backlog: 4096),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? config.port
                logger.notice("listening on \(host):\(port)")
            },
            eventLoopGroupProvider: .shared(group),
            logger: logger)
        // Shutdown runs in reverse order: the HTTP server stops accepting and drains first, then the pool closes engines.
        let serviceGroup = ServiceGroup(configuration: .init(
            services: [.init(service: pool)] + EngineReloadService.services(
                pool: pool, selection: selection, watchMilliseconds: config.watchEnginesMilliseconds, logger: logger, group: group)
                + [.init(service: app)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await serviceGroup.run()
        try await group.shutdownGracefully()
        logger.notice("gateway stopped")
    }
}

/// Where the gateway's schema documents come from.
public enum GatewaySchemas {
    /// Schema files compiled into the binary.
    public static var embedded: [(path: String, text: String)] { SchemaBundle.files }

    /// Every `*.json` under `directory` (except `openapi.json`), paths relative to it, sorted.
    public static func load(directory: String) throws -> [(path: String, text: String)] {
        let root = URL(fileURLWithPath: directory).standardizedFileURL
        guard let enumerator = FileManager.default.enumerator(atPath: root.path) else {
            throw EngineSpawnError(message: "cannot list \(directory)")
        }
        var files: [(path: String, text: String)] = []
        while let relative = enumerator.nextObject() as? String {
            guard relative.hasSuffix(".json"), relative != "openapi.json" else { continue }
            files.append((relative, try String(contentsOfFile: root.path + "/" + relative, encoding: .utf8)))
        }
        return files.sorted { $0.path < $1.path }
    }
}

/// Lets the thin executable call the async `run()` of a parsed command.
public protocol AsyncParsableCommandRunnable {
    mutating func runAsync() async throws
}

extension GatewayCommand: AsyncParsableCommandRunnable {
    public mutating func runAsync() async throws { try await run() }
}
