/* cuda_ops.c - the op table of the CUDA backend: argument checks, then the
 * launchers in the kernels/ .cu files or cuBLAS.
 *
 * matmul: F32 weights -> cublasSgemm (full f32).  BF16/F16 weights with
 * M <= QR_CUDA_GEMV_USE_M -> the GEMV kernels (bias and accumulate fused);
 * larger M -> x converted to the weight dtype in stream scratch, then
 * cublasGemmEx (f32 accumulate and output, beta = 1 for accumulate) and a
 * bias pass.  logits: the same, with the selected rows gathered.
 * attn: max_q_len == 1 -> split-KV decode (fused path: on tensor cores,
 * attn_decode_tc.cu), else the tensor-core prompt kernel; in a mixed batch on
 * the fused path the prompt kernel skips the one-token sequences and the
 * decode kernel takes them.  Short prompt chunks after a long context may take the
 * split-KV chunk kernel (attn_chunk.cu) in the prompt kernel's place
 * (QR_CUDA_ATTN_CHUNK, on by default; attn_chunk_on).  FP8 E4M3 caches: the tensor-core decode kernel,
 * the mma.sync prompt kernel (also for decodes the former does not take) and
 * the generic kernel read them; the older decode kernels and the Hopper wgmma
 * prompt kernels do not. */
#include "cuda_internal.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static inline void *vp(const struct qr_view *v) { return v->buf ? (char *)v->buf->ptr + v->off : NULL; }
static inline qr_cuda_stream cst(struct qr_stream *s) { return (qr_cuda_stream)cuda_st(s)->cs; }

#define ENTER(s)                                                                                                   \
    do {                                                                                                           \
        qr_status st_ = cuda_enter((s)->dev);                                                                      \
        if (st_ != QR_OK)                                                                                          \
            return st_;                                                                                            \
    } while (0)

static bool aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

static qr_status op_embed(struct qr_stream *s, const struct qr_embed_args *a)
{
    ENTER(s);
    if (a->vocab <= 0 && a->n_tokens > 0)
        return qr_set_error(QR_E_INVALID_ARG, "cuda embed: vocab %d", a->vocab);
    LAUNCH_TRY(s->dev, cuda_launch_embed(cst(s), vp(&a->out), vp(&a->table), vp(&a->ids), a->wtype, a->n_tokens,
                                         a->dim, a->vocab));
    return QR_OK;
}

static cudaDataType_t cu_dtype(enum qr_dtype t)
{
    return t == QR_DTYPE_BF16 ? CUDA_R_16BF : t == QR_DTYPE_F16 ? CUDA_R_16F : CUDA_R_32F;
}

/* y (N x M col-major view, ldy) = W (N, K) . X^T  where X rows are K long (ldx) */
static qr_status gemm(struct qr_stream *s, float *y, const void *x, int ldx, const void *w, enum qr_dtype wtype, int M,
                      int N, int K, int ldy, int accumulate)
{
    struct cuda_stream *cs = cuda_st(s);
    const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    if (wtype == QR_DTYPE_F32) {
        CUBLAS_TRY(s->dev, cublasSgemm(cs->blas, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &alpha, w, K, x, ldx, &beta, y,
                                       ldy));
    } else {
        qr_status st = QR_OK;
        if (cuda_gemm_tuned(s, y, CUDA_R_32F, ldy, x, ldx, w, cu_dtype(wtype), M, N, K, beta, &st))
            return st;
        CUBLAS_TRY(s->dev, cublasGemmEx(cs->blas, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &alpha, w, cu_dtype(wtype), K, x,
                                        cu_dtype(wtype), ldx, &beta, y, CUDA_R_32F, ldy, CUBLAS_COMPUTE_32F,
                                        CUBLAS_GEMM_DEFAULT));
    }
    return QR_OK;
}

