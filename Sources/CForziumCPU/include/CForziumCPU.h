#ifndef CFORZIUM_CPU_H
#define CFORZIUM_CPU_H
/// 1 when the CPU has AVX2 and FMA (and the rest of what `-target-cpu haswell` may use: BMI1/2, LZCNT, MOVBE, F16C)
/// and the OS saves YMM state (cpuid + xgetbv), else 0.
int forzium_cpu_has_avx2_fma(void);

/// 1 when, besides AVX2 + FMA, the CPU has AVX-512 F, CD, DQ, BW and VL (the x86-64-v4 level) and the OS saves the
/// opmask and all 32 ZMM registers (XCR0 bits 1, 2, 5, 6, 7 set), else 0.
int forzium_cpu_has_avx512(void);

/// A spin-wait hint (`pause` on x86-64): lets the sibling hyper-thread run and saves power while spinning.
static inline void forzium_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/// CPUs this process may use: those of its sched affinity, capped by its cgroup CPU quota (v2 `cpu.max`, v1
/// `cpu.cfs_quota_us` / `cpu.cfs_period_us`, rounded up); at least 1. A container limited to 2 CPUs on a 64-core node
/// gets 2, not 64 threads all throttled by the quota.
int forzium_cpu_available(void);

/// The CPUs the cgroup CPU quota of this process allows (the smallest quota on its cgroup, any ancestor, or the
/// hierarchy's root; rounded up), or 0 when none is set. `root` is prepended to every path read: "" for this system,
/// a directory laid out like one (`proc/self/cgroup`, `sys/fs/cgroup/...`) in tests.
int forzium_cpu_quota(const char *root);
#endif
