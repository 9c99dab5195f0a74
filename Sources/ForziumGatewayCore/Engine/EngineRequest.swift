import ForziumRPC
import NIOConcurrencyHelpers
import NIOCore

/// An engine's reply to one request (the protocol module's type).
package typealias EngineResponse = RPCReply

/// Events of a streamed request: row-block notifications, then the final response.
package enum EngineStreamEvent: Sendable {
    /// A `stream.rows` notification line (whole line, no newline).
    case rows([UInt8])
    /// The final response.
    case done(EngineResponse)
}

/// Where the answer to one request goes: resolved exactly once (by the engine's reply, a failure, the deadline or the
/// caller going away); whatever comes later is dropped. Thread-safe.
package final class ReplySink: @unchecked Sendable {
    private let lock = NIOLock()
    private var continuation: CheckedContinuation<EngineResponse, any Error>?
    private var stream: AsyncThrowingStream<EngineStreamEvent, any Error>.Continuation?
    /// Called once with the result instead of resuming a continuation (the gateway's inline `/compute`,
    /// `InlineCompute`, which waits in no task). Set at creation only, so it is read without the lock.
    private let callback: (@Sendable (Result<EngineResponse, any Error>) -> Void)?
    /// A result that arrived before `attach` (single replies only).
    private var early: Result<EngineResponse, any Error>?
    private var resolved = false

    /// A sink for one response; `attach` the continuation that waits for it.
    package init() {
        callback = nil
    }

    /// A sink for a streamed request: rows are yielded, the response or failure finishes the stream.
    package init(stream: AsyncThrowingStream<EngineStreamEvent, any Error>.Continuation) {
        self.stream = stream
        callback = nil
    }

    /// A sink for one response that calls `callback` with it, once, on whichever thread resolves it.
    package init(callback: @escaping @Sendable (Result<EngineResponse, any Error>) -> Void) {
        self.callback = callback
    }

    /// Hands over the waiting continuation; resumes it at once when the result is already known.
    package func attach(_ continuation: CheckedContinuation<EngineResponse, any Error>) {
        let early = lock.withLock { () -> Result<EngineResponse, any Error>? in
            if let early = self.early {
                self.early = nil
                return early
            }
            self.continuation = continuation
            return nil
        }
        if let early { continuation.resume(with: early) }
    }

    /// True once the sink was completed or failed.
    package var isResolved: Bool { lock.withLock { resolved } }

    /// Completes with the engine's response; false when already resolved.
    @discardableResult
    package func complete(_ response: EngineResponse) -> Bool { resolve(.success(response)) }

    /// Fails with `error`; false when already resolved.
    @discardableResult
    package func fail(_ error: any Error) -> Bool { resolve(.failure(error)) }

    /// Passes on a `stream.rows` line (dropped once resolved, or for a single-reply sink).
    package func rows(_ line: [UInt8]) {
        let stream = lock.withLock { resolved ? nil : self.stream }
        stream?.yield(.rows(line))
    }

    private func resolve(_ result: Result<EngineResponse, any Error>) -> Bool {
        if let callback {
            // A callback sink has nothing else to hand over: the lock only settles who resolves it.
            let won = lock.withLock { () -> Bool in
                if resolved { return false }
                resolved = true
                return true
            }
            if won { callback(result) }
            return won
        }
        let (won, continuation, stream) = lock.withLock { () -> (Bool, CheckedContinuation<EngineResponse, any Error>?, AsyncThrowingStream<EngineStreamEvent, any Error>.Continuation?) in
            if resolved { return (false, nil, nil) }
            resolved = true
            let c = self.continuation, s = self.stream
            self.continuation = nil
            self.stream = nil
            if c == nil, s == nil { early = result }
            return (true, c, s)
        }
        guard won else { return false }
        continuation?.resume(with: result)
        if let stream {
            switch result {
            case .success(let response):
                stream.yield(.done(response))
                stream.finish()
            case .failure(let error):
                stream.finish(throwing: error)
            }
        }
        return true
    }
}

/// One request line for an engine, as head/params/tail buffers (a large body is written from the buffer it arrived
/// in), with its deadline and the sink for its answer. The same object moves between engines when it is re-routed.
package final class EngineRequest: Sendable {
    /// Gateway-assigned JSON-RPC id (unique for the gateway's lifetime).
    package let id: Int
    /// The parts of the line, ending in LF.
    package let parts: [ByteBuffer]
    package let deadline: ContinuousClock.Instant
    package let sink: ReplySink

    package init(id: Int, parts: [ByteBuffer], deadline: ContinuousClock.Instant, sink: ReplySink) {
        self.id = id
        self.parts = parts
        self.deadline = deadline
        self.sink = sink
    }
}

/// What the gateway asks of one engine channel besides requests (which `EngineProcess.submit` hands to the channel's
/// `EngineRPCHandler` directly).
package enum EngineCommand: Sendable {
    /// The request's caller is gone (deadline or client): withdraw it when unwritten, else send `$/cancelRequest`.
    case cancel(id: Int)
    /// Start watching the engine (pings); `answersPingsWhileBusy` says whether the engine promised to answer a ping
    /// at once even while it computes (it answered the handshake ping with a result rather than an error).
    case startLiveness(answersPingsWhileBusy: Bool)
}

/// What one engine channel reports to its owner (the pool), on the channel's event loop.
package enum EngineEvent: Sendable {
    /// The channel closed (engine exited or was killed); sent before the requests it held are given back.
    case closed(reason: String)
    /// A request no longer occupies the engine: answered (`answered`), failed with the engine, or withdrawn unwritten.
    case finished(id: Int, answered: Bool)
    /// A request that was not completely written is given back, to be sent elsewhere.
    case reroute(EngineRequest)
    /// A liveness ping went unanswered: take no new work. `busy`: requests were outstanding on the engine.
    case unresponsive(busy: Bool, answersPingsWhileBusy: Bool)
    /// A line arrived after `unresponsive`.
    case responsive
    /// A cancelled request was still unanswered after the cancel grace period.
    case cancelIgnored(id: Int)
}

/// Timing of the engine watch; `nil` members disable that part.
package struct EngineWatchSettings: Sendable {
    /// Requests outstanding and no line for this long: ping.
    package var busySilence: TimeAmount = .seconds(1)
    /// Idle (nothing outstanding) and no line for this long: ping.
    package var idlePing: TimeAmount = .seconds(2)
    /// A ping unanswered (and no other line) for this long: unresponsive.
    package var pingTimeout: TimeAmount = .seconds(1)
    /// A cancelled request still unanswered this long after its `$/cancelRequest`: `cancelIgnored`.
    package var cancelGrace: TimeAmount = .seconds(2)
    /// Longest line accepted from the engine.
    package var maxLineBytes: Int = 512 << 20
    /// How long an engine whose stdout closed may take to exit before SIGKILL.
    package var exitGrace: TimeAmount = .seconds(5)

    package init() {}
}

extension TimeAmount {
    /// The same span as a `Duration` (clamped to what `TimeAmount` holds).
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        let nanos = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        self = .nanoseconds(nanos.overflow ? Int64.max : nanos.partialValue &+ attoseconds / 1_000_000_000)
    }
}

extension ContinuousClock.Instant {
    /// This instant as a `NIODeadline` (both count a monotonic clock; converted through the time left from now).
    var nioDeadline: NIODeadline {
        let left = ContinuousClock.now.duration(to: self)
        return .now() + TimeAmount(left)
    }
}
