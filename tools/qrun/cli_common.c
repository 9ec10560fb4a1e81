/* cli_common.c - engine flags, number parsing, progress bar, file reading. */
#include "cli.h"
#include "qrun/qr_registry.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

int qr_cli_parse_int(const char *flag, const char *s, long long lo, long long hi, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || !*s || *end || errno == ERANGE || v < lo || v > hi) {
        fprintf(stderr, "qrun: %s expects an integer in [%lld, %lld], got '%s'\n", flag, lo, hi, s ? s : "");
        return -1;
    }
    *out = v;
    return 0;
}

int qr_cli_parse_float(const char *flag, const char *s, double lo, double hi, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || !*s || *end || errno == ERANGE || isnan(v) || v < lo || v > hi) {
        fprintf(stderr, "qrun: %s expects a number in [%g, %g], got '%s'\n", flag, lo, hi, s ? s : "");
        return -1;
    }
    *out = v;
    return 0;
}

void qr_cli_engine_usage(FILE *f)
{
    fprintf(f,
            "engine options:\n"
            "  --backend cpu|cuda|vulkan|auto   backend (default: auto)\n"
            "  --model DIR                      Hugging Face model directory (default: backends.ini's)\n"
            "  --config INI                     backends.ini to use\n"
            "  --device N                       device index\n"
            "  --threads N                      CPU worker threads (0: all cores)\n"
            "  --gpu-memory-utilization F       fraction of device memory to use (default 0.90)\n"
            "  --max-model-len N                cap the context length\n"
            "  --max-num-seqs N                 sequences per step (default 256)\n"
            "  --max-num-batched-tokens N       tokens per step (default 8192), decodes in the decode\n"
            "                                   budget not counted\n"
            "  --decode-budget N                decode tokens per step on top of that (default: max-num-seqs,\n"
            "                                   so decodes never split a prompt; 0: none, as in vLLM)\n"
            "  --decode-pause-ms N              prefill first: running decodes wait up to N ms while waiting\n"
            "                                   prompts are prefilled (default 2000; 0: decodes in every step)\n"
            "  --enable-prefix-caching / --no-prefix-caching\n"
            "  --block-size N                   tokens per KV block (default 64)\n"
            "  --kv-dtype f32|f16|bf16|fp8      KV cache precision (fp8: E4M3, CPU and CUDA backends)\n");
}

int qr_cli_engine_flag(struct qr_engine_opts *o, int argc, char **argv, int i)
{
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    long long n;
    double d;
#define NEED_VALUE() do { if (!v) { fprintf(stderr, "qrun: %s needs a value\n", a); return -1; } } while (0)
    if (!strcmp(a, "--backend")) {
        NEED_VALUE();
        if (strcmp(v, "cpu") && strcmp(v, "cuda") && strcmp(v, "vulkan") && strcmp(v, "auto")) {
            fprintf(stderr, "qrun: --backend must be cpu, cuda, vulkan or auto, got '%s'\n", v);
            return -1;
        }
        o->backend = v;
        return 2;
    }
    if (!strcmp(a, "--model") || !strcmp(a, "-m")) { NEED_VALUE(); o->model_dir = v; return 2; }
    if (!strcmp(a, "--config")) { NEED_VALUE(); o->config_path = v; return 2; }
    if (!strcmp(a, "--device")) {
        NEED_VALUE();
        if (qr_cli_parse_int(a, v, 0, 1024, &n)) return -1;
        o->device_index = (int)n;
        return 2;
    }
    if (!strcmp(a, "--threads") || !strcmp(a, "-t")) {
        NEED_VALUE();
        if (qr_cli_parse_int(a, v, 0, 4096, &n)) return -1;
        o->n_threads = (int)n;
        return 2;
    }
    if (!strcmp(a, "--gpu-memory-utilization")) {
        NEED_VALUE();
        if (qr_cli_parse_float(a, v, 0.01, 1.0, &d)) return -1;
        o->gpu_mem_util = d;
        return 2;
    }
    if (!strcmp(a, "--max-model-len")) {
        NEED_VALUE();
        if (qr_cli_parse_int(a, v, 1, 1 << 30, &n)) return -1;
        o->max_model_len = (int)n;
        return 2;
    }
    if (!strcmp(a, "--max-num-seqs")) {
        NEED_VALUE();
        if (qr_cli_parse_int(a, v, 1, 65536, &n)) return -1;
        o->max_num_seqs = (int)n;
        return 2;
    }
    if (!strcmp(a, "--max-num-batched-tokens")) {
        NEED_VALUE();
        if (qr_cli_parse_int(a, v, 1, 1 << 20, &n)) return -1;
        o->max_num_batched_tokens = (int)n;
        return 2;
    }
    if (!strcmp(a, "--decode-budget")) {
        NEED_VALUE();
        if (qr_cli_parse_int(a, v, 0, 65536, &n)) return -1;
        o->decode_budget = n == 0 ? -1 : (int)n;
        return 2;
    }
    if (!strcmp(a, "--decode-pause-ms")) {
        NEED_VALUE();
        if (qr_cli_parse_int(a, v, 0, 3600000, &n)) return -1;
        o->decode_pause_ms = n == 0 ? -1 : (int)n;
        return 2;
    }
    if (!strcmp(a, "--enable-prefix-caching")) { o->enable_prefix_caching = true; return 1; }
    if (!strcmp(a, "--no-prefix-caching") || !strcmp(a, "--no-enable-prefix-caching")) {
        o->enable_prefix_caching = false;
        return 1;
    }
    if (!strcmp(a, "--block-size")) {
        NEED_VALUE();
        if (qr_cli_parse_int(a, v, 1, 1024, &n) || (n & (n - 1))) {
            fprintf(stderr, "qrun: --block-size must be a power of two in [1, 1024]\n");
            return -1;
        }
        o->block_size = (int)n;
        return 2;
    }
    if (!strcmp(a, "--kv-dtype")) {
        NEED_VALUE();
        if (!strcasecmp(v, "f32")) o->kv_dtype = QR_DTYPE_F32;
        else if (!strcasecmp(v, "f16")) o->kv_dtype = QR_DTYPE_F16;
        else if (!strcasecmp(v, "bf16")) o->kv_dtype = QR_DTYPE_BF16;
        else if (!strcasecmp(v, "fp8") || !strcasecmp(v, "fp8_e4m3") || !strcasecmp(v, "f8_e4m3"))
            o->kv_dtype = QR_DTYPE_F8E4M3;
        else {
            fprintf(stderr, "qrun: --kv-dtype must be f32, f16, bf16 or fp8, got '%s'\n", v);
            return -1;
        }
        return 2;
    }
    if (!strcmp(a, "--debug-preempt-every")) {
        NEED_VALUE();
        if (qr_cli_parse_int(a, v, 0, 1 << 30, &n)) return -1;
        o->debug_preempt_every = (int)n;
        return 2;
    }
#undef NEED_VALUE
    return 0;
}

