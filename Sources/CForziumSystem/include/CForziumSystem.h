#ifndef CFORZIUM_SYSTEM_H
#define CFORZIUM_SYSTEM_H

/// Serves allocations of `mmap_threshold` bytes or more with their own mappings (unmapped on free; fixing the
/// threshold also stops glibc from raising it) and returns free heap above `trim_threshold` bytes to the system.
/// glibc only (mallopt); returns 0 elsewhere or on failure.
int forzium_tune_malloc(int mmap_threshold, int trim_threshold);

#include <spawn.h>

/// Makes a spawn close every descriptor from `low` up in the child (glibc 2.34+ `posix_spawn_file_actions_addclosefrom_np`).
/// Returns 0 on success, an errno value on failure, ENOSYS where the C library lacks it.
int forzium_spawn_close_from(posix_spawn_file_actions_t *actions, int low);

#endif
