/* cuda_graph_fuse.c - node patterns of a step graph that the CUDA backend
 * runs as one kernel (the fused path, on by default: backends.ini
 * [backend.cuda] fused_kernels = 0 or QRUN_CUDA_FUSED=0 turns it off).
 *
 *   [QK_NORM q, QK_NORM k,] ROPE q, ROPE k, KV_STORE   -> k_qkv_post
 *   RMSNORM, MATMUL reading its output (decode GEMV)   -> k_gemv_fx (norm)
 *   SILU_MUL, MATMUL reading its output (decode GEMV)  -> k_gemv_fx (SwiGLU)
 *   the same two pairs at prompt sizes                 -> k_rmsnorm_cvt / k_silu_cvt writing the
 *                                                         cuBLAS input directly, then cuBLAS
 *   RMSNORM, MATMUL gate_up, SILU_MUL, MATMUL down at prompt sizes, gu dead after (QR_CUDA_GU16=0: off)
 *                                                      -> gate_up written in 16 bits into gu's memory
 *   RMSNORM, MATMUL qkv, [QK_NORM x 2,] ROPE x 2, KV_STORE at prompt sizes, k and v dead after (QR_CUDA_QKV16=0: off)
 *                                                      -> qkv written in 16 bits into scratch, the q/k-norm + RoPE
 *                                                         + KV kernel reading it
 *   ATTN (prompt kernel alone), MATMUL reading its output at prompt sizes
 *                                                      -> the attention kernel writes the cuBLAS
 *                                                         input directly, then cuBLAS
 *
 * Each pattern is checked field by field against the layout the fused kernel
 * assumes; anything else runs node by node.  The fused kernels also write
 * the intermediate buffers the graph names, so the graph's meaning is kept,
 * except at prompt sizes where the intermediate lies in a QR_BUF_TRANSIENT
 * buffer and no later node of the graph reads it before it is written again
 * (dead_after): then the f32 intermediate is skipped. */
#include "cuda_internal.h"

#include <string.h>

static inline void *vp(const struct qr_view *v) { return v->buf ? (char *)v->buf->ptr + v->off : NULL; }
static inline qr_cuda_stream cst(struct qr_stream *s) { return (qr_cuda_stream)cuda_st(s)->cs; }
static bool same(const struct qr_view *a, const struct qr_view *b) { return a->buf == b->buf && a->off == b->off; }
static bool at(const struct qr_view *a, const struct qr_view *base, size_t bytes)
{
    return a->buf == base->buf && a->off == base->off + bytes;
}
static bool half_dtype(enum qr_dtype t) { return t == QR_DTYPE_BF16 || t == QR_DTYPE_F16; }
/* bytes of M rows of K 16-bit values in scratch, rounded up to 256 so a region placed after them stays aligned */
static size_t rows16_bytes(int M, int K) { return ((size_t)M * (size_t)K * 2 + 255) & ~(size_t)255; }

/* a matched [QK_NORM q, QK_NORM k,] ROPE q, ROPE k, KV_STORE */
struct qkv_post {
    const struct qr_rmsnorm_args *nq, *nk;
    const struct qr_rope_args *rq, *rk;
    const struct qr_kv_store_args *kv;
    int hd, T, ld, Hq, Hk;
};

