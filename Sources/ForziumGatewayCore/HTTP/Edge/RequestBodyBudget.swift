import NIOConcurrencyHelpers

/// The bytes of request bodies the gateway holds at once, across all connections. A body takes its share before it
/// is read (all of it when `Content-Length` says how much, chunk by chunk otherwise); a request that does not fit
/// gets 503 with `Retry-After` instead of pushing the process towards the OOM killer.
public final class RequestBodyBudget: Sendable {
    /// The most body bytes held at once.
    public let limit: Int
    private let used = NIOLockedValueBox(0)

    public init(limit: Int) {
        self.limit = limit
    }

    /// Bytes currently held.
    public var inUse: Int { used.withLockedValue { $0 } }

    /// Takes `bytes` if they fit; false otherwise.
    public func reserve(_ bytes: Int) -> Bool {
        used.withLockedValue { used in
            guard bytes <= limit - used else { return false }
            used += bytes
            return true
        }
    }

    public func release(_ bytes: Int) {
        used.withLockedValue { $0 -= bytes }
    }
}
