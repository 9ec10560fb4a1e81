/* step_bench.c - lab harness: times whole forward steps of a model with the
 * real Qwen3-4B-Instruct-2507 shapes (random BF16 weights) on any backend,
 * through the registry and qr_graph_run, so Vulkan and CUDA can be compared
 * without the runtime:
 *   qr-step-bench [-b vulkan|cuda|cpu] [--layers 36] [--ctx 1024] [--prompt 8192] [--reps 50]
 * Decode: one sequence at context --ctx, the step graph (embed, per layer:
 * rmsnorm, fused qkv GEMV, q/k norm, rope, kv_store, paged attention, o_proj
 * (+residual), rmsnorm, gate_up, silu_mul, down (+residual); final norm,
 * logits, argmax) recorded once with a key and replayed; the time per step
 * includes writing the token id and reading the argmax back.
 * Prefill: one prompt of --prompt tokens as one graph (TTFT of the forward).
 * Prints "decode: X ms/step, Y tok/s" and "prefill(N): Z ms".
 * --ops: also each decode op alone (M = 1): a graph of one node per layer,
 * each on that layer's own weights (so nothing is served from L2), replayed
 * --reps times; prints us per node and the weight/KV bandwidth.
 * --gemm: only the four prompt GEMMs at M = --prompt rows (qkv, o, gate_up, down; one node per layer on that
 * layer's weights, random x), each graph replayed --reps times: us per GEMM, TFLOP/s and a checksum of y (the
 * fp16-staging GEMM variants must agree bit for bit; QR_VK_MM_PIPE picks a lab variant).
 * --attn: only the prompt attention of --prompt tokens (causal, one node per layer): us, TFLOP/s and a checksum of the
 * output (QR_VK_ATTN_PIPE picks a variant). */
#include "qrun/qr_registry.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { DIM = 2560, NH = 32, NKV = 8, HD = 128, FF = 9728, VOCAB = 151936, BS = 16 };
#define QKV ((NH + 2 * NKV) * HD)

static struct qr_device *dev;
static struct qr_stream *st;

#define CK(x) do { qr_status s_ = (x); if (s_ != QR_OK) { fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, qr_last_error()); exit(1); } } while (0)

static uint16_t *rnd_block;
static const size_t RND_N = 8u << 20;   /* 16 MiB of bf16 */

static struct qr_buf *alloc_w(size_t n_elems) {
    struct qr_buf *b;
    size_t bytes = n_elems * 2;
    CK(qr_buf_alloc(dev, bytes, QR_BUF_WEIGHTS, &b));
    for (size_t off = 0; off < bytes; off += RND_N * 2) {
        size_t c = bytes - off < RND_N * 2 ? bytes - off : RND_N * 2;
        CK(qr_stream_write(st, b, off, rnd_block, c));
    }
    return b;
}
static struct qr_buf *alloc_f(size_t n) {
    struct qr_buf *b;
    CK(qr_buf_alloc(dev, n * 4, QR_BUF_SCRATCH, &b));
    CK(qr_stream_memset0(st, b, 0, n * 4));
    return b;
}
static struct qr_view V(struct qr_buf *b) { return (struct qr_view){b, 0}; }
static struct qr_view VO(struct qr_buf *b, size_t off) { return (struct qr_view){b, off}; }

struct layer { struct qr_buf *qkv, *o, *gu, *down, *n1, *n2, *qn, *kn, *kc, *vc; };

/* time the graph g (replayed reps times after one warm-up); returns the best us per node */
static double time_graph(struct qr_graph *g, int reps) {
    double best = 1e30;
    for (int rep = -1; rep < reps; rep++) {
        double a = qr_time_s();
        CK(qr_graph_run(st, g));
        CK(qr_stream_sync(st));
        double dt = qr_time_s() - a;
        if (rep >= 0 && dt < best) best = dt;
    }
    return 1e6 * best / g->n_nodes;
}

/* the first n floats of b: their sum (*sum) and an FNV-1a hash of their bits (returned), for bit-for-bit comparisons
 * of kernel variants */