/* shared by matmul and logits; rows/max_rows: logits gather */
static qr_status matmul_impl(struct qr_stream *s, float *y, const float *x, const void *w, const void *bias,
                             enum qr_dtype wtype, enum qr_dtype btype, int M, int N, int K, int ldx, int ldy,
                             int accumulate, const int32_t *rows, int64_t max_rows)
{
    if (M <= 0 || N <= 0)
        return QR_OK;
    if (K <= 0) {
        return qr_set_error(QR_E_INVALID_ARG, "cuda matmul: K = %d", K);
    }
    struct cuda_device *cd = cuda_dev(s->dev);
    bool half = wtype == QR_DTYPE_BF16 || wtype == QR_DTYPE_F16;
    if (half && cd->fused && !rows && M <= QR_CUDA_GEMV_USE_M &&
        cuda_gemv_fused_ok((int)wtype, M, K, ldx, x, w, 0, 0, NULL, 0, NULL)) {
        /* the fused-path decode GEMV: weights start streaming before the PDL wait */
        LAUNCH_TRY(s->dev, cuda_launch_gemv_fused(cst(s), 0, y, x, w, bias, wtype, btype, M, N, K, ldx, ldy, accumulate,
                                                  NULL, 0, 0.0f, NULL, 0));
        return QR_OK;
    }
    if (half && (M <= QR_CUDA_GEMV_USE_M || (wtype == QR_DTYPE_BF16 && cd->cc < 80))) {
        /* decode GEMV (on sm_75 also BF16 GEMMs, 8 rows at a time) */
        for (int m0 = 0; m0 < M; m0 += QR_CUDA_GEMV_MAX_M) {
            int mb = M - m0 < QR_CUDA_GEMV_MAX_M ? M - m0 : QR_CUDA_GEMV_MAX_M;
            LAUNCH_TRY(s->dev, cuda_launch_gemv(cst(s), y + (int64_t)m0 * ldy, rows ? x : x + (int64_t)m0 * ldx, w,
                                                bias, wtype, btype, mb, N, K, ldx, ldy, accumulate,
                                                rows ? rows + m0 : NULL, max_rows));
        }
        return QR_OK;
    }
    const void *xin = x;
    int ldin = ldx;
    if (half || rows) {
        void *scr = NULL;
        size_t es = qr_dtype_size(wtype);
        qr_status st = cuda_scratch(s, (size_t)M * (size_t)K * es, &scr);
        if (st != QR_OK)
            return st;
        LAUNCH_TRY(s->dev, cuda_launch_convert_rows(cst(s), scr, wtype, x, M, K, ldx, rows, max_rows));
        xin = scr;
        ldin = K;
    }
    qr_status st = gemm(s, y, xin, ldin, w, wtype, M, N, K, ldy, accumulate);
    if (st != QR_OK)
        return st;
    if (bias)
        LAUNCH_TRY(s->dev, cuda_launch_bias_add(cst(s), y, bias, btype, M, N, ldy));
    return QR_OK;
}

/* cuBLAS on an input already converted to the weight dtype (contiguous rows of K), then the bias pass */
qr_status cuda_gemm_prepared(struct qr_stream *s, float *y, const void *xh, const void *w, enum qr_dtype wtype,
                             const void *bias, enum qr_dtype btype, int M, int N, int K, int ldy, int accumulate)
{
    qr_status st = gemm(s, y, xh, K, w, wtype, M, N, K, ldy, accumulate);
    if (st != QR_OK)
        return st;
    if (bias)
        LAUNCH_TRY(s->dev, cuda_launch_bias_add(cst(s), y, bias, btype, M, N, ldy));
    return QR_OK;
}

/* the same, with the output in the weight dtype (16 bits, row stride ldy elements), no bias, no accumulate */
qr_status cuda_gemm_prepared16(struct qr_stream *s, void *yh, const void *xh, const void *w, enum qr_dtype wtype, int M,
                               int N, int K, int ldy)
{
    struct cuda_stream *cs = cuda_st(s);
    const float alpha = 1.0f, beta = 0.0f;
    if (wtype != QR_DTYPE_BF16 && wtype != QR_DTYPE_F16)
        return qr_set_error(QR_E_INTERNAL, "cuda gemm16: weight dtype %d", (int)wtype);
    qr_status st = QR_OK;
    if (cuda_gemm_tuned(s, yh, cu_dtype(wtype), ldy, xh, K, w, cu_dtype(wtype), M, N, K, beta, &st))
        return st;
    CUBLAS_TRY(s->dev, cublasGemmEx(cs->blas, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &alpha, w, cu_dtype(wtype), K, xh,
                                    cu_dtype(wtype), K, &beta, yh, cu_dtype(wtype), ldy, CUBLAS_COMPUTE_32F,
                                    CUBLAS_GEMM_DEFAULT));
    return QR_OK;
}

