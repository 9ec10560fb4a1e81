/* runtime.c - a model placed on a device: weights uploaded (dtype-converted
 * where the backend lacks the checkpoint's dtype; q/k/v and gate/up rows
 * concatenated so a step does one matmul each), scratch sized for the
 * largest step, and the paged KV pool sized from device memory.
 * The forward step itself is in runtime_graph.c. */
#include "runtime_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define RT_STAGE_BYTES ((size_t)8 << 20)

static size_t align_up(size_t v, size_t a) { return a ? (v + a - 1) / a * a : v; }

static double mib(size_t b) { return (double)b / (1024.0 * 1024.0); }

/* ---- weight upload ---- */

struct upload_ctx {
    struct qr_runtime *rt;
    size_t done, total;
    qr_progress_fn cb;
    void *cb_user;
};

/* writes n elements of src (dtype s) at dst+off as dtype d, converting in chunks */
static qr_status write_converted(struct upload_ctx *u, struct qr_buf *dst, size_t off, const void *src,
                                 enum qr_dtype s, enum qr_dtype d, size_t n)
{
    struct qr_runtime *rt = u->rt;
    qr_status st;
    if (s == d) {
        size_t bytes = n * qr_dtype_size(s);
        for (size_t p = 0; p < bytes; p += RT_STAGE_BYTES) {
            size_t c = bytes - p < RT_STAGE_BYTES ? bytes - p : RT_STAGE_BYTES;
            st = qr_stream_write(rt->st, dst, off + p, (const char *)src + p, c);
            if (st != QR_OK)
                return st;
            u->done += c;
            if (u->cb)
                u->cb(u->done, u->total, u->cb_user);
        }
        return QR_OK;
    }
    size_t ds = qr_dtype_size(d), ss = qr_dtype_size(s);
    size_t chunk = RT_STAGE_BYTES / ds;
    void *buf = malloc(chunk * ds);
    if (!buf)
        return qr_set_error(QR_E_OOM_HOST, "runtime: out of host memory converting weights");
    for (size_t i = 0; i < n; i += chunk) {
        size_t c = n - i < chunk ? n - i : chunk;
        for (size_t j = 0; j < c; j++) {
            const char *p = (const char *)src + (i + j) * ss;
            float f;
            uint16_t h;
            switch (s) {
            case QR_DTYPE_F32: memcpy(&f, p, 4); break;
            case QR_DTYPE_F16: memcpy(&h, p, 2); f = qr_f16_to_f32(h); break;
            default: memcpy(&h, p, 2); f = qr_bf16_to_f32(h); break;
            }
            char *q = (char *)buf + j * ds;
            switch (d) {
            case QR_DTYPE_F32: memcpy(q, &f, 4); break;
            case QR_DTYPE_F16: h = qr_f32_to_f16(f); memcpy(q, &h, 2); break;
            default: h = qr_f32_to_bf16(f); memcpy(q, &h, 2); break;
            }
        }
        st = qr_stream_write(rt->st, dst, off + i * ds, buf, c * ds);
        if (st != QR_OK) {
            free(buf);
            return st;
        }
        u->done += c * ss;
        if (u->cb)
            u->cb(u->done, u->total, u->cb_user);
    }
    free(buf);
    return QR_OK;
}

/* the dtype op runs with on this device for a checkpoint tensor of dtype t */
static qr_status pick_dtype(struct qr_runtime *rt, enum qr_op op, enum qr_dtype t, enum qr_dtype *out)
{
    static const enum qr_dtype pref[] = {QR_DTYPE_BF16, QR_DTYPE_F16, QR_DTYPE_F32};
    if (qr_dev_supports(rt->dev, op, t)) {
        *out = t;
        return QR_OK;
    }
    /* BF16 on a device without BF16 (Turing): F16 halves the memory of F32
     * and holds BF16 checkpoints' weights (|w| < 65504) at more mantissa bits */
    if (t == QR_DTYPE_BF16 && qr_dev_supports(rt->dev, op, QR_DTYPE_F16)) {
        if (!rt->warned_bf16_to_f16) {
            qr_log(QR_LOG_WARN, "runtime: %s has no BF16 support: converting BF16 weights to F16 at load",
                   rt->props.name);
            rt->warned_bf16_to_f16 = true;
        }
        *out = QR_DTYPE_F16;
        return QR_OK;
    }
    /* f32 keeps every value; otherwise a 16-bit type the device has */
    if (qr_dev_supports(rt->dev, op, QR_DTYPE_F32)) {
        *out = QR_DTYPE_F32;
        return QR_OK;
    }
    for (size_t i = 0; i < sizeof(pref) / sizeof(pref[0]); i++)
        if (qr_dev_supports(rt->dev, op, pref[i])) {
            *out = pref[i];
            return QR_OK;
        }
    return qr_set_error(QR_E_UNSUPPORTED, "runtime: device %s has no %s op for %s weights", rt->props.name,
                        qr_op_name(op), qr_dtype_name(t));
}

