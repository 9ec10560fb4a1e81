/* fuzz_util.h - shared by the libFuzzer targets: silence the library's log callback once per process (errors are
 * the expected outcome of most inputs; printing them would slow the fuzzer down). */
#ifndef QRUN_FUZZ_UTIL_H
#define QRUN_FUZZ_UTIL_H

#include "qrun/qr_types.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void fuzz_quiet_log(enum qr_log_level lvl, const char *msg, void *user) { (void)lvl, (void)msg, (void)user; }

static inline void fuzz_quiet_once(void)
{
    static int done;
    if (!done) {
        qr_log_set_callback(fuzz_quiet_log, NULL);
        done = 1;
    }
}

/* an exact-size heap copy of the input, not NUL-terminated on purpose: a read past the end is an ASan error; NULL
 * where there is no memory (the input is then skipped) */
static inline char *fuzz_copy(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (buf && size)
        memcpy(buf, data, size);
    return buf;
}

#endif