static qr_status op_matmul(struct qr_stream *s, const struct qr_matmul_args *a)
{
    ENTER(s);
    return matmul_impl(s, vp(&a->y), vp(&a->x), vp(&a->w), a->bias.buf ? vp(&a->bias) : NULL, a->wtype, a->btype,
                       a->M, a->N, a->K, a->ldx, a->ldy, a->accumulate, NULL, 0);
}

static qr_status op_logits(struct qr_stream *s, const struct qr_logits_args *a)
{
    ENTER(s);
    if (a->n_out <= 0)
        return QR_OK;
    int64_t ld = a->ldx > 0 ? a->ldx : a->dim;
    size_t avail = a->x.buf->size > a->x.off ? a->x.buf->size - a->x.off : 0;
    int64_t max_rows = ((int64_t)(avail / 4) - a->dim) / ld + 1;
    if (max_rows < 1)
        return qr_set_error(QR_E_INVALID_ARG, "cuda logits: x buffer holds no row of %d", a->dim);
    return matmul_impl(s, vp(&a->out), vp(&a->x), vp(&a->w), NULL, a->wtype, QR_DTYPE_F32, a->n_out, a->vocab,
                       a->dim, (int)ld, a->vocab, 0, vp(&a->idx), max_rows);
}

static qr_status op_rmsnorm(struct qr_stream *s, const struct qr_rmsnorm_args *a)
{
    ENTER(s);
    LAUNCH_TRY(s->dev, cuda_launch_rmsnorm(cst(s), vp(&a->out), vp(&a->x), vp(&a->w), a->wtype, a->n_tokens,
                                           a->n_heads, a->n, a->ldx, a->ldout, a->eps));
    return QR_OK;
}

static qr_status op_rope(struct qr_stream *s, const struct qr_rope_args *a)
{
    ENTER(s);
    LAUNCH_TRY(s->dev, cuda_launch_rope(cst(s), vp(&a->x), vp(&a->pos), vp(&a->inv_freq), a->n_tokens, a->n_heads,
                                        a->head_dim, a->ld, a->attn_factor));
    return QR_OK;
}

static qr_status op_kv_store(struct qr_stream *s, const struct qr_kv_store_args *a)
{
    ENTER(s);
    LAUNCH_TRY(s->dev, cuda_launch_kv_store(cst(s), vp(&a->k_cache), vp(&a->v_cache), vp(&a->k), vp(&a->v),
                                            vp(&a->slots), a->kv_dtype, a->n_tokens, a->n_kv_heads, a->head_dim,
                                            a->ld, a->block_size, a->num_blocks));
    return QR_OK;
}

/* decode attention on tensor cores for the one-token sequences of k, launched on st (its partials in scr, else in
 * stream scratch) */
static qr_status decode_tc_at(struct qr_stream *s, qr_cuda_stream st_, const struct qr_cuda_attn *k, int n_sm,
                              void *scr)
{
    qr_status st;
    if (!scr && (st = cuda_scratch(s, cuda_attn_decode_tc_scratch(k, n_sm), &scr)) != QR_OK)
        return st;
    int *cnt = NULL;
    if (cuda_dev(s->dev)->attn_lastmerge &&
        (st = cuda_counters(s, (size_t)k->n_seqs * (size_t)k->n_kv_heads, &cnt)) != QR_OK)
        return st;
    LAUNCH_TRY(s->dev, cuda_launch_attn_decode_tc(st_, k, scr, n_sm, cnt, cuda_dev(s->dev)->attn_early));
    return QR_OK;
}
static qr_status decode_tc(struct qr_stream *s, const struct qr_cuda_attn *k, int n_sm)
{
    return decode_tc_at(s, cst(s), k, n_sm, NULL);
}

/* an auxiliary stream of s with its fork/join events (*st, *fork, *join), created at first use outside a graph capture
 * at the highest or lowest priority; *out NULL where there is none (first use inside a capture) */
