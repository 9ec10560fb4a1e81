/* runtime_graph.c - one forward step as a qr_graph.
 *
 * Reference: transformers modeling_qwen3.py / modeling_qwen2.py (REFERENCE.md 1.2):
 *   x = embed[ids]
 *   per layer: h = rmsnorm(x); qkv = h.Wqkv^T (+b); q,k = qk_norm (qwen3); rope(q, k);
 *              kv_store(k, v); a = attn(q, cache); x += a.Wo^T;
 *              h = rmsnorm(x); x += (silu(h.Wg^T) * h.Wu^T).Wd^T
 *   logits = rmsnorm(x)[out_idx] . lm_head^T
 * Every buffer and offset is fixed at create time; the per-step inputs go to
 * fixed offsets of the IO buffer, so a graph with the same shape key has the
 * same args and a GPU backend may record it once and replay it. */
#include "runtime_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NODES_PER_LAYER 16

qr_status qr_rt_graph_init(struct qr_runtime *rt)
{
    rt->max_nodes = 1 + NODES_PER_LAYER * rt->cfg.num_hidden_layers + 3;
    rt->nodes = calloc((size_t)rt->max_nodes, sizeof(struct qr_node));
    if (!rt->nodes)
        return qr_set_error(QR_E_OOM_HOST, "runtime: out of memory");
    return QR_OK;
}

static struct qr_view V(struct qr_buf *b, size_t off) { return (struct qr_view){.buf = b, .off = off}; }

static struct qr_view W(const struct rt_weight *w) { return V(w->buf, 0); }

static int pow2_at_least(int v, int lo)
{
    int p = lo;
    while (p < v && p < (1 << 30))
        p <<= 1;
    return p;
}

static uint64_t fnv(uint64_t h, int64_t v)
{
    for (int i = 0; i < 8; i++) {
        h ^= (uint64_t)(v >> (8 * i)) & 0xff;
        h *= 0x100000001b3ull;
    }
    return h;
}

/* ---- validation: nothing reaches the device before every index is checked ---- */
static qr_status validate(const struct qr_runtime *rt, const struct qr_batch *b, int *need_blocks, int *max_len,
                          int *max_q)
{
    const struct qr_runtime_opts *o = &rt->o;
    if (b->n_tokens < 1 || b->n_tokens > o->max_batch_tokens)
        return qr_set_error(QR_E_INVALID_ARG, "step: %d tokens, must be in [1, %d]", b->n_tokens,
                            o->max_batch_tokens);
    if (b->n_seqs < 1 || b->n_seqs > o->max_seqs || b->n_seqs > b->n_tokens)
        return qr_set_error(QR_E_INVALID_ARG, "step: %d sequences, must be in [1, min(%d, n_tokens)]", b->n_seqs,
                            o->max_seqs);
    if (b->n_out < 0 || b->n_out > o->max_out)
        return qr_set_error(QR_E_INVALID_ARG, "step: %d logits rows, must be in [0, %d]", b->n_out, o->max_out);
    if (!b->tokens || !b->positions || !b->slots || !b->q_start || !b->seq_lens || !b->block_tables ||
        (b->n_out > 0 && !b->out_idx))
        return qr_set_error(QR_E_INVALID_ARG, "step: NULL input array");
    if (b->max_blocks_per_seq < 1)
        return qr_set_error(QR_E_INVALID_ARG, "step: max_blocks_per_seq %d must be >= 1", b->max_blocks_per_seq);
    int V = rt->cfg.vocab_size, bs = rt->block_size, nb = rt->num_blocks;
    for (int t = 0; t < b->n_tokens; t++)
        if (b->tokens[t] < 0 || b->tokens[t] >= V)
            return qr_set_error(QR_E_INVALID_ARG, "step: token %d has id %d, outside the vocabulary [0, %d)", t,
                                b->tokens[t], V);
    if (b->q_start[0] != 0 || b->q_start[b->n_seqs] != b->n_tokens)
        return qr_set_error(QR_E_INVALID_ARG, "step: q_start must run from 0 to n_tokens (%d), got %d..%d",
                            b->n_tokens, b->q_start[0], b->q_start[b->n_seqs]);
    int need = 1, mlen = 1, mq = 1;
    for (int s = 0; s < b->n_seqs; s++) {
        int q0 = b->q_start[s], q1 = b->q_start[s + 1], qlen = q1 - q0, len = b->seq_lens[s];
        if (qlen < 1)
            return qr_set_error(QR_E_INVALID_ARG, "step: sequence %d has %d query tokens", s, qlen);
        if (len < qlen || len > rt->max_model_len)
            return qr_set_error(QR_E_INVALID_ARG,
                                "step: sequence %d has context length %d with %d new tokens (max model length %d)",
                                s, len, qlen, rt->max_model_len);
        int nblk = (len + bs - 1) / bs;
        if (nblk > b->max_blocks_per_seq || nblk > rt->max_blocks_per_seq)
            return qr_set_error(QR_E_INVALID_ARG, "step: sequence %d needs %d blocks, its table has %d", s, nblk,
                                b->max_blocks_per_seq);
        const int32_t *bt = b->block_tables + (size_t)s * (size_t)b->max_blocks_per_seq;
        for (int i = 0; i < nblk; i++)
            if (bt[i] < 0 || bt[i] >= nb)
                return qr_set_error(QR_E_INVALID_ARG, "step: sequence %d block %d is %d, outside the pool [0, %d)",
                                    s, i, bt[i], nb);
        for (int t = q0; t < q1; t++) {
            int pos = len - qlen + (t - q0);
            if (b->positions[t] != pos)
                return qr_set_error(QR_E_INVALID_ARG, "step: token %d of sequence %d has position %d, expected %d", t,
                                    s, b->positions[t], pos);
            int32_t sl = b->slots[t];
            if (sl < 0)
                continue;
            int32_t want = bt[pos / bs] * bs + pos % bs;
            if (sl >= nb * bs || sl != want)
                return qr_set_error(QR_E_INVALID_ARG,
                                    "step: token %d has KV slot %d; its block table puts position %d at slot %d", t,
                                    sl, pos, want);
        }
        if (nblk > need)
            need = nblk;
        if (len > mlen)
            mlen = len;
        if (qlen > mq)
            mq = qlen;
    }
    for (int r = 0; r < b->n_out; r++)
        if (b->out_idx[r] < 0 || b->out_idx[r] >= b->n_tokens)
            return qr_set_error(QR_E_INVALID_ARG, "step: logits row %d selects token %d of %d", r, b->out_idx[r],
                                b->n_tokens);
    *need_blocks = need;
    *max_len = mlen;
    *max_q = mq;
    return QR_OK;
}

