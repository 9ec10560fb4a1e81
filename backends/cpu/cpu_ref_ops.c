/* cpu_ref_ops.c - the reference ops: one plain function per op, never fused.
 *
 * These define what every other backend must compute (test_backend_ops.c
 * compares against them).  Each op names the transformers code it mirrors.
 * Rules: activations f32; weights and KV converted to f32 element by element;
 * accumulation in f32 (norms in double); indices read from buffers are
 * clamped or skipped so that nothing is ever read or written out of bounds.
 * Work is split over the device's thread pool by output feature (matmul,
 * logits), by (token, head) (attention, norms) or by token (the rest). */
#include "cpu_backend.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

static inline void *vp(const struct qr_view *v) { return v->buf ? (char *)v->buf->ptr + v->off : NULL; }

static inline float bf16_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline float load1(const void *p, enum qr_dtype t, int64_t i)
{
    switch (t) {
    case QR_DTYPE_F16: return qr_f16_to_f32(((const uint16_t *)p)[i]);
    case QR_DTYPE_BF16: return bf16_f32(((const uint16_t *)p)[i]);
    case QR_DTYPE_F8E4M3: return qr_f8e4m3_to_f32(((const uint8_t *)p)[i]);
    default: return ((const float *)p)[i];
    }
}

/* a row of n elements of dtype t -> f32 */
static void row_to_f32(float *dst, const void *src, enum qr_dtype t, int64_t n)
{
    if (t == QR_DTYPE_F32) {
        memcpy(dst, src, (size_t)n * 4);
    } else if (t == QR_DTYPE_BF16) {
        const uint16_t *s = src;
        for (int64_t i = 0; i < n; i++)
            dst[i] = bf16_f32(s[i]);
    } else if (t == QR_DTYPE_F8E4M3) {
        const uint8_t *s = src;
        for (int64_t i = 0; i < n; i++)
            dst[i] = qr_f8e4m3_to_f32(s[i]);
    } else {
        const uint16_t *s = src;
        for (int64_t i = 0; i < n; i++)
            dst[i] = qr_f16_to_f32(s[i]);
    }
}

static void f32_to_row(void *dst, const float *src, enum qr_dtype t, int64_t n)
{
    if (t == QR_DTYPE_F32) {
        memcpy(dst, src, (size_t)n * 4);
    } else if (t == QR_DTYPE_BF16) {
        uint16_t *d = dst;
        for (int64_t i = 0; i < n; i++)
            d[i] = qr_f32_to_bf16(src[i]);
    } else if (t == QR_DTYPE_F8E4M3) {
        uint8_t *d = dst;
        for (int64_t i = 0; i < n; i++)
            d[i] = qr_f32_to_f8e4m3(src[i]);
    } else {
        uint16_t *d = dst;
        for (int64_t i = 0; i < n; i++)
            d[i] = qr_f32_to_f16(src[i]);
    }
}

/* f32 dot product; 16 independent partial sums so gcc vectorises it */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("arch=x86-64-v3", "default")))
#endif
static float dot_f32(const float *a, const float *b, int n)
{
    float acc[16] = {0};
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++)
            acc[j] += a[i + j] * b[i + j];
    float s = 0.0f;
    for (; i < n; i++)
        s += a[i] * b[i];
    for (int j = 0; j < 16; j++)
        s += acc[j];
    return s;
}

/* f32 x bf16 dot without a conversion pass (decode: one x row per W row) */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("arch=x86-64-v3", "default")))
#endif
static float dot_bf16(const float *a, const uint16_t *b, int n)
{
    float acc[16] = {0};
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) {
            uint32_t u = (uint32_t)b[i + j] << 16;
            float w;
            memcpy(&w, &u, 4);
            acc[j] += a[i + j] * w;
        }
    float s = 0.0f;
    for (; i < n; i++)
        s += a[i] * bf16_f32(b[i]);
    for (int j = 0; j < 16; j++)
        s += acc[j];
    return s;
}

/* ---- embed: out[t] = table[clamp(ids[t])]   (nn.Embedding) ---- */

struct embed_job {
    const struct qr_embed_args *a;
};