/* the nodes the pattern takes (0: no match) */
static int match_qkv_post(const struct qr_node *nd, int n, struct qkv_post *p)
{
    int i = 0;
    const struct qr_rmsnorm_args *nq = NULL, *nk = NULL;
    if (n >= 5 && nd[0].op == QR_OP_QK_NORM && nd[1].op == QR_OP_QK_NORM) {
        nq = &nd[0].a.rmsnorm;
        nk = &nd[1].a.rmsnorm;
        i = 2;
    }
    if (n < i + 3 || nd[i].op != QR_OP_ROPE || nd[i + 1].op != QR_OP_ROPE || nd[i + 2].op != QR_OP_KV_STORE)
        return 0;
    const struct qr_rope_args *rq = &nd[i].a.rope, *rk = &nd[i + 1].a.rope;
    const struct qr_kv_store_args *kv = &nd[i + 2].a.kv_store;
    int hd = rq->head_dim, T = rq->n_tokens, ld = rq->ld, Hq = rq->n_heads, Hk = rk->n_heads;
    size_t f = sizeof(float);
    if (hd < 2 || hd % 2 || T < 1 || Hq < 1 || Hk < 1 || rk->head_dim != hd || rk->n_tokens != T || rk->ld != ld)
        return 0;
    if (!at(&rk->x, &rq->x, (size_t)Hq * hd * f) || !same(&rq->pos, &rk->pos) ||
        !same(&rq->inv_freq, &rk->inv_freq) || rq->attn_factor != rk->attn_factor)
        return 0;
    if (!same(&kv->k, &rk->x) || !at(&kv->v, &rk->x, (size_t)Hk * hd * f) || kv->ld != ld ||
        kv->n_tokens != T || kv->n_kv_heads != Hk || kv->head_dim != hd || kv->block_size < 1)
        return 0;
    if (nq) {
        if (!same(&nq->x, &rq->x) || !same(&nq->out, &nq->x) || !same(&nk->x, &rk->x) || !same(&nk->out, &nk->x))
            return 0;
        if (nq->n != hd || nk->n != hd || nq->n_heads != Hq || nk->n_heads != Hk || nq->n_tokens != T ||
            nk->n_tokens != T || nq->ldx != ld || nq->ldout != ld || nk->ldx != ld || nk->ldout != ld ||
            nq->eps != nk->eps)
            return 0;
    }
    *p = (struct qkv_post){.nq = nq, .nk = nk, .rq = rq, .rk = rk, .kv = kv, .hd = hd, .T = T, .ld = ld, .Hq = Hq,
                           .Hk = Hk};
    return i + 3;
}

/* [QK_NORM q, QK_NORM k,] ROPE q, ROPE k, KV_STORE; returns the nodes consumed (0: no match) or a negative qr_status */
static int fuse_qkv_post(struct qr_stream *s, const struct qr_node *nd, int n)
{
    struct qkv_post p;
    int c = match_qkv_post(nd, n, &p);
    if (!c)
        return 0;
    const struct qr_rmsnorm_args *nq = p.nq, *nk = p.nk;
    /* the row must hold the q, k and v heads: checked by the unfused ops' own bounds in the core */
    LAUNCH_TRY(s->dev, cuda_launch_qkv_post(cst(s), vp(&p.rq->x), p.ld, p.T, p.Hq, p.Hk, p.hd, nq ? vp(&nq->w) : NULL,
                                            nq ? (int)nq->wtype : 0, nk ? vp(&nk->w) : NULL, nk ? (int)nk->wtype : 0,
                                            nq ? nq->eps : 0.0f, vp(&p.rq->pos), vp(&p.rq->inv_freq),
                                            p.rq->attn_factor, vp(&p.kv->k_cache), vp(&p.kv->v_cache),
                                            vp(&p.kv->slots), (int)p.kv->kv_dtype, p.kv->block_size,
                                            p.kv->num_blocks));
    return c;
}