static qr_status write_inputs(struct qr_runtime *rt, const struct qr_batch *b, int width)
{
    const struct rt_io_layout *io = &rt->il;
    size_t n = (size_t)b->n_tokens * sizeof(int32_t);
    qr_status st;
    if ((st = qr_stream_write(rt->st, rt->io, io->ids, b->tokens, n)) != QR_OK ||
        (st = qr_stream_write(rt->st, rt->io, io->pos, b->positions, n)) != QR_OK ||
        (st = qr_stream_write(rt->st, rt->io, io->slots, b->slots, n)) != QR_OK ||
        (st = qr_stream_write(rt->st, rt->io, io->q_start, b->q_start, (size_t)(b->n_seqs + 1) * sizeof(int32_t))) !=
            QR_OK ||
        (st = qr_stream_write(rt->st, rt->io, io->seq_lens, b->seq_lens, (size_t)b->n_seqs * sizeof(int32_t))) != QR_OK)
        return st;
    if (b->n_out > 0 &&
        (st = qr_stream_write(rt->st, rt->io, io->out_idx, b->out_idx, (size_t)b->n_out * sizeof(int32_t))) != QR_OK)
        return st;
    /* block tables at a fixed (bucketed) width; unused entries are block 0 */
    int bs = rt->block_size;
    for (int s = 0; s < b->n_seqs; s++) {
        const int32_t *src = b->block_tables + (size_t)s * (size_t)b->max_blocks_per_seq;
        int32_t *dst = rt->bt_stage + (size_t)s * (size_t)width;
        int nblk = (b->seq_lens[s] + bs - 1) / bs;
        memcpy(dst, src, (size_t)nblk * sizeof(int32_t));
        memset(dst + nblk, 0, (size_t)(width - nblk) * sizeof(int32_t));
    }
    return qr_stream_write(rt->st, rt->io, io->block_tables, rt->bt_stage,
                           (size_t)b->n_seqs * (size_t)width * sizeof(int32_t));
}

