import CForziumSystem

/// Allocator settings for the processes on both ends of the engine pipe.
public enum MemoryTuning {
    /// Keeps buffers of up to 64 MiB in the heap instead of giving each its own `mmap`: by default glibc maps every
    /// allocation over 128 KiB afresh and unmaps it on free, so each request's matrices, texts and result paid for
    /// thousands of page faults, page zeroing and a TLB shootdown per unmap (measured: 2–3 ms of a 512² matmul
    /// request in each process). Up to 128 MiB of freed heap is kept for the next request rather than returned at once.
    /// Call once at start-up; a no-op where glibc is not the allocator.
    public static func keepLargeBuffersWarm() {
        _ = forzium_tune_malloc(64 << 20, 128 << 20)
    }
}
