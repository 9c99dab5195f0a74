import ForziumRPC
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

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
/// caller going away); whatever comes later is dropped. Thread-safe: who resolves it is settled by one atomic
/// exchange, and only a sink that hands over to a waiting task or stream takes a lock (stored inline, no allocation).
package final class ReplySink: Sendable {
    private struct Waiting: ~Copyable {
        var continuation: CheckedContinuation<EngineResponse, any Error>?
        var stream: AsyncThrowingStream<EngineStreamEvent, any Error>.Continuation?
        /// A result that arrived before `attach` (single replies only).
        var early: Result<EngineResponse, any Error>?
    }

    private let waiting: Mutex<Waiting>
    private let resolved = Atomic<Bool>(false)
    /// Called once with the result instead of resuming a continuation (the gateway's inline `/compute`,
    /// `InlineCompute`, which waits in no task). Set at creation only.
    private let callback: (@Sendable (Result<EngineResponse, any Error>) -> Void)?

    /// A sink for one response; `attach` the continuation that waits for it.
    package init() {
        waiting = Mutex(Waiting())
        callback = nil
    }

    /// A sink for a streamed request: rows are yielded, the response or failure finishes the stream.
    package init(stream: AsyncThrowingStream<EngineStreamEvent, any Error>.Continuation) {
        waiting = Mutex(Waiting(stream: stream))
        callback = nil
    }

    /// A sink for one response that calls `callback` with it, once, on whichever thread resolves it.
    package init(callback: @escaping @Sendable (Result<EngineResponse, any Error>) -> Void) {
        waiting = Mutex(Waiting())
        self.callback = callback
    }

    /// Hands over the waiting continuation; resumes it at once when the result is already known.
    package func attach(_ continuation: CheckedContinuation<EngineResponse, any Error>) {
        let early = waiting.withLock { w -> Result<EngineResponse, any Error>? in
            if let early = w.early {
                w.early = nil
                return early
            }
            w.continuation = continuation
            return nil
        }
        if let early { continuation.resume(with: early) }
    }

    /// True once the sink was completed or failed.
    package var isResolved: Bool { resolved.load(ordering: .acquiring) }

    /// Completes with the engine's response; false when already resolved.
    @discardableResult
    package func complete(_ response: EngineResponse) -> Bool { resolve(.success(response)) }

    /// Fails with `error`; false when already resolved.
    @discardableResult
    package func fail(_ error: any Error) -> Bool { resolve(.failure(error)) }

    /// Passes on a `stream.rows` line (dropped once resolved, or for a single-reply sink).
    package func rows(_ line: [UInt8]) {
        guard !isResolved else { return }
        let stream = waiting.withLock { $0.stream }
        stream?.yield(.rows(line))
    }

    private func resolve(_ result: Result<EngineResponse, any Error>) -> Bool {
        guard resolved.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return false }
        if let callback {
            callback(result)
            return true
        }
        let (continuation, stream) = waiting.withLock { w in
            let c = w.continuation, s = w.stream
            w.continuation = nil
            w.stream = nil
            if c == nil, s == nil { w.early = result }
            return (c, s)
        }
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