/* does node n write at least what producer p wrote (same op, same output view, same shape)? */
static bool overwrites(const struct qr_node *n, const struct qr_node *p)
{
    if (n->op != p->op)
        return false;
    switch (p->op) {
    case QR_OP_RMSNORM: {
        const struct qr_rmsnorm_args *a = &n->a.rmsnorm, *b = &p->a.rmsnorm;
        return same(&a->out, &b->out) && a->n_tokens >= b->n_tokens && a->n_heads == b->n_heads && a->n == b->n &&
               a->ldout == b->ldout;
    }
    case QR_OP_SILU_MUL: {
        const struct qr_silu_mul_args *a = &n->a.silu_mul, *b = &p->a.silu_mul;
        return same(&a->out, &b->out) && a->n_tokens >= b->n_tokens && a->n_ff == b->n_ff && a->ldout == b->ldout;
    }
    case QR_OP_MATMUL: {
        const struct qr_matmul_args *a = &n->a.matmul, *b = &p->a.matmul;
        return same(&a->y, &b->y) && !a->accumulate && a->M >= b->M && a->N == b->N && a->ldy == b->ldy;
    }
    case QR_OP_ATTN: {
        const struct qr_attn_args *a = &n->a.attn, *b = &p->a.attn;
        return same(&a->out, &b->out) && a->n_tokens >= b->n_tokens && a->n_heads == b->n_heads &&
               a->head_dim == b->head_dim && a->ldo == b->ldo;
    }
    default: return false;
    }
}

/* may producer p's output (view out) go unwritten?  Only in a QR_BUF_TRANSIENT buffer, and only where no node of
 * nd[0..n) (the rest of the graph after its reader) reads that buffer before a node overwrites p's output whole;
 * never with QR_CUDA_KEEP_INTERMEDIATES=1.  allow (may be NULL) names reads that do not count: it is asked with
 * the node, the view read and ctx */
typedef bool (*read_ok_fn)(const struct qr_node *nd, const struct qr_view *v, const void *ctx);
static bool dead_after_but(struct qr_stream *s, const struct qr_node *p, const struct qr_view *out,
                           const struct qr_node *nd, int n, read_ok_fn allow, const void *ctx)
{
    if (!out->buf || !((uintptr_t)out->buf->ctx & QR_BUF_TRANSIENT) || cuda_dev(s->dev)->keep_intermediates)
        return false;
    for (int i = 0; i < n; i++) {
        const struct qr_view *v[QR_NODE_MAX_VIEWS];
        bool w[QR_NODE_MAX_VIEWS];
        int k = qr_node_views(&nd[i], v, w);
        for (int j = 0; j < k; j++)
            if (!v[j] || (!w[j] && v[j]->buf == out->buf && !(allow && allow(&nd[i], v[j], ctx))))
                return false;
        if (overwrites(&nd[i], p))
            return true;
    }
    return true;
}
static bool dead_after(struct qr_stream *s, const struct qr_node *p, const struct qr_view *out,
                       const struct qr_node *nd, int n)
{
    return dead_after_but(s, p, out, nd, n, NULL, NULL);
}

/* the decode GEMV the matmul op would take for this node (M small, half weights) */
static bool gemv_path(struct qr_stream *s, const struct qr_matmul_args *m)
{
    struct cuda_device *cd = cuda_dev(s->dev);
    if (!half_dtype(m->wtype) || m->M < 1 || m->M > QR_CUDA_GEMV_USE_M)
        return false;
    return m->wtype != QR_DTYPE_BF16 || cd->cc >= 80;
}

/* the cuBLAS path the matmul op would take for this node (prompt sizes, half weights) */
static bool gemm_path(struct qr_stream *s, const struct qr_matmul_args *m)
{
    struct cuda_device *cd = cuda_dev(s->dev);
    if (!half_dtype(m->wtype) || m->M <= QR_CUDA_GEMV_USE_M)
        return false;
    return m->wtype != QR_DTYPE_BF16 || cd->cc >= 80;
}

/* prompt sizes: the norm / SwiGLU / attention pass also writes the GEMM's converted input (only that, where its
 * f32 output is dead after the GEMM); then cuBLAS */
