/* cuda_profile.c - GPU time per node kind (QR_CUDA_PROFILE=1).
 *
 * While profiling, every step runs eagerly (no CUDA Graph): a spin kernel
 * first holds the stream for a few milliseconds so the host can queue the
 * whole step, then an event goes between consecutive nodes (or fused node
 * groups).  The time between two events is GPU time of that node, without
 * the launch gaps a replayed graph would not have.  Totals per label (op,
 * shape, step size) are printed to stderr when the stream is destroyed, with
 * the fastest call and step beside the means: a shape's first prompt step
 * also times cuBLASLt's algorithm search, which inflates its mean. */
#include "cuda_internal.h"

#include <errno.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROF_MAX 512
#define PROF_SPIN_NS 4000000ull

struct prof_entry {
    char label[96];
    double ms, min_ms;
    long calls;
};

static struct prof_entry g_prof[PROF_MAX];
static int g_n_prof;
static double g_step_ms[2], g_step_min[2];   /* decode-sized (<= 64 tokens), prompt-sized */
static long g_steps[2];
static pthread_mutex_t g_prof_mu = PTHREAD_MUTEX_INITIALIZER;

bool cuda_env_switch(const char *name, bool dflt)
{
    const char *e = getenv(name);
    if (!e || !*e)
        return dflt;
    return strcmp(e, "0") != 0;
}

int cuda_opt_int(const struct qr_backend_opts *opts, const char *env, const char *key, int dflt, int lo, int hi)
{
    const char *v = getenv(env), *from = env;
    if (!(v && *v) && opts && opts->get) {
        v = opts->get(opts, key);
        from = key;
    }
    if (!(v && *v))
        return dflt;
    char *end = NULL;
    errno = 0;
    const long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        qr_log(QR_LOG_WARN, "cuda: %s = '%s' is not an integer in [%d, %d]; %d is used", from, v, lo, hi, dflt);
        return dflt;
    }
    return (int)x;
}

bool cuda_prof_enabled(void)
{
    static int on = -1;
    if (on < 0)
        on = cuda_env_switch("QR_CUDA_PROFILE", false);
    return on;
}

static int pow2_ceil(int v)
{
    int p = 1;
    while (p < v && p < (1 << 30))
        p <<= 1;
    return p;
}

/* label of nodes nd[0..n): op names joined by '+', then the shape of the first matmul or attention */
static void node_label(const struct qr_node *nd, int n, int step_tokens, char *out, size_t cap)
{
    size_t o = (size_t)snprintf(out, cap, "T%-5d ", step_tokens);
    for (int i = 0; i < n && o < cap; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? "+" : "", qr_op_name(nd[i].op));
    for (int i = 0; i < n && o < cap; i++) {
        if (nd[i].op == QR_OP_MATMUL) {
            const struct qr_matmul_args *m = &nd[i].a.matmul;
            snprintf(out + o, cap - o, " M=%d N=%d K=%d", m->M, m->N, m->K);
            return;
        }
        if (nd[i].op == QR_OP_ATTN) {
            const struct qr_attn_args *a = &nd[i].a.attn;
            snprintf(out + o, cap - o, " q=%d seqs=%d ctx<=%d", a->n_tokens, a->n_seqs, pow2_ceil(a->max_seq_len));
            return;
        }
        if (nd[i].op == QR_OP_LOGITS) {
            snprintf(out + o, cap - o, " rows=%d", nd[i].a.logits.n_out);
            return;
        }
    }
}

static void prof_add(const char *label, double ms)
{
    for (int i = 0; i < g_n_prof; i++)
        if (strcmp(g_prof[i].label, label) == 0) {
            g_prof[i].ms += ms;
            g_prof[i].calls++;
            if (ms < g_prof[i].min_ms)
                g_prof[i].min_ms = ms;
            return;
        }
    if (g_n_prof < PROF_MAX) {
        struct prof_entry *e = &g_prof[g_n_prof++];
        snprintf(e->label, sizeof e->label, "%s", label);
        e->ms = e->min_ms = ms;
        e->calls = 1;
    }
}

