/* qr_kernels.h - extern "C" launchers of the CUDA device code (the kernels/ .cu files),
 * called by the host side of the CUDA backend (backends/cuda/).
 *
 * Every launcher enqueues on `stream` and returns a cudaError_t as int
 * (0 = cudaSuccess; the launch error, never a synchronous wait).
 * dtype codes are enum qr_dtype values (F32 = 0, F16 = 1, BF16 = 2; F8_E4M3 = 4 for KV caches).
 * Pointers are device addresses; index inputs (ids, positions, slots, block
 * tables) are read on the device and clamped/skipped there. */
#ifndef QRUN_QR_KERNELS_H
#define QRUN_QR_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct CUstream_st *qr_cuda_stream;

/* largest M the GEMV path takes (decode and small batches) */
#define QR_CUDA_GEMV_MAX_M 8
/* M up to which matmul/logits take the GEMV kernels (cuBLAS is faster from M = 2 on H100) */
#define QR_CUDA_GEMV_USE_M 1

int cuda_launch_embed(qr_cuda_stream st, float *out, const void *table, const int32_t *ids, int wtype, int n_tokens,
                      int dim, int vocab);

/* y[m] (+)= x[rows ? rows[m] : m] . W^T + bias  for M <= QR_CUDA_GEMV_MAX_M.
 * rows (device, may be NULL) are clamped to [0, max_rows). */
int cuda_launch_gemv(qr_cuda_stream st, float *y, const float *x, const void *w, const void *bias, int wtype,
                     int btype, int M, int N, int K, int ldx, int ldy, int accumulate, const int32_t *rows,
                     int64_t max_rows);

/* pulls a[0, na) and then b[0, nb) into L2 (reads only; l2_prefetch.cu): mode 1 prefetch per 128-byte line, 2
 * 16-byte loads, 3 bulk prefetch (sm_90); na a multiple of 16; blocks of 256 threads */
int cuda_launch_l2_prefetch(qr_cuda_stream st, const void *a, size_t na, const void *b, size_t nb, int mode,
                            int blocks);

/* dst[m, :K] = convert(x[rows ? clamp(rows[m]) : m, :K]) to dtype (contiguous, ld K) */
int cuda_launch_convert_rows(qr_cuda_stream st, void *dst, int dtype, const float *x, int M, int K, int ldx,
                             const int32_t *rows, int64_t max_rows);
/* the rows of a batch's one-token sequences (q_start[s + 1] - q_start[s] == 1) of x (f32, ldx) into dst (QK_BF16 /
 * QK_F16, rows of K) at the same rows; n_seqs <= 65535 */
int cuda_launch_convert_single_rows(qr_cuda_stream st, void *dst, int dtype, const float *x, int K, int ldx,
                                    const int32_t *q_start, int n_seqs);

/* y[m, n] += bias[n] */
int cuda_launch_bias_add(qr_cuda_stream st, float *y, const void *bias, int btype, int M, int N, int ldy);

/* RMSNorm over rows of n (n_heads rows per token) */
int cuda_launch_rmsnorm(qr_cuda_stream st, float *out, const float *x, const void *w, int wtype, int n_tokens,
                        int n_heads, int n, int ldx, int ldout, float eps);

int cuda_launch_rope(qr_cuda_stream st, float *x, const int32_t *pos, const float *inv_freq, int n_tokens,
                     int n_heads, int head_dim, int ld, float attn_factor);

int cuda_launch_kv_store(qr_cuda_stream st, void *k_cache, void *v_cache, const float *k, const float *v,
                         const int32_t *slots, int kv_dtype, int n_tokens, int n_kv_heads, int head_dim, int ld,
                         int block_size, int num_blocks);

int cuda_launch_silu_mul(qr_cuda_stream st, float *out, const float *gu, int n_tokens, int n_ff, int ldgu,
                         int ldout);

int cuda_launch_add(qr_cuda_stream st, float *y, const float *x, int64_t n);

/* argmax per row; scratch: cuda_argmax_scratch(n_rows, n) bytes (0: none needed) */
size_t cuda_argmax_scratch(int n_rows, int n);
int cuda_launch_argmax(qr_cuda_stream st, int32_t *out, const float *x, int n_rows, int n, void *scratch);
/* each row's k best for sampling (struct qr_topk_args; k <= 256); scratch: cuda_topk_scratch(n_rows, n, k) bytes
 * (0: none needed) */
size_t cuda_topk_scratch(int n_rows, int n, int k);
int cuda_launch_topk(qr_cuda_stream st, int32_t *ids, float *vals, const float *x, const float *inv_t, int n_rows,
                     int n, int k, void *scratch);
int cuda_launch_spin(qr_cuda_stream st, unsigned long long ns);

