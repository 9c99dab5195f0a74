#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Client load on one port from a few threads until `stop()`: each thread sends the same request again and again
/// (a new connection each time) and every outcome is recorded — status, `X-Forzium-Engine`, and the transport error
/// for requests that got no HTTP answer at all. Bounded: each thread stops after `maxRequests` or at `stop()`.
final class LoadDriver: @unchecked Sendable {
    struct Outcome {
        var status: Int
        var engine: String?
        var error: String?
        var started: Date
        var finished: Date
    }

    private let lock = NSLock()
    private var outcomes: [Outcome] = []
    private var stopping = false
    private var threads: [Background<Void>] = []

    init(port: Int, threads count: Int = 4, path: String = "/compute",
         body: [UInt8] = Array(#"{"data":[[1,2],[3,4]],"operation":"multiply","parameters":{"factor":2}}"#.utf8),
         maxRequests: Int = 200_000, pause: useconds_t = 0) {
        let client = TestHTTPClient(port: port, timeoutSeconds: 30)
        for _ in 0..<count {
            threads.append(Background { [self] in
                for _ in 0..<maxRequests {
                    if isStopping { break }
                    let outcome: Outcome
                    let started = Date()
                    do {
                        let reply = try client.request("POST", path, body: body)
                        outcome = Outcome(status: reply.status, engine: reply.header("X-Forzium-Engine"),
                                          error: reply.status == 200 ? nil : reply.text, started: started, finished: Date())
                    } catch {
                        outcome = Outcome(status: 0, engine: nil, error: "\(error)", started: started, finished: Date())
                    }
                    lock.lock(); outcomes.append(outcome); lock.unlock()
                    if pause > 0 { usleep(pause) }
                }
            })
        }
    }

    private var isStopping: Bool { lock.lock(); defer { lock.unlock() }; return stopping }

    /// Outcomes so far.
    var results: [Outcome] { lock.lock(); defer { lock.unlock() }; return outcomes }
    var count: Int { lock.lock(); defer { lock.unlock() }; return outcomes.count }
    var failures: [Outcome] { results.filter { $0.status != 200 } }

    /// Waits until at least `n` more requests have finished (bounded by `timeout`).
    @discardableResult
    func waitForMore(_ n: Int, timeout: TimeInterval = 60) -> Bool {
        let target = count + n
        let deadline = Date().addingTimeInterval(timeout)
        while count < target, Date() < deadline { usleep(5_000) }
        return count >= target
    }

    /// Stops the threads and waits for them (once; later calls return at once).
    func stop() {
        lock.lock()
        stopping = true
        let waiting = threads
        threads = []
        lock.unlock()
        for thread in waiting { _ = try? thread.value(timeout: 60) }
    }

    /// A short description of the failures, for test messages.
    func failureSummary(limit: Int = 5) -> String {
        let failed = failures
        return "\(failed.count) failed of \(count): " + failed.prefix(limit).map { "\($0.status) \(($0.error ?? "").prefix(300))" }.joined(separator: " | ")
    }
}