/* one device weight from a list of checkpoint tensors whose rows are concatenated */
static qr_status upload(struct upload_ctx *u, enum qr_op op, const struct qr_tensor_info *const *parts, int n_parts,
                        struct rt_weight *w)
{
    struct qr_runtime *rt = u->rt;
    memset(w, 0, sizeof(*w));
    if (n_parts == 0 || !parts[0])
        return QR_OK;
    enum qr_dtype dt = QR_DTYPE_F32;
    qr_status st = pick_dtype(rt, op, parts[0]->dtype, &dt);
    if (st != QR_OK)
        return st;
    size_t n_elem = 0;
    for (int i = 0; i < n_parts; i++) {
        if (!parts[i])
            return qr_set_error(QR_E_INTERNAL, "runtime: missing part of a concatenated weight");
        n_elem += parts[i]->nbytes / qr_dtype_size(parts[i]->dtype);
    }
    size_t bytes = n_elem * qr_dtype_size(dt);
    if (rt->props.max_alloc && bytes > rt->props.max_alloc)
        return qr_set_error(QR_E_OOM_DEVICE, "runtime: weight %s needs %zu bytes, over the device's largest buffer (%zu)",
                            parts[0]->name, bytes, rt->props.max_alloc);
    w->dtype = dt;
    /* zero copy where the device can wrap host memory (CPU: the mmap itself) */
    if (n_parts == 1 && dt == parts[0]->dtype && (rt->props.caps & QR_CAP_HOST_MEMORY)) {
        st = qr_buf_from_host(rt->dev, (void *)parts[0]->data, parts[0]->nbytes, &w->buf);
        if (st != QR_OK)
            return st;
        u->done += bytes;
        rt->weight_bytes += bytes;
        if (u->cb)
            u->cb(u->done, u->total, u->cb_user);
        return QR_OK;
    }
    st = qr_buf_alloc(rt->dev, bytes, QR_BUF_WEIGHTS, &w->buf);
    if (st != QR_OK)
        return st;
    rt->weight_bytes += bytes;
    size_t off = 0;
    for (int i = 0; i < n_parts; i++) {
        size_t ne = parts[i]->nbytes / qr_dtype_size(parts[i]->dtype);
        st = write_converted(u, w->buf, off, parts[i]->data, parts[i]->dtype, dt, ne);
        if (st != QR_OK)
            return st;
        off += ne * qr_dtype_size(dt);
    }
    return QR_OK;
}

static qr_status upload1(struct upload_ctx *u, enum qr_op op, const struct qr_tensor_info *t, struct rt_weight *w)
{
    return upload(u, op, &t, 1, w);
}

/* a bias goes in the dtype of its matmul weight where the device has it */
static qr_status upload_bias(struct upload_ctx *u, const struct qr_tensor_info *const *parts, int n,
                             struct rt_weight *w)
{
    return upload(u, QR_OP_MATMUL, parts, n, w);
}

static void free_weight(struct rt_weight *w)
{
    if (w->buf)
        qr_buf_free(w->buf);
    w->buf = NULL;
}

