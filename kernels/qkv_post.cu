/* qkv_post.cu - everything between the qkv projection and attention in one
 * kernel (the fused CUDA path, on by default; see backends/cuda/cuda_graph_fuse.c):
 *   [QK_NORM q, QK_NORM k,] ROPE q, ROPE k, KV_STORE
 * One warp per (token, head) over the q, k and v heads of the fused qkv row
 * (q at 0, k at n_q * head_dim, v after the k heads, ld apart per token).
 * q/k heads: optional per-head RMSNorm, then NeoX RoPE, written back in
 * place; k heads also go to the paged K cache, v heads to the V cache.
 * The arithmetic repeats k_rmsnorm_warp, k_rope and k_kv_store expression
 * for expression, so the results match the unfused ops bit for bit.  Slots
 * outside the pool skip the cache write, as k_kv_store does. */
#include "qr_cuda_common.cuh"
#include "qkv_head.cuh"

#define QP_WARPS 8
#define QP_TOK_MIN 64   /* tokens from which k_qkv_post_tok runs */

/* one warp per (token, head) */
template <bool NORM>
__global__ void __launch_bounds__(QP_WARPS * 32)
    k_qkv_post(float *qkv, int ld, int n_tokens, int n_q, int n_kv, int hd, const void *wq, int wqt, const void *wk,
               int wkt, float eps, const int32_t *pos, const float *inv_freq, float attn_factor, void *kc, void *vc,
               const int32_t *slots, int kv_dtype, int block_size, int num_blocks, int early)
{
    if (early) {   /* QK_EARLY_POST: the attention's blocks may start (and gather older keys) during the qkv GEMV */
        qk_pdl_trigger();
        qk_pdl_wait();
    } else {
        qk_pdl_wait();
        qk_pdl_trigger();
    }
    const int heads = n_q + 2 * n_kv;
    const int64_t row = (int64_t)blockIdx.x * QP_WARPS + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    if (row >= (int64_t)n_tokens * heads)
        return;
    const int64_t t = row / heads;
    const int h = (int)(row % heads);
    const int64_t slot = slots ? slots[t] : -1;
    const bool store = slot >= 0 && slot < (int64_t)num_blocks * block_size;
    const qp_rope_direct rope = {(float)pos[t], attn_factor, inv_freq};
    float *r = qkv + t * ld + (int64_t)h * hd;
    qp_head<NORM>(qp_src32{r}, r, h, lane, n_q, n_kv, hd, wq, wqt, wk, wkt, eps, rope, kc, vc, store,
                  store ? slot / block_size : 0, store ? slot % block_size : 0, kv_dtype, block_size);
}

/* prompt-sized steps: one block per token, its RoPE factors computed once into shared memory (the same expressions,
 * so the same bits) and shared by its q and k heads; warp w takes heads w, w + 8, ... (k_qkv_post computed the
 * factors for every head: sincosf ~40 times per pair and token).  H16: the rows come from src, the qkv GEMM's
 * 16-bit output (ht, src_ld elements apart), and only the rotated q heads are written to qkv (f32, ld apart): the
 * k and v rows go to the caches alone */
template <bool NORM, bool H16>
__global__ void __launch_bounds__(QP_WARPS * 32)
    k_qkv_post_tok(float *qkv, int ld, const uint16_t *src, int ht, int src_ld, int n_q, int n_kv, int hd,
                   const void *wq, int wqt, const void *wk, int wkt, float eps, const int32_t *pos,
                   const float *inv_freq, float attn_factor, void *kc, void *vc, const int32_t *slots, int kv_dtype,
                   int block_size, int num_blocks)
{
    extern __shared__ float qp_cs[];
    qk_pdl_wait();
    qk_pdl_trigger();
    const int64_t t = blockIdx.x;
    const int half = hd / 2, heads = n_q + 2 * n_kv, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const qp_rope_direct direct = {(float)pos[t], attn_factor, inv_freq};
    for (int i = threadIdx.x; i < half; i += blockDim.x)
        direct(i, qp_cs[i], qp_cs[half + i]);
    __syncthreads();
    const int64_t slot = slots ? slots[t] : -1;
    const bool store = slot >= 0 && slot < (int64_t)num_blocks * block_size;
    const qp_rope_table rope = {qp_cs, half};
    for (int h = warp; h < heads; h += QP_WARPS) {
        float *r = qkv + t * ld + (int64_t)h * hd;
        if constexpr (H16)
            qp_head<NORM>(qp_src16{src + t * src_ld + (int64_t)h * hd, ht}, h < n_q ? r : nullptr, h, lane, n_q, n_kv,
                          hd, wq, wqt, wk, wkt, eps, rope, kc, vc, store, store ? slot / block_size : 0,
                          store ? slot % block_size : 0, kv_dtype, block_size);
        else
            qp_head<NORM>(qp_src32{r}, r, h, lane, n_q, n_kv, hd, wq, wqt, wk, wkt, eps, rope, kc, vc, store,
                          store ? slot / block_size : 0, store ? slot % block_size : 0, kv_dtype, block_size);
    }
}