static int fuse_to_gemm(struct qr_stream *s, const struct qr_node *nd, int n)
{
    const struct qr_matmul_args *m = &nd[1].a.matmul;
    /* the GEMM's 16-bit input, and after it (a mixed batch's attention) the decode kernel's partials: one scratch */
    const size_t xbytes = rows16_bytes(m->M, m->K);
    const size_t extra = nd[0].op == QR_OP_ATTN ? cuda_attn_prompt_half_scratch(s, &nd[0].a.attn) : 0;
    void *xh = NULL;
    qr_status st = cuda_scratch(s, xbytes + extra, &xh);
    if (st != QR_OK)
        return (int)st;
    if (nd[0].op == QR_OP_RMSNORM) {
        const struct qr_rmsnorm_args *r = &nd[0].a.rmsnorm;
        float *out = dead_after(s, &nd[0], &r->out, nd + 2, n - 2) ? NULL : vp(&r->out);
        LAUNCH_TRY(s->dev, cuda_launch_rmsnorm_cvt(cst(s), out, xh, (int)m->wtype, vp(&r->x), vp(&r->w),
                                                   (int)r->wtype, r->n_tokens, r->n, r->ldx, r->ldout, r->eps,
                                                   cuda_dev(s->dev)->prefill_vec));
    } else if (nd[0].op == QR_OP_SILU_MUL) {
        const struct qr_silu_mul_args *a = &nd[0].a.silu_mul;
        float *out = dead_after(s, &nd[0], &a->out, nd + 2, n - 2) ? NULL : vp(&a->out);
        LAUNCH_TRY(s->dev, cuda_launch_silu_cvt(cst(s), out, xh, (int)m->wtype, vp(&a->gu), a->n_tokens, a->n_ff,
                                                a->ldgu, a->ldout, cuda_dev(s->dev)->prefill_vec));
    } else {
        const struct qr_attn_args *a = &nd[0].a.attn;
        st = cuda_attn_prompt_half(s, a, !dead_after(s, &nd[0], &a->out, nd + 2, n - 2), xh, m->wtype,
                                   extra ? (char *)xh + xbytes : NULL);
        if (st != QR_OK)
            return (int)st;
    }
    st = cuda_gemm_prepared(s, vp(&m->y), xh, vp(&m->w), m->wtype, m->bias.buf ? vp(&m->bias) : NULL, m->btype, m->M,
                            m->N, m->K, m->ldy, m->accumulate);
    return st == QR_OK ? 2 : (int)st;
}

/* prompt sizes, the MLP: RMSNORM, MATMUL gate_up (-> gu), SILU_MUL (gu -> act), MATMUL down (act ->, accumulate),
 * where gu is dead after the SwiGLU: cuBLAS writes gate_up in the weights' 16-bit type into gu's own memory
 * (half its f32 traffic, as the 16-bit activations of HF transformers), the SwiGLU reads that and writes the down
 * GEMM's input.  The rounding of gate and up to 16 bits is the one numeric change (on by default;
 * QR_CUDA_GU16=0 keeps f32). */
