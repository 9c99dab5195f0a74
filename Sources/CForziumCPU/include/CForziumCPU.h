#ifndef CFORZIUM_CPU_H
#define CFORZIUM_CPU_H
/// 1 when the CPU and OS support AVX2 and FMA (what the SIMD kernels are compiled for), else 0.
int forzium_cpu_has_avx2_fma(void);

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