static uint32_t checksum(struct qr_buf *b, size_t n, double *sum) {
    float *v = malloc(sizeof(float) * n);
    if (!v) {
        fprintf(stderr, "out of host memory\n");
        exit(1);
    }
    CK(qr_stream_read(st, b, 0, v, sizeof(float) * n));
    uint32_t hash = 2166136261u;
    *sum = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t w;
        memcpy(&w, &v[i], 4);
        hash = (hash ^ w) * 16777619u;
        *sum += v[i];
    }
    free(v);
    return hash;
}

/* the prompt GEMMs alone at M rows (--gemm) */
static void gemm_bench(struct qr_node *nodes, struct layer *L, int n_layers, int M, int reps, struct qr_buf *n,
                       struct qr_buf *att, struct qr_buf *act, struct qr_buf *qkv, struct qr_buf *gu, struct qr_buf *h) {
    float *xr = malloc(sizeof(float) * (size_t)M * FF);
    uint32_t r = 7;
    for (size_t i = 0; i < (size_t)M * FF; i++) {
        r = r * 1664525u + 1013904223u;
        xr[i] = ((int)(r >> 9) - (1 << 22)) / (float)(1 << 22);
    }
    CK(qr_stream_write(st, n, 0, xr, sizeof(float) * (size_t)M * DIM));
    CK(qr_stream_write(st, att, 0, xr, sizeof(float) * (size_t)M * NH * HD));
    CK(qr_stream_write(st, act, 0, xr, sizeof(float) * (size_t)M * FF));
    static const int NN[4] = {QKV, DIM, 2 * FF, DIM}, KK[4] = {DIM, NH * HD, DIM, FF};
    const char *names[] = {"qkv", "o_proj", "gate_up", "down"};
    double tot = 0;
    for (int kind = 0; kind < 4; kind++) {
        struct qr_buf *y = kind == 0 ? qkv : kind == 2 ? gu : h, *xi = kind == 1 ? att : kind == 3 ? act : n;
        for (int l = 0; l < n_layers; l++) {
            struct qr_buf *w = kind == 0 ? L[l].qkv : kind == 1 ? L[l].o : kind == 2 ? L[l].gu : L[l].down;
            nodes[l].op = QR_OP_MATMUL;
            nodes[l].a.matmul = (struct qr_matmul_args){.y = V(y), .x = V(xi), .w = V(w), .wtype = QR_DTYPE_BF16,
                                                        .M = M, .N = NN[kind], .K = KK[kind], .ldx = KK[kind],
                                                        .ldy = NN[kind]};
        }
        struct qr_graph g = {nodes, n_layers, 0x9e770 + (uint64_t)kind};
        double us = time_graph(&g, reps);
        size_t ny = (size_t)M * NN[kind];
        double sum;
        uint32_t hash = checksum(y, ny, &sum);
        double tf = 2.0 * M * NN[kind] * KK[kind] / (us * 1e6);
        tot += us;
        printf("gemm %-8s M=%d N=%d K=%d: %9.1f us %7.1f TFLOP/s  checksum %.9e %08x\n", names[kind], M, NN[kind],
               KK[kind], us, tf, sum, hash);
        fflush(stdout);
    }
    printf("gemm per layer (M=%d): %.1f us\n", M, tot);
    free(xr);
}

/* the prompt attention alone (--attn): one sequence of M tokens from position 0 (causal), one node per layer on that
 * layer's KV cache (random bf16), random q; us per node, TFLOP/s (4 * heads * head_dim per visible key) and a
 * checksum of the output (attention variants that keep the order of the sums must agree bit for bit) */
