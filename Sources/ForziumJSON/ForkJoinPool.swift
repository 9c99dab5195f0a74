import CForziumCPU
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The process's fork–join pool: persistent worker threads for jobs split into numbered parts. The SIMD kernels and
/// the parallel JSON writer and parser all run on it (one pool per thread count, created on first use), so no call
/// starts a thread. (ForziumRPC's `WorkerPool` is something else: the engine's request workers.)
///
/// - Workers are started once and live for the process. Between jobs a worker spins for a short time
///   (so back-to-back kernels hand off in about a microsecond), then sleeps on a condition variable
///   (so an idle engine uses no CPU).
/// - The calling thread works on the job too; parts are claimed dynamically from an atomic counter.
/// - One job at a time: when another thread already has the pool (the SIMD engine runs requests in
///   parallel), `run` does every part inline on the caller's thread instead of waiting — the cores are
///   busy anyway, and it can never deadlock.
package final class ForkJoinPool: @unchecked Sendable {
    /// One fork–join job. The body is only called for claimed parts `< parts`, and the submitter waits
    /// until all parts are done, so the (non-escaping) body is never called after `run` returns.
    final class Job: @unchecked Sendable {
        let parts: Int
        var body: ((Int) -> Void)?
        let next = Atomic<Int>(0)
        let done = Atomic<Int>(0)

        init(parts: Int, body: @escaping (Int) -> Void) {
            self.parts = parts
            self.body = body
        }

        /// Claims and runs parts until none are left.
        func work() {
            while true {
                let part = next.wrappingAdd(1, ordering: .relaxed).oldValue
                if part >= parts { return }
                body.unsafelyUnwrapped(part)
                done.wrappingAdd(1, ordering: .releasing)
            }
        }
    }

    /// Threads that may work on a job, including the caller.
    package let threads: Int
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private let generation = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    /// Guarded by `mutex`.
    private var current: Job?
    /// Guarded by `mutex`.
    private var sleepers = 0
    /// How long an idle worker spins before it sleeps: enough for back-to-back kernels (a matmul's blocks follow one
    /// another within microseconds); longer spins only took CPU from the other end of a pipe (200 µs cost a 512² stdio
    /// round trip about 3 ms, with no kernel measurably faster).
    private let spinNanoseconds: UInt64 = 50_000

    private init(threads: Int) {
        self.threads = max(1, threads)
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        condition = .allocate(capacity: 1)
        condition.initialize(to: pthread_cond_t())
        pthread_cond_init(condition, nil)
        for _ in 1..<self.threads { startWorker() }
    }

    private static let pools = Mutex<[Int: ForkJoinPool]>([:])

    /// The process-wide pool with `threads` threads (created on first use; workers never exit).
    package static func shared(threads: Int) -> ForkJoinPool {
        pools.withLock { pools in
            if let pool = pools[threads] { return pool }
            let pool = ForkJoinPool(threads: threads)
            pools[threads] = pool
            return pool
        }
    }

    /// Part `part` of `0 ..< count` cut into `parts` contiguous ranges (the one work-splitting rule of every parallel
    /// kernel and writer): bounds at `count · part / parts`, rounded down to a multiple of `granule`; the last part ends
    /// at `count`. Ranges may be empty when `count` is small.
    @inline(__always)
    package static func range(part: Int, of parts: Int, count: Int, granule: Int = 1) -> Range<Int> {
        let lower = count * part / parts / granule * granule
        let upper = part == parts - 1 ? count : count * (part + 1) / parts / granule * granule
        return lower ..< max(lower, upper)
    }

    /// Runs `body(part, range)` for each non-empty range of `ForkJoinPool.range(part:of:count:granule:)`, on the pool.
    package func forEachRange(_ count: Int, parts: Int, granule: Int = 1, _ body: (_ part: Int, _ range: Range<Int>) -> Void) {
        run(parts: parts) { part in
            let range = Self.range(part: part, of: parts, count: count, granule: granule)
            if !range.isEmpty { body(part, range) }
        }
    }

    /// Runs `body(0) … body(parts - 1)`, in parallel when the pool is free, and returns when all are done.
    package func run(parts: Int, _ body: (Int) -> Void) {
        if parts <= 0 { return }
        if parts == 1 || threads == 1
            || !busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged {
            for part in 0..<parts { body(part) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let job = Job(parts: parts, body: body)
            pthread_mutex_lock(mutex)
            current = job
            generation.wrappingAdd(1, ordering: .releasing)
            if sleepers > 0 { pthread_cond_broadcast(condition) }
            pthread_mutex_unlock(mutex)

            job.work()
            var spins = 0
            while job.done.load(ordering: .acquiring) < parts {
                spins += 1
                if spins < 4096 { forzium_cpu_relax() } else { sched_yield() }
            }
            pthread_mutex_lock(mutex)
            current = nil
            pthread_mutex_unlock(mutex)
            job.body = nil
        }
        busy.store(false, ordering: .releasing)
    }

    private func startWorker() {
        let context = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        let status = pthread_create(&thread, nil, { raw in
            #if canImport(Darwin)
            let pool = Unmanaged<ForkJoinPool>.fromOpaque(raw).takeRetainedValue()
            #else
            let pool = Unmanaged<ForkJoinPool>.fromOpaque(raw!).takeRetainedValue()
            #endif
            pool.workerLoop()
        }, context)
        if status == 0 {
            pthread_detach(thread)
        } else {
            Unmanaged<ForkJoinPool>.fromOpaque(context).release()
        }
    }

    private static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    private func workerLoop() -> Never {
        var seen = generation.load(ordering: .acquiring)
        while true {
            // Spin for a while, then sleep until a new job is published.
            if generation.load(ordering: .acquiring) == seen {
                let deadline = Self.now() &+ spinNanoseconds
                var spins = 0
                while generation.load(ordering: .acquiring) == seen {
                    forzium_cpu_relax()
                    spins &+= 1
                    if spins & 255 == 0 && Self.now() > deadline {
                        pthread_mutex_lock(mutex)
                        while generation.load(ordering: .acquiring) == seen {
                            sleepers += 1
                            pthread_cond_wait(condition, mutex)
                            sleepers -= 1
                        }
                        pthread_mutex_unlock(mutex)
                    }
                }
            }
            pthread_mutex_lock(mutex)
            seen = generation.load(ordering: .acquiring)
            let job = current
            pthread_mutex_unlock(mutex)
            job?.work()
        }
    }
}