/* paged attention (see struct qr_attn_args) */
struct qr_cuda_attn {
    float *out;
    const float *q;
    const void *k_cache, *v_cache;
    const int32_t *block_tables, *seq_lens, *q_start;
    int kv_dtype;
    int n_tokens, n_seqs, n_heads, n_kv_heads, head_dim;
    int block_size, max_blocks_per_seq, num_blocks;
    int ldq, ldo;
    int max_seq_len, max_q_len;
    float scale;
    int skip_single;   /* prompt kernel: leave sequences with one query token to the decode kernel */
    /* prompt kernels only: out may be NULL (no f32 output) and out_h, where set, receives the output in 16 bits
     * (out_h_type QK_BF16 / QK_F16, rows of n_heads * head_dim: the o_proj GEMM's converted input) */
    void *out_h;
    int out_h_type;
};

/* FlashAttention-style prompt kernel (tensor cores; any query length).
 * Needs head_dim 64 or 128 and sm_80+ for BF16 KV (sm_75: F16/F32/FP8 KV; FP8 tiles are converted to F16). */
int cuda_attn_prefill_supported(int head_dim, int kv_dtype, int cc);
int cuda_launch_attn_prefill(qr_cuda_stream st, const struct qr_cuda_attn *a);

/* Hopper prompt attention on wgmma (attn_prefill_wg.cu): head_dim 128, BF16/F16 KV (FP8 takes the mma.sync kernel),
 * even GQA groups; only where cuda_attn_prefill_wg_available() (a cc 9.0 device running this build's sm_90a code;
 * asked once, synchronously) */
int cuda_attn_prefill_wg_available(void);
int cuda_attn_prefill_wg_supported(int head_dim, int kv_dtype, int n_heads, int n_kv_heads);
int cuda_launch_attn_prefill_wg(qr_cuda_stream st, const struct qr_cuda_attn *a);
/* A/B variants of the Hopper prompt attention, chosen at device open (QR_CUDA_ATTN_WG_* switches) */
enum qk_wg_variant {
    QK_WG_DEFAULT = 0, QK_WG_SERIAL, QK_WG_1WG, QK_WG_BK64, QK_WG_NOMIX, QK_WG_TMA, QK_WG_TMA_PP, QK_WG_NOTMA,
    QK_WG_TMA_FL0 = 100   /* + n: lab variant n of the TMA kernel where the default would take TMA */
};
int cuda_launch_attn_prefill_wg_variant(qr_cuda_stream st, const struct qr_cuda_attn *a, int variant);
/* the same kernel one tile at a time (no overlap of softmax and the MMAs), for A/B runs */
int cuda_launch_attn_prefill_wg_serial(qr_cuda_stream st, const struct qr_cuda_attn *a);
/* the pipelined schedule over 64-key tiles (QR_CUDA_ATTN_WG_BK=64; the default has 128), for A/B runs */
int cuda_launch_attn_prefill_wg_bk64(qr_cuda_stream st, const struct qr_cuda_attn *a);
/* the pipelined schedule with one warpgroup (head) per block, two blocks per SM (QR_CUDA_ATTN_WG_HPB=1), for A/B */
int cuda_launch_attn_prefill_wg_1wg(qr_cuda_stream st, const struct qr_cuda_attn *a);
/* the pipelined schedule with the gather behind a branch per chunk, outside the softmax (QR_CUDA_ATTN_WG_MIX=0; the
 * default has it branch-free inside the softmax's basic block), for A/B runs */
int cuda_launch_attn_prefill_wg_nomix(qr_cuda_stream st, const struct qr_cuda_attn *a);
/* K/V tiles by TMA, no block barrier in the loop (attn_prefill_tma.cu): 128-key tiles (the default for KV blocks of
 * 64 rows or more, QR_CUDA_ATTN_WG_TMA=1 for all block sizes >= 8, =0 never); the same with the warpgroups taking
 * turns to issue their MMAs (=pp, measured slower).  Block sizes that are not a power of two >= 8 run
 * cuda_launch_attn_prefill_wg. */
int cuda_launch_attn_prefill_tma(qr_cuda_stream st, const struct qr_cuda_attn *a);
int cuda_launch_attn_prefill_tma_pp(qr_cuda_stream st, const struct qr_cuda_attn *a);
int cuda_launch_attn_prefill_tma_fl(qr_cuda_stream st, const struct qr_cuda_attn *a, int fl);   /* lab variants */
int cuda_attn_prefill_tma_fl_built(int fl);   /* whether lab variant fl exists */
/* FP8 E4M3 caches on the TMA kernel (f16 math; tiles converted in shared memory): can it take this launch? */
int cuda_attn_prefill_tma_f8_supported(const struct qr_cuda_attn *a);

