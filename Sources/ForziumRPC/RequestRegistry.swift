import ForziumJSON

/// Whether one request has been cancelled. Set by `RequestRegistry.cancel(id:)`, read by the request's handler
/// (through `RPCContext.isCancelled`) between blocks of work.
final class CancellationToken: @unchecked Sendable {
    /// The registry's lock, which guards `cancelled`.
    private let lock: ConditionLock
    private var cancelled = false

    init(lock: ConditionLock) {
        self.lock = lock
    }

    var isCancelled: Bool { lock.withLock { cancelled } }

    /// Call with the registry's lock held.
    func markCancelled() { cancelled = true }
}

/// A decoded message (a request or a batch) the serve loop has read and not yet answered, with a cancellation token
/// for each of its requests that has an id. Made by `RPCDispatcher.intake`, answered by `RPCDispatcher.reply(to:context:)`.
public struct AdmittedMessage: Sendable {
    let message: JSONValue
    /// One per request object (one for a single request, one per element of a batch); nil where there is no usable
    /// id (notifications, invalid elements).
    let tokens: [CancellationToken?]
}

/// The requests an engine has read and not yet answered, by id, so that `$/cancelRequest` can reach a request that
/// is queued or computing, and `ping` can say how many there are.
///
/// Ids are compared as JSON values (`JSONValue` equality: `7`, `7.0` and `7e0` are one id; `"7"` is another). Several
/// requests in flight may share an id; a cancel reaches all of them. Entries exist only while their request is in
/// flight, so the registry never holds more than the requests read and not yet answered.
public final class RequestRegistry: @unchecked Sendable {
    private let lock = ConditionLock()
    private var byID: [JSONValue: [CancellationToken]] = [:]
    private var requests = 0

    public init() {}

    /// Requests read and not yet answered (each element of a batch counts).
    public var inFlight: Int { lock.withLock { requests } }

    /// Ids with at least one request in flight.
    public var trackedIDs: Int { lock.withLock { byID.count } }

    /// Registers the requests of `message` (an object or a batch) as in flight.
    func admit(_ message: JSONValue) -> AdmittedMessage {
        var ids: [JSONValue?] = []
        switch message {
        case .array(let elements): ids = elements.map(Self.requestID)
        case .numbers(let numbers): ids = Array(repeating: nil, count: numbers.count)
        case .rows(let rows): ids = Array(repeating: nil, count: rows.rows)
        default: ids = [Self.requestID(message)]
        }
        let tokens = lock.withLock { () -> [CancellationToken?] in
            requests += ids.count
            return ids.map { id -> CancellationToken? in
                guard let id else { return nil }
                let token = CancellationToken(lock: lock)
                byID[id, default: []].append(token)
                return token
            }
        }
        return AdmittedMessage(message: message, tokens: tokens)
    }

    /// Forgets the requests of `admitted` (answered, or dropped).
    func finish(_ admitted: AdmittedMessage) {
        lock.withLock {
            requests -= admitted.tokens.count
            guard case .object = admitted.message else {
                for (token, element) in zip(admitted.tokens, Self.elements(of: admitted.message)) {
                    if let token, let id = Self.requestID(element) { remove(token, id: id) }
                }
                return
            }
            if let token = admitted.tokens.first ?? nil, let id = Self.requestID(admitted.message) { remove(token, id: id) }
        }
    }

    /// Marks every in-flight request with id `id` cancelled; returns how many there were (0 for an unknown or
    /// finished id, which is not an error).
    @discardableResult
    public func cancel(id: JSONValue) -> Int {
        lock.withLock {
            guard let tokens = byID[id] else { return 0 }
            for token in tokens { token.markCancelled() }
            return tokens.count
        }
    }

    /// Call with the lock held.
    private func remove(_ token: CancellationToken, id: JSONValue) {
        guard var tokens = byID[id] else { return }
        tokens.removeAll { $0 === token }
        byID[id] = tokens.isEmpty ? nil : tokens
    }

    private static func elements(of batch: JSONValue) -> [JSONValue] {
        if case .array(let elements) = batch { return elements }
        return []
    }

    /// The id a cancel could name: a request object's `id` when it is a string, a finite number or null.
    private static func requestID(_ message: JSONValue) -> JSONValue? {
        guard case .object(let object) = message, let id = object["id"], RPCDispatcher.isValidID(id) else { return nil }
        return id
    }
}