static int fuse_mlp_prompt(struct qr_stream *s, const struct qr_node *nd, int n)
{
    if (n < 4 || !cuda_dev(s->dev)->gu16 || nd[1].op != QR_OP_MATMUL || nd[2].op != QR_OP_SILU_MUL ||
        nd[3].op != QR_OP_MATMUL)
        return 0;
    const struct qr_rmsnorm_args *r = &nd[0].a.rmsnorm;
    const struct qr_matmul_args *gu = &nd[1].a.matmul, *dn = &nd[3].a.matmul;
    const struct qr_silu_mul_args *a = &nd[2].a.silu_mul;
    const int M = gu->M, F = a->n_ff;
    if (!gemm_path(s, gu) || !gemm_path(s, dn) || gu->accumulate || gu->bias.buf || dn->wtype != gu->wtype ||
        gu->N != 2 * F || gu->ldy != gu->N || !same(&a->gu, &gu->y) || a->ldgu != gu->ldy || a->n_tokens != M ||
        dn->M != M || dn->K != F || !same(&dn->x, &a->out) || dn->ldx != a->ldout || dn->y.buf == gu->y.buf ||
        dn->y.buf == a->out.buf || a->out.buf == gu->y.buf || !dead_after(s, &nd[1], &gu->y, nd + 3, n - 3))
        return 0;
    size_t kmax = (size_t)(gu->K > F ? gu->K : F);
    void *xh = NULL;   /* the norm's 16-bit rows (M x K), then the SwiGLU's (M x F): the first is dead by then */
    qr_status st = cuda_scratch(s, (size_t)M * kmax * 2, &xh);
    if (st != QR_OK)
        return (int)st;
    void *guh = vp(&gu->y);
    float *hout = dead_after(s, &nd[0], &r->out, nd + 2, n - 2) ? NULL : vp(&r->out);
    LAUNCH_TRY(s->dev, cuda_launch_rmsnorm_cvt(cst(s), hout, xh, (int)gu->wtype, vp(&r->x), vp(&r->w), (int)r->wtype,
                                               r->n_tokens, r->n, r->ldx, r->ldout, r->eps,
                                               cuda_dev(s->dev)->prefill_vec));
    st = cuda_gemm_prepared16(s, guh, xh, vp(&gu->w), gu->wtype, M, gu->N, gu->K, gu->N);
    if (st != QR_OK)
        return (int)st;
    float *aout = dead_after(s, &nd[2], &a->out, nd + 4, n - 4) ? NULL : vp(&a->out);
    LAUNCH_TRY(s->dev, cuda_launch_silu16_cvt(cst(s), aout, xh, (int)gu->wtype, guh, M, F, gu->N, a->ldout,
                                                cuda_dev(s->dev)->prefill_vec));
    st = cuda_gemm_prepared(s, vp(&dn->y), xh, vp(&dn->w), dn->wtype, dn->bias.buf ? vp(&dn->bias) : NULL, dn->btype,
                            M, dn->N, F, dn->ldy, dn->accumulate);
    return st == QR_OK ? 4 : (int)st;
}

/* may the k and v heads of the qkv rows (p's output y, the rows post reads) go unwritten?  As dead_after, with one
 * read allowed: the q heads, as an attention's q (no more heads or tokens than the post wrote) */
static bool q_read_ok(const struct qr_node *nd, const struct qr_view *v, const void *ctx)
{
    const struct qkv_post *q = ctx;
    const struct qr_attn_args *a = nd->op == QR_OP_ATTN ? &nd->a.attn : NULL;
    return a && v == &a->q && same(&a->q, &q->rq->x) && a->ldq == q->ld && a->n_heads * a->head_dim <= q->Hq * q->hd &&
           a->n_tokens <= q->T;
}
static bool kv_rows_dead(struct qr_stream *s, const struct qr_node *p, const struct qkv_post *q,
                         const struct qr_node *nd, int n)
{
    return dead_after_but(s, p, &p->a.matmul.y, nd, n, q_read_ok, q);
}

/* prompt sizes: RMSNORM, MATMUL qkv, [QK_NORM q, QK_NORM k,] ROPE q, ROPE k, KV_STORE, where the k and v heads are
 * read by nothing after (the attention reads the caches): cuBLAS writes qkv in the weights' 16-bit type (as HF
 * transformers' 16-bit activations) into scratch, the q/k-norm + RoPE + KV kernel reads that and writes the rotated q
 * heads (f32, for the attention) and the caches.  Half the GEMM's output traffic and the post kernel's reads; the
 * rounding of q, k and v to 16 bits before the norms is the numeric change (on by default; QR_CUDA_QKV16=0 off) */
