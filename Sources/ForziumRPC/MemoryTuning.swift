import CForziumSystem

/// Allocator settings for the processes on both ends of the engine pipe.
public enum MemoryTuning {
    /// Gives every allocation of `threshold` bytes or more (matrices, their texts, results) its own mapping, returned
    /// to the system when it is freed, and trims free heap above `keep` bytes: resident memory then follows the
    /// buffers a process holds (peak ≈ one request's matrices) instead of the sizes it ever freed. glibc's default
    /// raises its mmap threshold to the largest buffer freed so far (up to 32 MiB), after which every arena (one per
    /// thread that allocates, up to 8 per core) keeps a warm, fragmented copy of a request's buffers: a SIMD engine
    /// serving 1024² matmuls settled at ~190 MiB over its idle size, ~8× the matrices, where this gives ~1.15×.
    /// Buffers under 1 MiB (a matmul's row blocks and packing panels) stay in the heap. Call once at start-up;
    /// a no-op where glibc is not the allocator. Returns whether the settings took effect.
    ///
    /// (The earlier setting, a 64 MiB threshold and 128 MiB of free heap kept to keep buffers warm, never took effect:
    /// the shim's glibc test saw no `__GLIBC__` before a libc header. Taking effect, it would have kept the 8×.)
    @discardableResult
    public static func returnLargeBuffers(threshold: Int = 1 << 20, keep: Int = 16 << 20) -> Bool {
        forzium_tune_malloc(Int32(clamping: threshold), Int32(clamping: keep)) == 1
    }
}
