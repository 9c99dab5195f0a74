import NIOCore

/// Timeouts and limits of the gateway's HTTP/1.1 edge: what a slow, idle, hostile or departing client may hold.
public struct HTTPEdgeConfiguration: Sendable {
    /// A connection with no request in progress (between keep-alive requests) is closed after this long.
    public var idleTimeout: TimeAmount
    /// A request's header block must be complete this long after its first byte (and a new connection must send
    /// its first request within it); past it the client gets 408 and the connection closes. Slowloris ends here.
    public var headerTimeout: TimeAmount
    /// A request body must arrive at least this fast (bytes per second, averaged from the end of its headers)
    /// once `bodyRateGrace` has passed, and never stall for longer than `headerTimeout`; else 408 and close.
    public var bodyMinimumBytesPerSecond: Int
    /// Time a body gets before its rate is judged.
    public var bodyRateGrace: TimeAmount
    /// A client that reads nothing of its response for this long (the socket stays unwritable) is disconnected.
    public var writeTimeout: TimeAmount
    /// Most connections open at once. Beyond it an idle connection is evicted (oldest never-used first); when
    /// none is idle the newcomer gets 503 with `Retry-After` and is closed.
    public var maxConnections: Int
    /// On SIGTERM, responses still being written get this long to finish before their connections are closed.
    public var shutdownGrace: TimeAmount

    public init(idleTimeout: TimeAmount = .seconds(30), headerTimeout: TimeAmount = .seconds(10),
                bodyMinimumBytesPerSecond: Int = 1024, bodyRateGrace: TimeAmount = .seconds(10),
                writeTimeout: TimeAmount = .seconds(30), maxConnections: Int = HTTPEdgeConfiguration.defaultMaxConnections(),
                shutdownGrace: TimeAmount = .seconds(20)) {
        self.idleTimeout = idleTimeout
        self.headerTimeout = headerTimeout
        self.bodyMinimumBytesPerSecond = bodyMinimumBytesPerSecond
        self.bodyRateGrace = bodyRateGrace
        self.writeTimeout = writeTimeout
        self.maxConnections = maxConnections
        self.shutdownGrace = shutdownGrace
    }

    /// Descriptors kept back from connections for engines' pipes, shared memory, schemas and logs.
    public static let reservedDescriptors = 128

    /// The process's descriptor limit less `reservedDescriptors`, so an accept never fails with EMFILE.
    public static func defaultMaxConnections() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1000 }
        let soft = limit.rlim_cur >= rlim_t(1 << 30) ? 1 << 20 : Int(limit.rlim_cur)
        return max(16, soft - reservedDescriptors)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