qr_status cuda_aux_stream(struct qr_stream *s, cudaStream_t *st, cudaEvent_t *fork, cudaEvent_t *join, bool highest,
                          cudaStream_t *out)
{
    struct cuda_stream *cs = cuda_st(s);
    *out = NULL;
    if (!*st) {
        enum cudaStreamCaptureStatus cap = cudaStreamCaptureStatusNone;
        CUDA_TRY(s->dev, cudaStreamIsCapturing(cs->cs, &cap));
        if (cap != cudaStreamCaptureStatusNone)
            return QR_OK;
        int lo = 0, hi = 0;
        CUDA_TRY(s->dev, cudaDeviceGetStreamPriorityRange(&lo, &hi));
        CUDA_TRY(s->dev, cudaEventCreateWithFlags(fork, cudaEventDisableTiming));
        CUDA_TRY(s->dev, cudaEventCreateWithFlags(join, cudaEventDisableTiming));
        CUDA_TRY(s->dev, cudaStreamCreateWithPriority(st, cudaStreamNonBlocking, highest ? hi : lo));
    }
    *out = *st;
    return QR_OK;
}

/* the side stream (highest priority) of a mixed batch's decode attention */
static qr_status side_stream(struct qr_stream *s, cudaStream_t *out)
{
    struct cuda_stream *cs = cuda_st(s);
    return cuda_aux_stream(s, &cs->side, &cs->ev_fork, &cs->ev_join, true, out);
}

static struct qr_cuda_attn attn_kargs(const struct qr_attn_args *a)
{
    return (struct qr_cuda_attn){
        .out = vp(&a->out), .q = vp(&a->q), .k_cache = vp(&a->k_cache), .v_cache = vp(&a->v_cache),
        .block_tables = vp(&a->block_tables), .seq_lens = vp(&a->seq_lens), .q_start = vp(&a->q_start),
        .kv_dtype = a->kv_dtype, .n_tokens = a->n_tokens, .n_seqs = a->n_seqs, .n_heads = a->n_heads,
        .n_kv_heads = a->n_kv_heads, .head_dim = a->head_dim, .block_size = a->block_size,
        .max_blocks_per_seq = a->max_blocks_per_seq, .num_blocks = a->num_blocks, .ldq = a->ldq, .ldo = a->ldo,
        .max_seq_len = a->max_seq_len, .max_q_len = a->max_q_len, .scale = a->scale,
    };
}

static bool attn_tc(const struct cuda_device *cd, const struct qr_attn_args *a)
{
    return cd->fused && cd->decode_tc &&
           cuda_attn_decode_tc_supported(a->head_dim, (int)a->kv_dtype, a->n_heads, a->n_kv_heads, cd->cc);
}

static size_t round256(size_t n) { return (n + 255) & ~(size_t)255; }

/* Whether the prompt side of a launch (skip: its one-token sequences left to the decode kernel) runs the split-KV
 * chunk kernel (attn_chunk.cu) instead of a prompt kernel.  The prompt kernels' grid is ceil(max_q_len / 64) query
 * tiles x n_heads / 2 head pairs x sequences (B blocks), each block walking its sequence's whole context for its
 * 64 tokens x 2 heads = 128 rows: with B <= n_sm it takes one block's walk, however many SMs idle (Qwen3-4B: 16
 * blocks for up to 64 tokens, 64 for 256, on 132 SMs).  The chunk kernel spreads the same rows x keys over every
 * SM (splits of the keys, all rows of a kv head's GQA group per K/V tile, then a merge), but on mma.sync with
 * operands from shared memory where the Hopper prompt kernel has wgmma: per SM it does the work at a rate r of the
 * prompt kernel's (r ~ 1/2 taken; the lab's --attn-chunk measures it).  Its time is about B / (r n_sm) of the
 * prompt kernel's, so it wins where
 *   2 * B <= n_sm (B counting only the sequences of two or more tokens where skip), and
 *   max_q_len <= cd->attn_chunk_qmax (QR_CUDA_ATTN_CHUNK_QMAX: default 128, where the lab measured the second
 *   version ahead of the prompt kernel; at most QR_CUDA_ATTN_CHUNK_QMAX = 256: one sequence of up to 256 tokens of
 *   Qwen3-4B, two of up to 128, four of up to 64), BF16/F16 KV, head_dim 64/128 (cuda_attn_chunk_supported), and
 *   max_seq_len >= CHUNK_MIN_CTX: each block's walk is long enough to matter against the merge launch.
 * Measured (docs/PERF.md): first version, H100, fourteenth session: 16 new tokens after 8192 / 32768 cached keys
 * 14.3 -> 10.1 / 31.5 -> 11.2 ms TTFT, 64 after 32768 30.9 -> 22.7; second version (the default since the
 * fifteenth), H200 kernel lab, us per launch, prompt kernel / chunk v2 / chunk v1: 16 after 8192 151 / 30 / 30,
 * 64 157 / 98 / 97, 128 156 / 141 / 184, 256 165 / 231 / 301; after 32768: 16 602 / 74 / 74, 64 607 / 230 / 380,
 * 128 584 / 405 / 669, 256 612 / 757 / 1105.  CHUNK_MIN_CTX is not tuned.  QR_CUDA_ATTN_CHUNK=force: wherever
 * supported, up to QR_CUDA_ATTN_CHUNK_QMAX (the tests). */