/* The same for head_dim 128 and at most QP_PRE_HPW heads per warp, 16-bit input (the default; QR_CUDA_QKV_PRE=0 off):
 * each warp issues the loads of all its heads before the RoPE table's barrier and before any math
 * (k_qkv_post_tok keeps one head's 256 bytes in flight per warp, a latency-bound ~1.5 TB/s at 8192 tokens).  Lane l
 * holds elements l, l + 32, l + 64, l + 96 of each head in registers (qp_src_lane4), and qp_head does the rest as
 * for the other kernels (with head_dim 128 known here its loops unroll onto those registers): the same bits. */
#define QP_PRE_HPW 6
template <bool NORM>
__global__ void __launch_bounds__(QP_WARPS * 32)
    k_qkv_post_pre(float *qkv, int ld, const uint16_t *src, int ht, int src_ld, int n_q, int n_kv, const void *wq,
                   int wqt, const void *wk, int wkt, float eps, const int32_t *pos, const float *inv_freq,
                   float attn_factor, void *kc, void *vc, const int32_t *slots, int kv_dtype, int block_size,
                   int num_blocks)
{
    constexpr int hd = 128, half = 64;
    __shared__ float cs[hd];
    qk_pdl_wait();
    qk_pdl_trigger();
    const int64_t t = blockIdx.x;
    const int heads = n_q + 2 * n_kv, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    uint16_t x[QP_PRE_HPW][4];
    const uint16_t *row = src + t * src_ld;
#pragma unroll
    for (int k = 0; k < QP_PRE_HPW; k++) {
        const int h = warp + k * QP_WARPS;
#pragma unroll
        for (int e = 0; e < 4; e++)
            x[k][e] = h < heads ? row[(int64_t)h * hd + lane + 32 * e] : (uint16_t)0;
    }
    const qp_rope_direct direct = {(float)pos[t], attn_factor, inv_freq};
    for (int i = threadIdx.x; i < half; i += blockDim.x)
        direct(i, cs[i], cs[half + i]);
    __syncthreads();
    const int64_t slot = slots ? slots[t] : -1;
    const bool store = slot >= 0 && slot < (int64_t)num_blocks * block_size;
    const qp_rope_table rope = {cs, half};
#pragma unroll
    for (int k = 0; k < QP_PRE_HPW; k++) {
        const int h = warp + k * QP_WARPS;
        if (h >= heads)
            break;
        float v[4];
#pragma unroll
        for (int e = 0; e < 4; e++)
            v[e] = ht == QK_BF16 ? qk_bf16_f32(x[k][e]) : qk_f16_f32(x[k][e]);
        qp_head<NORM>(qp_src_lane4{v, lane}, h < n_q ? qkv + t * ld + (int64_t)h * hd : nullptr, h, lane, n_q, n_kv,
                      hd, wq, wqt, wk, wkt, eps, rope, kc, vc, store, store ? slot / block_size : 0,
                      store ? slot % block_size : 0, kv_dtype, block_size);
    }
}

/* the prompt-sized 16-bit form takes k_qkv_post_pre where it fits (read once): on by default since the twenty-fourth
 * session (H100 node profile at 8192: 908.99 -> 880.08 us per layer, the same bits); QR_CUDA_QKV_PRE=0 turns it off */
static bool qp_pre_on(void)
{
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("QR_CUDA_QKV_PRE");
        on = !(e && e[0] == '0');
    }
    return on != 0;
}

