#include "CForziumSystem.h"

// Any libc header first: glibc's <features.h> is what defines __GLIBC__ (without it the test below was always false
// and the tuning a silent no-op).
#include <stdlib.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

int forzium_tune_malloc(int mmap_threshold, int trim_threshold) {
#if defined(__GLIBC__)
    return mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1 && mallopt(M_TRIM_THRESHOLD, trim_threshold) == 1;
#else
    (void)mmap_threshold;
    (void)trim_threshold;
    return 0;
#endif
}