static void attn_bench(struct qr_node *nodes, struct layer *L, int n_layers, int M, int reps, int nblk,
                       struct qr_buf *qkv, struct qr_buf *att, struct qr_buf *bt, struct qr_buf *sl, struct qr_buf *qs) {
    size_t nq = (size_t)M * QKV;
    float *qv = malloc(sizeof(float) * nq);
    uint32_t r = 11;
    for (size_t i = 0; i < nq; i++) {
        r = r * 1664525u + 1013904223u;
        qv[i] = ((int)(r >> 9) - (1 << 22)) / (float)(1 << 22) * 4.0f;
    }
    CK(qr_stream_write(st, qkv, 0, qv, sizeof(float) * nq));
    free(qv);
    int32_t q2[2] = {0, M};
    CK(qr_stream_write(st, sl, 0, &M, 4));
    CK(qr_stream_write(st, qs, 0, q2, 8));
    for (int l = 0; l < n_layers; l++) {
        nodes[l].op = QR_OP_ATTN;
        nodes[l].a.attn = (struct qr_attn_args){.out = V(att), .q = V(qkv), .k_cache = V(L[l].kc), .v_cache = V(L[l].vc),
                                                .block_tables = V(bt), .seq_lens = V(sl), .q_start = V(qs),
                                                .kv_dtype = QR_DTYPE_BF16, .n_tokens = M, .n_seqs = 1, .n_heads = NH,
                                                .n_kv_heads = NKV, .head_dim = HD, .block_size = BS,
                                                .max_blocks_per_seq = nblk, .num_blocks = nblk, .ldq = QKV,
                                                .ldo = NH * HD, .max_seq_len = M, .max_q_len = M,
                                                .scale = 1.0f / sqrtf(HD)};
    }
    struct qr_graph g = {nodes, n_layers, 0xa77e0};
    double us = time_graph(&g, reps);
    size_t ny = (size_t)M * NH * HD;
    double sum;
    uint32_t hash = checksum(att, ny, &sum);
    double tf = 4.0 * NH * HD * ((double)M * (M + 1) / 2) / (us * 1e6);
    printf("attn prompt M=%d: %9.1f us %7.1f TFLOP/s  checksum %.9e %08x\n", M, us, tf, sum, hash);
}

