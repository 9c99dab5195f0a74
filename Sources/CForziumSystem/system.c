#define _GNU_SOURCE  // posix_spawn_file_actions_addclosefrom_np
#include "CForziumSystem.h"

// Any libc header first: glibc's <features.h> is what defines __GLIBC__ (without it the test below was always false
// and the tuning a silent no-op).
#include <stdlib.h>
#include <errno.h>
#include <time.h>

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

// Each thread keeps its own copy: the event loops that answer requests never share it, so no lock, and a thread-local
// read here costs a few instructions where a pthread key costs a call and a lookup.
static _Thread_local time_t date_second = (time_t)-1;
static _Thread_local unsigned char date_text[FORZIUM_HTTP_DATE_LENGTH];

static void put_two(unsigned char *at, int value) {
    at[0] = (unsigned char)('0' + value / 10);
    at[1] = (unsigned char)('0' + value % 10);
}

void forzium_http_date_format(long long seconds, unsigned char *out) {
    static const char days[] = "SunMonTueWedThuFriSat";
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    time_t second = (time_t)seconds;
    struct tm parts = {0};
    if (gmtime_r(&second, &parts) == NULL) {
        second = 0;  // beyond what struct tm holds: the epoch rather than garbage
        gmtime_r(&second, &parts);
    }
    int year = parts.tm_year + 1900;
    if (year < 0) year = 0;
    if (year > 9999) year = 9999;  // IMF-fixdate has four year digits
    unsigned char *at = out;
    for (int i = 0; i < 3; i++) *at++ = (unsigned char)days[parts.tm_wday * 3 + i];
    *at++ = ',';
    *at++ = ' ';
    put_two(at, parts.tm_mday); at += 2;
    *at++ = ' ';
    for (int i = 0; i < 3; i++) *at++ = (unsigned char)months[parts.tm_mon * 3 + i];
    *at++ = ' ';
    put_two(at, year / 100); put_two(at + 2, year % 100); at += 4;
    *at++ = ' ';
    put_two(at, parts.tm_hour); at += 2;
    *at++ = ':';
    put_two(at, parts.tm_min); at += 2;
    *at++ = ':';
    put_two(at, parts.tm_sec); at += 2;
    *at++ = ' ';
    *at++ = 'G';
    *at++ = 'M';
    *at++ = 'T';
}

const unsigned char *forzium_http_date_now(void) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (now.tv_sec != date_second) {
        forzium_http_date_format((long long)now.tv_sec, date_text);
        date_second = now.tv_sec;
    }
    return date_text;
}
