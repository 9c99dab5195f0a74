#define _GNU_SOURCE
#include "CForziumCPU.h"
#include <unistd.h>
#include <stdio.h>
#include <string.h>
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

#if defined(__linux__)
/// The first line of `path` into `buffer` (without its newline); 0 when it cannot be read.
static int forzium_first_line(const char *path, char *buffer, size_t size) {
    FILE *file = fopen(path, "r");
    if (!file) return 0;
    char *got = fgets(buffer, (int)size, file);
    fclose(file);
    if (!got) return 0;
    buffer[strcspn(buffer, "\n")] = 0;
    return 1;
}

/// CPUs allowed by the quota files of the cgroup directory `dir` (cgroup v2 `cpu.max`, or v1 `cpu.cfs_quota_us` and
/// `cpu.cfs_period_us`), rounded up; 0 when it sets no quota.
static int forzium_quota_in(const char *dir, int v2) {
    char path[4096], line[128];
    long long quota = 0, period = 0;
    if (v2) {
        if (snprintf(path, sizeof path, "%s/cpu.max", dir) >= (int)sizeof path) return 0;
        if (!forzium_first_line(path, line, sizeof line)) return 0;
        if (strncmp(line, "max", 3) == 0) return 0;
        if (sscanf(line, "%lld %lld", &quota, &period) != 2) return 0;
    } else {
        if (snprintf(path, sizeof path, "%s/cpu.cfs_quota_us", dir) >= (int)sizeof path) return 0;
        if (!forzium_first_line(path, line, sizeof line) || sscanf(line, "%lld", &quota) != 1) return 0;
        if (snprintf(path, sizeof path, "%s/cpu.cfs_period_us", dir) >= (int)sizeof path) return 0;
        if (!forzium_first_line(path, line, sizeof line) || sscanf(line, "%lld", &period) != 1) return 0;
    }
    if (quota <= 0 || period <= 0) return 0;
    long long cpus = (quota + period - 1) / period;
    return cpus > 4096 ? 4096 : (int)cpus;
}

/// The smallest quota set on the cgroup `path` under the hierarchy mounted at `mount`, or on any of its ancestors
/// up to the mount itself (a limit on a parent slice binds its children too); 0 when none is set.
static int forzium_quota_along(const char *mount, const char *path, int v2) {
    char dir[4096];
    if (snprintf(dir, sizeof dir, "%s%s", mount, path) >= (int)sizeof dir) return 0;
    size_t floor = strlen(mount);
    int best = 0;
    while (1) {
        size_t length = strlen(dir);
        while (length > floor && dir[length - 1] == '/') dir[--length] = 0;
        int cpus = forzium_quota_in(dir, v2);
        if (cpus > 0 && (best == 0 || cpus < best)) best = cpus;
        if (length <= floor) break;
        char *slash = strrchr(dir + floor, '/');
        if (!slash) { dir[floor] = 0; continue; }
        *slash = 0;
    }
    return best;
}

static int forzium_min_quota(int a, int b) { return a == 0 ? b : (b == 0 || a < b ? a : b); }
#endif

int forzium_cpu_quota(const char *root) {
#if defined(__linux__)
    char path[4096], line[4096], mount[4096];
    int best = 0;
    if (snprintf(path, sizeof path, "%s/proc/self/cgroup", root) >= (int)sizeof path) return 0;
    FILE *file = fopen(path, "r");
    if (file) {
        while (fgets(line, sizeof line, file)) {
            line[strcspn(line, "\n")] = 0;
            // "<id>:<controllers>:<path>"; cgroup v2 is "0::<path>".
            char *first = strchr(line, ':');
            if (!first) continue;
            char *second = strchr(first + 1, ':');
            if (!second) continue;
            *second = 0;
            const char *controllers = first + 1, *cgroup = second + 1;
            if (*controllers == 0) {
                snprintf(mount, sizeof mount, "%s/sys/fs/cgroup", root);
                best = forzium_min_quota(best, forzium_quota_along(mount, cgroup, 1));
                continue;
            }
            // A v1 hierarchy with the cpu controller ("cpu", "cpu,cpuacct", ...): mounted under either name.
            int hasCPU = 0;
            char names[4096];
            snprintf(names, sizeof names, "%s", controllers);
            for (char *token = strtok(names, ","); token; token = strtok(NULL, ",")) {
                if (strcmp(token, "cpu") == 0) hasCPU = 1;
            }
            if (!hasCPU) continue;
            const char *mounts[] = {"cpu", "cpu,cpuacct", "cpuacct,cpu"};
            for (size_t i = 0; i < sizeof mounts / sizeof mounts[0]; i++) {
                snprintf(mount, sizeof mount, "%s/sys/fs/cgroup/%s", root, mounts[i]);
                best = forzium_min_quota(best, forzium_quota_along(mount, cgroup, 0));
            }
        }
        fclose(file);
    }
    // Inside a container the process's own cgroup is usually the namespace root, which the paths above reach; a
    // runtime without a cgroup namespace still mounts the container's cgroup at the root (what SwiftNIO reads too).
    snprintf(mount, sizeof mount, "%s/sys/fs/cgroup", root);
    best = forzium_min_quota(best, forzium_quota_in(mount, 1));
    snprintf(mount, sizeof mount, "%s/sys/fs/cgroup/cpu", root);
    best = forzium_min_quota(best, forzium_quota_in(mount, 0));
    return best;
#else
    (void)root;
    return 0;
#endif
}

int forzium_cpu_available(void) {
    int n = 0;
#if defined(__linux__)
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) n = CPU_COUNT(&set);
#endif
    if (n <= 0) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        n = online > 0 ? (int)online : 1;
    }
    int quota = forzium_cpu_quota("");
    return quota > 0 && quota < n ? quota : n;
}