/* builds the node list; returns the count */
enum rt_out { OUT_LOGITS, OUT_ARGMAX, OUT_TOPK };

static int build(struct qr_runtime *rt, const struct qr_batch *b, int width, int max_len, int max_q, enum rt_out out,
                 int k)
{
    const struct qr_model_config *c = &rt->cfg;
    const struct rt_scratch *sb = &rt->sb;
    const struct rt_io_layout *io = &rt->il;
    struct qr_buf *IO = rt->io;
    int T = b->n_tokens, D = c->hidden_size, F = c->intermediate_size, hd = c->head_dim;
    int H = c->num_attention_heads, KV = c->num_key_value_heads;
    int qd = rt->q_dim, kvd = rt->kv_dim, ld = rt->qkv_dim;
    float eps = (float)c->rms_norm_eps;
    size_t f = sizeof(float);
    struct qr_node *nd = rt->nodes;
    int n = 0;

    nd[n].op = QR_OP_EMBED;
    nd[n++].a.embed = (struct qr_embed_args){.out = V(sb->x, 0), .table = W(&rt->embed), .ids = V(IO, io->ids),
                                             .wtype = rt->embed.dtype, .n_tokens = T, .dim = D,
                                             .vocab = c->vocab_size};
    for (int l = 0; l < c->num_hidden_layers; l++) {
        const struct rt_layer *L = &rt->layers[l];
        nd[n].op = QR_OP_RMSNORM;
        nd[n++].a.rmsnorm = (struct qr_rmsnorm_args){.out = V(sb->h, 0), .x = V(sb->x, 0), .w = W(&L->ln1),
                                                     .wtype = L->ln1.dtype, .n_tokens = T, .n_heads = 1, .n = D,
                                                     .ldx = D, .ldout = D, .eps = eps};
        if (rt->concat) {
            nd[n].op = QR_OP_MATMUL;
            nd[n++].a.matmul = (struct qr_matmul_args){.y = V(sb->qkv, 0), .x = V(sb->h, 0), .w = W(&L->qkv),
                                                       .bias = W(&L->qkv_bias), .wtype = L->qkv.dtype,
                                                       .btype = L->qkv_bias.dtype, .M = T, .N = ld, .K = D,
                                                       .ldx = D, .ldy = ld};
        } else {
            const struct rt_weight *ws[3] = {&L->q, &L->k, &L->v}, *bs[3] = {&L->q_bias, &L->k_bias, &L->v_bias};
            int offs[3] = {0, qd, qd + kvd}, Ns[3] = {qd, kvd, kvd};
            for (int i = 0; i < 3; i++) {
                nd[n].op = QR_OP_MATMUL;
                nd[n++].a.matmul = (struct qr_matmul_args){.y = V(sb->qkv, (size_t)offs[i] * f),
                                                           .x = V(sb->h, 0), .w = W(ws[i]), .bias = W(bs[i]),
                                                           .wtype = ws[i]->dtype, .btype = bs[i]->dtype, .M = T,
                                                           .N = Ns[i], .K = D, .ldx = D, .ldy = ld};
            }
        }
        size_t q_off = 0, k_off = (size_t)qd * f, v_off = (size_t)(qd + kvd) * f;
        if (L->q_norm.buf) {
            nd[n].op = QR_OP_QK_NORM;
            nd[n++].a.rmsnorm = (struct qr_rmsnorm_args){.out = V(sb->qkv, q_off), .x = V(sb->qkv, q_off), .w = W(&L->q_norm),
                                                         .wtype = L->q_norm.dtype, .n_tokens = T, .n_heads = H,
                                                         .n = hd, .ldx = ld, .ldout = ld, .eps = eps};
            nd[n].op = QR_OP_QK_NORM;
            nd[n++].a.rmsnorm = (struct qr_rmsnorm_args){.out = V(sb->qkv, k_off), .x = V(sb->qkv, k_off), .w = W(&L->k_norm),
                                                         .wtype = L->k_norm.dtype, .n_tokens = T, .n_heads = KV,
                                                         .n = hd, .ldx = ld, .ldout = ld, .eps = eps};
        }
        nd[n].op = QR_OP_ROPE;
        nd[n++].a.rope = (struct qr_rope_args){.x = V(sb->qkv, q_off), .pos = V(IO, io->pos), .inv_freq = V(rt->rope, 0),
                                               .n_tokens = T, .n_heads = H, .head_dim = hd, .ld = ld,
                                               .attn_factor = rt->attn_factor};
        nd[n].op = QR_OP_ROPE;
        nd[n++].a.rope = (struct qr_rope_args){.x = V(sb->qkv, k_off), .pos = V(IO, io->pos), .inv_freq = V(rt->rope, 0),
                                               .n_tokens = T, .n_heads = KV, .head_dim = hd, .ld = ld,
                                               .attn_factor = rt->attn_factor};
        nd[n].op = QR_OP_KV_STORE;
        nd[n++].a.kv_store = (struct qr_kv_store_args){.k_cache = V(L->k_cache, 0), .v_cache = V(L->v_cache, 0),
                                                       .k = V(sb->qkv, k_off), .v = V(sb->qkv, v_off),
                                                       .slots = V(IO, io->slots), .kv_dtype = rt->o.kv_dtype,
                                                       .n_tokens = T, .n_kv_heads = KV, .head_dim = hd, .ld = ld,
                                                       .block_size = rt->block_size, .num_blocks = rt->num_blocks};
        nd[n].op = QR_OP_ATTN;
        nd[n++].a.attn = (struct qr_attn_args){.out = V(sb->att, 0), .q = V(sb->qkv, q_off), .k_cache = V(L->k_cache, 0),
                                               .v_cache = V(L->v_cache, 0), .block_tables = V(IO, io->block_tables),
                                               .seq_lens = V(IO, io->seq_lens), .q_start = V(IO, io->q_start),
                                               .kv_dtype = rt->o.kv_dtype, .n_tokens = T, .n_seqs = b->n_seqs,
                                               .n_heads = H, .n_kv_heads = KV, .head_dim = hd,
                                               .block_size = rt->block_size, .max_blocks_per_seq = width,
                                               .num_blocks = rt->num_blocks, .ldq = ld, .ldo = qd,
                                               .max_seq_len = max_len, .max_q_len = max_q,
                                               .scale = 1.0f / sqrtf((float)hd)};
        nd[n].op = QR_OP_MATMUL;
        nd[n++].a.matmul = (struct qr_matmul_args){.y = V(sb->x, 0), .x = V(sb->att, 0), .w = W(&L->o),
                                                   .wtype = L->o.dtype, .btype = L->o.dtype, .M = T, .N = D,
                                                   .K = qd, .ldx = qd, .ldy = D, .accumulate = 1};
        nd[n].op = QR_OP_RMSNORM;
        nd[n++].a.rmsnorm = (struct qr_rmsnorm_args){.out = V(sb->h, 0), .x = V(sb->x, 0), .w = W(&L->ln2),
                                                     .wtype = L->ln2.dtype, .n_tokens = T, .n_heads = 1, .n = D,
                                                     .ldx = D, .ldout = D, .eps = eps};
        if (rt->concat) {
            nd[n].op = QR_OP_MATMUL;
            nd[n++].a.matmul = (struct qr_matmul_args){.y = V(sb->gu, 0), .x = V(sb->h, 0), .w = W(&L->gate_up),
                                                       .wtype = L->gate_up.dtype, .btype = L->gate_up.dtype,
                                                       .M = T, .N = 2 * F, .K = D, .ldx = D, .ldy = 2 * F};
        } else {
            nd[n].op = QR_OP_MATMUL;
            nd[n++].a.matmul = (struct qr_matmul_args){.y = V(sb->gu, 0), .x = V(sb->h, 0), .w = W(&L->gate),
                                                       .wtype = L->gate.dtype, .btype = L->gate.dtype, .M = T,
                                                       .N = F, .K = D, .ldx = D, .ldy = 2 * F};
            nd[n].op = QR_OP_MATMUL;
            nd[n++].a.matmul = (struct qr_matmul_args){.y = V(sb->gu, (size_t)F * f), .x = V(sb->h, 0),
                                                       .w = W(&L->up), .wtype = L->up.dtype, .btype = L->up.dtype,
                                                       .M = T, .N = F, .K = D, .ldx = D, .ldy = 2 * F};
        }
        nd[n].op = QR_OP_SILU_MUL;
        nd[n++].a.silu_mul = (struct qr_silu_mul_args){.out = V(sb->act, 0), .gu = V(sb->gu, 0), .n_tokens = T,
                                                       .n_ff = F, .ldgu = 2 * F, .ldout = F};
        nd[n].op = QR_OP_MATMUL;
        nd[n++].a.matmul = (struct qr_matmul_args){.y = V(sb->x, 0), .x = V(sb->act, 0), .w = W(&L->down),
                                                   .wtype = L->down.dtype, .btype = L->down.dtype, .M = T, .N = D,
                                                   .K = F, .ldx = F, .ldy = D, .accumulate = 1};
    }
    if (b->n_out > 0) {
        nd[n].op = QR_OP_RMSNORM;
        nd[n++].a.rmsnorm = (struct qr_rmsnorm_args){.out = V(sb->h, 0), .x = V(sb->x, 0), .w = W(&rt->final_norm),
                                                     .wtype = rt->final_norm.dtype, .n_tokens = T, .n_heads = 1,
                                                     .n = D, .ldx = D, .ldout = D, .eps = eps};
        struct qr_buf *lm = rt->lm_head.buf ? rt->lm_head.buf : rt->embed.buf;
        nd[n].op = QR_OP_LOGITS;
        nd[n++].a.logits = (struct qr_logits_args){.out = V(sb->logits, 0), .x = V(sb->h, 0),
                                                   .idx = V(IO, io->out_idx), .w = V(lm, 0),
                                                   .wtype = rt->lm_head.dtype, .n_out = b->n_out, .dim = D,
                                                   .vocab = c->vocab_size, .ldx = D};
        if (out == OUT_ARGMAX) {
            nd[n].op = QR_OP_ARGMAX;
            nd[n++].a.argmax = (struct qr_argmax_args){.out = V(IO, io->argmax), .x = V(sb->logits, 0),
                                                       .n_rows = b->n_out, .n = c->vocab_size};
        } else if (out == OUT_TOPK) {
            nd[n].op = QR_OP_TOPK;
            nd[n++].a.topk = (struct qr_topk_args){.ids = V(IO, io->topk_ids), .vals = V(IO, io->topk_vals),
                                                   .x = V(sb->logits, 0), .inv_t = V(IO, io->inv_t),
                                                   .n_rows = b->n_out, .n = c->vocab_size, .k = k};
        }
    }
    QR_ASSERT(n <= rt->max_nodes);
    return n;
}

