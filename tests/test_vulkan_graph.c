/* test_vulkan_graph.c - Vulkan backend specifics that the shared parity test
 * (test_backend_ops) does not cover:
 *   - graph_exec records a step once per key and replays it: a small decode
 *     graph (embed, rmsnorm, matmul, kv_store, attn with split-KV, logits,
 *     argmax) is replayed with new index inputs and must match the same nodes
 *     run op by op (key 0 path and qr_node_run) every time;
 *   - device selection by name substring and by index (registry opts);
 *   - props: max_alloc / mem_total / mem_free are filled.
 * SKIPs (exit 0) when no Vulkan device is available. */
#include "qrun/qr_registry.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { DIM = 96, VOCAB = 300, NH = 4, NKV = 2, HD = 24, BS = 16, NBLK = 48, MBPS = 48, CTX = 700, FF = 64 };

static uint32_t rng = 12345;
static float frand(void) {
    rng = rng * 1664525u + 1013904223u;
    return ((rng >> 8) / 16777216.0f) * 2.0f - 1.0f;
}

struct bufs {
    struct qr_buf *table, *ids, *h, *n, *nw, *wq, *q, *kc, *vc, *slots, *bt, *sl, *qs, *att, *logit_idx, *logits, *am,
        *wgu, *gu, *act, *wdown, *qn, *kn, *pos, *invf;
};

static struct qr_buf *mk(struct qr_device *d, struct qr_stream *s, size_t n, const void *init) {
    struct qr_buf *b = NULL;
    if (qr_buf_alloc(d, n, QR_BUF_SCRATCH, &b) != QR_OK) return NULL;
    if (init && qr_stream_write(s, b, 0, init, n) != QR_OK) return NULL;
    if (!init && qr_stream_memset0(s, b, 0, n) != QR_OK) return NULL;
    return b;
}

static struct qr_view V(struct qr_buf *b) { return (struct qr_view){.buf = b, .off = 0}; }

