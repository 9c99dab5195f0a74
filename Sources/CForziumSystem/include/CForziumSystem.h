#ifndef CFORZIUM_SYSTEM_H
#define CFORZIUM_SYSTEM_H

/// Serves allocations of `mmap_threshold` bytes or more with their own mappings (unmapped on free; fixing the
/// threshold also stops glibc from raising it) and returns free heap above `trim_threshold` bytes to the system.
/// glibc only (mallopt); returns 0 elsewhere or on failure.
int forzium_tune_malloc(int mmap_threshold, int trim_threshold);

#endif