static qr_status upload_layer(struct upload_ctx *u, const struct qr_layer_weights *L, struct rt_layer *d)
{
    struct qr_runtime *rt = u->rt;
    qr_status st;
    if ((st = upload1(u, QR_OP_RMSNORM, L->input_layernorm, &d->ln1)) != QR_OK ||
        (st = upload1(u, QR_OP_RMSNORM, L->post_attention_layernorm, &d->ln2)) != QR_OK)
        return st;
    if (rt->concat) {
        const struct qr_tensor_info *qkv[3] = {L->q_proj, L->k_proj, L->v_proj};
        const struct qr_tensor_info *gu[2] = {L->gate_proj, L->up_proj};
        if ((st = upload(u, QR_OP_MATMUL, qkv, 3, &d->qkv)) != QR_OK ||
            (st = upload(u, QR_OP_MATMUL, gu, 2, &d->gate_up)) != QR_OK)
            return st;
        if (L->q_bias) {
            const struct qr_tensor_info *b[3] = {L->q_bias, L->k_bias, L->v_bias};
            if ((st = upload_bias(u, b, 3, &d->qkv_bias)) != QR_OK)
                return st;
        }
    } else {
        if ((st = upload1(u, QR_OP_MATMUL, L->q_proj, &d->q)) != QR_OK ||
            (st = upload1(u, QR_OP_MATMUL, L->k_proj, &d->k)) != QR_OK ||
            (st = upload1(u, QR_OP_MATMUL, L->v_proj, &d->v)) != QR_OK ||
            (st = upload1(u, QR_OP_MATMUL, L->gate_proj, &d->gate)) != QR_OK ||
            (st = upload1(u, QR_OP_MATMUL, L->up_proj, &d->up)) != QR_OK)
            return st;
        if (L->q_bias) {
            if ((st = upload_bias(u, &L->q_bias, 1, &d->q_bias)) != QR_OK ||
                (st = upload_bias(u, &L->k_bias, 1, &d->k_bias)) != QR_OK ||
                (st = upload_bias(u, &L->v_bias, 1, &d->v_bias)) != QR_OK)
                return st;
        }
    }
    if (L->q_norm) {
        if ((st = upload1(u, QR_OP_QK_NORM, L->q_norm, &d->q_norm)) != QR_OK ||
            (st = upload1(u, QR_OP_QK_NORM, L->k_norm, &d->k_norm)) != QR_OK)
            return st;
    }
    if ((st = upload1(u, QR_OP_MATMUL, L->o_proj, &d->o)) != QR_OK ||
        (st = upload1(u, QR_OP_MATMUL, L->down_proj, &d->down)) != QR_OK)
        return st;
    return QR_OK;
}

/* ---- sizing ---- */

static qr_status resolve_opts(struct qr_runtime *rt, const struct qr_runtime_opts *in)
{
    struct qr_runtime_opts *o = &rt->o;
    *o = *in;
    if (o->block_size == 0)
        o->block_size = QR_DEFAULT_BLOCK_SIZE;
    if (o->block_size < 1 || o->block_size > 1024)
        return qr_set_error(QR_E_INVALID_ARG, "block size %d must be in [1, 1024]", o->block_size);
    if (o->mem_fraction == 0)
        o->mem_fraction = 0.90;
    if (!(o->mem_fraction > 0 && o->mem_fraction <= 1))
        return qr_set_error(QR_E_INVALID_ARG, "memory fraction %g must be in (0, 1]", o->mem_fraction);
    if (o->max_model_len < 0 || o->max_batch_tokens < 0 || o->max_seqs < 0 || o->max_out < 0 || o->num_blocks < 0)
        return qr_set_error(QR_E_INVALID_ARG, "runtime options must not be negative");
    if (o->max_model_len == 0)
        o->max_model_len = rt->cfg.max_position_embeddings;
    if (o->max_model_len > rt->cfg.max_position_embeddings && !(rt->cfg.rope_yarn_factor > 1))
        qr_log(QR_LOG_WARN, "max model length %d is over the model's max_position_embeddings %d", o->max_model_len,
               rt->cfg.max_position_embeddings);
    if (o->max_seqs == 0)
        o->max_seqs = 256;
    if (o->max_batch_tokens == 0)
        o->max_batch_tokens = 8192;
    if (o->max_out == 0)
        o->max_out = o->max_seqs;
    if (o->max_out > o->max_batch_tokens)
        o->max_out = o->max_batch_tokens;
    if (o->kv_dtype != QR_DTYPE_F32 && o->kv_dtype != QR_DTYPE_F16 && o->kv_dtype != QR_DTYPE_BF16 &&
        o->kv_dtype != QR_DTYPE_F8E4M3)
        return qr_set_error(QR_E_INVALID_ARG, "KV dtype %s: use f32, f16, bf16 or fp8", qr_dtype_name(o->kv_dtype));
    if (!qr_dev_supports(rt->dev, QR_OP_KV_STORE, o->kv_dtype) || !qr_dev_supports(rt->dev, QR_OP_ATTN, o->kv_dtype))
        return qr_set_error(QR_E_UNSUPPORTED, "device %s has no paged attention over a %s KV cache", rt->props.name,
                            qr_dtype_name(o->kv_dtype));
    return QR_OK;
}

