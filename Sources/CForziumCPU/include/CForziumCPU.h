#ifndef CFORZIUM_CPU_H
#define CFORZIUM_CPU_H
/// 1 when the CPU and OS support AVX2 and FMA (what the SIMD kernels are compiled for), else 0.
int forzium_cpu_has_avx2_fma(void);
#endif