/* the decode step of one sequence at position CTX-1 */
static int build(struct bufs *B, struct qr_node *nd) {
    int k = 0;
    nd[k].op = QR_OP_EMBED;
    nd[k++].a.embed = (struct qr_embed_args){.out = V(B->h), .table = V(B->table), .ids = V(B->ids),
                                             .wtype = QR_DTYPE_BF16, .n_tokens = 1, .dim = DIM, .vocab = VOCAB};
    nd[k].op = QR_OP_RMSNORM;
    nd[k++].a.rmsnorm = (struct qr_rmsnorm_args){.out = V(B->n), .x = V(B->h), .w = V(B->nw), .wtype = QR_DTYPE_F32,
                                                 .n_tokens = 1, .n_heads = 1, .n = DIM, .ldx = DIM, .ldout = DIM,
                                                 .eps = 1e-6f};
    nd[k].op = QR_OP_MATMUL;   /* q, k, v in one projection: (NH + 2*NKV) * HD outputs */
    nd[k++].a.matmul = (struct qr_matmul_args){.y = V(B->q), .x = V(B->n), .w = V(B->wq), .wtype = QR_DTYPE_F16,
                                               .M = 1, .N = (NH + 2 * NKV) * HD, .K = DIM, .ldx = DIM,
                                               .ldy = (NH + 2 * NKV) * HD};
    /* Qwen3 q/k path as the runtime emits it (the backend may fuse these four) */
    int ldq = (NH + 2 * NKV) * HD;
    nd[k].op = QR_OP_QK_NORM;
    nd[k++].a.rmsnorm = (struct qr_rmsnorm_args){.out = V(B->q), .x = V(B->q), .w = V(B->qn), .wtype = QR_DTYPE_BF16,
                                                 .n_tokens = 1, .n_heads = NH, .n = HD, .ldx = ldq, .ldout = ldq,
                                                 .eps = 1e-6f};
    nd[k].op = QR_OP_QK_NORM;
    nd[k++].a.rmsnorm = (struct qr_rmsnorm_args){.out = {B->q, NH * HD * 4}, .x = {B->q, NH * HD * 4}, .w = V(B->kn),
                                                 .wtype = QR_DTYPE_BF16, .n_tokens = 1, .n_heads = NKV, .n = HD,
                                                 .ldx = ldq, .ldout = ldq, .eps = 1e-6f};
    nd[k].op = QR_OP_ROPE;
    nd[k++].a.rope = (struct qr_rope_args){.x = V(B->q), .pos = V(B->pos), .inv_freq = V(B->invf), .n_tokens = 1,
                                           .n_heads = NH, .head_dim = HD, .ld = ldq, .attn_factor = 1.0f};
    nd[k].op = QR_OP_ROPE;
    nd[k++].a.rope = (struct qr_rope_args){.x = {B->q, NH * HD * 4}, .pos = V(B->pos), .inv_freq = V(B->invf),
                                           .n_tokens = 1, .n_heads = NKV, .head_dim = HD, .ld = ldq,
                                           .attn_factor = 1.0f};
    nd[k].op = QR_OP_KV_STORE;
    nd[k++].a.kv_store = (struct qr_kv_store_args){
        .k_cache = V(B->kc), .v_cache = V(B->vc), .k = {B->q, NH * HD * 4}, .v = {B->q, (NH + NKV) * HD * 4},
        .slots = V(B->slots), .kv_dtype = QR_DTYPE_BF16, .n_tokens = 1, .n_kv_heads = NKV, .head_dim = HD,
        .ld = (NH + 2 * NKV) * HD, .block_size = BS, .num_blocks = NBLK};
    nd[k].op = QR_OP_ATTN;
    nd[k++].a.attn = (struct qr_attn_args){
        .out = V(B->att), .q = V(B->q), .k_cache = V(B->kc), .v_cache = V(B->vc), .block_tables = V(B->bt),
        .seq_lens = V(B->sl), .q_start = V(B->qs), .kv_dtype = QR_DTYPE_BF16, .n_tokens = 1, .n_seqs = 1,
        .n_heads = NH, .n_kv_heads = NKV, .head_dim = HD, .block_size = BS, .max_blocks_per_seq = MBPS,
        .num_blocks = NBLK, .ldq = (NH + 2 * NKV) * HD, .ldo = NH * HD, .max_seq_len = CTX, .max_q_len = 1,
        .scale = 1.0f / sqrtf((float)HD)};
    nd[k].op = QR_OP_ADD;
    nd[k++].a.add = (struct qr_add_args){.y = V(B->h), .x = V(B->att), .n = DIM};
    /* MLP: gate_up, SwiGLU, down (+ residual): the backend may fuse the last two */
    nd[k].op = QR_OP_MATMUL;
    nd[k++].a.matmul = (struct qr_matmul_args){.y = V(B->gu), .x = V(B->h), .w = V(B->wgu), .wtype = QR_DTYPE_BF16,
                                               .M = 1, .N = 2 * FF, .K = DIM, .ldx = DIM, .ldy = 2 * FF};
    nd[k].op = QR_OP_SILU_MUL;
    nd[k++].a.silu_mul = (struct qr_silu_mul_args){.out = V(B->act), .gu = V(B->gu), .n_tokens = 1, .n_ff = FF,
                                                   .ldgu = 2 * FF, .ldout = FF};
    nd[k].op = QR_OP_MATMUL;
    nd[k++].a.matmul = (struct qr_matmul_args){.y = V(B->h), .x = V(B->act), .w = V(B->wdown), .wtype = QR_DTYPE_BF16,
                                               .M = 1, .N = DIM, .K = FF, .ldx = FF, .ldy = DIM, .accumulate = 1};
    nd[k].op = QR_OP_LOGITS;
    nd[k++].a.logits = (struct qr_logits_args){.out = V(B->logits), .x = V(B->h), .idx = V(B->logit_idx),
                                               .w = V(B->table), .wtype = QR_DTYPE_BF16, .n_out = 1, .dim = DIM,
                                               .vocab = VOCAB, .ldx = DIM};
    nd[k].op = QR_OP_ARGMAX;
    nd[k++].a.argmax = (struct qr_argmax_args){.out = V(B->am), .x = V(B->logits), .n_rows = 1, .n = VOCAB};
    return k;
}