static size_t kv_bytes_per_block(const struct qr_runtime *rt)
{
    return (size_t)rt->cfg.num_key_value_heads * (size_t)rt->o.block_size * (size_t)rt->cfg.head_dim *
           qr_dtype_size(rt->o.kv_dtype);
}

/* bytes of the scratch and IO buffers for the resolved opts */
static void layout_buffers(struct qr_runtime *rt)
{
    size_t a = rt->props.alignment > 256 ? rt->props.alignment : 256;
    size_t T = (size_t)rt->o.max_batch_tokens, f = sizeof(float);
    const struct qr_model_config *c = &rt->cfg;
    size_t *z = rt->sb_size;
    z[0] = T * c->hidden_size * f;
    z[1] = T * c->hidden_size * f;
    z[2] = T * (size_t)rt->qkv_dim * f;
    z[3] = T * (size_t)rt->q_dim * f;
    z[4] = T * 2 * (size_t)c->intermediate_size * f;
    z[5] = T * (size_t)c->intermediate_size * f;
    z[6] = (size_t)rt->o.max_out * c->vocab_size * f;
    size_t p = 0;
    for (int i = 0; i < RT_N_SCRATCH; i++)
        p += align_up(z[i], a);
    rt->scratch_bytes = p;

    rt->max_blocks_per_seq = (rt->o.max_model_len + rt->o.block_size - 1) / rt->o.block_size;
    struct rt_io_layout *io = &rt->il;
    size_t i4 = sizeof(int32_t), S = (size_t)rt->o.max_seqs;
    p = 0;
    io->ids = p; p = align_up(p + T * i4, a);
    io->pos = p; p = align_up(p + T * i4, a);
    io->slots = p; p = align_up(p + T * i4, a);
    io->q_start = p; p = align_up(p + (S + 1) * i4, a);
    io->seq_lens = p; p = align_up(p + S * i4, a);
    io->block_tables = p; p = align_up(p + S * (size_t)rt->max_blocks_per_seq * i4, a);
    io->out_idx = p; p = align_up(p + (size_t)rt->o.max_out * i4, a);
    io->argmax = p; p = align_up(p + (size_t)rt->o.max_out * i4, a);
    io->inv_t = p; p = align_up(p + (size_t)rt->o.max_out * i4, a);
    io->topk_ids = p; p = align_up(p + (size_t)rt->o.max_out * QR_TOPK_MAX * i4, a);
    io->topk_vals = p; p = align_up(p + (size_t)rt->o.max_out * QR_TOPK_MAX * i4, a);
    io->size = p;
    rt->io_bytes = io->size;
}

static qr_status alloc_kv(struct qr_runtime *rt)
{
    size_t per_block = kv_bytes_per_block(rt);
    int L = rt->cfg.num_hidden_layers;
    for (int l = 0; l < L; l++) {
        size_t bytes = per_block * (size_t)rt->num_blocks;
        qr_status st = qr_buf_alloc(rt->dev, bytes, QR_BUF_KV, &rt->layers[l].k_cache);
        if (st == QR_OK)
            st = qr_buf_alloc(rt->dev, bytes, QR_BUF_KV, &rt->layers[l].v_cache);
        if (st != QR_OK)
            return qr_set_error(st, "runtime: allocating the KV cache of layer %d (%zu bytes x 2): %s", l, bytes,
                                qr_last_error());
        /* zeroed so stale NaNs never meet a masked-out score */
        if ((st = qr_stream_memset0(rt->st, rt->layers[l].k_cache, 0, bytes)) != QR_OK ||
            (st = qr_stream_memset0(rt->st, rt->layers[l].v_cache, 0, bytes)) != QR_OK)
            return st;
    }
    rt->kv_bytes = per_block * (size_t)rt->num_blocks * 2 * (size_t)L;
    return QR_OK;
}