static void embed_task(void *ctx, int64_t b, int64_t e, int tid)
{
    const struct qr_embed_args *a = ((struct embed_job *)ctx)->a;
    const int32_t *ids = vp(&a->ids);
    float *out = vp(&a->out);
    const char *table = vp(&a->table);
    size_t es = qr_dtype_size(a->wtype);
    for (int64_t t = b; t < e; t++) {
        int64_t id = ids[t];
        if (id < 0)
            id = 0;
        if (id >= a->vocab)
            id = a->vocab - 1;
        row_to_f32(out + t * a->dim, table + (size_t)id * (size_t)a->dim * es, a->wtype, a->dim);
    }
}

static qr_status cpu_embed(struct qr_stream *s, const struct qr_embed_args *a)
{
    struct embed_job j = {a};
    qr_pool_run(cpu_pool_of(s), embed_task, &j, a->n_tokens, 1);
    return QR_OK;
}

/* ---- matmul: y[m] (+)= x[m] . W^T + bias   (torch.nn.functional.linear) ----
 * Split over the N output features (rows of W).  A thread converts a block of
 * MM_ROWS rows of W to f32 (per-thread buffer), then dots every x row with
 * each of them, so an x row is read once per block instead of once per row. */

#define MM_ROWS 16

struct matmul_job {
    const float *x;
    const void *w;
    const void *bias;
    float *y;
    enum qr_dtype wtype, btype;
    int M, N, K, ldx, ldy, accumulate;
    const int32_t *rows;   /* logits: x row per output row (already clamped); NULL: row m */
    float *scratch;        /* n_threads * MM_ROWS * K */
};

static void matmul_task(void *ctx, int64_t b, int64_t e, int tid)
{
    struct matmul_job *j = ctx;
    size_t es = qr_dtype_size(j->wtype);
    float *wf = j->scratch + (size_t)tid * MM_ROWS * (size_t)j->K;
    if (j->M == 1 && j->wtype == QR_DTYPE_BF16) {   /* decode: stream W once, no conversion pass */
        const float *x = j->x + (int64_t)(j->rows ? j->rows[0] : 0) * j->ldx;
        for (int64_t n = b; n < e; n++) {
            float v = dot_bf16(x, (const uint16_t *)j->w + (size_t)n * (size_t)j->K, j->K);
            if (j->bias)
                v += load1(j->bias, j->btype, n);
            j->y[n] = j->accumulate ? j->y[n] + v : v;
        }
        return;
    }
    for (int64_t n0 = b; n0 < e; n0 += MM_ROWS) {
        int nr = e - n0 < MM_ROWS ? (int)(e - n0) : MM_ROWS;
        const float *w[MM_ROWS];
        float bias[MM_ROWS];
        for (int r = 0; r < nr; r++) {
            const void *wrow = (const char *)j->w + (size_t)(n0 + r) * (size_t)j->K * es;
            if (j->wtype == QR_DTYPE_F32) {
                w[r] = wrow;
            } else {
                row_to_f32(wf + (size_t)r * j->K, wrow, j->wtype, j->K);
                w[r] = wf + (size_t)r * j->K;
            }
            bias[r] = j->bias ? load1(j->bias, j->btype, n0 + r) : 0.0f;
        }
        for (int m = 0; m < j->M; m++) {
            const float *x = j->x + (int64_t)(j->rows ? j->rows[m] : m) * j->ldx;
            float *y = j->y + (int64_t)m * j->ldy + n0;
            for (int r = 0; r < nr; r++) {
                float v = dot_f32(x, w[r], j->K) + bias[r];
                y[r] = j->accumulate ? y[r] + v : v;
            }
        }
    }
}

static qr_status run_matmul(struct qr_stream *s, struct matmul_job *j, int N)
{
    struct qr_pool *p = cpu_pool_of(s);
    j->scratch = cpu_scratch_acquire(s, (size_t)qr_pool_threads(p) * MM_ROWS * (size_t)j->K);
    if (!j->scratch)
        return qr_set_error(QR_E_OOM_HOST, "cpu matmul: out of memory");
    qr_pool_run(p, matmul_task, j, N, MM_ROWS);
    cpu_scratch_release(s);
    return QR_OK;
}

static qr_status cpu_matmul(struct qr_stream *s, const struct qr_matmul_args *a)
{
    struct matmul_job j = {
        .x = vp(&a->x), .w = vp(&a->w), .bias = a->bias.buf ? vp(&a->bias) : NULL, .y = vp(&a->y),
        .wtype = a->wtype, .btype = a->btype, .M = a->M, .N = a->N, .K = a->K, .ldx = a->ldx, .ldy = a->ldy,
        .accumulate = a->accumulate, .rows = NULL,
    };
    return run_matmul(s, &j, a->N);
}

