/* test_graph_fusion.c - the node patterns that GPU backends run as one kernel,
 * checked as whole graphs against the CPU reference running the same nodes
 * one by one:
 *   [QK_NORM q, QK_NORM k,] ROPE q, ROPE k, KV_STORE   (q/k norm + RoPE + KV write)
 *   RMSNORM, MATMUL reading it                         (norm folded into the GEMV)
 *   SILU_MUL, MATMUL reading it                        (SwiGLU folded into the GEMV)
 *   ATTN, MATMUL reading it (o_proj)                   (prompt sizes: attention writes the GEMM input)
 *   RMSNORM, MATMUL gate_up, SILU_MUL, MATMUL down      (prompt sizes: 16-bit gate_up output; decode sizes:
 *                                                        norm + gate_up + SwiGLU in one GEMV)
 *   RMSNORM, MATMUL qkv, QK_NORM x 2, ROPE x 2, KV_STORE, ATTN  (prompt sizes: 16-bit qkv output, k and v rows
 *                                                        written to the caches only)
 * in the Qwen3-4B widths (K = 2560, head_dim 128, GQA 4), at decode (1 token),
 * small-batch and prompt sizes; the KV write and the attention also over an
 * FP8 E4M3 cache (on the backends that support one).  Where the intermediate
 * lies in a QR_BUF_TRANSIENT buffer and nothing after the MATMUL reads it, a backend
 * may leave it unwritten: then only the MATMUL's output is compared; with a
 * later reader (a second MATMUL) that reader's output shows it was written.
 * Each graph goes through qr_graph_run with a cache key three times (a backend may run it eagerly, record it, then replay it),
 * inputs re-uploaded each time; every output buffer is compared, including
 * the intermediate ones a fused kernel must still write (h, act, q/k/v rows).
 *
 * Usage: test_graph_fusion [-b BACKEND] [--config INI]
 * With -b cuda it tests the CUDA fusions (on by default; QRUN_CUDA_FUSED=0
 * runs the unfused kernels); Vulkan's run in CI on lavapipe. */
#include "qrun/qr_registry.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXB 16   /* buffers per problem */
#define MAXN 8    /* nodes per problem */

struct dev {
    const char *name;
    struct qr_device *d;
    struct qr_stream *s;
    bool f32_math;   /* no cooperative matrices: every path computes in f32 (16-bit storage only), see compare() */
};

