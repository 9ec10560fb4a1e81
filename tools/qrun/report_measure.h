/* report_measure.h - the measurement phases of `qrun bench report` over the
 * engine API (single requests, concurrency sweep, context ladder, memory,
 * environment), filling a struct qr_report (core/include/qrun/qr_report.h). */
#ifndef QRUN_REPORT_MEASURE_H
#define QRUN_REPORT_MEASURE_H

#include "qrun/qr_report.h"
#include "qrun/qrun.h"

struct qr_report_plan_opts {
    bool quick;                 /* reduced ladder scaled to max_model_len */
    const char *label;          /* NULL: "<device> / <backend>" */
    int max_num_seqs;           /* the engine's limit (caps the sweep) */
    int max_batched_tokens;
};

/* Runs every phase on the engine (which must not have its thread started)
 * and fills *r.  Returns 0, or -1 after printing an error. */
int qr_report_measure(struct qr_engine *e, const struct qr_engine_opts *eo, const struct qr_report_plan_opts *po,
                      struct qr_report *r);

/* "abc1234" or "abc1234-dirty" from git (cwd, then the executable's directory), or "unknown" */
void qr_report_commit(char *buf, size_t cap);

#endif
