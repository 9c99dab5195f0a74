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

/// Number of CPUs this process may run on (sched affinity), at least 1.
int forzium_cpu_available(void);
#endif