/* ---- logits: out[r] = x[idx[r]] . W^T   (lm_head on selected rows) ---- */

static qr_status cpu_logits(struct qr_stream *s, const struct qr_logits_args *a)
{
    /* rows of x the buffer holds: idx is clamped to them */
    size_t avail = a->x.buf->size - a->x.off;
    int64_t ld = a->ldx > 0 ? a->ldx : a->dim;
    int64_t max_rows = ((int64_t)avail / 4 - a->dim) / ld + 1;
    int32_t *rows = malloc((size_t)a->n_out * sizeof *rows);
    if (!rows)
        return qr_set_error(QR_E_OOM_HOST, "cpu logits: out of memory");
    const int32_t *idx = vp(&a->idx);
    for (int r = 0; r < a->n_out; r++) {
        int64_t v = idx[r];
        rows[r] = (int32_t)(v < 0 ? 0 : v >= max_rows ? max_rows - 1 : v);
    }
    struct matmul_job j = {
        .x = vp(&a->x), .w = vp(&a->w), .bias = NULL, .y = vp(&a->out), .wtype = a->wtype,
        .btype = QR_DTYPE_F32, .M = a->n_out, .N = a->vocab, .K = a->dim, .ldx = (int)ld, .ldy = a->vocab, .accumulate = 0,
        .rows = rows,
    };
    qr_status st = run_matmul(s, &j, a->vocab);
    free(rows);
    return st;
}

/* ---- RMSNorm / per-head q,k norm   (Qwen3RMSNorm.forward) ----
 * out = w * (x / sqrt(mean(x^2) + eps)); one (token, head) row per item. */

struct norm_job {
    const struct qr_rmsnorm_args *a;
};

static void norm_task(void *ctx, int64_t b, int64_t e, int tid)
{
    const struct qr_rmsnorm_args *a = ((struct norm_job *)ctx)->a;
    const float *x = vp(&a->x);
    float *out = vp(&a->out);
    const void *w = vp(&a->w);
    for (int64_t it = b; it < e; it++) {
        int64_t t = it / a->n_heads, h = it % a->n_heads;
        const float *xr = x + t * a->ldx + h * a->n;
        float *orow = out + t * a->ldout + h * a->n;
        double ss = 0.0;
        for (int i = 0; i < a->n; i++)
            ss += (double)xr[i] * (double)xr[i];
        float inv = (float)(1.0 / sqrt(ss / a->n + (double)a->eps));
        for (int i = 0; i < a->n; i++)
            orow[i] = load1(w, a->wtype, i) * (xr[i] * inv);
    }
}

static qr_status cpu_rmsnorm(struct qr_stream *s, const struct qr_rmsnorm_args *a)
{
    struct norm_job j = {a};
    int64_t min_chunk = 1 + 4096 / a->n;
    qr_pool_run(cpu_pool_of(s), norm_task, &j, (int64_t)a->n_tokens * a->n_heads, min_chunk);
    return QR_OK;
}

/* ---- RoPE, NeoX style, in place   (apply_rotary_pos_emb, rotate_half) ----
 * angle = f32(pos) * inv_freq[i] in f32 as HF computes it; cos/sin of that,
 * once per token, shared by its heads. */

struct rope_job {
    const struct qr_rope_args *a;
};

static void rope_task(void *ctx, int64_t b, int64_t e, int tid)
{
    const struct qr_rope_args *a = ((struct rope_job *)ctx)->a;
    float *x = vp(&a->x);
    const int32_t *pos = vp(&a->pos);
    const float *inv_freq = vp(&a->inv_freq);
    int half = a->head_dim / 2;
    float cs[2 * 512];   /* cos, sin of this token's angles (head_dim <= 1024) */
    for (int64_t t = b; t < e; t++) {
        float p = (float)pos[t];
        for (int i = 0; i < half && i < 512; i++) {
            float ang = p * inv_freq[i];
            cs[2 * i] = (float)cos((double)ang) * a->attn_factor;
            cs[2 * i + 1] = (float)sin((double)ang) * a->attn_factor;
        }
        for (int h = 0; h < a->n_heads; h++) {
            float *r = x + t * a->ld + (int64_t)h * a->head_dim;
            for (int i = 0; i < half; i++) {
                float c, sn;
                if (i < 512) {
                    c = cs[2 * i];
                    sn = cs[2 * i + 1];
                } else {
                    float ang = p * inv_freq[i];
                    c = (float)cos((double)ang) * a->attn_factor;
                    sn = (float)sin((double)ang) * a->attn_factor;
                }
                float x0 = r[i], x1 = r[i + half];
                r[i] = x0 * c - x1 * sn;
                r[i + half] = x1 * c + x0 * sn;
            }
        }
    }
}

