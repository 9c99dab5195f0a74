#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Dedicated threads (not the Swift concurrency pool) that run submitted jobs, with a bound on how many jobs may be
/// queued or running at once: `submit` blocks while the bound is reached, which is how the serve loop applies
/// back-pressure (it stops reading input until a slot frees up).
///
/// Idle workers and a blocked submitter wait on separate conditions and are woken one at a time (a job wakes one
/// worker; a finished job wakes the submitter), so a request never wakes every idle thread of the engine.
final class WorkerPool: @unchecked Sendable {
    private let lock: ConditionLock
    private let jobReady: LockCondition
    private let slotFree: LockCondition
    private var jobs: [@Sendable () -> Void] = []
    private var head = 0
    private var pending = 0
    private var closing = false
    private var threads: [pthread_t] = []
    /// Most jobs queued or running at once.
    let limit: Int

    /// - Parameters:
    ///   - threads: worker threads started now.
    ///   - limit: most jobs queued or running at once (at least `threads` is sensible).
    init(threads: Int, limit: Int) {
        let lock = ConditionLock()
        self.lock = lock
        jobReady = LockCondition(lock)
        slotFree = LockCondition(lock)
        self.limit = max(1, limit)
        for _ in 0..<max(1, threads) {
            threads_append(startThread { [unowned self] in self.work() })
        }
    }

    private func threads_append(_ thread: pthread_t) { threads.append(thread) }

    /// Queues `job`, first waiting while `limit` jobs are queued or running.
    func submit(_ job: @escaping @Sendable () -> Void) {
        lock.lock()
        while pending >= limit { slotFree.wait() }
        pending += 1
        jobs.append(job)
        jobReady.signal()
        lock.unlock()
    }

    /// True when no job is queued or running (every job submitted so far has finished).
    var isIdle: Bool { lock.withLock { pending == 0 } }

    /// Waits until every submitted job has finished, then stops the threads.
    func finish() {
        lock.lock()
        closing = true
        jobReady.broadcast()
        lock.unlock()
        for thread in threads { pthread_join(thread, nil) }
        threads.removeAll()
    }

    private func work() {
        lock.lock()
        while true {
            if head < jobs.count {
                let job = jobs[head]
                head += 1
                if head == jobs.count {
                    jobs.removeAll(keepingCapacity: true)
                    head = 0
                }
                lock.unlock()
                job()
                lock.lock()
                pending -= 1
                slotFree.signal()
            } else if closing {
                break
            } else {
                jobReady.wait()
            }
        }
        lock.unlock()
    }
}

private final class ThreadBody {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

/// Starts a joinable pthread running `body`.
private func startThread(_ body: @escaping () -> Void) -> pthread_t {
    let context = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    #if canImport(Glibc)
    var thread = pthread_t()
    let status = pthread_create(&thread, nil, { raw in
        Unmanaged<ThreadBody>.fromOpaque(raw!).takeRetainedValue().body()
        return nil
    }, context)
    precondition(status == 0, "pthread_create failed: \(status)")
    return thread
    #else
    var thread: pthread_t?
    let status = pthread_create(&thread, nil, { raw in
        Unmanaged<ThreadBody>.fromOpaque(raw).takeRetainedValue().body()
        return nil
    }, context)
    precondition(status == 0, "pthread_create failed: \(status)")
    return thread!
    #endif
}