/* one problem: host images of its buffers, the node list (views use buffer indices) */
struct prob {
    const char *what;
    int nb;
    size_t size[MAXB];
    uint8_t *init[MAXB];          /* initial contents */
    bool out[MAXB];               /* compared after the run */
    enum qr_dtype dt[MAXB];       /* element type for the comparison (F32, BF16 or F8_E4M3) */
    const char *bname[MAXB];
    double nmse[MAXB];            /* tolerance per output */
    bool transient[MAXB];         /* allocated QR_BUF_SCRATCH | QR_BUF_TRANSIENT */
    int n;
    struct qr_node node[MAXN];
    int vb[MAXN][8];              /* buffer index of each view slot of a node (-1: none) */
    uint64_t key;
    enum qr_dtype kv;             /* KV cache dtype of its KV_STORE / ATTN node (F8_E4M3: skipped where unsupported) */
};

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static float frand(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((g_rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}
static uint16_t to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
static float from_bf16(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static int add_buf(struct prob *P, const char *name, size_t size, enum qr_dtype dt, bool out, double nmse)
{
    int i = P->nb++;
    P->bname[i] = name;
    P->size[i] = size;
    P->init[i] = calloc(1, size);
    P->dt[i] = dt;
    P->out[i] = out;
    P->nmse[i] = nmse;
    return i;
}
static void fill_f32(struct prob *P, int b, float scale)
{
    float *p = (float *)P->init[b];
    for (size_t i = 0; i < P->size[b] / 4; i++)
        p[i] = frand() * scale;
}
static void fill_bf16(struct prob *P, int b, float base, float scale)
{
    uint16_t *p = (uint16_t *)P->init[b];
    for (size_t i = 0; i < P->size[b] / 2; i++)
        p[i] = to_bf16(base + frand() * scale);
}
/* the K and V caches (csz bytes each) with values in [-1, 1): FP8 E4M3 codes or BF16 */
static void fill_caches(struct prob *P, int kc, int vc, size_t csz, bool f8)
{
    if (f8) {
        for (size_t i = 0; i < csz; i++) {
            P->init[kc][i] = qr_f32_to_f8e4m3(frand());
            P->init[vc][i] = qr_f32_to_f8e4m3(frand());
        }
    } else {
        fill_bf16(P, kc, 0.0f, 1.0f);
        fill_bf16(P, vc, 0.0f, 1.0f);
    }
}

/* the view slots of each op, in a fixed order, so that buffers can be bound per device */
static struct qr_view **slots_of(struct qr_node *n, int *count)
{
    static struct qr_view *v[8];
    int k = 0;
    switch (n->op) {
    case QR_OP_RMSNORM:
    case QR_OP_QK_NORM:
        v[k++] = &n->a.rmsnorm.out, v[k++] = &n->a.rmsnorm.x, v[k++] = &n->a.rmsnorm.w;
        break;
    case QR_OP_ROPE: v[k++] = &n->a.rope.x, v[k++] = &n->a.rope.pos, v[k++] = &n->a.rope.inv_freq; break;
    case QR_OP_KV_STORE:
        v[k++] = &n->a.kv_store.k_cache, v[k++] = &n->a.kv_store.v_cache, v[k++] = &n->a.kv_store.k;
        v[k++] = &n->a.kv_store.v, v[k++] = &n->a.kv_store.slots;
        break;
    case QR_OP_MATMUL:
        v[k++] = &n->a.matmul.y, v[k++] = &n->a.matmul.x, v[k++] = &n->a.matmul.w, v[k++] = &n->a.matmul.bias;
        break;
    case QR_OP_SILU_MUL: v[k++] = &n->a.silu_mul.out, v[k++] = &n->a.silu_mul.gu; break;
    case QR_OP_ATTN:
        v[k++] = &n->a.attn.out, v[k++] = &n->a.attn.q, v[k++] = &n->a.attn.k_cache, v[k++] = &n->a.attn.v_cache;
        v[k++] = &n->a.attn.block_tables, v[k++] = &n->a.attn.seq_lens, v[k++] = &n->a.attn.q_start;
        break;
    default: break;
    }
    *count = k;
    return v;
}

/* node i's view slot s -> buffer b at byte offset off */
static void bind(struct prob *P, int i, int s, int b, size_t off)
{
    int c = 0;
    struct qr_view **v = slots_of(&P->node[i], &c);
    if (s < c) {
        P->vb[i][s] = b;
        v[s]->off = off;
    }
}

static void new_node(struct prob *P, enum qr_op op)
{
    int i = P->n++;
    memset(&P->node[i], 0, sizeof P->node[i]);
    P->node[i].op = op;
    for (int s = 0; s < 8; s++)
        P->vb[i][s] = -1;
}

/* runs P on D; fills res[b] with the output buffers; graph = through qr_graph_run 3x, else node by node */
static int run(struct dev *D, struct prob *P, bool graph, uint8_t **res)
{
    struct qr_buf *buf[MAXB] = {0};
    int rc = 0;
    for (int b = 0; b < P->nb && !rc; b++)
        if (qr_buf_alloc(D->d, P->size[b], QR_BUF_SCRATCH | (P->transient[b] ? QR_BUF_TRANSIENT : 0), &buf[b]) !=
            QR_OK)
            rc = 1;
    struct qr_node nodes[MAXN];
    memcpy(nodes, P->node, sizeof nodes);
    for (int i = 0; i < P->n && !rc; i++) {
        int c = 0;
        struct qr_view **v = slots_of(&nodes[i], &c);
        for (int s = 0; s < c; s++)
            v[s]->buf = P->vb[i][s] >= 0 ? buf[P->vb[i][s]] : NULL;
    }
    for (int rep = 0; rep < (graph ? 3 : 1) && !rc; rep++) {
        for (int b = 0; b < P->nb && !rc; b++)
            if (qr_stream_write(D->s, buf[b], 0, P->init[b], P->size[b]) != QR_OK)
                rc = 1;
        if (rc)
            break;
        if (graph) {
            struct qr_graph g = {.nodes = nodes, .n_nodes = P->n, .key = P->key};
            if (qr_graph_run(D->s, &g) != QR_OK)
                rc = 1;
        } else {
            for (int i = 0; i < P->n && !rc; i++)
                if (qr_node_run(D->s, &nodes[i]) != QR_OK)
                    rc = 1;
        }
        if (!rc && qr_stream_sync(D->s) != QR_OK)
            rc = 1;
    }
    for (int b = 0; b < P->nb && !rc; b++) {
        res[b] = NULL;
        if (!P->out[b])
            continue;
        res[b] = malloc(P->size[b]);
        if (!res[b] || qr_stream_read(D->s, buf[b], 0, res[b], P->size[b]) != QR_OK)
            rc = 1;
    }
    if (rc)
        fprintf(stderr, "[%s] %s: %s\n", D->name, P->what, qr_last_error());
    if (qr_stream_sync(D->s) != QR_OK)
        rc = 1;
    for (int b = 0; b < P->nb; b++)
        qr_buf_free(buf[b]);
    return rc;
}

static double elem(const uint8_t *p, enum qr_dtype dt, size_t i)
{
    if (dt == QR_DTYPE_F8E4M3)
        return qr_f8e4m3_to_f32(p[i]);
    if (dt == QR_DTYPE_BF16) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        return from_bf16(h);
    }
    float f;
    memcpy(&f, p + 4 * i, 4);
    return f;
}

static void compare(struct dev *D, struct prob *P, uint8_t **ref, uint8_t **got)
{
    for (int b = 0; b < P->nb; b++) {
        if (!P->out[b])
            continue;
        size_t n = P->size[b] / qr_dtype_size(P->dt[b]);
        double se = 0, sr = 0, worst = 0;
        size_t bad = 0;
        for (size_t i = 0; i < n; i++) {
            double r = elem(ref[b], P->dt[b], i), g = elem(got[b], P->dt[b], i);
            if (!isfinite(g) && isfinite(r))
                bad++;
            double d = g - r;
            se += d * d;
            sr += r * r;
            if (fabs(d) > worst)
                worst = fabs(d);
        }
        double nmse = sr > 0 ? se / sr : se;
        double lim = D->f32_math && P->nmse[b] > QT_F32_MATH_NMSE ? QT_F32_MATH_NMSE : P->nmse[b];
        CHECKF(bad == 0 && nmse <= lim, "[%s] %s: %s nmse %.2e (limit %.0e), max |diff| %.3g, %zu non-finite",
               D->name, P->what, P->bname[b], nmse, lim, worst, bad);
        printf("[%-6s] %-44s %-8s nmse %.2e  max|d| %.3g\n", D->name, P->what, P->bname[b], nmse, worst);
    }
}

/* ---- the problems ---- */

static void prob_free(struct prob *P)
{
    for (int b = 0; b < P->nb; b++)
        free(P->init[b]);
    memset(P, 0, sizeof *P);
}

/* [q/k norm,] rope q, rope k, kv_store on a fused qkv row: Hq 8, Hk 2, head_dim 128; kv: the cache dtype */
static void mk_qkv_post(struct prob *P, int T, bool norm, enum qr_dtype kv, uint64_t key)
{
    static char what[96];
    snprintf(what, sizeof what, "%sRoPE+KV write%s, %d token%s", norm ? "q/k norm+" : "",
             kv == QR_DTYPE_F8E4M3 ? " (FP8)" : "", T, T > 1 ? "s" : "");
    memset(P, 0, sizeof *P);
    P->what = what;
    P->key = key;
    P->kv = kv;
    /* nblk: every token its own slot (5 + 9 t mod 16 nblk is one-to-one for T <= 16 nblk, 3 not dividing nblk; two
     * tokens on one slot would race on a GPU) */
    const int Hq = 8, Hk = 2, hd = 128, ld = (Hq + 2 * Hk) * hd + 8, bs = 16;
    int nblk = T > 48 ? (T + 15) / 16 + 1 : 4;
    if (nblk % 3 == 0)
        nblk++;
    const float eps = 1e-6f;
    int qkv = add_buf(P, "qkv", (size_t)T * ld * 4, QR_DTYPE_F32, true, 1e-10);
    fill_f32(P, qkv, 3.0f);
    int qn = add_buf(P, "q_norm", (size_t)hd * 2, QR_DTYPE_BF16, false, 0);
    fill_bf16(P, qn, 1.0f, 0.5f);
    int kn = add_buf(P, "k_norm", (size_t)hd * 2, QR_DTYPE_BF16, false, 0);
    fill_bf16(P, kn, 1.0f, 0.5f);
    int pos = add_buf(P, "pos", (size_t)T * 4, QR_DTYPE_F32, false, 0);
    int slot = add_buf(P, "slots", (size_t)T * 4, QR_DTYPE_F32, false, 0);
    for (int t = 0; t < T; t++) {
        ((int32_t *)P->init[pos])[t] = 17 + 1000 * t;                   /* large angles too */
        ((int32_t *)P->init[slot])[t] = t == 2 ? -1 : (5 + 9 * t) % (bs * nblk);   /* token 2 is not stored */
    }
    int invf = add_buf(P, "inv_freq", (size_t)hd / 2 * 4, QR_DTYPE_F32, false, 0);
    for (int i = 0; i < hd / 2; i++)
        ((float *)P->init[invf])[i] = (float)pow(1000000.0, -2.0 * i / hd);
    /* FP8: a k value of the CPU and the GPU a few f32 ulps apart (sincosf) may round to neighbouring E4M3 codes
     * (2^-4 apart), rarely: 1e-4 allows a few */
    size_t csz = (size_t)nblk * Hk * bs * hd * qr_dtype_size(kv);
    double ctol = kv == QR_DTYPE_F8E4M3 ? 1e-4 : 1e-6;
    int kc = add_buf(P, "k_cache", csz, kv, true, ctol);
    int vc = add_buf(P, "v_cache", csz, kv, true, ctol);
    size_t kof = (size_t)Hq * hd * 4, vof = (size_t)(Hq + Hk) * hd * 4;
    if (norm) {
        new_node(P, QR_OP_QK_NORM);
        P->node[P->n - 1].a.rmsnorm = (struct qr_rmsnorm_args){.wtype = QR_DTYPE_BF16, .n_tokens = T, .n_heads = Hq,
                                                               .n = hd, .ldx = ld, .ldout = ld, .eps = eps};
        bind(P, P->n - 1, 0, qkv, 0), bind(P, P->n - 1, 1, qkv, 0), bind(P, P->n - 1, 2, qn, 0);
        new_node(P, QR_OP_QK_NORM);
        P->node[P->n - 1].a.rmsnorm = (struct qr_rmsnorm_args){.wtype = QR_DTYPE_BF16, .n_tokens = T, .n_heads = Hk,
                                                               .n = hd, .ldx = ld, .ldout = ld, .eps = eps};
        bind(P, P->n - 1, 0, qkv, kof), bind(P, P->n - 1, 1, qkv, kof), bind(P, P->n - 1, 2, kn, 0);
    }
    new_node(P, QR_OP_ROPE);
    P->node[P->n - 1].a.rope = (struct qr_rope_args){.n_tokens = T, .n_heads = Hq, .head_dim = hd, .ld = ld,
                                                     .attn_factor = 1.0f};
    bind(P, P->n - 1, 0, qkv, 0), bind(P, P->n - 1, 1, pos, 0), bind(P, P->n - 1, 2, invf, 0);
    new_node(P, QR_OP_ROPE);
    P->node[P->n - 1].a.rope = (struct qr_rope_args){.n_tokens = T, .n_heads = Hk, .head_dim = hd, .ld = ld,
                                                     .attn_factor = 1.0f};
    bind(P, P->n - 1, 0, qkv, kof), bind(P, P->n - 1, 1, pos, 0), bind(P, P->n - 1, 2, invf, 0);
    new_node(P, QR_OP_KV_STORE);
    P->node[P->n - 1].a.kv_store = (struct qr_kv_store_args){.kv_dtype = kv, .n_tokens = T, .n_kv_heads = Hk,
                                                             .head_dim = hd, .ld = ld, .block_size = bs,
                                                             .num_blocks = nblk};
    bind(P, P->n - 1, 0, kc, 0), bind(P, P->n - 1, 1, vc, 0), bind(P, P->n - 1, 2, qkv, kof);
    bind(P, P->n - 1, 3, qkv, vof), bind(P, P->n - 1, 4, slot, 0);
}

/* rmsnorm (K 2560) then y += h . W^T (N 384), or silu_mul (F 1024) then y += act . W^T; transient: h / act in a
 * QR_BUF_TRANSIENT buffer (then compared only through reader2: a second matmul y2 = mid . W^T after the first) */
static void mk_norm_or_silu_matmul(struct prob *P, int T, bool silu, bool transient, bool reader2, uint64_t key)
{
    static char what[2][2][2][96];
    char (*wh)[96] = &what[silu][transient][reader2];
    snprintf(*wh, sizeof *wh, "%s+matmul%s%s, %d token%s", silu ? "SwiGLU" : "RMSNorm", transient ? " (transient)" : "",
             reader2 ? " +reader" : "", T, T > 1 ? "s" : "");
    memset(P, 0, sizeof *P);
    P->what = *wh;
    P->key = key;
    const int K = silu ? 1024 : 2560, N = 384;
    int in, mid, wn = -1;
    if (silu) {
        in = add_buf(P, "gu", (size_t)T * 2 * K * 4, QR_DTYPE_F32, false, 0);
        fill_f32(P, in, 4.0f);
        mid = add_buf(P, "act", (size_t)T * K * 4, QR_DTYPE_F32, true, 1e-10);
    } else {
        in = add_buf(P, "x", (size_t)T * K * 4, QR_DTYPE_F32, false, 0);
        fill_f32(P, in, 2.0f);
        wn = add_buf(P, "norm_w", (size_t)K * 2, QR_DTYPE_BF16, false, 0);
        fill_bf16(P, wn, 1.0f, 0.3f);
        mid = add_buf(P, "h", (size_t)T * K * 4, QR_DTYPE_F32, true, 1e-10);
    }
    P->transient[mid] = transient;
    P->out[mid] = !transient;   /* a transient intermediate's contents after the graph are unspecified */
    fill_f32(P, mid, 100.0f);   /* garbage: must be overwritten */
    int w = add_buf(P, "W", (size_t)N * K * 2, QR_DTYPE_BF16, false, 0);
    fill_bf16(P, w, 0.0f, 0.05f);
    /* bf16 GEMMs (cuBLAS converts x to bf16 for M > 1): 1e-5 as in test_backend_ops' matmul parity */
    int y = add_buf(P, "y", (size_t)T * N * 4, QR_DTYPE_F32, true, 1e-5);
    fill_f32(P, y, 1.0f);       /* accumulate = 1: the residual */
    if (silu) {
        new_node(P, QR_OP_SILU_MUL);
        P->node[0].a.silu_mul = (struct qr_silu_mul_args){.n_tokens = T, .n_ff = K, .ldgu = 2 * K, .ldout = K};
        bind(P, 0, 0, mid, 0), bind(P, 0, 1, in, 0);
    } else {
        new_node(P, QR_OP_RMSNORM);
        P->node[0].a.rmsnorm = (struct qr_rmsnorm_args){.wtype = QR_DTYPE_BF16, .n_tokens = T, .n_heads = 1, .n = K,
                                                        .ldx = K, .ldout = K, .eps = 1e-6f};
        bind(P, 0, 0, mid, 0), bind(P, 0, 1, in, 0), bind(P, 0, 2, wn, 0);
    }
    new_node(P, QR_OP_MATMUL);
    P->node[1].a.matmul = (struct qr_matmul_args){.wtype = QR_DTYPE_BF16, .btype = QR_DTYPE_BF16, .M = T, .N = N,
                                                  .K = K, .ldx = K, .ldy = N, .accumulate = 1};
    bind(P, 1, 0, y, 0), bind(P, 1, 1, mid, 0), bind(P, 1, 2, w, 0);
    if (reader2) {
        int y2 = add_buf(P, "y2", (size_t)T * N * 4, QR_DTYPE_F32, true, 1e-5);
        fill_f32(P, y2, 100.0f);
        new_node(P, QR_OP_MATMUL);
        P->node[2].a.matmul = P->node[1].a.matmul;
        P->node[2].a.matmul.accumulate = 0;
        bind(P, 2, 0, y2, 0), bind(P, 2, 1, mid, 0), bind(P, 2, 2, w, 0);
    }
}

/* the MLP (prompt or decode sizes): rmsnorm (K 1024), gu = h . Wgu^T (2 F, F 512), act = SwiGLU(gu), y += act . Wd^T (N 1024);
 * transient: h, gu and act in QR_BUF_TRANSIENT buffers (only y compared) */
static void mk_mlp(struct prob *P, int T, bool transient, uint64_t key)
{
    static char what[2][96];
    snprintf(what[transient], sizeof what[transient], "RMSNorm+gate_up+SwiGLU+down%s, %d tokens",
             transient ? " (transient)" : "", T);
    memset(P, 0, sizeof *P);
    P->what = what[transient];
    P->key = key;
    const int K = 1024, F = 512;
    int x = add_buf(P, "x", (size_t)T * K * 4, QR_DTYPE_F32, false, 0);
    fill_f32(P, x, 2.0f);
    int wn = add_buf(P, "norm_w", (size_t)K * 2, QR_DTYPE_BF16, false, 0);
    fill_bf16(P, wn, 1.0f, 0.3f);
    int h = add_buf(P, "h", (size_t)T * K * 4, QR_DTYPE_F32, !transient, 1e-10);
    int gu = add_buf(P, "gu", (size_t)T * 2 * F * 4, QR_DTYPE_F32, !transient, 1e-5);
    int act = add_buf(P, "act", (size_t)T * F * 4, QR_DTYPE_F32, !transient, 1e-5);
    P->transient[h] = P->transient[gu] = P->transient[act] = transient;
    fill_f32(P, h, 100.0f), fill_f32(P, gu, 100.0f), fill_f32(P, act, 100.0f);
    int wgu = add_buf(P, "Wgu", (size_t)2 * F * K * 2, QR_DTYPE_BF16, false, 0);
    fill_bf16(P, wgu, 0.0f, 0.08f);
    int wd = add_buf(P, "Wd", (size_t)K * F * 2, QR_DTYPE_BF16, false, 0);
    fill_bf16(P, wd, 0.0f, 0.08f);
    /* a 16-bit gate_up output (QR_CUDA_GU16 on CUDA) rounds gate and up once more: 1e-4 */
    int y = add_buf(P, "y", (size_t)T * K * 4, QR_DTYPE_F32, true, 1e-4);
    fill_f32(P, y, 1.0f);
    new_node(P, QR_OP_RMSNORM);
    P->node[0].a.rmsnorm = (struct qr_rmsnorm_args){.wtype = QR_DTYPE_BF16, .n_tokens = T, .n_heads = 1, .n = K,
                                                    .ldx = K, .ldout = K, .eps = 1e-6f};
    bind(P, 0, 0, h, 0), bind(P, 0, 1, x, 0), bind(P, 0, 2, wn, 0);
    new_node(P, QR_OP_MATMUL);
    P->node[1].a.matmul = (struct qr_matmul_args){.wtype = QR_DTYPE_BF16, .btype = QR_DTYPE_BF16, .M = T, .N = 2 * F,
                                                  .K = K, .ldx = K, .ldy = 2 * F};
    bind(P, 1, 0, gu, 0), bind(P, 1, 1, h, 0), bind(P, 1, 2, wgu, 0);
    new_node(P, QR_OP_SILU_MUL);
    P->node[2].a.silu_mul = (struct qr_silu_mul_args){.n_tokens = T, .n_ff = F, .ldgu = 2 * F, .ldout = F};
    bind(P, 2, 0, act, 0), bind(P, 2, 1, gu, 0);
    new_node(P, QR_OP_MATMUL);
    P->node[3].a.matmul = (struct qr_matmul_args){.wtype = QR_DTYPE_BF16, .btype = QR_DTYPE_BF16, .M = T, .N = K,
                                                  .K = F, .ldx = F, .ldy = K, .accumulate = 1};
    bind(P, 3, 0, y, 0), bind(P, 3, 1, act, 0), bind(P, 3, 2, wd, 0);
}

/* attention over a paged cache (Hq 8, Hk 2, head_dim 128, block 16) then y += att . Wo^T (N 256): one sequence
 * with a T-token prompt chunk after ctx0 cached tokens, plus (mixed) a second sequence decoding one token */
static void mk_attn_matmul(struct prob *P, int T, int ctx0, bool mixed, bool transient, enum qr_dtype kv,
                           uint64_t key)
{
    static char what[2][2][2][96];
    const bool f8 = kv == QR_DTYPE_F8E4M3;
    char (*wh)[96] = &what[mixed][transient][f8];
    snprintf(*wh, sizeof *wh, "attn+o_proj%s%s%s, %d tokens after %d", f8 ? " (FP8 KV)" : "",
             mixed ? " +decode seq" : "", transient ? " (transient)" : "", T, ctx0);
    memset(P, 0, sizeof *P);
    P->what = *wh;
    P->key = key;
    P->kv = kv;
    const int Hq = 8, Hk = 2, hd = 128, bs = 16, N = 256, K = Hq * hd, ld = (Hq + 2 * Hk) * hd;
    const int S = mixed ? 2 : 1, Tt = T + (mixed ? 1 : 0), ctx1 = 37;
    int ctx[2] = {ctx0 + T, ctx1}, nbs[2], mb = 0, nblk = 0;
    for (int i = 0; i < S; i++) {
        nbs[i] = (ctx[i] + bs - 1) / bs;
        mb = nbs[i] > mb ? nbs[i] : mb;
        nblk += nbs[i];
    }
    nblk += 3;
    int q = add_buf(P, "q", (size_t)Tt * ld * 4, QR_DTYPE_F32, false, 0);
    fill_f32(P, q, 1.5f);
    size_t csz = (size_t)nblk * Hk * bs * hd * qr_dtype_size(kv);
    int kc = add_buf(P, "k_cache", csz, kv, false, 0);
    int vc = add_buf(P, "v_cache", csz, kv, false, 0);
    fill_caches(P, kc, vc, csz, f8);
    int bt = add_buf(P, "block_tables", (size_t)S * mb * 4, QR_DTYPE_F32, false, 0);
    int sl = add_buf(P, "seq_lens", (size_t)S * 4, QR_DTYPE_F32, false, 0);
    int qs = add_buf(P, "q_start", (size_t)(S + 1) * 4, QR_DTYPE_F32, false, 0);
    int32_t *btp = (int32_t *)P->init[bt], *slp = (int32_t *)P->init[sl], *qsp = (int32_t *)P->init[qs];
    for (int i = 0, next = 0; i < S; i++) {
        for (int j = 0; j < mb; j++)   /* blocks handed out from the top: the table is not the identity */
            btp[i * mb + j] = j < nbs[i] ? nblk - 1 - next++ : -1;
        slp[i] = ctx[i];
    }
    qsp[0] = 0, qsp[1] = T, qsp[S] = Tt;
    /* bf16 P in the GPU kernels' P V: 1e-4 as in test_backend_ops' attention parity */
    int att = add_buf(P, "att", (size_t)Tt * K * 4, QR_DTYPE_F32, !transient, 1e-4);
    P->transient[att] = transient;
    fill_f32(P, att, 100.0f);
    int w = add_buf(P, "Wo", (size_t)N * K * 2, QR_DTYPE_BF16, false, 0);
    fill_bf16(P, w, 0.0f, 0.05f);
    int y = add_buf(P, "y", (size_t)Tt * N * 4, QR_DTYPE_F32, true, 1e-4);
    fill_f32(P, y, 1.0f);
    new_node(P, QR_OP_ATTN);
    P->node[0].a.attn = (struct qr_attn_args){.kv_dtype = kv, .n_tokens = Tt, .n_seqs = S, .n_heads = Hq,
                                              .n_kv_heads = Hk, .head_dim = hd, .block_size = bs,
                                              .max_blocks_per_seq = mb, .num_blocks = nblk, .ldq = ld, .ldo = K,
                                              .max_seq_len = ctx[0] > ctx[1] ? ctx[0] : ctx[1], .max_q_len = T,
                                              .scale = 0.08838834764f};
    bind(P, 0, 0, att, 0), bind(P, 0, 1, q, 0), bind(P, 0, 2, kc, 0), bind(P, 0, 3, vc, 0);
    bind(P, 0, 4, bt, 0), bind(P, 0, 5, sl, 0), bind(P, 0, 6, qs, 0);
    new_node(P, QR_OP_MATMUL);
    P->node[1].a.matmul = (struct qr_matmul_args){.wtype = QR_DTYPE_BF16, .btype = QR_DTYPE_BF16, .M = Tt, .N = N,
                                                  .K = K, .ldx = K, .ldy = N, .accumulate = 1};
    bind(P, 1, 0, y, 0), bind(P, 1, 1, att, 0), bind(P, 1, 2, w, 0);
}

/* a prompt layer's front: rmsnorm (K 1024), qkv = h . Wqkv^T (Hq 8, Hk 2, head_dim 128), q/k norm, RoPE, KV write,
 * then the attention reading q from qkv and the caches (one sequence, T tokens after ctx0 = 21 cached).  transient:
 * h and qkv in QR_BUF_TRANSIENT buffers (nothing after the attention reads qkv's k and v rows, so a backend may keep
 * qkv in 16 bits and write only the rotated q: CUDA's QR_CUDA_QKV16); compared: the caches and the attention's
 * output (plus h and qkv when not transient) */
/* batch (decode): T sequences of one token each, sequence s after ctx0 + 53 s cached tokens (the per-sequence block
 * tables from the top of the pool); Vulkan folds the q/k norm + RoPE + KV write into its decode attention there when
 * transient (attn_dec_h2q up to 1024 keys, h4q above, over several key splits) */
static void mk_qkv_attn(struct prob *P, int T, bool transient, enum qr_dtype kv, bool batch, int ctx0_b, uint64_t key)
{
    static char what[2][2][2][96];
    const bool f8 = kv == QR_DTYPE_F8E4M3;
    const int S = batch ? T : 1, ctx0 = batch ? ctx0_b : 21, ctx = batch ? ctx0 + 53 * (S - 1) + 1 : ctx0 + T;
    if (batch)
        snprintf(what[transient][f8][1], sizeof what[0][0][0], "decode q/k norm+RoPE+KV+attn%s%s, %dx1 after %d",
                 f8 ? " (FP8 KV)" : "", transient ? " (transient)" : "", T, ctx0);
    else
        snprintf(what[transient][f8][0], sizeof what[0][0][0], "norm+qkv+q/k norm+RoPE+KV+attn%s%s, %d tokens",
                 f8 ? " (FP8 KV)" : "", transient ? " (transient)" : "", T);
    memset(P, 0, sizeof *P);
    P->what = what[transient][f8][batch];
    P->key = key;
    P->kv = kv;
    const int Hq = 8, Hk = 2, hd = 128, K = 1024, N = (Hq + 2 * Hk) * hd, bs = 16;
    const int mb = (ctx + bs - 1) / bs, nblk = S * mb + 2;
    const float eps = 1e-6f;
    int x = add_buf(P, "x", (size_t)T * K * 4, QR_DTYPE_F32, false, 0);
    fill_f32(P, x, 2.0f);
    int wn = add_buf(P, "norm_w", (size_t)K * 2, QR_DTYPE_BF16, false, 0);
    fill_bf16(P, wn, 1.0f, 0.3f);
    int h = add_buf(P, "h", (size_t)T * K * 4, QR_DTYPE_F32, !transient, 1e-10);
    int qkv = add_buf(P, "qkv", (size_t)T * N * 4, QR_DTYPE_F32, !transient, 1e-5);
    P->transient[h] = P->transient[qkv] = transient;
    fill_f32(P, h, 100.0f), fill_f32(P, qkv, 100.0f);   /* garbage: must be overwritten */
    int w = add_buf(P, "Wqkv", (size_t)N * K * 2, QR_DTYPE_BF16, false, 0);
    fill_bf16(P, w, 0.0f, 0.06f);
    int qn = add_buf(P, "q_norm", (size_t)hd * 2, QR_DTYPE_BF16, false, 0);
    fill_bf16(P, qn, 1.0f, 0.5f);
    int kn = add_buf(P, "k_norm", (size_t)hd * 2, QR_DTYPE_BF16, false, 0);
    fill_bf16(P, kn, 1.0f, 0.5f);
    int invf = add_buf(P, "inv_freq", (size_t)hd / 2 * 4, QR_DTYPE_F32, false, 0);
    for (int i = 0; i < hd / 2; i++)
        ((float *)P->init[invf])[i] = (float)pow(1000000.0, -2.0 * i / hd);
    int bt = add_buf(P, "block_tables", (size_t)S * mb * 4, QR_DTYPE_F32, false, 0);
    int pos = add_buf(P, "pos", (size_t)T * 4, QR_DTYPE_F32, false, 0);
    int slot = add_buf(P, "slots", (size_t)T * 4, QR_DTYPE_F32, false, 0);
    int32_t *btp = (int32_t *)P->init[bt];
    for (int j = 0; j < S * mb; j++)   /* blocks from the top: the table is not the identity */
        btp[j] = nblk - 1 - j;
    int sl = add_buf(P, "seq_lens", (size_t)S * 4, QR_DTYPE_F32, false, 0);
    int qs = add_buf(P, "q_start", (size_t)(S + 1) * 4, QR_DTYPE_F32, false, 0);
    for (int t = 0; t < T; t++) {
        int s = batch ? t : 0, p = batch ? ctx0 + 53 * t : ctx0 + t;   /* the token's position */
        ((int32_t *)P->init[pos])[t] = p;
        ((int32_t *)P->init[slot])[t] = btp[s * mb + p / bs] * bs + p % bs;
    }
    for (int s = 0; s < S; s++)
        ((int32_t *)P->init[sl])[s] = batch ? ctx0 + 53 * s + 1 : ctx;
    for (int s = 0; s <= S; s++)
        ((int32_t *)P->init[qs])[s] = batch ? s : s * T;
    /* 16-bit qkv (CUDA): k and v rounded once more (k before its norm), so a few cache codes move by one: 1e-4;
     * FP8 E4M3 codes are 2^-3 apart (relative), so one moved code weighs ~40x a BF16 one, and the attention reads
     * them: 1e-3 for the caches and the output (the f32 path measured 1.5-2e-4 on the attention output, the 16-bit
     * one 1.2-2.6e-4 on the caches, 4.4e-4 on the output, H100) */
    const double tol = f8 ? 1e-3 : 1e-4;
    size_t csz = (size_t)nblk * Hk * bs * hd * qr_dtype_size(kv);
    int kc = add_buf(P, "k_cache", csz, kv, true, tol);
    int vc = add_buf(P, "v_cache", csz, kv, true, tol);
    fill_caches(P, kc, vc, csz, f8);
    int att = add_buf(P, "att", (size_t)T * Hq * hd * 4, QR_DTYPE_F32, true, tol);
    fill_f32(P, att, 100.0f);
    size_t kof = (size_t)Hq * hd * 4, vof = (size_t)(Hq + Hk) * hd * 4;
    new_node(P, QR_OP_RMSNORM);
    P->node[0].a.rmsnorm = (struct qr_rmsnorm_args){.wtype = QR_DTYPE_BF16, .n_tokens = T, .n_heads = 1, .n = K,
                                                    .ldx = K, .ldout = K, .eps = eps};
    bind(P, 0, 0, h, 0), bind(P, 0, 1, x, 0), bind(P, 0, 2, wn, 0);
    new_node(P, QR_OP_MATMUL);
    P->node[1].a.matmul = (struct qr_matmul_args){.wtype = QR_DTYPE_BF16, .btype = QR_DTYPE_BF16, .M = T, .N = N,
                                                  .K = K, .ldx = K, .ldy = N};
    bind(P, 1, 0, qkv, 0), bind(P, 1, 1, h, 0), bind(P, 1, 2, w, 0);
    new_node(P, QR_OP_QK_NORM);
    P->node[2].a.rmsnorm = (struct qr_rmsnorm_args){.wtype = QR_DTYPE_BF16, .n_tokens = T, .n_heads = Hq, .n = hd,
                                                    .ldx = N, .ldout = N, .eps = eps};
    bind(P, 2, 0, qkv, 0), bind(P, 2, 1, qkv, 0), bind(P, 2, 2, qn, 0);
    new_node(P, QR_OP_QK_NORM);
    P->node[3].a.rmsnorm = (struct qr_rmsnorm_args){.wtype = QR_DTYPE_BF16, .n_tokens = T, .n_heads = Hk, .n = hd,
                                                    .ldx = N, .ldout = N, .eps = eps};
    bind(P, 3, 0, qkv, kof), bind(P, 3, 1, qkv, kof), bind(P, 3, 2, kn, 0);
    new_node(P, QR_OP_ROPE);
    P->node[4].a.rope = (struct qr_rope_args){.n_tokens = T, .n_heads = Hq, .head_dim = hd, .ld = N,
                                              .attn_factor = 1.0f};
    bind(P, 4, 0, qkv, 0), bind(P, 4, 1, pos, 0), bind(P, 4, 2, invf, 0);
    new_node(P, QR_OP_ROPE);
    P->node[5].a.rope = (struct qr_rope_args){.n_tokens = T, .n_heads = Hk, .head_dim = hd, .ld = N,
                                              .attn_factor = 1.0f};
    bind(P, 5, 0, qkv, kof), bind(P, 5, 1, pos, 0), bind(P, 5, 2, invf, 0);
    new_node(P, QR_OP_KV_STORE);
    P->node[6].a.kv_store = (struct qr_kv_store_args){.kv_dtype = kv, .n_tokens = T, .n_kv_heads = Hk,
                                                      .head_dim = hd, .ld = N, .block_size = bs, .num_blocks = nblk};
    bind(P, 6, 0, kc, 0), bind(P, 6, 1, vc, 0), bind(P, 6, 2, qkv, kof), bind(P, 6, 3, qkv, vof);
    bind(P, 6, 4, slot, 0);
    new_node(P, QR_OP_ATTN);
    P->node[7].a.attn = (struct qr_attn_args){.kv_dtype = kv, .n_tokens = T, .n_seqs = S, .n_heads = Hq,
                                              .n_kv_heads = Hk, .head_dim = hd, .block_size = bs,
                                              .max_blocks_per_seq = mb, .num_blocks = nblk, .ldq = N, .ldo = Hq * hd,
                                              .max_seq_len = ctx, .max_q_len = batch ? 1 : T,
                                              .scale = 0.08838834764f};
    bind(P, 7, 0, att, 0), bind(P, 7, 1, qkv, 0), bind(P, 7, 2, kc, 0), bind(P, 7, 3, vc, 0);
    bind(P, 7, 4, bt, 0), bind(P, 7, 5, sl, 0), bind(P, 7, 6, qs, 0);
}

int main(int argc, char **argv)
{
    const char *only = NULL, *config = qt_src_path("backends.ini");
    bool short_ctx = false;   /* --short-ctx: leave out the cases after a long context (the runs about other fusions) */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-b") && i + 1 < argc)
            only = argv[++i];
        else if (!strcmp(argv[i], "--config") && i + 1 < argc)
            config = argv[++i];
        else if (!strcmp(argv[i], "--short-ctx"))
            short_ctx = true;
        else {
            fprintf(stderr, "usage: test_graph_fusion [-b BACKEND] [--config INI] [--short-ctx]\n");
            return 2;
        }
    }
    qr_log_set_level(QR_LOG_WARN);
    struct qr_config_ini *ini = NULL;
    if (qr_ini_load(config, &ini) != QR_OK) {
        fprintf(stderr, "config: %s\n", qr_last_error());
        return 1;
    }
    struct dev devs[8];
    memset(devs, 0, sizeof devs);
    int n_dev = 0;
    struct qr_backend_opts ov = {.device_index = -1, .n_threads = 2};
    devs[0].name = "cpu";
    CHECKF(qr_backend_open(ini, "cpu", &ov, &devs[0].d) == QR_OK && qr_stream_create(devs[0].d, &devs[0].s) == QR_OK,
           "CPU reference: %s", qr_last_error());
    if (!devs[0].s)
        return qt_summary("test_graph_fusion");
    n_dev = 1;
    struct qr_backend_info infos[16];
    int n_info = 0;
    if (qr_backends_list(ini, infos, 16, &n_info) != QR_OK)
        n_info = 0;
    static char names[8][32];
    for (int i = 0; i < n_info && n_dev < 8; i++) {
        if (!strcmp(infos[i].name, "cpu") || (only && strcmp(only, infos[i].name)))
            continue;
        if (!infos[i].loaded || infos[i].n_devices == 0) {
            printf("backend %-7s not tested: %s\n", infos[i].name, infos[i].why);
            continue;
        }
        memcpy(names[n_dev], infos[i].name, sizeof names[n_dev]);
        names[n_dev][31] = 0;
        devs[n_dev].name = names[n_dev];
        if (qr_backend_open(ini, infos[i].name, NULL, &devs[n_dev].d) != QR_OK ||
            qr_stream_create(devs[n_dev].d, &devs[n_dev].s) != QR_OK) {
            CHECKF(false, "open %s: %s", infos[i].name, qr_last_error());
            continue;
        }
        devs[n_dev].f32_math = qt_f32_math(devs[n_dev].d, names[n_dev]);
        n_dev++;
    }
    /* problems: (kind, tokens) */
    /* kinds: 0/1 qkv post with/without q/k norm; 2/3 norm/SwiGLU + matmul; 4/5 the same, transient; 6/7 transient
     * with a second reader; 8 attn + o_proj; 9 the same, transient; 10 transient, with a decoding sequence;
     * 11/12 the MLP (norm, gate_up, SwiGLU, down), transient or not; 13/14 norm + qkv + q/k norm + RoPE + KV +
     * attention, transient or not; 15 attn + o_proj with a decoding sequence, not transient; 16/17 the same front
     * as 13/14 for a decode batch (T sequences of one token after ctx0 + 53 s), transient or not.  f8: the KV cache
     * in FP8 E4M3 (kinds 0, 1, 8-10, 13-16) */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
    /* ctx0: cached tokens before the chunk of the attn + o_proj kinds (0: 70); the long ones are short chunks after a
     * long context (CUDA's split-KV chunk kernel with QR_CUDA_ATTN_CHUNK=1 / force, writing the 16-bit rows) */
    struct {
        int kind, T;
        bool f8;
        int ctx0;
    } cases[] = {{0, 1},  {0, 7},  {1, 1},  {1, 7},  {2, 1},  {2, 3},  {3, 1},  {3, 3},  {2, 40},
                 {3, 40}, {4, 40}, {5, 40}, {4, 1}, {6, 40}, {7, 40}, {8, 40}, {9, 40}, {9, 3}, {10, 40},
                 {11, 40}, {12, 40}, {11, 2}, {11, 1}, {11, 3}, {12, 1}, {12, 8}, {6, 1}, {7, 1},
                 {0, 1, true}, {0, 7, true}, {1, 7, true}, {0, 100}, {1, 70}, {0, 100, true}, {8, 40, true}, {9, 3, true}, {10, 40, true},
                 {13, 100}, {13, 40}, {13, 2}, {14, 100}, {13, 1}, {14, 1}, {13, 1, true}, {13, 100, true}, {14, 40, true}, {15, 40}, {10, 2},
                 {15, 3, true}, {8, 16, false, 2000}, {9, 64, false, 1500}, {10, 5, false, 2000},
                 {15, 33, false, 2500}, {10, 2, false, 1200}, {9, 40, false, 3000}, {8, 256, false, 2000},
                 {9, 130, false, 1500}, {15, 65, false, 2500}, {10, 255, false, 1300}, {8, 128, false, 3000},
                 {16, 3, false, 700}, {17, 3, false, 700}, {16, 4, false, 1500}, {16, 1, false, 3000},
                 {16, 2, true, 700}, {16, 1, false, 0}};
#pragma GCC diagnostic pop
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        if (short_ctx && cases[c].ctx0 >= 1000)
            continue;
        struct prob P;
        uint64_t key = 0xF0510000ull + 16 * c + 1;
        int kind = cases[c].kind;
        const enum qr_dtype kv = cases[c].f8 ? QR_DTYPE_F8E4M3 : QR_DTYPE_BF16;
        if (kind <= 1)
            mk_qkv_post(&P, cases[c].T, kind == 0, kv, key);
        else if (kind <= 7)
            mk_norm_or_silu_matmul(&P, cases[c].T, kind & 1, kind >= 4, kind >= 6, key);
        else if (kind <= 10 || kind == 15)
            mk_attn_matmul(&P, cases[c].T, cases[c].ctx0 ? cases[c].ctx0 : 70, kind == 10 || kind == 15, kind == 9 || kind == 10, kv, key);
        else if (kind <= 12)
            mk_mlp(&P, cases[c].T, kind == 12, key);
        else
            mk_qkv_attn(&P, cases[c].T, kind == 13 || kind == 16, kv, kind >= 16, cases[c].ctx0, key);
        uint8_t *ref[MAXB] = {0};
        int rc = run(&devs[0], &P, false, ref);
        CHECKF(rc == 0, "CPU reference run of %s", P.what);
        for (int d = 0; d < n_dev && rc == 0; d++) {
            if (P.kv == QR_DTYPE_F8E4M3 && (!qr_dev_supports(devs[d].d, QR_OP_KV_STORE, P.kv) ||
                                          !qr_dev_supports(devs[d].d, QR_OP_ATTN, P.kv))) {
                printf("[%-6s] %-44s skipped: no %s KV cache\n", devs[d].name, P.what, qr_dtype_name(P.kv));
                continue;
            }
            uint8_t *got[MAXB] = {0};
            int r2 = run(&devs[d], &P, true, got);
            CHECKF(r2 == 0, "[%s] %s: run failed", devs[d].name, P.what);
            if (r2 == 0)
                compare(&devs[d], &P, ref, got);
            for (int b = 0; b < P.nb; b++)
                free(got[b]);
        }
        for (int b = 0; b < P.nb; b++)
            free(ref[b]);
        prob_free(&P);
    }
    for (int d = n_dev - 1; d >= 0; d--) {
        qr_stream_destroy(devs[d].s);
        qr_device_close(devs[d].d);
    }
    qr_ini_free(ini);
    return qt_summary("test_graph_fusion");
}