/* the per-token kernel of either input form (src NULL: f32 in place) */
static int qp_launch_tok(qr_cuda_stream st, float *qkv, int ld, const uint16_t *src, int ht, int src_ld, int n_tokens,
                         int n_q, int n_kv, int hd, const void *wq, int wqt, const void *wk, int wkt, float eps,
                         const int32_t *pos, const float *inv_freq, float attn_factor, void *kc, void *vc,
                         const int32_t *slots, int kv_dtype, int block_size, int num_blocks)
{
    const size_t sh = (size_t)hd * sizeof(float);
    const bool norm = wq && wk;
    if (src && hd == 128 && n_q + 2 * n_kv <= QP_PRE_HPW * QP_WARPS && qp_pre_on()) {
        qk_launch(norm ? k_qkv_post_pre<true> : k_qkv_post_pre<false>, dim3((unsigned)n_tokens), dim3(QP_WARPS * 32),
                  0, st, qkv, ld, src, ht, src_ld, n_q, n_kv, norm ? wq : nullptr, norm ? wqt : 0,
                  norm ? wk : nullptr, norm ? wkt : 0, eps, pos, inv_freq, attn_factor, kc, vc, slots, kv_dtype,
                  block_size, num_blocks);
        return qk_launch_result();
    }
    auto kern = src ? (norm ? k_qkv_post_tok<true, true> : k_qkv_post_tok<false, true>)
                    : (norm ? k_qkv_post_tok<true, false> : k_qkv_post_tok<false, false>);
    qk_launch(kern, dim3((unsigned)n_tokens), dim3(QP_WARPS * 32), sh, st, qkv, ld, src, ht, src_ld, n_q, n_kv, hd,
              norm ? wq : nullptr, norm ? wqt : 0, norm ? wk : nullptr, norm ? wkt : 0, eps, pos, inv_freq,
              attn_factor, kc, vc, slots, kv_dtype, block_size, num_blocks);
    return qk_launch_result();
}

extern "C" int cuda_launch_qkv_post16(qr_cuda_stream st, float *q, int ld, const void *qkvh, int ht, int src_ld,
                                      int n_tokens, int n_q, int n_kv, int hd, const void *wq, int wqt, const void *wk,
                                      int wkt, float eps, const int32_t *pos, const float *inv_freq, float attn_factor,
                                      void *k_cache, void *v_cache, const int32_t *slots, int kv_dtype, int block_size,
                                      int num_blocks)
{
    if (n_tokens <= 0)
        return 0;
    if (!qkvh || (ht != QK_BF16 && ht != QK_F16) || hd < 2 || (hd & 1) || hd > 1024 || n_q <= 0 || n_kv <= 0 ||
        block_size <= 0 || src_ld < (n_q + 2 * n_kv) * hd)
        return (int)cudaErrorInvalidValue;
    return qp_launch_tok(st, q, ld, (const uint16_t *)qkvh, ht, src_ld, n_tokens, n_q, n_kv, hd, wq, wqt, wk, wkt, eps,
                         pos, inv_freq, attn_factor, k_cache, v_cache, slots, kv_dtype, block_size, num_blocks);
}

extern "C" int cuda_launch_qkv_post(qr_cuda_stream st, float *qkv, int ld, int n_tokens, int n_q, int n_kv, int hd,
                                    const void *wq, int wqt, const void *wk, int wkt, float eps, const int32_t *pos,
                                    const float *inv_freq, float attn_factor, void *k_cache, void *v_cache,
                                    const int32_t *slots, int kv_dtype, int block_size, int num_blocks)
{
    if (n_tokens <= 0)
        return 0;
    if (hd < 2 || (hd & 1) || n_q <= 0 || n_kv <= 0 || block_size <= 0)
        return (int)cudaErrorInvalidValue;
    if (n_tokens >= QP_TOK_MIN && hd <= 1024)   /* prompt-sized: a block per token */
        return qp_launch_tok(st, qkv, ld, nullptr, 0, 0, n_tokens, n_q, n_kv, hd, wq, wqt, wk, wkt, eps, pos, inv_freq,
                             attn_factor, k_cache, v_cache, slots, kv_dtype, block_size, num_blocks);
    int64_t rows = (int64_t)n_tokens * (n_q + 2 * n_kv);
    unsigned grid = qk_blocks(rows, QP_WARPS);
    const int early = (qk_pdl_early_mode() & QK_EARLY_POST) != 0;
    if (wq && wk)
        qk_launch(k_qkv_post<true>, dim3(grid), dim3(QP_WARPS * 32), 0, st, qkv, ld, n_tokens, n_q, n_kv, hd, wq, wqt, wk, wkt, eps, pos,
                                                         inv_freq, attn_factor, k_cache, v_cache, slots, kv_dtype,
                                                         block_size, num_blocks, early);
    else
        qk_launch(k_qkv_post<false>, dim3(grid), dim3(QP_WARPS * 32), 0, st, qkv, ld, n_tokens, n_q, n_kv, hd, nullptr, 0, nullptr, 0, eps,
                                                          pos, inv_freq, attn_factor, k_cache, v_cache, slots,
                                                          kv_dtype, block_size, num_blocks, early);
    return qk_launch_result();
}
