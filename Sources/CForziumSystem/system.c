#define _GNU_SOURCE  // posix_spawn_file_actions_addclosefrom_np
#include "CForziumSystem.h"

// Any libc header first: glibc's <features.h> is what defines __GLIBC__ (without it the test below was always false
// and the tuning a silent no-op).
#include <stdlib.h>
#include <errno.h>

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

int forzium_spawn_close_from(posix_spawn_file_actions_t *actions, int low) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    return posix_spawn_file_actions_addclosefrom_np(actions, low);
#else
    (void)actions;
    (void)low;
    return ENOSYS;
#endif
}
