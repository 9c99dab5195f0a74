import Synchronization

/// The bytes of request bodies the gateway holds at once, across all connections. A body takes its share before it
/// is read (all of it when `Content-Length` says how much, chunk by chunk otherwise); a request that does not fit
/// gets 503 with `Retry-After` instead of pushing the process towards the OOM killer.
public final class RequestBodyBudget: Sendable {
    /// The most body bytes held at once.
    public let limit: Int
    /// Atomic, not locked: every request reserves and releases, from every event loop.
    private let used = Atomic<Int>(0)

    public init(limit: Int) {
        self.limit = limit
    }

    /// Bytes currently held.
    public var inUse: Int { used.load(ordering: .relaxed) }

    /// Takes `bytes` if they fit; false otherwise.
    public func reserve(_ bytes: Int) -> Bool {
        var current = used.load(ordering: .relaxed)
        while true {
            guard bytes <= limit - current else { return false }
            let (exchanged, found) = used.compareExchange(expected: current, desired: current + bytes, ordering: .relaxed)
            if exchanged { return true }
            current = found
        }
    }

    public func release(_ bytes: Int) {
        used.subtract(bytes, ordering: .relaxed)
    }
}