int qr_cli_engine_finish(struct qr_engine_opts *o)
{
    if (o->model_dir)
        return 0;
    struct qr_config_ini *ini = NULL;
    if (qr_ini_load(o->config_path, &ini) != QR_OK) {
        fprintf(stderr, "qrun: %s\n", qr_last_error());
        return -1;
    }
    const char *dir = qr_ini_default_model_dir(ini);
    if (dir) {
        static char buf[4096];
        snprintf(buf, sizeof buf, "%s", dir);
        o->model_dir = buf;
    }
    qr_ini_free(ini);
    if (!o->model_dir) {
        fprintf(stderr, "qrun: no model given: pass --model DIR or set [model] dir in backends.ini\n");
        return -1;
    }
    return 0;
}

void qr_cli_progress(size_t done, size_t total, void *label)
{
    static int last = -1;
    if (!isatty(2) || total == 0)
        return;
    int pct = (int)(100.0 * (double)done / (double)total);
    if (pct == last && done < total)
        return;
    last = pct;
    int w = 40, fill = pct * w / 100;
    fprintf(stderr, "\r%-12s [", label ? (const char *)label : "loading");
    for (int i = 0; i < w; i++)
        fputc(i < fill ? '#' : ' ', stderr);
    fprintf(stderr, "] %3d%% %8.1f MiB", pct, (double)done / (1 << 20));
    if (done >= total) {
        fputc('\n', stderr);
        last = -1;
    }
    fflush(stderr);
}

char *qr_cli_read_file(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) {
        fprintf(stderr, "qrun: cannot open '%s': %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0)
            break;
    }
    int err = ferror(f);
    if (f != stdin)
        fclose(f);
    if (!buf || err) {
        free(buf);
        fprintf(stderr, "qrun: cannot read '%s'\n", path);
        return NULL;
    }
    buf[n] = 0;
    if (len)
        *len = n;
    return buf;
}

double qr_cli_copy_bandwidth(struct qr_device *dev, size_t n)
{
    struct qr_device_props p;
    if (qr_dev_props(dev, &p) != QR_OK)
        return 0;
    if (p.max_alloc && n > p.max_alloc)
        n = p.max_alloc / 2;
    if (!(p.caps & QR_CAP_HOST_MEMORY) && p.mem_free < 3 * n)
        return 0;
    struct qr_buf *a = NULL, *b = NULL;
    struct qr_stream *s = NULL;
    double bw = 0;
    if (qr_buf_alloc(dev, n, QR_BUF_SCRATCH, &a) != QR_OK || qr_buf_alloc(dev, n, QR_BUF_SCRATCH, &b) != QR_OK ||
        qr_stream_create(dev, &s) != QR_OK)
        goto out;
    if (qr_stream_memset0(s, a, 0, n) != QR_OK || qr_stream_copy(s, b, 0, a, 0, n) != QR_OK ||
        qr_stream_sync(s) != QR_OK)
        goto out;
    /* the best of 4 rounds of 8 copies: the first round after an idle spell ran at about half the rate on the H100
     * (clocks ramping up; docs/PERF.md, twentieth session) */
    const int reps = 8;
    for (int round = 0; round < 4; round++) {
        double t0 = qr_time_s();
        for (int i = 0; i < reps; i++)
            if (qr_stream_copy(s, i % 2 ? a : b, 0, i % 2 ? b : a, 0, n) != QR_OK)
                goto out;
        if (qr_stream_sync(s) != QR_OK)
            goto out;
        double dt = qr_time_s() - t0, r = dt > 0 ? 2.0 * (double)n * reps / dt : 0;
        if (r > bw)
            bw = r;
    }
out:
    if (s)
        qr_stream_destroy(s);
    if (a)
        qr_buf_free(a);
    if (b)
        qr_buf_free(b);
    return bw;
}