static qr_status cpu_rope(struct qr_stream *s, const struct qr_rope_args *a)
{
    struct rope_job j = {a};
    qr_pool_run(cpu_pool_of(s), rope_task, &j, a->n_tokens, 1);
    return QR_OK;
}

/* ---- paged KV write: token t -> slot slots[t]   (vLLM reshape_and_cache) ---- */

struct kv_job {
    const struct qr_kv_store_args *a;
};

static void kv_task(void *ctx, int64_t b, int64_t e, int tid)
{
    const struct qr_kv_store_args *a = ((struct kv_job *)ctx)->a;
    const int32_t *slots = vp(&a->slots);
    const float *k = vp(&a->k), *v = vp(&a->v);
    char *kc = vp(&a->k_cache), *vc = vp(&a->v_cache);
    size_t es = qr_dtype_size(a->kv_dtype);
    int64_t n_slots = (int64_t)a->num_blocks * a->block_size;
    for (int64_t t = b; t < e; t++) {
        int64_t slot = slots[t];
        if (slot < 0 || slot >= n_slots)
            continue;
        int64_t blk = slot / a->block_size, off = slot % a->block_size;
        for (int h = 0; h < a->n_kv_heads; h++) {
            size_t dst = (size_t)(((blk * a->n_kv_heads + h) * a->block_size + off) * a->head_dim) * es;
            f32_to_row(kc + dst, k + t * a->ld + (int64_t)h * a->head_dim, a->kv_dtype, a->head_dim);
            f32_to_row(vc + dst, v + t * a->ld + (int64_t)h * a->head_dim, a->kv_dtype, a->head_dim);
        }
    }
}

static qr_status cpu_kv_store(struct qr_stream *s, const struct qr_kv_store_args *a)
{
    struct kv_job j = {a};
    qr_pool_run(cpu_pool_of(s), kv_task, &j, a->n_tokens, 8);
    return QR_OK;
}

/* ---- paged causal attention over a varlen batch ----
 * (Qwen3Attention with eager_attention_forward: softmax(q k^T * scale + causal
 * mask) v in f32, repeat_kv for GQA.)  Query token i of sequence s sits at
 * position ctx - qlen + i and sees keys 0..that position, fetched through
 * the block table.  Bad block ids are skipped; bad q_start ranges skip the
 * sequence; seq_lens are clamped to the block table's capacity. */

struct attn_job {
    const struct qr_attn_args *a;
    const int32_t *tok_seq;      /* token -> sequence, -1: none */
    int64_t cap;                 /* max keys per sequence */
    float *scratch;              /* per thread: cap scores + 2 * head_dim */
};

