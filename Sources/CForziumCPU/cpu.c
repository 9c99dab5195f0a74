#define _GNU_SOURCE
#include "CForziumCPU.h"
#include <unistd.h>
#if defined(__linux__)
#include <sched.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

/// XCR0 (which register state the OS saves and restores), or 0 when the OS has not enabled XSAVE.
static unsigned long long forzium_xcr0(void) {
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    if (!(ecx & (1u << 27))) return 0; // OSXSAVE: xgetbv is usable
    unsigned int lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

static int forzium_leaf7_ebx(unsigned int *ebx) {
    unsigned int eax, ecx, edx;
    if (__get_cpuid_max(0, 0) < 7) return 0;
    __cpuid_count(7, 0, eax, *ebx, ecx, edx);
    return 1;
}
#endif

int forzium_cpu_has_avx2_fma(void) {
#if defined(__x86_64__) || defined(__i386__)
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    // What `-target-cpu haswell` lets the compiler use: FMA, AVX, MOVBE, F16C (leaf 1); AVX2, BMI1, BMI2 (leaf 7);
    // LZCNT (leaf 0x80000001).
    const unsigned int leaf1 = (1u << 12) | (1u << 22) | (1u << 28) | (1u << 29);
    if ((ecx & leaf1) != leaf1) return 0;
    if ((forzium_xcr0() & 0x6) != 0x6) return 0; // XMM and YMM state
    unsigned int ebx7;
    if (!forzium_leaf7_ebx(&ebx7)) return 0;
    const unsigned int leaf7 = (1u << 3) | (1u << 5) | (1u << 8);
    if ((ebx7 & leaf7) != leaf7) return 0;
    if (!__get_cpuid(0x80000001, &eax, &ebx, &ecx, &edx)) return 0;
    return (ecx >> 5) & 1;
#else
    return 0;
#endif
}

int forzium_cpu_has_avx512(void) {
#if defined(__x86_64__)
    if (!forzium_cpu_has_avx2_fma()) return 0;
    unsigned int ebx7;
    if (!forzium_leaf7_ebx(&ebx7)) return 0;
    const unsigned int f = 1u << 16, dq = 1u << 17, cd = 1u << 28, bw = 1u << 30, vl = 1u << 31;
    if ((ebx7 & (f | dq | cd | bw | vl)) != (f | dq | cd | bw | vl)) return 0;
    return (forzium_xcr0() & 0xE6) == 0xE6; // XMM, YMM, opmask, ZMM_Hi256, Hi16_ZMM
#else
    return 0;
#endif
}

int forzium_cpu_available(void) {
#if defined(__linux__)
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