static int fuse_qkv_prompt(struct qr_stream *s, const struct qr_node *nd, int n)
{
    if (n < 5 || !cuda_dev(s->dev)->qkv16 || nd[1].op != QR_OP_MATMUL)
        return 0;
    const struct qr_rmsnorm_args *r = &nd[0].a.rmsnorm;
    const struct qr_matmul_args *m = &nd[1].a.matmul;
    struct qkv_post q;
    int c = match_qkv_post(nd + 2, n - 2, &q);
    /* BF16 weights only: an F16 qkv (Turing's converted checkpoints) could overflow before the q/k norms */
    if (!c || m->wtype != QR_DTYPE_BF16 || !gemm_path(s, m) || m->accumulate || m->bias.buf ||
        !same(&q.rq->x, &m->y) || q.ld != m->ldy || q.T != m->M || m->N != (q.Hq + 2 * q.Hk) * q.hd ||
        q.hd > 1024 || m->y.buf == r->out.buf || m->y.buf == r->x.buf ||
        !kv_rows_dead(s, &nd[1], &q, nd + 2 + c, n - 2 - c))
        return 0;
    const size_t xbytes = rows16_bytes(m->M, m->K);
    void *xh = NULL;   /* the norm's 16-bit rows (M x K), then the 16-bit qkv rows (M x N) */
    qr_status st = cuda_scratch(s, xbytes + (size_t)m->M * (size_t)m->N * 2, &xh);
    if (st != QR_OK)
        return (int)st;
    void *qkvh = (char *)xh + xbytes;
    float *hout = dead_after(s, &nd[0], &r->out, nd + 2, n - 2) ? NULL : vp(&r->out);
    LAUNCH_TRY(s->dev, cuda_launch_rmsnorm_cvt(cst(s), hout, xh, (int)m->wtype, vp(&r->x), vp(&r->w), (int)r->wtype,
                                               r->n_tokens, r->n, r->ldx, r->ldout, r->eps,
                                               cuda_dev(s->dev)->prefill_vec));
    st = cuda_gemm_prepared16(s, qkvh, xh, vp(&m->w), m->wtype, m->M, m->N, m->K, m->N);
    if (st != QR_OK)
        return (int)st;
    const struct qr_rmsnorm_args *nq = q.nq, *nk = q.nk;
    LAUNCH_TRY(s->dev, cuda_launch_qkv_post16(cst(s), vp(&q.rq->x), q.ld, qkvh, (int)m->wtype, m->N, q.T, q.Hq, q.Hk,
                                              q.hd, nq ? vp(&nq->w) : NULL, nq ? (int)nq->wtype : 0,
                                              nk ? vp(&nk->w) : NULL, nk ? (int)nk->wtype : 0, nq ? nq->eps : 0.0f,
                                              vp(&q.rq->pos), vp(&q.rq->inv_freq), q.rq->attn_factor,
                                              vp(&q.kv->k_cache), vp(&q.kv->v_cache), vp(&q.kv->slots),
                                              (int)q.kv->kv_dtype, q.kv->block_size, q.kv->num_blocks));
    return 2 + c;
}

/* one token: RMSNORM, MATMUL qkv, [QK_NORM q, QK_NORM k,] ROPE q, ROPE k, KV_STORE in one launch (gemv_norm.cu's
 * qkv fold, QR_CUDA_QKV_FOLD=1): the last block of each head's rows runs its post.  Returns the nodes taken, 0 (no
 * match: the caller goes on) or a negative qr_status */
