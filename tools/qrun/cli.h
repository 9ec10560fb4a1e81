/* cli.h - the qrun command line: one cli_<command>.c per subcommand. */
#ifndef QRUN_CLI_H
#define QRUN_CLI_H

#include "qrun/qrun.h"

#include <stdio.h>

/* subcommands: each returns the process exit code */
int qr_cli_generate(int argc, char **argv);        /* qrun [opts] prompt.txt      (cli_generate.c) */
int qr_cli_ppl(int argc, char **argv);             /* qrun ppl                    (cli_ppl.c) */
int qr_cli_tokenize(int argc, char **argv);        /* qrun tokenize               (cli_tokenize.c) */
int qr_cli_backends(int argc, char **argv);        /* qrun backends               (cli_backends.c) */
int qr_cli_bench_latency(int argc, char **argv);   /* qrun bench latency          (cli_bench_latency.c) */
int qr_cli_bench_throughput(int argc, char **argv);/* qrun bench throughput       (cli_bench_throughput.c) */
int qr_cli_bench_serve(int argc, char **argv);     /* qrun bench serve            (cli_bench_serve.c) */
int qr_cli_bench_report(int argc, char **argv);    /* qrun bench report           (cli_bench_report.c) */
int qr_cli_serve(int argc, char **argv);           /* qrun serve                  (cli_serve.c) */
int qr_cli_plan(int argc, char **argv);            /* qrun plan                   (cli_plan.c) */

/* ---- shared helpers (cli_common.c) ---- */

/* Engine flags shared by generate, ppl, bench and serve:
 *   --backend B  --model DIR  --config INI  --device N  --threads N
 *   --gpu-memory-utilization F  --max-model-len N  --max-num-seqs N
 *   --max-num-batched-tokens N  --enable-prefix-caching / --no-prefix-caching
 *   --block-size N  --kv-dtype f32|f16|bf16  --debug-preempt-every N
 * Returns the number of argv entries consumed at argv[*i] (0: not an engine
 * flag), or -1 after printing an error.  The model dir defaults to the ini's. */
int qr_cli_engine_flag(struct qr_engine_opts *o, int argc, char **argv, int i);
/* Fills o->model_dir from backends.ini when not given; -1 with a message if none. */
int qr_cli_engine_finish(struct qr_engine_opts *o);
/* help text for the flags above */
void qr_cli_engine_usage(FILE *f);

/* Terminal progress bar (only when stderr is a TTY); matches qr_progress_fn. */
void qr_cli_progress(size_t done, size_t total, void *label);

/* strict number parsing: 0 on success, -1 (with a message naming flag) otherwise */
int qr_cli_parse_int(const char *flag, const char *s, long long lo, long long hi, long long *out);
int qr_cli_parse_float(const char *flag, const char *s, double lo, double hi, double *out);

/* device-to-device copy bandwidth over two n-byte buffers, in bytes read +
 * written per second; 0 when it cannot be measured (too little memory). */
double qr_cli_copy_bandwidth(struct qr_device *dev, size_t n);

/* whole file (or "-" for stdin); NUL-terminated; NULL with a message on error */
char *qr_cli_read_file(const char *path, size_t *len);

#endif