#define CHUNK_MIN_CTX 1024
static bool attn_chunk_on(const struct cuda_device *cd, const struct qr_attn_args *a, bool skip)
{
    if (!cd->attn_chunk || a->max_q_len < 2 || a->max_q_len > QR_CUDA_ATTN_CHUNK_QMAX || a->n_seqs > 65535 ||
        !cuda_attn_chunk_supported(a->head_dim, (int)a->kv_dtype, a->n_heads, a->n_kv_heads, cd->cc))
        return false;
    if (cd->attn_chunk == 2)
        return true;
    if (a->max_q_len > cd->attn_chunk_qmax)
        return false;
    int64_t seqs = a->n_seqs;
    if (skip && a->n_tokens - a->n_seqs < seqs)
        seqs = a->n_tokens - a->n_seqs > 1 ? a->n_tokens - a->n_seqs : 1;
    const int64_t blocks = (int64_t)((a->max_q_len + 63) / 64) * (a->n_heads > 1 ? a->n_heads / 2 : 1) * seqs;
    return 2 * blocks <= cd->n_sm && a->max_seq_len >= CHUNK_MIN_CTX;
}
/* its partials' scratch bytes (0 where it does not run) */
static size_t attn_chunk_bytes(const struct cuda_device *cd, const struct qr_attn_args *a, bool skip)
{
    if (!attn_chunk_on(cd, a, skip))
        return 0;
    struct qr_cuda_attn k = attn_kargs(a);
    return round256(cuda_attn_chunk_scratch(&k, cd->n_sm, cd->attn_chunk_v));
}

/* the prompt side on its own: the chunk kernel where attn_chunk_on (its partials in cscr, else in stream scratch:
 * callers with other data in the stream scratch pass cscr), else the tensor-core prompt kernel (wgmma where the
 * device has it, else mma.sync) */
static qr_status attn_prompt(struct qr_stream *s, const struct qr_attn_args *a, struct qr_cuda_attn *k, void *cscr)
{
    struct cuda_device *cd = cuda_dev(s->dev);
    if (attn_chunk_on(cd, a, k->skip_single != 0)) {
        qr_status st;
        if (!cscr && (st = cuda_scratch(s, cuda_attn_chunk_scratch(k, cd->n_sm, cd->attn_chunk_v), &cscr)) != QR_OK)
            return st;
        LAUNCH_TRY(s->dev, cuda_launch_attn_chunk(cst(s), k, cscr, cd->n_sm, cd->attn_chunk_v));
        return QR_OK;
    }
    /* FP8 caches: the TMA kernel converts tiles to f16 in shared memory (QR_CUDA_ATTN_F8_TMA=0: mma.sync) */
    if (cd->wg_attn && cd->f8_tma && a->kv_dtype == QR_DTYPE_F8E4M3 && cuda_attn_prefill_tma_f8_supported(k)) {
        LAUNCH_TRY(s->dev, cuda_launch_attn_prefill_tma(cst(s), k));
        return QR_OK;
    }
    /* the wgmma kernel indexes cache rows (block, kv head, row) in 32 bits */
    if (cd->wg_attn && cuda_attn_prefill_wg_supported(a->head_dim, (int)a->kv_dtype, a->n_heads, a->n_kv_heads) &&
        (int64_t)a->num_blocks * a->n_kv_heads * a->block_size < ((int64_t)1 << 31))
        LAUNCH_TRY(s->dev, cuda_launch_attn_prefill_wg_variant(cst(s), k, cd->wg_variant));
    else
        LAUNCH_TRY(s->dev, cuda_launch_attn_prefill(cst(s), k));
    return QR_OK;
}

