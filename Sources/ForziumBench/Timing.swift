import ForziumTesting

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Monotonic clock in seconds.
func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// CPU seconds this process has used (all threads). With one thread, a figure that time-sharing with other
/// processes on a busy machine barely moves (it still counts cache misses they cause).
func processCPUTime() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Median seconds per call of `body`: repeats until `minTime` has passed (at least `minRuns` runs).
/// `clock` measures each call (default: wall time).
func medianSeconds(minRuns: Int = 5, minTime: Double = 1.0, clock: () -> Double = now, _ body: () -> Void) -> Double {
    body() // warm-up
    var samples: [Double] = []
    let start = now()
    while samples.count < minRuns || now() - start < minTime {
        let t0 = clock()
        body()
        samples.append(clock() - t0)
        if samples.count >= 1000 { break }
    }
    samples.sort()
    return samples[samples.count / 2]
}


/// Uniform random doubles in [-1, 1).
func randomDoubles(_ count: Int, seed: UInt64) -> [Double] {
    var rng = SplitMix64(seed: seed)
    return (0 ..< count).map { _ in Double.random(in: -1 ..< 1, using: &rng) }
}