static int fuse_norm_gemv_qkv(struct qr_stream *s, const struct qr_node *nd, int n)
{
    const struct qr_rmsnorm_args *r = &nd[0].a.rmsnorm;
    const struct qr_matmul_args *m = &nd[1].a.matmul;
    struct qkv_post q;
    int c = n >= 5 && cuda_dev(s->dev)->qkv_fold ? match_qkv_post(nd + 2, n - 2, &q) : 0;
    if (!c || q.T != 1 || m->M != 1 || m->accumulate || !same(&q.rq->x, &m->y) || m->y.buf == r->x.buf ||
        m->y.buf == r->out.buf)
        return 0;
    const struct qr_rmsnorm_args *nq = q.nq, *nk = q.nk;
    struct qr_cuda_qkv_post p = {
        .wq = nq ? vp(&nq->w) : NULL, .wk = nk ? vp(&nk->w) : NULL, .wqt = nq ? (int)nq->wtype : 0,
        .wkt = nk ? (int)nk->wtype : 0, .eps = nq ? nq->eps : 0.0f, .pos = vp(&q.rq->pos),
        .inv_freq = vp(&q.rq->inv_freq), .attn_factor = q.rq->attn_factor, .k_cache = vp(&q.kv->k_cache),
        .v_cache = vp(&q.kv->v_cache), .slots = vp(&q.kv->slots), .kv_dtype = (int)q.kv->kv_dtype,
        .block_size = q.kv->block_size, .num_blocks = q.kv->num_blocks, .n_q = q.Hq, .n_kv = q.Hk, .hd = q.hd,
    };
    /* the counters sit past the decode attention's (QR_CUDA_ATTN_LASTMERGE, n_seqs * n_kv_heads from 0) */
    const size_t cnt_off = 4096;
    int *cnt = NULL;
    qr_status st = cuda_counters(s, cnt_off + (size_t)(q.Hq + 2 * q.Hk), &cnt);
    if (st != QR_OK)
        return (int)st;
    p.cnt = cnt + cnt_off;
    if (!cuda_gemv_norm_qkv_ok(m->N, &p))
        return 0;
    LAUNCH_TRY(s->dev, cuda_launch_gemv_norm_qkv(cst(s), vp(&m->y), vp(&r->x), vp(&m->w),
                                                 m->bias.buf ? vp(&m->bias) : NULL, (int)m->wtype, (int)m->btype,
                                                 m->N, m->K, vp(&r->w), (int)r->wtype, r->eps, vp(&r->out), &p));
    return 2 + c;
}

/* RMSNORM (one head per token) + the MATMUL that reads its output */
static int fuse_norm_gemv(struct qr_stream *s, const struct qr_node *nd, int n)
{
    if (n < 2 || nd[0].op != QR_OP_RMSNORM || nd[1].op != QR_OP_MATMUL)
        return 0;
    const struct qr_rmsnorm_args *r = &nd[0].a.rmsnorm;
    const struct qr_matmul_args *m = &nd[1].a.matmul;
    /* n > 512: the unfused rmsnorm then takes k_rmsnorm_block, whose reduction order the fused kernels repeat */
    if (r->n_heads != 1 || r->n_tokens != m->M || r->n != m->K || r->n <= 512 || !same(&m->x, &r->out) ||
        m->ldx != r->ldout || r->out.buf == r->x.buf || m->y.buf == r->out.buf || m->y.buf == r->x.buf)
        return 0;
    if (gemm_path(s, m)) {
        int r4 = fuse_mlp_prompt(s, nd, n);
        if (r4 == 0)
            r4 = fuse_qkv_prompt(s, nd, n);
        return r4 != 0 ? r4 : fuse_to_gemm(s, nd, n);
    }
    if (!gemv_path(s, m))
        return 0;
    if (m->M == 1 && cuda_gemv_norm_ok((int)m->wtype, (int)r->wtype, m->K, vp(&r->x), vp(&m->w), vp(&r->w),
                                       vp(&r->out))) {
        int c = fuse_norm_gemv_qkv(s, nd, n);
        if (c != 0)
            return c;
        /* one token: the norm's scale applied after the sum (gemv_norm.cu); with the SwiGLU that reads a
         * gate_up output, that too (its epilogue writes the activation the down projection reads) */
        const struct qr_silu_mul_args *g = n >= 3 && nd[2].op == QR_OP_SILU_MUL ? &nd[2].a.silu_mul : NULL;
        bool glu = g && g->n_tokens == 1 && same(&g->gu, &m->y) && 2 * g->n_ff == m->N && !m->accumulate &&
                   g->out.buf != g->gu.buf && g->out.buf != r->x.buf && g->out.buf != r->out.buf;
        LAUNCH_TRY(s->dev, cuda_launch_gemv_norm(cst(s), vp(&m->y), vp(&r->x), vp(&m->w),
                                                 m->bias.buf ? vp(&m->bias) : NULL, (int)m->wtype, (int)m->btype,
                                                 m->N, m->K, m->accumulate, vp(&r->w), (int)r->wtype, r->eps,
                                                 vp(&r->out), glu ? vp(&g->out) : NULL, glu ? g->n_ff : 0));
        return glu ? 3 : 2;
    }
    if (!cuda_gemv_fused_ok((int)m->wtype, m->M, m->K, r->ldx, vp(&r->x), vp(&m->w), 2, (int)r->wtype, vp(&r->w),
                            r->ldout, vp(&r->out)))
        return 0;
    LAUNCH_TRY(s->dev, cuda_launch_gemv_fused(cst(s), 2, vp(&m->y), vp(&r->x), vp(&m->w),
                                              m->bias.buf ? vp(&m->bias) : NULL, (int)m->wtype, (int)m->btype, m->M,
                                              m->N, m->K, r->ldx, m->ldy, m->accumulate, vp(&r->w), (int)r->wtype,
                                              r->eps, vp(&r->out), r->ldout));
    return 2;
}