/* a mixed batch: the prompt kernel (kp, skip_single) for the longer sequences and the decode kernel (kd) for the
 * one-token ones, its partials in scr (NULL: stream scratch), followed there by the chunk kernel's (round256 of the
 * decode kernel's bytes apart) where it takes the prompt side.  The decode kernel reads K/V at memory speed while
 * the prompt kernel is bound by its MMAs, so with QR_CUDA_ATTN_SIDE=1 it runs on the side stream beside it (forked
 * after the ops before, joined before any op after); by default, or without a side stream, one after the other (the
 * side stream measured nothing on the H100: the prompt kernel's blocks fill the SMs' shared memory) */
static qr_status attn_split(struct qr_stream *s, const struct qr_attn_args *a, struct qr_cuda_attn *kp,
                            const struct qr_cuda_attn *kd, void *scr)
{
    struct cuda_device *cd = cuda_dev(s->dev);
    struct cuda_stream *cs = cuda_st(s);
    qr_status st;
    const size_t dbytes = round256(cuda_attn_decode_tc_scratch(kd, cd->n_sm));
    const size_t cbytes = attn_chunk_bytes(cd, a, kp->skip_single != 0);
    if (!scr && (st = cuda_scratch(s, dbytes + cbytes, &scr)) != QR_OK)
        return st;
    void *cscr = cbytes ? (char *)scr + dbytes : NULL;
    cudaStream_t side = NULL;
    if (cd->attn_side && !cd->attn_lastmerge && (st = side_stream(s, &side)) != QR_OK)
        return st;
    if (!side) {
        if ((st = attn_prompt(s, a, kp, cscr)) != QR_OK)
            return st;
        return decode_tc_at(s, cst(s), kd, cd->n_sm, scr);
    }
    CUDA_TRY(s->dev, cudaEventRecord(cs->ev_fork, cs->cs));
    CUDA_TRY(s->dev, cudaStreamWaitEvent(side, cs->ev_fork, 0));
    st = decode_tc_at(s, (qr_cuda_stream)side, kd, cd->n_sm, scr);
    qr_status st2 = st == QR_OK ? attn_prompt(s, a, kp, cscr) : QR_OK;
    /* joined whatever happened, so a capture in progress stays whole */
    cudaError_t e = cudaEventRecord(cs->ev_join, side);
    if (e == cudaSuccess)
        e = cudaStreamWaitEvent(cs->cs, cs->ev_join, 0);
    if (st != QR_OK || st2 != QR_OK)
        return st != QR_OK ? st : st2;
    if (e != cudaSuccess)
        return cuda_fail(s->dev, e, "cudaEventRecord / cudaStreamWaitEvent (side stream join)", __FILE__, __LINE__);
    return QR_OK;
}