static void attn_task(void *ctx, int64_t b, int64_t e, int tid)
{
    struct attn_job *j = ctx;
    const struct qr_attn_args *a = j->a;
    const float *q = vp(&a->q);
    float *out = vp(&a->out);
    const char *kc = vp(&a->k_cache), *vc = vp(&a->v_cache);
    const int32_t *bt = vp(&a->block_tables), *seq_lens = vp(&a->seq_lens), *q_start = vp(&a->q_start);
    size_t es = qr_dtype_size(a->kv_dtype);
    int hd = a->head_dim, group = a->n_heads / a->n_kv_heads;
    float *sc = j->scratch + (size_t)tid * (size_t)(j->cap + 2 * hd);
    float *kv = sc + j->cap, *acc = kv + hd;
    for (int64_t it = b; it < e; it++) {
        int64_t t = it / a->n_heads;
        int h = (int)(it % a->n_heads), g = h / group;
        int s = j->tok_seq[t];
        if (s < 0)
            continue;
        float *o = out + t * a->ldo + (int64_t)h * hd;
        const float *qr = q + t * a->ldq + (int64_t)h * hd;
        int64_t ctx_len = seq_lens[s] < 0 ? 0 : seq_lens[s] > j->cap ? j->cap : seq_lens[s];
        int64_t qlen = q_start[s + 1] - q_start[s];
        int64_t p = ctx_len - qlen + (t - q_start[s]);   /* this token's position */
        const int32_t *table = bt + (int64_t)s * a->max_blocks_per_seq;
        float mx = -INFINITY;
        for (int64_t k = 0; k <= p; k++) {
            int64_t blk = table[k / a->block_size];
            if (blk < 0 || blk >= a->num_blocks) {
                sc[k] = -INFINITY;
                continue;
            }
            size_t off = (size_t)(((blk * a->n_kv_heads + g) * a->block_size + k % a->block_size) * hd) * es;
            row_to_f32(kv, kc + off, a->kv_dtype, hd);
            sc[k] = dot_f32(qr, kv, hd) * a->scale;
            if (sc[k] > mx)
                mx = sc[k];
        }
        for (int i = 0; i < hd; i++)
            acc[i] = 0.0f;
        float sum = 0.0f;
        if (mx != -INFINITY) {
            for (int64_t k = 0; k <= p; k++) {
                if (sc[k] == -INFINITY)
                    continue;
                float w = expf(sc[k] - mx);
                sum += w;
                int64_t blk = table[k / a->block_size];
                size_t off = (size_t)(((blk * a->n_kv_heads + g) * a->block_size + k % a->block_size) * hd) * es;
                row_to_f32(kv, vc + off, a->kv_dtype, hd);
                for (int i = 0; i < hd; i++)
                    acc[i] += w * kv[i];
            }
        }
        float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
        for (int i = 0; i < hd; i++)
            o[i] = acc[i] * inv;
    }
}

static qr_status cpu_attn(struct qr_stream *s, const struct qr_attn_args *a)
{
    struct qr_pool *p = cpu_pool_of(s);
    struct attn_job j = {.a = a, .cap = (int64_t)a->max_blocks_per_seq * a->block_size};
    int32_t *tok_seq = malloc((size_t)a->n_tokens * sizeof *tok_seq);
    if (!tok_seq)
        return qr_set_error(QR_E_OOM_HOST, "cpu attn: out of memory");
    j.scratch = cpu_scratch_acquire(s, (size_t)qr_pool_threads(p) * (size_t)(j.cap + 2 * a->head_dim));
    if (!j.scratch) {
        free(tok_seq);
        return qr_set_error(QR_E_OOM_HOST, "cpu attn: out of memory");
    }
    for (int t = 0; t < a->n_tokens; t++)
        tok_seq[t] = -1;
    const int32_t *q_start = vp(&a->q_start);
    for (int sq = 0; sq < a->n_seqs; sq++) {
        int64_t qs = q_start[sq], qe = q_start[sq + 1];
        if (qs < 0 || qe < qs || qe > a->n_tokens)
            continue;   /* malformed range: skip the sequence */
        for (int64_t t = qs; t < qe; t++)
            if (tok_seq[t] < 0)
                tok_seq[t] = sq;
    }
    j.tok_seq = tok_seq;
    qr_pool_run(p, attn_task, &j, (int64_t)a->n_tokens * a->n_heads, 1);
    cpu_scratch_release(s);
    free(tok_seq);
    return QR_OK;
}

/* ---- SwiGLU: out = silu(gate) * up   (Qwen3MLP: act_fn(gate_proj(x)) * up_proj(x)) ---- */

struct silu_job {
    const struct qr_silu_mul_args *a;
};