/* SILU_MUL + the MATMUL that reads its output (down_proj) */
static int fuse_silu_gemv(struct qr_stream *s, const struct qr_node *nd, int n)
{
    if (n < 2 || nd[0].op != QR_OP_SILU_MUL || nd[1].op != QR_OP_MATMUL)
        return 0;
    const struct qr_silu_mul_args *a = &nd[0].a.silu_mul;
    const struct qr_matmul_args *m = &nd[1].a.matmul;
    if (a->n_tokens != m->M || a->n_ff != m->K || !same(&m->x, &a->out) || m->ldx != a->ldout ||
        a->ldgu < 2 * a->n_ff || a->out.buf == a->gu.buf || m->y.buf == a->out.buf || m->y.buf == a->gu.buf)
        return 0;
    if (gemm_path(s, m))
        return fuse_to_gemm(s, nd, n);
    if (!gemv_path(s, m))
        return 0;
    if (!cuda_gemv_fused_ok((int)m->wtype, m->M, m->K, a->ldgu, vp(&a->gu), vp(&m->w), 1, 0, NULL, a->ldout,
                            vp(&a->out)))
        return 0;
    LAUNCH_TRY(s->dev, cuda_launch_gemv_fused(cst(s), 1, vp(&m->y), vp(&a->gu), vp(&m->w),
                                              m->bias.buf ? vp(&m->bias) : NULL, (int)m->wtype, (int)m->btype, m->M,
                                              m->N, m->K, a->ldgu, m->ldy, m->accumulate, NULL, 0, 0.0f,
                                              vp(&a->out), a->ldout));
    return 2;
}

/* ATTN (the prompt kernel alone) + the prompt-sized MATMUL that reads its output (o_proj) */
static int fuse_attn_gemm(struct qr_stream *s, const struct qr_node *nd, int n)
{
    if (n < 2 || nd[0].op != QR_OP_ATTN || nd[1].op != QR_OP_MATMUL)
        return 0;
    const struct qr_attn_args *a = &nd[0].a.attn;
    const struct qr_matmul_args *m = &nd[1].a.matmul;
    if (cuda_dev(s->dev)->keep_intermediates || !gemm_path(s, m) || m->M != a->n_tokens ||
        m->K != a->n_heads * a->head_dim || !same(&m->x, &a->out) || m->ldx != a->ldo || m->y.buf == a->out.buf ||
        !cuda_attn_prompt_only(s, a))
        return 0;
    return fuse_to_gemm(s, nd, n);
}

int cuda_fuse_at(struct qr_stream *s, const struct qr_node *nd, int n)
{
    int r;
    switch (nd[0].op) {
    case QR_OP_QK_NORM:
    case QR_OP_ROPE: r = fuse_qkv_post(s, nd, n); break;
    case QR_OP_RMSNORM: r = fuse_norm_gemv(s, nd, n); break;
    case QR_OP_SILU_MUL: r = fuse_silu_gemv(s, nd, n); break;
    case QR_OP_ATTN: r = fuse_attn_gemm(s, nd, n); break;
    default: r = 0; break;
    }
    return r;
}