static qr_status op_attn(struct qr_stream *s, const struct qr_attn_args *a)
{
    ENTER(s);
    if (a->n_tokens <= 0 || a->n_seqs <= 0)
        return QR_OK;
    if (a->n_kv_heads <= 0 || a->n_heads % a->n_kv_heads != 0)
        return qr_set_error(QR_E_INVALID_ARG, "cuda attn: %d heads are not a multiple of %d kv heads", a->n_heads,
                            a->n_kv_heads);
    if (a->head_dim <= 0 || a->head_dim > 256 || (a->head_dim & 1))
        return qr_set_error(QR_E_UNSUPPORTED, "cuda attn: head_dim %d (even, up to 256, is supported)", a->head_dim);
    struct qr_cuda_attn k = attn_kargs(a);
    if (a->block_size <= 0 || a->max_blocks_per_seq <= 0)
        return qr_set_error(QR_E_INVALID_ARG, "cuda attn: block_size %d, max_blocks_per_seq %d", a->block_size,
                            a->max_blocks_per_seq);
    struct cuda_device *cd = cuda_dev(s->dev);
    if ((a->head_dim != 64 && a->head_dim != 128) || !aligned16(vp(&a->k_cache)) || !aligned16(vp(&a->v_cache))) {
        /* tiny test models and unaligned views: the plain kernel */
        LAUNCH_TRY(s->dev, cuda_launch_attn_generic(cst(s), &k));
        return QR_OK;
    }
    const bool tc = attn_tc(cd, a);
    /* FP8 decodes that the tensor-core kernel does not take go to the prompt kernel below */
    const bool f8 = a->kv_dtype == QR_DTYPE_F8E4M3;
    if (a->max_q_len <= 1 && tc)
        return decode_tc(s, &k, cd->n_sm);
    if (a->max_q_len <= 1 && cd->fused && cuda_attn_decode2_supported(a->head_dim, (int)a->kv_dtype)) {
        void *scr = NULL;
        qr_status st = cuda_scratch(s, cuda_attn_decode2_scratch(&k, cd->n_sm), &scr);
        if (st != QR_OK)
            return st;
        LAUNCH_TRY(s->dev, cuda_launch_attn_decode2(cst(s), &k, scr, cd->n_sm));
        return QR_OK;
    }
    if (a->max_q_len <= 1 && !f8) {
        void *scr = NULL;
        qr_status st = cuda_scratch(s, cuda_attn_decode_scratch(&k, cd->n_sm), &scr);
        if (st != QR_OK)
            return st;
        LAUNCH_TRY(s->dev, cuda_launch_attn_decode(cst(s), &k, scr, cd->n_sm));
        return QR_OK;
    }
    if (!cuda_attn_prefill_supported(a->head_dim, a->kv_dtype, cd->cc)) {
        /* BF16 KV on sm_75: no bf16 mma; the plain kernel */
        LAUNCH_TRY(s->dev, cuda_launch_attn_generic(cst(s), &k));
        return QR_OK;
    }
    /* a mixed batch (several sequences): the one-token ones go to the decode kernel, which reads each K/V row
     * once per GQA group; the prompt kernel would read it once per pair of heads */
    const bool split_mixed = tc && a->n_seqs > 1;
    k.skip_single = split_mixed;
    return split_mixed ? attn_split(s, a, &k, &k, NULL) : attn_prompt(s, a, &k, NULL);
}

bool cuda_attn_prompt_only(struct qr_stream *s, const struct qr_attn_args *a)
{
    struct cuda_device *cd = cuda_dev(s->dev);
    if (a->n_tokens <= 0 || a->n_seqs <= 0 || a->max_q_len <= 1 || a->n_kv_heads <= 0 ||
        a->n_heads % a->n_kv_heads != 0 || (a->head_dim != 64 && a->head_dim != 128) || a->block_size <= 0 ||
        a->max_blocks_per_seq <= 0 || !aligned16(vp(&a->k_cache)) || !aligned16(vp(&a->v_cache)))
        return false;
    return cuda_attn_prefill_supported(a->head_dim, a->kv_dtype, cd->cc) && a->n_seqs <= 65535;
}

size_t cuda_attn_prompt_half_scratch(struct qr_stream *s, const struct qr_attn_args *a)
{
    struct cuda_device *cd = cuda_dev(s->dev);
    /* [decode partials (a mixed batch), rounded to 256 bytes | chunk partials], as attn_split lays them out */
    const bool mixed = attn_tc(cd, a) && a->n_seqs > 1;
    struct qr_cuda_attn k = attn_kargs(a);
    const size_t d = mixed ? round256(cuda_attn_decode_tc_scratch(&k, cd->n_sm)) : 0;
    return d + attn_chunk_bytes(cd, a, mixed);
}