qr_status cuda_prof_run(struct qr_stream *s, const struct qr_graph *g, bool fuse)
{
    int n = g->n_nodes;
    cudaEvent_t *ev = calloc((size_t)n + 1, sizeof *ev);
    int *first = calloc((size_t)n + 1, sizeof *first);
    if (!ev || !first) {
        free(ev);
        free(first);
        return qr_set_error(QR_E_OOM_HOST, "cuda: out of memory");
    }
    int step_tokens = 0;
    for (int i = 0; i < n; i++)
        if (g->nodes[i].op == QR_OP_EMBED && g->nodes[i].a.embed.n_tokens > step_tokens)
            step_tokens = g->nodes[i].a.embed.n_tokens;
    qr_status st = QR_OK;
    int n_ev = 0;
    cudaStream_t cs = cuda_st(s)->cs;
    /* 4 ms, or 30 us per node for big graphs: the host must queue the whole step before the spin ends */
    unsigned long long spin = PROF_SPIN_NS > 30000ull * (unsigned)n ? PROF_SPIN_NS : 30000ull * (unsigned)n;
    cudaError_t ce = (cudaError_t)cuda_launch_spin((qr_cuda_stream)cs, spin);
    for (int i = 0; i <= n && st == QR_OK && ce == cudaSuccess; n_ev++) {
        ce = cudaEventCreate(&ev[n_ev]);
        if (ce == cudaSuccess)
            ce = cudaEventRecord(ev[n_ev], cs);
        first[n_ev] = i;
        if (ce != cudaSuccess || i == n)
            break;
        int r = fuse ? cuda_fuse_at(s, &g->nodes[i], n - i) : 0;
        if (r < 0)
            st = (qr_status)r;
        else if (r > 0)
            i += r;
        else if ((st = cuda_run_node(s, &g->nodes[i])) == QR_OK)
            i++;
    }
    if (ce == cudaSuccess && st == QR_OK)
        ce = cudaStreamSynchronize(cs);
    if (ce == cudaSuccess && st == QR_OK) {
        char label[96];
        double total = 0;
        pthread_mutex_lock(&g_prof_mu);
        for (int k = 0; k + 1 < n_ev; k++) {
            float ms = 0;
            if (cudaEventElapsedTime(&ms, ev[k], ev[k + 1]) != cudaSuccess)
                continue;
            node_label(&g->nodes[first[k]], first[k + 1] - first[k], step_tokens, label, sizeof label);
            prof_add(label, ms);
            total += ms;
        }
        int c = step_tokens > 64;
        g_step_ms[c] += total;
        if (!g_steps[c] || total < g_step_min[c])
            g_step_min[c] = total;
        g_steps[c]++;
        pthread_mutex_unlock(&g_prof_mu);
    }
    for (int k = 0; k < n_ev; k++)
        if (ev[k])
            cudaEventDestroy(ev[k]);
    free(ev);
    free(first);
    if (st != QR_OK)
        return st;
    if (ce != cudaSuccess)
        return cuda_fail(s->dev, ce, "profiled step", __FILE__, __LINE__);
    return QR_OK;
}

static int by_time(const void *a, const void *b)
{
    double d = ((const struct prof_entry *)b)->ms - ((const struct prof_entry *)a)->ms;
    return (d > 0) - (d < 0);
}

void cuda_prof_report(void)
{
    pthread_mutex_lock(&g_prof_mu);
    if (g_n_prof > 0) {
        qsort(g_prof, (size_t)g_n_prof, sizeof g_prof[0], by_time);
        fprintf(stderr, "cuda profile (GPU time per node kind; steps run eagerly, one event between nodes)\n");
        for (int c = 0; c < 2; c++)
            if (g_steps[c])
                fprintf(stderr, "  %s steps: %ld, %.3f ms per step (fastest %.3f)\n",
                        c ? "prompt-sized" : "decode-sized", g_steps[c], g_step_ms[c] / (double)g_steps[c],
                        g_step_min[c]);
        fprintf(stderr, "  %10s %8s %10s %10s  %s\n", "total ms", "calls", "us/call", "min us", "node");
        for (int i = 0; i < g_n_prof && i < 60; i++)
            fprintf(stderr, "  %10.3f %8ld %10.2f %10.2f  %s\n", g_prof[i].ms, g_prof[i].calls,
                    1000.0 * g_prof[i].ms / (double)g_prof[i].calls, 1000.0 * g_prof[i].min_ms, g_prof[i].label);
        g_n_prof = 0;
        g_steps[0] = g_steps[1] = 0;
        g_step_ms[0] = g_step_ms[1] = 0;
    }
    pthread_mutex_unlock(&g_prof_mu);
}