/* plain kernel for any head_dim <= 256 (tiny test models): one block per (token, head) */
int cuda_launch_attn_generic(qr_cuda_stream st, const struct qr_cuda_attn *a);

/* split-KV decode (max_q_len == 1): bytes of scratch it needs, then launch (F32/F16/BF16 KV, not FP8) */
size_t cuda_attn_decode_scratch(const struct qr_cuda_attn *a, int n_sm);
int cuda_launch_attn_decode(qr_cuda_stream st, const struct qr_cuda_attn *a, void *scratch, int n_sm);

/* ---- the fused path (backends.ini [backend.cuda] fused_kernels, default on; see cuda_graph_fuse.c) ---- */

/* programmatic dependent launch for the decode kernels (sm_90+): called once per opened device with its wish;
 * PDL is on only while every opened device wished it (the switch is process-wide) */
void cuda_kernels_set_pdl(int on);
/* the PTX version the kernels run from on the current device (e.g. 90), 0 if unknown */
int cuda_kernels_ptx_version(void);

/* split-KV decode sized to the device (attn_decode2.cu): BF16/F16 KV (not FP8), head_dim 64 or 128 */
int cuda_attn_decode2_supported(int head_dim, int kv_dtype);
size_t cuda_attn_decode2_scratch(const struct qr_cuda_attn *a, int n_sm);
int cuda_launch_attn_decode2(qr_cuda_stream st, const struct qr_cuda_attn *a, void *scratch, int n_sm);
/* its merge of split partials (n_splits > 1; partial layout in attn_split.cuh) */
int cuda_launch_attn_decode2_merge(qr_cuda_stream st, const struct qr_cuda_attn *a, int n_splits,
                                   const float *part_o, const float *part_ml);

/* decode attention on tensor cores (attn_decode_tc.cu): BF16 (sm_80+) / F16 / FP8 E4M3 KV, head_dim 64 or 128, GQA
 * groups of <= 16 heads; only sequences with one query token (the rest are left alone) */
int cuda_attn_decode_tc_supported(int head_dim, int kv_dtype, int n_heads, int n_kv_heads, int cc);
size_t cuda_attn_decode_tc_scratch(const struct qr_cuda_attn *a, int n_sm);
/* counters (may be NULL: a separate merge kernel): n_seqs * n_kv_heads ints, zero before the first launch and left
 * zero by every launch; with them the last split block of a group merges the partials.  early: the first K/V gathers
 * go out before the PDL wait */
int cuda_launch_attn_decode_tc(qr_cuda_stream st, const struct qr_cuda_attn *a, void *scratch, int n_sm,
                               int *counters, int early);

/* ---- short prompt chunks after a long context: split-KV attention (attn_chunk.cu) ---- */

/* the longest query (tokens per sequence) the chunk kernel takes; the host keeps longer ones on the prompt kernels */
#define QR_CUDA_ATTN_CHUNK_QMAX 256
/* BF16 (sm_80+) / F16 KV (not FP8: those stay on the prompt kernels), head_dim 64 or 128, any GQA group */
int cuda_attn_chunk_supported(int head_dim, int kv_dtype, int n_heads, int n_kv_heads, int cc);
/* bytes of scratch its split partials need (16 where it runs one split); variant: QR_CUDA_ATTN_CHUNK_V (0: the first
 * version, one m-tile of 16 rows per warp; 1: two per warp past 8 m-tiles, splits by waves; attn_chunk.cu) */
size_t cuda_attn_chunk_scratch(const struct qr_cuda_attn *a, int n_sm, int variant);
/* sequences of 1 .. QR_CUDA_ATTN_CHUNK_QMAX query tokens (max_q_len at most that; one-token ones skipped where
 * skip_single): the keys split over blocks, each block's K/V tiles read once for all its (token, head) rows, then a
 * merge kernel; writes a->out (f32) and / or a->out_h (16-bit rows) as the prompt kernels do */
int cuda_launch_attn_chunk(qr_cuda_stream st, const struct qr_cuda_attn *a, void *scratch, int n_sm, int variant);

/* [q/k RMSNorm,] RoPE and the paged KV write of a fused qkv row, one kernel (qkv_post.cu).
 * wq/wk NULL: no norm.  q heads at qkv, k heads at + n_q*hd, v heads at + (n_q+n_kv)*hd; rows ld apart. */
int cuda_launch_qkv_post(qr_cuda_stream st, float *qkv, int ld, int n_tokens, int n_q, int n_kv, int hd,
                         const void *wq, int wqt, const void *wk, int wkt, float eps, const int32_t *pos,
                         const float *inv_freq, float attn_factor, void *k_cache, void *v_cache,
                         const int32_t *slots, int kv_dtype, int block_size, int num_blocks);