/* number of KV blocks for the pool, from memory after weights and scratch */
static qr_status size_pool(struct qr_runtime *rt, bool len_explicit)
{
    size_t per_block = kv_bytes_per_block(rt);
    size_t per_block_all = per_block * 2 * (size_t)rt->cfg.num_hidden_layers;
    size_t per_token = per_block_all / (size_t)rt->o.block_size;
    int bs = rt->o.block_size;
    int want_len_blocks = (rt->o.max_model_len + bs - 1) / bs;
    struct qr_device_props p;
    qr_status st = qr_dev_props(rt->dev, &p);
    if (st != QR_OK)
        return st;
    long long blocks;
    size_t budget;
    if (rt->o.num_blocks > 0) {
        blocks = rt->o.num_blocks;
        budget = (size_t)blocks * per_block_all;
    } else if (p.caps & QR_CAP_HOST_MEMORY) {
        /* CPU: enough for max_model_len x 4 sequences, within half of free RAM */
        budget = (size_t)(p.mem_free * 0.5);
        long long want = (long long)want_len_blocks * 4;
        blocks = (long long)(budget / per_block_all);
        if (blocks > want)
            blocks = want;
    } else {
        size_t used = p.mem_total > p.mem_free ? p.mem_total - p.mem_free : 0;
        size_t allowed = (size_t)(rt->o.mem_fraction * (double)p.mem_total);
        budget = allowed > used ? allowed - used : 0;
        blocks = (long long)(budget / per_block_all);
    }
    if (p.max_alloc && per_block > 0 && blocks > (long long)(p.max_alloc / per_block))
        blocks = (long long)(p.max_alloc / per_block);
    if (blocks > INT32_MAX / bs)
        blocks = INT32_MAX / bs;
    long long pool_tokens = blocks * bs;
    if (blocks < 1 || (len_explicit && pool_tokens < rt->o.max_model_len)) {
        long long suggest = pool_tokens / 256 * 256;
        return qr_set_error(QR_E_OOM_DEVICE,
                            "not enough device memory for the KV cache: %d tokens of context need %zu bytes (%.1f MiB) "
                            "after %.1f MiB of weights and %.1f MiB of activations, %zu bytes (%.1f MiB) are free "
                            "within --gpu-memory-utilization %.2f; %s",
                            rt->o.max_model_len, (size_t)want_len_blocks * per_block_all,
                            mib((size_t)want_len_blocks * per_block_all), mib(rt->weight_bytes),
                            mib(rt->scratch_bytes + rt->io_bytes), budget, mib(budget), rt->o.mem_fraction,
                            suggest >= 256 ? "try a smaller --max-model-len (at most the number below)" :
                                             "try a smaller model, --max-num-batched-tokens or a larger memory fraction");
    }
    rt->num_blocks = (int)blocks;
    if (pool_tokens < rt->o.max_model_len) {
        qr_log(QR_LOG_WARN, "KV pool holds %lld tokens: max model length capped from %d to %lld", pool_tokens,
               rt->o.max_model_len, pool_tokens);
        rt->o.max_model_len = (int)pool_tokens;
    }
    (void)per_token;
    return QR_OK;
}

/* ---- create / destroy ---- */

/* A prompt step of up to 64 tokens and one decode step through the real graph, on KV blocks 0.. of the still
 * empty pool (nothing reads them before a sequence writes its own).  GPU backends build pipelines, load library
 * kernels and pick algorithms on first use; this moves that cost from the first request to start-up. */
