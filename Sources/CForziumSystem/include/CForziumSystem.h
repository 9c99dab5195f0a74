#ifndef CFORZIUM_SYSTEM_H
#define CFORZIUM_SYSTEM_H

/// Serves allocations of up to `mmap_threshold` bytes from the heap (not a fresh mmap each) and keeps up to
/// `trim_threshold` bytes of freed heap for reuse. glibc only (mallopt); returns 0 elsewhere or on failure.
int forzium_tune_malloc(int mmap_threshold, int trim_threshold);

#endif