/* decode ops alone, M = 1, one node per layer on that layer's buffers */
static void op_bench(struct qr_node *nodes, struct layer *L, int n_layers, int ctx, int reps, struct qr_buf *emb,
                     struct qr_buf *qkv, struct qr_buf *n, struct qr_buf *att, struct qr_buf *h, struct qr_buf *gu,
                     struct qr_buf *act, struct qr_buf *logits, struct qr_buf *am, struct qr_buf *lidx,
                     struct qr_buf *bt, struct qr_buf *sl, struct qr_buf *qs, int nblk) {
    int32_t q2[2] = {0, 1}, zero = 0;
    CK(qr_stream_write(st, sl, 0, &ctx, 4));
    CK(qr_stream_write(st, qs, 0, q2, 8));
    CK(qr_stream_write(st, lidx, 0, &zero, 4));
    const char *names[] = {"gemv qkv 6144x2560", "gemv o 2560x4096", "gemv gate_up 19456x2560", "gemv down 2560x9728",
                           "gemv down+swiglu", "logits 151936x2560", "attn decode", "rmsnorm 2560", "argmax 151936"};
    for (int kind = 0; kind < 9; kind++) {
        int k = 0;
        double bytes = 0;   /* per node: weights (or K+V) read */
        for (int l = 0; l < (kind == 5 || kind == 8 ? 8 : n_layers); l++) {
            struct qr_node *x = &nodes[k];
            switch (kind) {
            case 0: case 1: case 2: case 3: {
                static const int NN[4] = {QKV, DIM, 2 * FF, DIM}, KK[4] = {DIM, NH * HD, DIM, FF};
                struct qr_buf *w = kind == 0 ? L[l].qkv : kind == 1 ? L[l].o : kind == 2 ? L[l].gu : L[l].down;
                struct qr_buf *xi = kind == 1 ? att : kind == 3 ? act : n, *y = kind == 0 ? qkv : kind == 2 ? gu : h;
                x->op = QR_OP_MATMUL;
                x->a.matmul = (struct qr_matmul_args){.y = V(y), .x = V(xi), .w = V(w), .wtype = QR_DTYPE_BF16, .M = 1,
                                                      .N = NN[kind], .K = KK[kind], .ldx = KK[kind], .ldy = NN[kind],
                                                      .accumulate = kind == 1 || kind == 3};
                bytes = 2.0 * NN[kind] * KK[kind];
                k++;
                break;
            }
            case 4:   /* silu_mul + down: fused into one GEMV where the backend does */
                x->op = QR_OP_SILU_MUL;
                x->a.silu_mul = (struct qr_silu_mul_args){V(act), V(gu), 1, FF, 2 * FF, FF};
                x[1].op = QR_OP_MATMUL;
                x[1].a.matmul = (struct qr_matmul_args){.y = V(h), .x = V(act), .w = V(L[l].down), .wtype = QR_DTYPE_BF16,
                                                        .M = 1, .N = DIM, .K = FF, .ldx = FF, .ldy = DIM, .accumulate = 1};
                bytes = 2.0 * DIM * FF;
                k += 2;
                break;
            case 5:
                x->op = QR_OP_LOGITS;
                x->a.logits = (struct qr_logits_args){V(logits), V(n), V(lidx), V(emb), QR_DTYPE_BF16, 1, DIM, VOCAB, DIM};
                bytes = 2.0 * VOCAB * DIM;
                k++;
                break;
            case 6:
                x->op = QR_OP_ATTN;
                x->a.attn = (struct qr_attn_args){.out = V(att), .q = V(qkv), .k_cache = V(L[l].kc), .v_cache = V(L[l].vc),
                                                  .block_tables = V(bt), .seq_lens = V(sl), .q_start = V(qs),
                                                  .kv_dtype = QR_DTYPE_BF16, .n_tokens = 1, .n_seqs = 1, .n_heads = NH,
                                                  .n_kv_heads = NKV, .head_dim = HD, .block_size = BS,
                                                  .max_blocks_per_seq = nblk, .num_blocks = nblk, .ldq = QKV,
                                                  .ldo = NH * HD, .max_seq_len = ctx, .max_q_len = 1,
                                                  .scale = 1.0f / sqrtf(HD)};
                bytes = 2.0 * 2 * ctx * NKV * HD;
                k++;
                break;
            case 7:
                x->op = QR_OP_RMSNORM;
                x->a.rmsnorm = (struct qr_rmsnorm_args){V(n), V(h), V(L[l].n1), QR_DTYPE_BF16, 1, 1, DIM, DIM, DIM, 1e-6f};
                bytes = 4.0 * DIM;
                k++;
                break;
            default:
                x->op = QR_OP_ARGMAX;
                x->a.argmax = (struct qr_argmax_args){V(am), V(logits), 1, VOCAB};
                bytes = 4.0 * VOCAB;
                k++;
                break;
            }
        }
        struct qr_graph g = {nodes, k, 0x0b5000 + (uint64_t)kind};
        double us = time_graph(&g, reps) * (kind == 4 ? 2 : 1);   /* per op (two nodes make one op for kind 4) */
        printf("op %-24s %9.2f us  %7.1f GB/s  (%d per graph, host-timed, incl. submit)\n", names[kind], us,
               bytes / (us * 1e3), kind == 4 ? k / 2 : k);
        fflush(stdout);
    }
}