static qr_status rt_warmup(struct qr_runtime *rt)
{
    int bs = rt->block_size;
    int T = 64;
    if (T > rt->o.max_batch_tokens)
        T = rt->o.max_batch_tokens;
    if (T > rt->max_model_len - 1)
        T = rt->max_model_len - 1;
    if ((int64_t)T + 1 > (int64_t)rt->num_blocks * bs)
        T = rt->num_blocks * bs - 1;
    if (T < 1)
        return QR_OK;
    int nb = (T + 1 + bs - 1) / bs;
    if (nb > rt->max_blocks_per_seq)
        return QR_OK;
    int32_t *buf = calloc((size_t)3 * (size_t)T + (size_t)nb + 8, sizeof(int32_t));
    if (!buf)
        return qr_set_error(QR_E_OOM_HOST, "runtime: out of memory");
    int32_t *tok = buf, *pos = tok + T, *slot = pos + T, *bt = slot + T;
    for (int i = 0; i < T; i++) {
        tok[i] = 0;
        pos[i] = i;
        slot[i] = i;
    }
    for (int i = 0; i < nb; i++)
        bt[i] = i;
    int32_t qs[2] = {0, T}, len[1] = {T}, out_idx[1] = {T - 1}, am[1];
    struct qr_batch b = {.n_tokens = T, .tokens = tok, .positions = pos, .slots = slot, .n_seqs = 1, .q_start = qs,
                         .seq_lens = len, .block_tables = bt, .max_blocks_per_seq = nb, .n_out = 1,
                         .out_idx = out_idx};
    double t0 = qr_time_s();
    qr_status st = qr_rt_forward(rt, &b, NULL, am);
    if (st == QR_OK) {
        int32_t dtok[1] = {0}, dpos[1] = {T}, dslot[1] = {T}, dqs[2] = {0, 1}, dlen[1] = {T + 1}, didx[1] = {0};
        struct qr_batch d = {.n_tokens = 1, .tokens = dtok, .positions = dpos, .slots = dslot, .n_seqs = 1,
                             .q_start = dqs, .seq_lens = dlen, .block_tables = bt, .max_blocks_per_seq = nb,
                             .n_out = 1, .out_idx = didx};
        st = qr_rt_forward(rt, &d, NULL, am);
    }
    free(buf);
    if (st == QR_OK)
        qr_log(QR_LOG_INFO, "runtime: warm-up (a %d-token prompt step and a decode step) in %.2f s", T,
               qr_time_s() - t0);
    return st;
}

