/* fuzz_util.h - shared by the libFuzzer targets: silence the library's log callback once per process (errors are
 * the expected outcome of most inputs; printing them would slow the fuzzer down). */
#ifndef QRUN_FUZZ_UTIL_H
#define QRUN_FUZZ_UTIL_H

#include "qrun/qr_types.h"

static void fuzz_quiet_log(enum qr_log_level lvl, const char *msg, void *user) { (void)lvl, (void)msg, (void)user; }

static inline void fuzz_quiet_once(void)
{
    static int done;
    if (!done) {
        qr_log_set_callback(fuzz_quiet_log, NULL);
        done = 1;
    }
}

#endif
