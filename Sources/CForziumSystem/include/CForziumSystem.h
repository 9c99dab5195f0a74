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

/// Length of an HTTP `Date` value in IMF-fixdate form (RFC 9110 §5.6.7), e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
#define FORZIUM_HTTP_DATE_LENGTH 29

/// The current time as an HTTP `Date` value: `FORZIUM_HTTP_DATE_LENGTH` bytes, not NUL-terminated, in a buffer of the
/// calling thread's own, formatted again only when the second changes. Valid on this thread until its next call.
const unsigned char *forzium_http_date_now(void);

/// Writes `seconds` since the epoch as an HTTP `Date` value (`FORZIUM_HTTP_DATE_LENGTH` bytes) to `out`.
void forzium_http_date_format(long long seconds, unsigned char *out);

#endif