int main(void) {
    qr_log_set_level(QR_LOG_WARN);
    struct qr_config_ini *ini = NULL;
    if (qr_ini_load(NULL, &ini) != QR_OK) {
        fprintf(stderr, "config: %s\n", qr_last_error());
        return 1;
    }
    struct qr_device *d = NULL;
    if (qr_backend_open(ini, "vulkan", NULL, &d) != QR_OK) {
        printf("SKIP: no Vulkan device (%s)\n", qr_last_error());
        qr_ini_free(ini);
        return 0;
    }
    struct qr_device_props p;
    CHECK(qr_dev_props(d, &p) == QR_OK);
    printf("device: %s (%s)\n", p.name, p.description);
    CHECK(p.max_alloc > 0 && p.mem_total > 0 && p.mem_free <= p.mem_total);
    CHECK(p.caps & QR_CAP_GRAPH_REPLAY);

    /* device selection through the plugin's registry entry */
    const struct qr_backend_reg *reg = d->reg;
    CHECK(reg && reg->device_count() >= 1);
    struct qr_backend_opts o = {.device_index = -1, .device_name = "no-such-gpu-xyz", .mem_fraction = 0.9};
    struct qr_device *d2 = NULL;
    CHECK(reg->device_open(-1, &o, &d2) == QR_E_NOT_FOUND);
    char sub[8];
    snprintf(sub, sizeof sub, "%.4s", p.name);
    o.device_name = sub;
    CHECK(reg->device_open(-1, &o, &d2) == QR_OK);
    if (d2) d2->vt->close(d2);
    o.device_name = NULL;
    o.device_index = reg->device_count();
    d2 = NULL;
    CHECK(reg->device_open(-1, &o, &d2) == QR_E_NOT_FOUND);

    struct qr_stream *s = NULL;
    CHECK(qr_stream_create(d, &s) == QR_OK);
    struct bufs B;
    uint16_t *table = malloc(sizeof(uint16_t) * VOCAB * DIM);
    uint16_t *wq = malloc(sizeof(uint16_t) * (NH + 2 * NKV) * HD * DIM);
    float nw[DIM];
    for (int i = 0; i < VOCAB * DIM; i++) table[i] = qr_f32_to_bf16(frand());
    for (int i = 0; i < (NH + 2 * NKV) * HD * DIM; i++) wq[i] = qr_f32_to_f16(frand() * 0.3f);
    for (int i = 0; i < DIM; i++) nw[i] = 1.0f + 0.1f * frand();
    int32_t bt[MBPS], zero = 0, qs[2] = {0, 1}, sl = CTX, slot;
    for (int i = 0; i < MBPS; i++) bt[i] = (i * 7) % NBLK;   /* a permutation: 7 and 48 are coprime */
    /* fill the KV cache with random bf16 (positions 0..CTX-2 are "history") */
    size_t kvn = (size_t)NBLK * NKV * BS * HD;
    uint16_t *kv = malloc(kvn * 2);
    for (size_t i = 0; i < kvn; i++) kv[i] = qr_f32_to_bf16(frand());
    B.table = mk(d, s, sizeof(uint16_t) * VOCAB * DIM, table);
    B.ids = mk(d, s, 4, &zero);
    B.h = mk(d, s, DIM * 4, NULL);
    B.n = mk(d, s, DIM * 4, NULL);
    B.nw = mk(d, s, sizeof nw, nw);
    B.wq = mk(d, s, sizeof(uint16_t) * (NH + 2 * NKV) * HD * DIM, wq);
    B.q = mk(d, s, (NH + 2 * NKV) * HD * 4, NULL);
    B.kc = mk(d, s, kvn * 2, kv);
    B.vc = mk(d, s, kvn * 2, kv);
    B.slots = mk(d, s, 4, &zero);
    B.bt = mk(d, s, sizeof bt, bt);
    B.sl = mk(d, s, 4, &sl);
    B.qs = mk(d, s, sizeof qs, qs);
    B.att = mk(d, s, NH * HD * 4, NULL);
    B.logit_idx = mk(d, s, 4, &zero);
    B.logits = mk(d, s, VOCAB * 4, NULL);
    B.am = mk(d, s, 4, NULL);
    uint16_t *wgu = malloc(sizeof(uint16_t) * 2 * FF * DIM), *wdown = malloc(sizeof(uint16_t) * DIM * FF);
    for (int i = 0; i < 2 * FF * DIM; i++) wgu[i] = qr_f32_to_bf16(frand() * 0.3f);
    for (int i = 0; i < DIM * FF; i++) wdown[i] = qr_f32_to_bf16(frand() * 0.3f);
    B.wgu = mk(d, s, sizeof(uint16_t) * 2 * FF * DIM, wgu);
    B.wdown = mk(d, s, sizeof(uint16_t) * DIM * FF, wdown);
    B.gu = mk(d, s, 2 * FF * 4, NULL);
    B.act = mk(d, s, FF * 4, NULL);
    float *act_a = malloc(FF * 4), *act_b = malloc(FF * 4);
    uint16_t qnw[HD], knw[HD];
    float inv[HD / 2];
    int32_t pos = CTX - 1;
    for (int i = 0; i < HD; i++) { qnw[i] = qr_f32_to_bf16(1.0f + 0.2f * frand()); knw[i] = qr_f32_to_bf16(1.0f + 0.2f * frand()); }
    for (int i = 0; i < HD / 2; i++) inv[i] = powf(10000.0f, -2.0f * i / HD);
    B.qn = mk(d, s, sizeof qnw, qnw);
    B.kn = mk(d, s, sizeof knw, knw);
    B.pos = mk(d, s, 4, &pos);
    B.invf = mk(d, s, sizeof inv, inv);
    float *q_a = malloc((NH + 2 * NKV) * HD * 4), *q_b = malloc((NH + 2 * NKV) * HD * 4);
    CHECK(B.table && B.ids && B.h && B.n && B.nw && B.wq && B.q && B.kc && B.vc && B.slots && B.bt && B.sl &&
          B.qs && B.att && B.logit_idx && B.logits && B.am && B.wgu && B.wdown && B.gu && B.act && B.qn && B.kn &&
          B.pos && B.invf);
    if (qt_failed) return qt_summary("test_vulkan_graph");

    struct qr_node nodes[24];
    int nn = build(&B, nodes);
    struct qr_graph g = {.nodes = nodes, .n_nodes = nn, .key = 0x5eed};
    int distinct = 0, prev_am = -1;
    float *la = malloc(VOCAB * 4), *lb = malloc(VOCAB * 4);
    for (int step = 0; step < 4; step++) {
        int32_t id = (step * 97 + 5) % VOCAB;
        slot = bt[(CTX - 1) / BS] * BS + (CTX - 1) % BS;
        /* op by op (reference), from the same KV contents */
        CHECK(qr_stream_write(s, B.kc, 0, kv, kvn * 2) == QR_OK);
        CHECK(qr_stream_write(s, B.vc, 0, kv, kvn * 2) == QR_OK);
        CHECK(qr_stream_write(s, B.ids, 0, &id, 4) == QR_OK);
        CHECK(qr_stream_write(s, B.slots, 0, &slot, 4) == QR_OK);
        for (int i = 0; i < nn; i++) CHECK(qr_node_run(s, &nodes[i]) == QR_OK);
        int32_t am_a = -1, am_b = -2;
        CHECK(qr_stream_read(s, B.logits, 0, la, VOCAB * 4) == QR_OK);
        CHECK(qr_stream_read(s, B.am, 0, &am_a, 4) == QR_OK);
        CHECK(qr_stream_read(s, B.act, 0, act_a, FF * 4) == QR_OK);
        CHECK(qr_stream_read(s, B.q, 0, q_a, (NH + 2 * NKV) * HD * 4) == QR_OK);
        CHECK(qr_stream_memset0(s, B.act, 0, FF * 4) == QR_OK);
        /* the recorded graph, replayed from step 1 on */
        CHECK(qr_stream_write(s, B.kc, 0, kv, kvn * 2) == QR_OK);
        CHECK(qr_stream_write(s, B.vc, 0, kv, kvn * 2) == QR_OK);
        CHECK(qr_stream_write(s, B.ids, 0, &id, 4) == QR_OK);
        CHECK(qr_graph_run(s, &g) == QR_OK);
        CHECK(qr_stream_read(s, B.logits, 0, lb, VOCAB * 4) == QR_OK);
        CHECK(qr_stream_read(s, B.am, 0, &am_b, 4) == QR_OK);
        CHECK(qr_stream_read(s, B.act, 0, act_b, FF * 4) == QR_OK);
        CHECK(qr_stream_read(s, B.q, 0, q_b, (NH + 2 * NKV) * HD * 4) == QR_OK);
        double maxq = 0;
        for (int i = 0; i < (NH + 2 * NKV) * HD; i++) {
            double dd = fabs((double)q_a[i] - q_b[i]);
            if (!(dd <= maxq)) maxq = dd;
        }
        CHECKF(maxq <= 1e-5, "step %d: normed + rotated q/k (fused in the graph) differ by %g", step, maxq);
        double maxa = 0;
        for (int i = 0; i < FF; i++) {
            double dd = fabs((double)act_a[i] - act_b[i]);
            if (!(dd <= maxa)) maxa = dd;
        }
        CHECKF(maxa <= 1e-5, "step %d: SwiGLU output (fused in the graph) differs by %g", step, maxa);
        double maxd = 0, maxr = 0;
        int best = 0;
        for (int i = 0; i < VOCAB; i++) {
            double dd = fabs((double)la[i] - lb[i]);
            if (!(dd <= maxd)) maxd = dd;
            if (fabs(la[i]) > maxr) maxr = fabs(la[i]);
            if (la[i] > la[best]) best = i;
        }
        /* the graph may fuse SwiGLU into the down projection: same math, maybe another rounding order */
        CHECKF(maxd <= 1e-4 * (maxr + 1), "step %d: graph replay differs from op-by-op by %g", step, maxd);
        CHECKF(am_a == am_b && am_a == best, "step %d: argmax %d (ops) %d (graph) %d (host)", step, am_a, am_b, best);
        if (am_a != prev_am) distinct++;
        prev_am = am_a;
    }
    CHECKF(distinct >= 2, "replays with different ids all gave the same token: inputs not re-read?");
    /* a bad graph node fails cleanly */
    struct qr_node bad = nodes[0];
    bad.a.embed.dim = 1 << 30;
    struct qr_graph gb = {.nodes = &bad, .n_nodes = 1, .key = 0xbad};
    CHECK(qr_graph_run(s, &gb) != QR_OK);
    CHECK(qr_stream_sync(s) == QR_OK);

    struct qr_buf **all = (struct qr_buf **)&B;
    for (size_t i = 0; i < sizeof B / sizeof(struct qr_buf *); i++) qr_buf_free(all[i]);
    free(table); free(wq); free(kv); free(la); free(lb); free(wgu); free(wdown); free(act_a); free(act_b); free(q_a); free(q_b);
    qr_stream_destroy(s);
    qr_device_close(d);
    qr_ini_free(ini);
    return qt_summary("test_vulkan_graph");
}