/* one step; the outputs: logits rows, argmax ids, or each row's k best (inv_t: n_out per-row scales) */
static qr_status forward(struct qr_runtime *rt, const struct qr_batch *b, float *logits, int32_t *argmax,
                         const float *inv_t, int k, int32_t *tk_ids, float *tk_vals)
{
    if (!rt || !b)
        return qr_set_error(QR_E_INVALID_ARG, "qr_rt_forward: NULL argument");
    int need = 1, max_len = 1, max_q = 1;
    qr_status st = validate(rt, b, &need, &max_len, &max_q);
    if (st != QR_OK)
        return st;
    if ((logits || argmax || tk_ids) && b->n_out == 0)
        return qr_set_error(QR_E_INVALID_ARG, "step: outputs asked for with n_out = 0");
    /* shape buckets: the graph's args depend on these alone */
    int width = pow2_at_least(need, 4);
    if (width > rt->max_blocks_per_seq)
        width = rt->max_blocks_per_seq;
    if (width < need)
        width = need;
    int len_b = pow2_at_least(max_len, 64);
    if (len_b > width * rt->block_size)
        len_b = width * rt->block_size;
    int q_b = pow2_at_least(max_q, 1);
    if (q_b > b->n_tokens)
        q_b = b->n_tokens;
    bool dev_argmax = argmax && rt->dev->ops && rt->dev->ops->argmax;
    enum rt_out out = tk_ids ? OUT_TOPK : dev_argmax ? OUT_ARGMAX : OUT_LOGITS;

    if ((st = write_inputs(rt, b, width)) != QR_OK)
        return st;
    if (out == OUT_TOPK &&
        (st = qr_stream_write(rt->st, rt->io, rt->il.inv_t, inv_t, (size_t)b->n_out * sizeof(float))) != QR_OK)
        return st;
    struct qr_graph g = {.nodes = rt->nodes, .n_nodes = build(rt, b, width, len_b, q_b, out, k)};
    uint64_t h = 0xcbf29ce484222325ull;
    h = fnv(h, b->n_tokens);
    h = fnv(h, b->n_seqs);
    h = fnv(h, width);
    h = fnv(h, len_b);
    h = fnv(h, q_b);
    h = fnv(h, b->n_out);
    h = fnv(h, dev_argmax);
    if (out == OUT_TOPK)
        h = fnv(h, 0x70000 + k);
    g.key = h | 1;
    rt->last_n_out = 0;
    if ((st = qr_graph_run(rt->st, &g)) != QR_OK)
        return st;
    rt->last_n_out = b->n_out;
    if (out == OUT_TOPK) {
        size_t nb = (size_t)b->n_out * (size_t)k * sizeof(int32_t);
        if ((st = qr_stream_read(rt->st, rt->io, rt->il.topk_ids, tk_ids, nb)) != QR_OK)
            return st;
        return qr_stream_read(rt->st, rt->io, rt->il.topk_vals, tk_vals, nb);
    }

    size_t row = (size_t)rt->cfg.vocab_size * sizeof(float);
    if (dev_argmax && (st = qr_stream_read(rt->st, rt->io, rt->il.argmax, argmax,
                                           (size_t)b->n_out * sizeof(int32_t))) != QR_OK)
        return st;
    float *lg = logits;
    if (!lg && argmax && !dev_argmax) {
        if (!rt->host_logits && !(rt->host_logits = malloc((size_t)rt->o.max_out * row)))
            return qr_set_error(QR_E_OOM_HOST, "runtime: out of memory for logits");
        lg = rt->host_logits;
    }
    if (lg && (st = qr_stream_read(rt->st, rt->sb.logits, 0, lg, (size_t)b->n_out * row)) != QR_OK)
        return st;
    if (argmax && !dev_argmax) {
        for (int r = 0; r < b->n_out; r++) {
            const float *x = lg + (size_t)r * rt->cfg.vocab_size;
            int32_t best = 0;
            for (int j = 1; j < rt->cfg.vocab_size; j++)
                if (x[j] > x[best])
                    best = j;
            argmax[r] = best;
        }
    }
    if (!lg && !dev_argmax)
        return qr_stream_sync(rt->st);
    return QR_OK;
}