qr_status cuda_attn_prompt_half(struct qr_stream *s, const struct qr_attn_args *a, bool f32_out, void *out_h,
                                enum qr_dtype ht, void *scr)
{
    ENTER(s);
    if (!cuda_attn_prompt_only(s, a) || (ht != QR_DTYPE_BF16 && ht != QR_DTYPE_F16))
        return qr_set_error(QR_E_INTERNAL, "cuda attn: the 16-bit output needs the prompt kernel alone");
    struct cuda_device *cd = cuda_dev(s->dev);
    struct qr_cuda_attn k = attn_kargs(a);
    /* a mixed batch splits as in op_attn: the prompt kernel writes the 16-bit rows of the longer sequences, the
     * decode kernel the f32 rows of the one-token ones, which are then converted (k_convert_rows' rounding) */
    const bool split_mixed = attn_tc(cd, a) && a->n_seqs > 1;
    if (!f32_out)
        k.out = NULL;
    k.out_h = out_h;
    k.out_h_type = (int)ht;
    k.skip_single = split_mixed;
    if (!split_mixed) {
        /* the chunk kernel's partials must not land on out_h (the stream scratch): the caller's scr holds them */
        if (!scr && attn_chunk_on(cd, a, false))
            return qr_set_error(QR_E_INTERNAL, "cuda attn: the chunk kernel's 16-bit output needs its scratch");
        return attn_prompt(s, a, &k, scr);
    }
    struct qr_cuda_attn kd = attn_kargs(a);
    kd.skip_single = true;
    if (!scr)
        return qr_set_error(QR_E_INTERNAL, "cuda attn: a mixed batch's 16-bit output needs the decode scratch");
    qr_status st = attn_split(s, a, &k, &kd, scr);
    if (st != QR_OK)
        return st;
    LAUNCH_TRY(s->dev, cuda_launch_convert_single_rows(cst(s), out_h, (int)ht, kd.out, a->n_heads * a->head_dim,
                                                       a->ldo, vp(&a->q_start), a->n_seqs));
    return QR_OK;
}

static qr_status op_silu_mul(struct qr_stream *s, const struct qr_silu_mul_args *a)
{
    ENTER(s);
    LAUNCH_TRY(s->dev, cuda_launch_silu_mul(cst(s), vp(&a->out), vp(&a->gu), a->n_tokens, a->n_ff, a->ldgu, a->ldout));
    return QR_OK;
}

static qr_status op_add(struct qr_stream *s, const struct qr_add_args *a)
{
    ENTER(s);
    LAUNCH_TRY(s->dev, cuda_launch_add(cst(s), vp(&a->y), vp(&a->x), a->n));
    return QR_OK;
}

static qr_status op_argmax(struct qr_stream *s, const struct qr_argmax_args *a)
{
    ENTER(s);
    void *scr = NULL;
    size_t need = cuda_argmax_scratch(a->n_rows, a->n);
    qr_status st = need ? cuda_scratch(s, need, &scr) : QR_OK;
    if (st != QR_OK)
        return st;
    LAUNCH_TRY(s->dev, cuda_launch_argmax(cst(s), vp(&a->out), vp(&a->x), a->n_rows, a->n, scr));
    return QR_OK;
}

static qr_status op_topk(struct qr_stream *s, const struct qr_topk_args *a)
{
    ENTER(s);
    void *scr = NULL;
    size_t need = cuda_topk_scratch(a->n_rows, a->n, a->k);
    qr_status st = need ? cuda_scratch(s, need, &scr) : QR_OK;
    if (st != QR_OK)
        return st;
    LAUNCH_TRY(s->dev, cuda_launch_topk(cst(s), vp(&a->ids), vp(&a->vals), vp(&a->x), vp(&a->inv_t), a->n_rows, a->n,
                                        a->k, scr));
    return QR_OK;
}

const struct qr_ops cuda_ops = {
    .embed = op_embed,
    .matmul = op_matmul,
    .rmsnorm = op_rmsnorm,
    .qk_norm = op_rmsnorm,
    .rope = op_rope,
    .kv_store = op_kv_store,
    .attn = op_attn,
    .silu_mul = op_silu_mul,
    .add = op_add,
    .logits = op_logits,
    .argmax = op_argmax,
    .topk = op_topk,
};