int main(int argc, char **argv) {
    const char *be = "vulkan";
    int n_layers = 36, ctx = 1024, prompt = 8192, reps = 50, ops = 0, gemm = 0, attn = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-b") && i + 1 < argc) be = argv[++i];
        else if (!strcmp(argv[i], "--layers") && i + 1 < argc) n_layers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ctx") && i + 1 < argc) ctx = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--prompt") && i + 1 < argc) prompt = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ops")) ops = 1;
        else if (!strcmp(argv[i], "--gemm")) gemm = 1;
        else if (!strcmp(argv[i], "--attn")) attn = 1;
        else {
            fprintf(stderr, "usage: %s [-b BACKEND] [--layers N] [--ctx N] [--prompt N] [--reps N] [--ops] [--gemm] "
                    "[--attn]\n",
                    argv[0]);
            return 2;
        }
    }
    qr_log_set_level(QR_LOG_WARN);
    struct qr_config_ini *ini = NULL;
    CK(qr_ini_load(NULL, &ini));
    if (qr_backend_open(ini, be, NULL, &dev) != QR_OK) {
        printf("SKIP: backend %s: %s\n", be, qr_last_error());
        return 0;
    }
    CK(qr_stream_create(dev, &st));
    struct qr_device_props p;
    CK(qr_dev_props(dev, &p));
    printf("backend %s: %s (%s)\n", be, p.name, p.description);
    rnd_block = malloc(RND_N * 2);
    uint32_t r = 1;
    for (size_t i = 0; i < RND_N; i++) {
        r = r * 1664525u + 1013904223u;
        rnd_block[i] = qr_f32_to_bf16(((int)(r >> 9) - (1 << 22)) / (float)(1 << 22) * 0.05f);
    }
    int max_tok = (prompt > ctx ? prompt : ctx) + 16;
    int nblk = (max_tok + BS - 1) / BS;
    double t0 = qr_time_s();
    struct qr_buf *emb = alloc_w((size_t)VOCAB * DIM), *fnorm = alloc_w(DIM);
    struct layer *L = calloc((size_t)n_layers, sizeof *L);
    for (int l = 0; l < n_layers; l++) {
        L[l].qkv = alloc_w((size_t)QKV * DIM);
        L[l].o = alloc_w((size_t)DIM * NH * HD);
        L[l].gu = alloc_w((size_t)2 * FF * DIM);
        L[l].down = alloc_w((size_t)DIM * FF);
        L[l].n1 = alloc_w(DIM); L[l].n2 = alloc_w(DIM);
        L[l].qn = alloc_w(HD); L[l].kn = alloc_w(HD);
        L[l].kc = alloc_w((size_t)nblk * NKV * BS * HD);
        L[l].vc = alloc_w((size_t)nblk * NKV * BS * HD);
    }
    CK(qr_stream_sync(st));
    printf("weights + KV uploaded in %.1f s\n", qr_time_s() - t0);
    int T = prompt > 1 ? prompt : 1;
    struct qr_buf *h = alloc_f((size_t)T * DIM), *n = alloc_f((size_t)T * DIM), *qkv = alloc_f((size_t)T * QKV),
                  *att = alloc_f((size_t)T * NH * HD), *gu = alloc_f((size_t)T * 2 * FF), *act = alloc_f((size_t)T * FF),
                  *logits = alloc_f(VOCAB), *ids = alloc_f(T), *pos = alloc_f(T), *slots = alloc_f(T),
                  *bt = alloc_f(nblk), *sl = alloc_f(1), *qs = alloc_f(2), *lidx = alloc_f(1), *am = alloc_f(1),
                  *invf = alloc_f(HD / 2);
    float inv[HD / 2];
    for (int i = 0; i < HD / 2; i++) inv[i] = powf(5000000.0f, -2.0f * i / HD);
    CK(qr_stream_write(st, invf, 0, inv, sizeof inv));
    int32_t *btab = malloc(sizeof(int32_t) * nblk);
    for (int i = 0; i < nblk; i++) btab[i] = i;
    CK(qr_stream_write(st, bt, 0, btab, sizeof(int32_t) * nblk));

    struct qr_node *nodes = calloc((size_t)n_layers * 16 + 8, sizeof *nodes);
    if (gemm || attn) {
        qr_log_set_level(QR_LOG_INFO);
        if (gemm) gemm_bench(nodes, L, n_layers, prompt, reps, n, att, act, qkv, gu, h);
        if (attn) attn_bench(nodes, L, n_layers, prompt, reps, nblk, qkv, att, bt, sl, qs);
        qr_stream_destroy(st);
        qr_device_close(dev);
        return 0;
    }
    for (int phase = 0; phase < 2; phase++) {
        int M = phase == 0 ? 1 : prompt;     /* tokens this step */
        int ctxlen = phase == 0 ? ctx : prompt;
        if (M <= 0) continue;
        int32_t *iv = malloc(sizeof(int32_t) * M);
        for (int i = 0; i < M; i++) iv[i] = (i * 7919) % VOCAB;
        CK(qr_stream_write(st, ids, 0, iv, 4 * M));
        for (int i = 0; i < M; i++) iv[i] = ctxlen - M + i;
        CK(qr_stream_write(st, pos, 0, iv, 4 * M));
        CK(qr_stream_write(st, slots, 0, iv, 4 * M));   /* identity block table: slot = position */
        int32_t q2[2] = {0, M}, last = M - 1;
        CK(qr_stream_write(st, sl, 0, &ctxlen, 4));
        CK(qr_stream_write(st, qs, 0, q2, 8));
        CK(qr_stream_write(st, lidx, 0, &last, 4));
        free(iv);
        int k = 0;
        nodes[k].op = QR_OP_EMBED;
        nodes[k++].a.embed = (struct qr_embed_args){V(h), V(emb), V(ids), QR_DTYPE_BF16, M, DIM, VOCAB};
        for (int l = 0; l < n_layers; l++) {
            nodes[k].op = QR_OP_RMSNORM;
            nodes[k++].a.rmsnorm = (struct qr_rmsnorm_args){V(n), V(h), V(L[l].n1), QR_DTYPE_BF16, M, 1, DIM, DIM, DIM, 1e-6f};
            nodes[k].op = QR_OP_MATMUL;
            nodes[k++].a.matmul = (struct qr_matmul_args){.y = V(qkv), .x = V(n), .w = V(L[l].qkv), .wtype = QR_DTYPE_BF16,
                                                          .M = M, .N = QKV, .K = DIM, .ldx = DIM, .ldy = QKV};
            nodes[k].op = QR_OP_QK_NORM;
            nodes[k++].a.rmsnorm = (struct qr_rmsnorm_args){V(qkv), V(qkv), V(L[l].qn), QR_DTYPE_BF16, M, NH, HD, QKV, QKV, 1e-6f};
            nodes[k].op = QR_OP_QK_NORM;
            nodes[k++].a.rmsnorm = (struct qr_rmsnorm_args){VO(qkv, NH * HD * 4), VO(qkv, NH * HD * 4), V(L[l].kn),
                                                            QR_DTYPE_BF16, M, NKV, HD, QKV, QKV, 1e-6f};
            nodes[k].op = QR_OP_ROPE;   /* q and k rotated separately, as core/runtime_graph.c does */
            nodes[k++].a.rope = (struct qr_rope_args){V(qkv), V(pos), V(invf), M, NH, HD, QKV, 1.0f};
            nodes[k].op = QR_OP_ROPE;
            nodes[k++].a.rope = (struct qr_rope_args){VO(qkv, NH * HD * 4), V(pos), V(invf), M, NKV, HD, QKV, 1.0f};
            nodes[k].op = QR_OP_KV_STORE;
            nodes[k++].a.kv_store = (struct qr_kv_store_args){V(L[l].kc), V(L[l].vc), VO(qkv, NH * HD * 4),
                                                              VO(qkv, (NH + NKV) * HD * 4), V(slots), QR_DTYPE_BF16,
                                                              M, NKV, HD, QKV, BS, nblk};
            nodes[k].op = QR_OP_ATTN;
            nodes[k++].a.attn = (struct qr_attn_args){.out = V(att), .q = V(qkv), .k_cache = V(L[l].kc), .v_cache = V(L[l].vc),
                                                      .block_tables = V(bt), .seq_lens = V(sl), .q_start = V(qs),
                                                      .kv_dtype = QR_DTYPE_BF16, .n_tokens = M, .n_seqs = 1, .n_heads = NH,
                                                      .n_kv_heads = NKV, .head_dim = HD, .block_size = BS,
                                                      .max_blocks_per_seq = nblk, .num_blocks = nblk, .ldq = QKV,
                                                      .ldo = NH * HD, .max_seq_len = ctxlen, .max_q_len = M,
                                                      .scale = 1.0f / sqrtf(HD)};
            nodes[k].op = QR_OP_MATMUL;
            nodes[k++].a.matmul = (struct qr_matmul_args){.y = V(h), .x = V(att), .w = V(L[l].o), .wtype = QR_DTYPE_BF16,
                                                          .M = M, .N = DIM, .K = NH * HD, .ldx = NH * HD, .ldy = DIM,
                                                          .accumulate = 1};
            nodes[k].op = QR_OP_RMSNORM;
            nodes[k++].a.rmsnorm = (struct qr_rmsnorm_args){V(n), V(h), V(L[l].n2), QR_DTYPE_BF16, M, 1, DIM, DIM, DIM, 1e-6f};
            nodes[k].op = QR_OP_MATMUL;
            nodes[k++].a.matmul = (struct qr_matmul_args){.y = V(gu), .x = V(n), .w = V(L[l].gu), .wtype = QR_DTYPE_BF16,
                                                          .M = M, .N = 2 * FF, .K = DIM, .ldx = DIM, .ldy = 2 * FF};
            nodes[k].op = QR_OP_SILU_MUL;
            nodes[k++].a.silu_mul = (struct qr_silu_mul_args){V(act), V(gu), M, FF, 2 * FF, FF};
            nodes[k].op = QR_OP_MATMUL;
            nodes[k++].a.matmul = (struct qr_matmul_args){.y = V(h), .x = V(act), .w = V(L[l].down), .wtype = QR_DTYPE_BF16,
                                                          .M = M, .N = DIM, .K = FF, .ldx = FF, .ldy = DIM, .accumulate = 1};
        }
        nodes[k].op = QR_OP_RMSNORM;
        nodes[k++].a.rmsnorm = (struct qr_rmsnorm_args){V(n), V(h), V(fnorm), QR_DTYPE_BF16, M, 1, DIM, DIM, DIM, 1e-6f};
        nodes[k].op = QR_OP_LOGITS;
        nodes[k++].a.logits = (struct qr_logits_args){V(logits), V(n), V(lidx), V(emb), QR_DTYPE_BF16, 1, DIM, VOCAB, DIM};
        nodes[k].op = QR_OP_ARGMAX;
        nodes[k++].a.argmax = (struct qr_argmax_args){V(am), V(logits), 1, VOCAB};
        struct qr_graph g = {nodes, k, phase == 0 ? 0xdec0de : 0x9f111};
        int32_t tok = 0;
        int n_rep = phase == 0 ? reps : 3;
        double best = 1e30, sum = 0;
        for (int rep = -1; rep < n_rep; rep++) {   /* rep -1: record + warm-up */
            double a = qr_time_s();
            int32_t id = (rep * 31 + 11) % VOCAB;
            if (id < 0) id += VOCAB;
            if (phase == 0) CK(qr_stream_write(st, ids, 0, &id, 4));
            CK(qr_graph_run(st, &g));
            CK(qr_stream_read(st, am, 0, &tok, 4));
            double dt = qr_time_s() - a;
            if (rep >= 0) { sum += dt; if (dt < best) best = dt; }
        }
        if (phase == 0)
            printf("decode (ctx %d, %d layers): %.3f ms/step mean, %.3f best, %.1f tok/s  [token %d]\n", ctx, n_layers,
                   1e3 * sum / n_rep, 1e3 * best, n_rep / sum, tok);
        else
            printf("prefill(%d) (%d layers): %.1f ms best, %.1f ms mean  [token %d]\n", prompt, n_layers, 1e3 * best,
                   1e3 * sum / n_rep, tok);
        fflush(stdout);
    }
    if (ops) op_bench(nodes, L, n_layers, ctx, reps, emb, qkv, n, att, h, gu, act, logits, am, lidx, bt, sl, qs, nblk);
    qr_stream_destroy(st);
    qr_device_close(dev);
    return 0;
}