static void silu_task(void *ctx, int64_t b, int64_t e, int tid)
{
    const struct qr_silu_mul_args *a = ((struct silu_job *)ctx)->a;
    const float *gu = vp(&a->gu);
    float *out = vp(&a->out);
    for (int64_t t = b; t < e; t++) {
        const float *g = gu + t * a->ldgu, *u = g + a->n_ff;
        float *o = out + t * a->ldout;
        for (int i = 0; i < a->n_ff; i++)
            o[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
    }
}

static qr_status cpu_silu_mul(struct qr_stream *s, const struct qr_silu_mul_args *a)
{
    struct silu_job j = {a};
    qr_pool_run(cpu_pool_of(s), silu_task, &j, a->n_tokens, 1);
    return QR_OK;
}

/* ---- residual add: y += x ---- */

struct add_job {
    float *y;
    const float *x;
};

static void add_task(void *ctx, int64_t b, int64_t e, int tid)
{
    struct add_job *j = ctx;
    for (int64_t i = b; i < e; i++)
        j->y[i] += j->x[i];
}

static qr_status cpu_add(struct qr_stream *s, const struct qr_add_args *a)
{
    struct add_job j = {vp(&a->y), vp(&a->x)};
    qr_pool_run(cpu_pool_of(s), add_task, &j, a->n, 16384);
    return QR_OK;
}

/* ---- argmax per row; lowest index on ties; NaN never wins (row of NaN: 0) ---- */

struct argmax_job {
    const struct qr_argmax_args *a;
};

static void argmax_task(void *ctx, int64_t b, int64_t e, int tid)
{
    const struct qr_argmax_args *a = ((struct argmax_job *)ctx)->a;
    const float *x = vp(&a->x);
    int32_t *out = vp(&a->out);
    for (int64_t r = b; r < e; r++) {
        const float *row = x + r * a->n;
        int best = -1;
        for (int i = 0; i < a->n; i++)
            if (!isnan(row[i]) && (best < 0 || row[i] > row[best]))
                best = i;
        out[r] = best < 0 ? 0 : best;
    }
}

static qr_status cpu_argmax(struct qr_stream *s, const struct qr_argmax_args *a)
{
    struct argmax_job j = {a};
    qr_pool_run(cpu_pool_of(s), argmax_task, &j, a->n_rows, 1);
    return QR_OK;
}

/* ---- top-k per row for sampling: v = x * inv_t (NaN as -inf), the k best by (v desc, index asc), in that order.
 * A min-heap of the k best so far (root: the worst kept), then the heap sorted out from the back. ---- */

struct topk_job {
    const struct qr_topk_args *a;
};

/* a ranks below b: lower value, or equal value and higher index */
static bool topk_below(float va, int ia, float vb, int ib) { return va < vb || (va == vb && ia > ib); }

static void topk_sift(float *hv, int32_t *hi, int n, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && topk_below(hv[l], hi[l], hv[m], hi[m]))
            m = l;
        if (r < n && topk_below(hv[r], hi[r], hv[m], hi[m]))
            m = r;
        if (m == i)
            return;
        float tv = hv[i];
        int32_t ti = hi[i];
        hv[i] = hv[m], hi[i] = hi[m];
        hv[m] = tv, hi[m] = ti;
        i = m;
    }
}

static void topk_task(void *ctx, int64_t b, int64_t e, int tid)
{
    const struct qr_topk_args *a = ((struct topk_job *)ctx)->a;
    const float *x = vp(&a->x), *inv_t = vp(&a->inv_t);
    int32_t *ids = vp(&a->ids);
    float *vals = vp(&a->vals);
    const int k = a->k;
    for (int64_t r = b; r < e; r++) {
        const float *row = x + r * a->n;
        float *hv = vals + r * k;
        int32_t *hi = ids + r * k;
        const float it = inv_t[r];
        for (int i = 0; i < a->n; i++) {
            float v = isnan(row[i]) ? -INFINITY : row[i] * it;
            if (i < k) {
                hv[i] = v, hi[i] = i;
                if (i == k - 1)
                    for (int j = k / 2 - 1; j >= 0; j--)
                        topk_sift(hv, hi, k, j);
            } else if (!topk_below(v, i, hv[0], hi[0])) {
                hv[0] = v, hi[0] = i;
                topk_sift(hv, hi, k, 0);
            }
        }
        for (int n = k - 1; n > 0; n--) {   /* the worst goes last */
            float tv = hv[0];
            int32_t ti = hi[0];
            hv[0] = hv[n], hi[0] = hi[n];
            hv[n] = tv, hi[n] = ti;
            topk_sift(hv, hi, n, 0);
        }
    }
}

static qr_status cpu_topk(struct qr_stream *s, const struct qr_topk_args *a)
{
    struct topk_job j = {a};
    qr_pool_run(cpu_pool_of(s), topk_task, &j, a->n_rows, 1);
    return QR_OK;
}

const struct qr_ops cpu_ref_ops = {
    .embed = cpu_embed,
    .matmul = cpu_matmul,
    .rmsnorm = cpu_rmsnorm,
    .qk_norm = cpu_rmsnorm,
    .rope = cpu_rope,
    .kv_store = cpu_kv_store,
    .attn = cpu_attn,
    .silu_mul = cpu_silu_mul,
    .add = cpu_add,
    .logits = cpu_logits,
    .argmax = cpu_argmax,
    .topk = cpu_topk,
};