qr_status qr_rt_forward(struct qr_runtime *rt, const struct qr_batch *b, float *logits, int32_t *argmax)
{
    return forward(rt, b, logits, argmax, NULL, 0, NULL, NULL);
}

bool qr_rt_has_topk(const struct qr_runtime *rt)
{
    return rt && qr_dev_supports(rt->dev, QR_OP_TOPK, QR_DTYPE_F32);   /* false where ops->topk is NULL */
}

qr_status qr_rt_forward_topk(struct qr_runtime *rt, const struct qr_batch *b, const float *inv_t, int k, int32_t *ids,
                             float *vals)
{
    if (!rt || !b || !inv_t || !ids || !vals)
        return qr_set_error(QR_E_INVALID_ARG, "qr_rt_forward_topk: NULL argument");
    if (!qr_rt_has_topk(rt))
        return qr_set_error(QR_E_UNSUPPORTED, "qr_rt_forward_topk: the backend has no top-k op");
    if (k < 1 || k > QR_TOPK_MAX || k > rt->cfg.vocab_size)
        return qr_set_error(QR_E_INVALID_ARG, "qr_rt_forward_topk: k %d outside [1, %d]", k, QR_TOPK_MAX);
    for (int r = 0; r < b->n_out; r++)
        if (!(inv_t[r] > 0) || !isfinite(inv_t[r]))
            return qr_set_error(QR_E_INVALID_ARG, "qr_rt_forward_topk: row %d's 1/temperature %g is not positive",
                                r, (double)inv_t[r]);
    return forward(rt, b, NULL, NULL, inv_t, k, ids, vals);
}

qr_status qr_rt_read_logits(struct qr_runtime *rt, int row, float *out)
{
    if (!rt || !out)
        return qr_set_error(QR_E_INVALID_ARG, "qr_rt_read_logits: NULL argument");
    if (row < 0 || row >= rt->last_n_out)
        return qr_set_error(QR_E_INVALID_ARG, "qr_rt_read_logits: row %d of a step with %d output rows", row,
                            rt->last_n_out);
    size_t rb = (size_t)rt->cfg.vocab_size * sizeof(float);
    return qr_stream_read(rt->st, rt->sb.logits, (size_t)row * rb, out, rb);
}
