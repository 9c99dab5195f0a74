/// Everything the gateway is configured with. Built from the command line by `GatewayCommand`.
public struct GatewayConfiguration: Sendable {
    /// Address to bind (127.0.0.1 unless told otherwise).
    public var host: String
    /// Port to bind; 0 picks a free one (the chosen port is logged: "listening on HOST:PORT").
    public var port: Int
    /// Engine selection: `auto`, `simd`, `fallback`, or a path to an engine executable.
    public var engine: String
    /// Number of engine processes.
    public var engines: Int
    /// Requests sent to one engine at once (multiplexed on its pipe by id).
    public var engineConcurrency: Int
    /// Requests allowed to wait for an engine; beyond that the gateway answers 503 with Retry-After.
    public var queueDepth: Int
    /// Default deadline per request in milliseconds (the `X-Forzium-Timeout-Ms` header may lower it).
    public var timeoutMilliseconds: Int
    /// Largest request body accepted; larger bodies get 413.
    public var maxBodyBytes: Int
    /// API keys; empty means no authentication.
    public var apiKeys: [String]
    /// Origins allowed by CORS; empty means CORS is off. `*` allows any origin.
    public var corsOrigins: [String]
    /// Threads of the NIO event loop group: they do the HTTP I/O and handle small requests (one per core by default).
    public var eventLoopThreads: Int
    /// Crashes of one engine within `breakerWindowSeconds` that open its breaker.
    public var breakerCrashes: Int
    /// Window for counting crashes.
    public var breakerWindowSeconds: Int
    /// How long an open breaker waits before trying the engine once more.
    public var breakerCooldownSeconds: Int
    /// How long an engine may leave a cancelled request (`$/cancelRequest`) unanswered before it is replaced.
    public var cancelGraceMilliseconds: Int
    /// Liveness: an engine silent this long with work outstanding is pinged, and a ping unanswered this long takes
    /// the engine out of rotation.
    public var pingTimeoutMilliseconds: Int
    /// Liveness: an idle engine is pinged after this long.
    public var idlePingMilliseconds: Int
    /// Liveness: an engine out of rotation for this long without answering is replaced.
    public var unresponsiveGraceMilliseconds: Int
    /// Timeouts and limits of the HTTP edge (idle, header, body rate, write, connections, shutdown grace).
    public var edge: HTTPEdgeConfiguration
    /// Request body bytes held at once across all requests; beyond it 503 with Retry-After.
    public var maxBufferedBodyBytes: Int
    /// Logs every request at info (method, path, status, bytes, duration, request id, engine).
    public var accessLog: Bool
    /// How often the engine executables are looked at for a hot upgrade (0: only on SIGHUP).
    public var watchEnginesMilliseconds: Int
    /// gzip/deflate for text responses when the client accepts it (`--compress-min-bytes`, `--compress-level`).
    public var compression: ResponseCompression

    public init(
        host: String = "127.0.0.1", port: Int = 8000, engine: String = "auto", engines: Int = 1,
        engineConcurrency: Int = 16, queueDepth: Int = 64, timeoutMilliseconds: Int = 30_000,
        maxBodyBytes: Int = 64 << 20, apiKeys: [String] = [], corsOrigins: [String] = [], eventLoopThreads: Int = 2,
        breakerCrashes: Int = 5, breakerWindowSeconds: Int = 30, breakerCooldownSeconds: Int = 30,
        cancelGraceMilliseconds: Int = 2000, pingTimeoutMilliseconds: Int = 900, idlePingMilliseconds: Int = 2000,
        unresponsiveGraceMilliseconds: Int = 3000, edge: HTTPEdgeConfiguration = .init(),
        maxBufferedBodyBytes: Int = 256 << 20, accessLog: Bool = false, watchEnginesMilliseconds: Int = 0,
        compression: ResponseCompression = .init()
    ) {
        self.compression = compression
        self.edge = edge
        self.maxBufferedBodyBytes = maxBufferedBodyBytes
        self.host = host
        self.port = port
        self.engine = engine
        self.engines = engines
        self.engineConcurrency = engineConcurrency
        self.queueDepth = queueDepth
        self.timeoutMilliseconds = timeoutMilliseconds
        self.maxBodyBytes = maxBodyBytes
        self.apiKeys = apiKeys
        self.corsOrigins = corsOrigins
        self.eventLoopThreads = eventLoopThreads
        self.breakerCrashes = breakerCrashes
        self.breakerWindowSeconds = breakerWindowSeconds
        self.breakerCooldownSeconds = breakerCooldownSeconds
        self.cancelGraceMilliseconds = cancelGraceMilliseconds
        self.pingTimeoutMilliseconds = pingTimeoutMilliseconds
        self.idlePingMilliseconds = idlePingMilliseconds
        self.unresponsiveGraceMilliseconds = unresponsiveGraceMilliseconds
        self.accessLog = accessLog
        self.watchEnginesMilliseconds = watchEnginesMilliseconds
    }
}