qr_status qr_rt_create(const struct qr_model *m, struct qr_device *dev, const struct qr_runtime_opts *o,
                       qr_progress_fn cb, void *cb_user, struct qr_runtime **out)
{
    if (!m || !dev || !o || !out)
        return qr_set_error(QR_E_INVALID_ARG, "qr_rt_create: NULL argument");
    const struct qr_model_config *c = &m->cfg;
    if (c->hidden_size <= 0 || c->num_hidden_layers <= 0 || c->num_attention_heads <= 0 ||
        c->num_key_value_heads <= 0 || c->head_dim <= 0 || c->head_dim % 2 || c->intermediate_size <= 0 ||
        c->vocab_size <= 0 || c->num_attention_heads % c->num_key_value_heads)
        return qr_set_error(QR_E_INVALID_ARG, "runtime: inconsistent model config");
    struct qr_runtime *rt = calloc(1, sizeof(*rt));
    if (!rt)
        return qr_set_error(QR_E_OOM_HOST, "runtime: out of memory");
    rt->m = m;
    rt->cfg = *c;
    rt->dev = dev;
    rt->q_dim = c->num_attention_heads * c->head_dim;
    rt->kv_dim = c->num_key_value_heads * c->head_dim;
    rt->qkv_dim = rt->q_dim + 2 * rt->kv_dim;
    qr_status st = qr_dev_props(dev, &rt->props);
    if (st != QR_OK)
        goto fail;
    bool len_explicit = o->max_model_len > 0;
    if ((st = resolve_opts(rt, o)) != QR_OK)
        goto fail;
    if ((st = qr_stream_create(dev, &rt->st)) != QR_OK)
        goto fail;
    rt->concat = o->concat_weights > 0 || (o->concat_weights == 0 && !(rt->props.caps & QR_CAP_HOST_MEMORY));
    layout_buffers(rt);

    /* fail before uploading when the weights alone cannot fit */
    if (!(rt->props.caps & QR_CAP_HOST_MEMORY) && rt->props.mem_total) {
        size_t allowed = (size_t)(rt->o.mem_fraction * (double)rt->props.mem_total);
        size_t used = rt->props.mem_total > rt->props.mem_free ? rt->props.mem_total - rt->props.mem_free : 0;
        size_t need = m->weight_bytes + rt->scratch_bytes + rt->io_bytes;
        if (used + need > allowed) {
            st = qr_set_error(QR_E_OOM_DEVICE,
                              "model does not fit on %s: weights %.1f MiB + activations %.1f MiB need %zu bytes, "
                              "%zu bytes are free within --gpu-memory-utilization %.2f (try --max-num-batched-tokens "
                              "or a smaller model)",
                              rt->props.name, mib(m->weight_bytes), mib(rt->scratch_bytes + rt->io_bytes), need,
                              allowed > used ? allowed - used : 0, rt->o.mem_fraction);
            goto fail;
        }
    }

    rt->layers = calloc((size_t)c->num_hidden_layers, sizeof(*rt->layers));
    rt->bt_stage = calloc((size_t)rt->o.max_seqs * (size_t)rt->max_blocks_per_seq, sizeof(int32_t));
    if (!rt->layers || !rt->bt_stage) {
        st = qr_set_error(QR_E_OOM_HOST, "runtime: out of memory");
        goto fail;
    }
    struct upload_ctx u = {.rt = rt, .total = m->weight_bytes, .cb = cb, .cb_user = cb_user};
    double t0 = qr_time_s();
    if ((st = upload1(&u, QR_OP_EMBED, m->embed_tokens, &rt->embed)) != QR_OK)
        goto fail;
    for (int l = 0; l < c->num_hidden_layers; l++)
        if ((st = upload_layer(&u, &m->layers[l], &rt->layers[l])) != QR_OK)
            goto fail;
    if ((st = upload1(&u, QR_OP_RMSNORM, m->norm, &rt->final_norm)) != QR_OK)
        goto fail;
    if (m->lm_head == m->embed_tokens && qr_dev_supports(dev, QR_OP_LOGITS, rt->embed.dtype)) {
        rt->lm_head = rt->embed;
        rt->lm_head.buf = NULL; /* shared: see lm_head_buf() */
    } else if ((st = upload1(&u, QR_OP_LOGITS, m->lm_head, &rt->lm_head)) != QR_OK) {
        goto fail;
    }
    /* rope */
    float *inv = calloc((size_t)c->head_dim / 2, sizeof(float));
    if (!inv) {
        st = qr_set_error(QR_E_OOM_HOST, "runtime: out of memory");
        goto fail;
    }
    qr_rope_inv_freq(c, inv, &rt->attn_factor);
    st = qr_buf_alloc(dev, (size_t)c->head_dim / 2 * sizeof(float), QR_BUF_WEIGHTS, &rt->rope);
    if (st == QR_OK)
        st = qr_stream_write(rt->st, rt->rope, 0, inv, (size_t)c->head_dim / 2 * sizeof(float));
    free(inv);
    if (st != QR_OK)
        goto fail;
    struct qr_buf **sbs[RT_N_SCRATCH] = {&rt->sb.x, &rt->sb.h, &rt->sb.qkv, &rt->sb.att, &rt->sb.gu, &rt->sb.act,
                                         &rt->sb.logits};
    /* h (norm output), qkv (q, k, v rows), att (attention output), gu (gate_up output), act (SwiGLU output): read
     * only by the next nodes of a step */
    const unsigned transient[RT_N_SCRATCH] = {0, QR_BUF_TRANSIENT, QR_BUF_TRANSIENT, QR_BUF_TRANSIENT,
                                              QR_BUF_TRANSIENT, QR_BUF_TRANSIENT, 0};
    for (int i = 0; i < RT_N_SCRATCH; i++)
        if ((st = qr_buf_alloc(dev, rt->sb_size[i], QR_BUF_SCRATCH | transient[i], sbs[i])) != QR_OK)
            goto fail;
    if ((st = qr_buf_alloc(dev, rt->il.size, QR_BUF_IO, &rt->io)) != QR_OK)
        goto fail;
    if ((st = qr_stream_memset0(rt->st, rt->io, 0, rt->il.size)) != QR_OK)
        goto fail;
    if ((st = qr_stream_sync(rt->st)) != QR_OK)
        goto fail;
    double t_up = qr_time_s() - t0;

    if ((st = size_pool(rt, len_explicit)) != QR_OK)
        goto fail;
    if ((st = alloc_kv(rt)) != QR_OK)
        goto fail;
    if ((st = qr_stream_sync(rt->st)) != QR_OK)
        goto fail;
    /* the block table width follows a possibly capped max_model_len; the IO
     * layout was sized for the requested one, which is an upper bound */
    rt->block_size = rt->o.block_size;
    rt->max_model_len = rt->o.max_model_len;
    if ((st = qr_rt_graph_init(rt)) != QR_OK)
        goto fail;
    {
        const char *nw = getenv("QRUN_NO_WARMUP");
        bool warm = o->warmup > 0 ||
                    (o->warmup == 0 && !(rt->props.caps & QR_CAP_HOST_MEMORY) && !(nw && *nw && strcmp(nw, "0")));
        if (warm && (st = rt_warmup(rt)) != QR_OK)
            goto fail;
    }
    struct qr_device_props p2;
    if (qr_dev_props(dev, &p2) == QR_OK)
        rt->mem_free_after = p2.mem_free;
    qr_log(QR_LOG_INFO,
           "runtime on %s: weights %.1f MiB uploaded in %.2f s%s; KV pool %d blocks x %d tokens = %lld tokens "
           "(%.1f MiB, %s), longest context %d; scratch %.1f MiB for %d tokens",
           rt->props.name, mib(rt->weight_bytes), t_up, rt->concat ? " (qkv and gate_up fused)" : "",
           rt->num_blocks, rt->block_size, (long long)rt->num_blocks * rt->block_size, mib(rt->kv_bytes),
           qr_dtype_name(rt->o.kv_dtype), rt->max_model_len, mib(rt->scratch_bytes + rt->io_bytes),
           rt->o.max_batch_tokens);
    *out = rt;
    return QR_OK;
fail:
    qr_rt_destroy(rt);
    return st;
}

