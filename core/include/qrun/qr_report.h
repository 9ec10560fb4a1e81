/* qr_report.h - the hardware report of `qrun bench report`: the measured
 * results as a plain struct, and its renderings (report.json, report.md,
 * report.html with inline SVG charts).  The measurement itself lives in the
 * CLI (tools/qrun/report_measure.c); everything here is pure formatting and
 * parsing, so it is tested with synthetic data (tests/test_report_render.c).
 * The JSON layout is documented by docs/report-schema.json. */
#ifndef QRUN_QR_REPORT_H
#define QRUN_QR_REPORT_H

#include "qr_types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define QR_REPORT_SCHEMA "qrun-report/1"
#define QR_REPORT_MAX_SINGLE 8
#define QR_REPORT_MAX_SWEEP 16
#define QR_REPORT_MAX_LADDER 8

/* one timed request on an otherwise idle engine */
struct qr_report_single {
    int prompt, gen;
    bool ran;                       /* false: skipped (see note) */
    double ttft_ms;
    double decode_tok_s;            /* output tokens after the first / their time */
    double eff_gbs;                 /* (weights + KV read per decode token) * decode_tok_s */
    double bytes_per_token;         /* the numerator above */
    double peak_vram_bytes;         /* device memory in use at the peak of the run (0: unknown) */
    double vram_needed_bytes;       /* weights + activations + overhead + the KV blocks this request uses */
    char note[96];
};

/* `conc` requests added at once */
struct qr_report_sweep {
    int conc, prompt, gen;
    double ttft_mean_ms, ttft_p99_ms;
    double tpot_mean_ms, tpot_p99_ms;
    double total_tok_s;             /* (prompt + output tokens) / wall time */
    double output_tok_s;            /* output tokens / wall time */
    double wall_s;
};

/* one rung of the context ladder */
struct qr_report_ctx {
    int context;                    /* prompt + output tokens */
    bool fits;                      /* within max_model_len and the KV pool */
    bool timed;
    int prompt, gen;
    double ttft_ms, decode_tok_s, total_s;
    char note[96];
};

struct qr_report {
    char schema[32];                /* QR_REPORT_SCHEMA */
    char label[128];                /* short name in comparisons: "<gpu> / <backend>" */
    char created[32];               /* ISO-8601 UTC */
    bool quick;
    /* environment */
    char device[128], driver[256], backend[32], commit[64], host[64];
    /* model */
    char model_dir[256], arch[16], dtype[16], kv_dtype[16];
    int layers, hidden, heads, kv_heads, head_dim, ffn, vocab, model_max_pos;
    double params;                  /* parameter count */
    /* engine */
    int max_model_len, kv_blocks, block_size, max_num_seqs, max_batched_tokens;
    double kv_bytes_per_token;
    double copy_bw_gbs;             /* device copy bandwidth (read + write); 0: not measured */
    /* memory (bytes) */
    double mem_weights, mem_kv, mem_activations, mem_overhead, mem_device_total, mem_peak_used;
    /* results */
    int n_single;
    struct qr_report_single single[QR_REPORT_MAX_SINGLE];
    int n_sweep;
    struct qr_report_sweep sweep[QR_REPORT_MAX_SWEEP];
    int sweep_prompt, sweep_gen;
    int max_conc_ttft_1s;           /* largest concurrency with mean TTFT < 1 s (0: none) */
    char sweep_note[128];
    int n_ladder;
    struct qr_report_ctx ladder[QR_REPORT_MAX_LADDER];
    int longest_context_fits;       /* largest ladder rung that fits (0: none) */
    double total_time_s;
};

void qr_report_init(struct qr_report *r);

/* report.json text (malloc'd, NUL-terminated).  n == 1: one report object;
 * n > 1: {"schema": ..., "comparison": true, "reports": [...]}. */
qr_status qr_report_to_json(const struct qr_report *reps, int n, char **out);
/* Parses a report.json (a single report or a comparison); *out is a malloc'd
 * array of *n reports.  Errors name the field. */
qr_status qr_report_from_json(const char *json, size_t len, struct qr_report **out, int *n);

/* Markdown and self-contained HTML (inline SVG charts: TTFT and throughput
 * against concurrency, memory breakdown; more reports share the charts). */
qr_status qr_report_to_md(const struct qr_report *reps, int n, char **out);
qr_status qr_report_to_html(const struct qr_report *reps, int n, char **out);

/* Writes report.json, report.md and report.html into dir (created if needed). */
qr_status qr_report_write_dir(const char *dir, const struct qr_report *reps, int n);

/* mean and p-th percentile (0..100, nearest rank) of v[0..n) (v is sorted in place) */
double qr_report_mean(const double *v, int n);
double qr_report_percentile(double *v, int n, double p);

#ifdef __cplusplus
}
#endif
#endif