/* the same at prompt sizes from the qkv GEMM's 16-bit output (qkvh, ht QK_BF16/QK_F16, rows src_ld elements apart):
 * the rotated q heads go to q (f32, rows ld apart), the k and v heads to the caches only */
int cuda_launch_qkv_post16(qr_cuda_stream st, float *q, int ld, const void *qkvh, int ht, int src_ld, int n_tokens,
                           int n_q, int n_kv, int hd, const void *wq, int wqt, const void *wk, int wkt, float eps,
                           const int32_t *pos, const float *inv_freq, float attn_factor, void *k_cache, void *v_cache,
                           const int32_t *slots, int kv_dtype, int block_size, int num_blocks);

/* decode GEMV with its input transformed on the fly (gemv_fused.cu):
 * xmode 0: plain (side must be NULL); xmode 1: x rows are [gate | up] (K each), input = silu(gate) * up;
 * xmode 2: input = nw * (x * inv_rms(x)) (RMSNorm over K with eps).
 * side (may be NULL) receives the transformed rows (ld_side).  _ok: whether the shapes/alignment qualify. */
int cuda_gemv_fused_ok(int wtype, int M, int K, int ldx, const void *x, const void *w, int xmode, int nwt,
                       const void *nw, int ld_side, const void *side);
int cuda_launch_gemv_fused(qr_cuda_stream st, int xmode, float *y, const float *x, const void *w, const void *bias,
                           int wtype, int btype, int M, int N, int K, int ldx, int ldy, int accumulate,
                           const void *nw, int nwt, float eps, float *side, int ld_side);

/* one-token GEMV with the RMSNorm ahead folded in (gemv_norm.cu): y = (W . (nw * x)) * inv_rms(x) + b; side
 * receives the RMSNorm output row.  act != NULL: W is gate_up (N = 2 * ff rows) and act[i] = silu(y[i]) * y[ff + i]
 * is written too (the SwiGLU). */
int cuda_gemv_norm_ok(int wtype, int nwt, int K, const void *x, const void *w, const void *nw, const void *side);
int cuda_launch_gemv_norm(qr_cuda_stream st, float *y, const float *x, const void *w, const void *bias, int wtype,
                          int btype, int N, int K, int accumulate, const void *nw, int nwt, float eps, float *side,
                          float *act, int ff);
/* the one-token qkv GEMV above (no GLU, no accumulate) with the q/k-norm + RoPE + KV write after it folded in: the
 * last block of each head runs that head's post (qkv_head.cuh) on the row the others wrote.  cnt: n_q + 2 * n_kv
 * counters, zero before the launch and zero again after it */
struct qr_cuda_qkv_post {
    const void *wq, *wk;   /* per-head norm weights (both NULL: no q/k norm, Qwen2) */
    int wqt, wkt;
    float eps;
    const int32_t *pos;    /* [1] the token's position */
    const float *inv_freq;
    float attn_factor;
    void *k_cache, *v_cache;
    const int32_t *slots;  /* [1] its cache slot (outside the pool: no write) */
    int kv_dtype, block_size, num_blocks;
    int n_q, n_kv, hd;
    int *cnt;
};
int cuda_gemv_norm_qkv_ok(int N, const struct qr_cuda_qkv_post *p);
int cuda_launch_gemv_norm_qkv(qr_cuda_stream st, float *y, const float *x, const void *w, const void *bias,
                              int wtype, int btype, int N, int K, const void *nw, int nwt, float eps, float *side,
                              const struct qr_cuda_qkv_post *post);

/* prompt-sized RMSNorm / SwiGLU that also write the GEMM's 16-bit input (prefill_fused.cu): out (f32, ldout) and
 * outh (ht = BF16 or F16, contiguous rows); out NULL: outh only.  rmsnorm_cvt needs n > 512 (the unfused op's
 * block reduction). */
int cuda_launch_rmsnorm_cvt(qr_cuda_stream st, float *out, void *outh, int ht, const float *x, const void *w,
                            int wtype, int n_tokens, int n, int ldx, int ldout, float eps, int vec);
int cuda_launch_silu_cvt(qr_cuda_stream st, float *out, void *outh, int ht, const float *gu, int n_tokens, int n_ff,
                         int ldgu, int ldout, int vec);
/* the same SwiGLU reading a 16-bit (ht) gate_up output, rows of ldgu elements.  vec != 0: 16-byte loads and stores
 * (4 elements per thread for the norm, 8 for the SwiGLU) where sizes and alignment allow; the same bits either way */
int cuda_launch_silu16_cvt(qr_cuda_stream st, float *out, void *outh, int ht, const void *gh, int n_tokens, int n_ff,
                           int ldgu, int ldout, int vec);

#ifdef __cplusplus
}
#endif
#endif