void qr_rt_destroy(struct qr_runtime *rt)
{
    if (!rt)
        return;
    if (rt->st)
        qr_stream_sync(rt->st);
    if (rt->layers) {
        for (int l = 0; l < rt->cfg.num_hidden_layers; l++) {
            struct rt_layer *d = &rt->layers[l];
            struct rt_weight *ws[] = {&d->ln1, &d->ln2, &d->qkv, &d->q, &d->k, &d->v, &d->qkv_bias, &d->q_bias,
                                      &d->k_bias, &d->v_bias, &d->q_norm, &d->k_norm, &d->o, &d->gate_up,
                                      &d->gate, &d->up, &d->down};
            for (size_t i = 0; i < sizeof(ws) / sizeof(ws[0]); i++)
                free_weight(ws[i]);
            if (d->k_cache)
                qr_buf_free(d->k_cache);
            if (d->v_cache)
                qr_buf_free(d->v_cache);
        }
        free(rt->layers);
    }
    free_weight(&rt->embed);
    free_weight(&rt->final_norm);
    free_weight(&rt->lm_head);
    if (rt->rope)
        qr_buf_free(rt->rope);
    struct qr_buf *sbs[RT_N_SCRATCH] = {rt->sb.x, rt->sb.h, rt->sb.qkv, rt->sb.att, rt->sb.gu, rt->sb.act,
                                        rt->sb.logits};
    for (int i = 0; i < RT_N_SCRATCH; i++)
        if (sbs[i])
            qr_buf_free(sbs[i]);
    if (rt->io)
        qr_buf_free(rt->io);
    if (rt->st)
        qr_stream_destroy(rt->st);
    free(rt->bt_stage);
    free(rt->nodes);
    free(rt->host_logits);
    free(rt);
}

int qr_rt_num_blocks(const struct qr_runtime *rt) { return rt->num_blocks; }
int qr_rt_block_size(const struct qr_runtime *rt) { return rt->block_size; }
int qr_rt_max_model_len(const struct qr_runtime *rt) { return rt->max_model_len; }
const struct qr_model_config *qr_rt_config(const struct qr_runtime *rt) { return &rt->cfg; }
struct qr_device *qr_rt_device(const struct qr_runtime *rt) { return rt->dev; }

void qr_rt_mem(const struct qr_runtime *rt, struct qr_mem_report *r)
{
    memset(r, 0, sizeof(*r));
    r->weights = rt->weight_bytes;
    r->kv = rt->kv_bytes;
    r->activations = rt->scratch_bytes + rt->io_bytes;
    r->overhead = (size_t)rt->cfg.head_dim / 2 * sizeof(float);
    r->device_total = rt->props.mem_total;
    struct qr_device_props p;
    r->device_free_after = qr_dev_props(rt->dev, &p) == QR_OK ? p.mem_free : rt->mem_free_after;
}
