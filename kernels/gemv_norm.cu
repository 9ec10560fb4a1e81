/* gemv_norm.cu - decode GEMV (one token) with the RMSNorm ahead of it folded
 * in, and optionally the SwiGLU after it (the fused CUDA path; see
 * backends/cuda/cuda_graph_fuse.c):
 *   y[n] = (sum_k W[n,k] * (g[k] * x[k])) * inv_rms(x) + b[n]
 * The norm's scale is a factor of the whole row, so it is applied once at the
 * end: no block-wide reduction and no shared-memory staging before the first
 * multiply-add, unlike gemv_fused.cu's XM_NORM mode.  Every lane adds x^2 over
 * the chunks it reads, and the chunks of a warp's lanes cover the row, so one
 * warp sum gives each warp sum(x^2) on its own.
 * GLU: the matmul is gate_up (2 * ff rows: gate then up); warp r computes rows
 * r and ff + r, stores both (the gate_up output, for any later reader) and
 * act[r] = silu(gate) * up with k_silu_mul's expression, so the down
 * projection reads act directly and no SwiGLU kernel runs.
 * The normalised row (g * (x * inv), the RMSNorm output) is stored by block 0
 * for any later reader of it.  Sums run in a different order than the unfused
 * RMSNorm + GEMV (the scale is applied after the sum): results agree to
 * rounding, not bit for bit.
 * Layout: one warp per output row (pair), 8 warps per block, rounds of 4
 * predicated 16-byte evict-first weight loads per lane per row; the first
 * round is issued before the PDL wait.  Needs K % 8 == 0 and 16-byte aligned
 * rows (cuda_gemv_norm_ok). */
#include "qr_cuda_common.cuh"
#include "qkv_head.cuh"

#define NX_WARPS 8
#define NX_U_ONE 4   /* loads per lane per round, one row */
#define NX_U_GLU 4   /* per row of the GLU pair */

__device__ __forceinline__ float nx_dot8(const float *wf, const float *v)
{
    return wf[0] * v[0] + wf[1] * v[1] + wf[2] * v[2] + wf[3] * v[3] + wf[4] * v[4] + wf[5] * v[5] + wf[6] * v[6] +
           wf[7] * v[7];
}

/* occupancy: the qkv shape (6144 rows, 768 blocks) fits the 132 SMs in one wave at 6 blocks per SM, i.e. at most
 * 40 registers (4 loads per round: no spills at 40, 8 spill); unbounded the compiler took 60 (4 blocks per SM, 1.45 waves: 21.0 us vs 14.9 for gemv.cu's kernel
 * under ncu on the H100).  The GLU pair (16 loads in flight per lane) is held to 4 blocks per SM (64 registers,
 * it took 100: 2 blocks per SM) with 4 loads per row per round. */
template <int WT, int NWT, bool GLU, bool POST = false>
__global__ void __launch_bounds__(NX_WARPS * 32, GLU ? 4 : 6)
    k_gemv_norm(float *__restrict__ y, const float *__restrict__ x, const uint16_t *__restrict__ w,
                const void *__restrict__ bias, int btype, int N, int K, int accumulate,
                const uint16_t *__restrict__ nw, float eps, float *__restrict__ side, float *__restrict__ act, int ff,
                const struct qr_cuda_qkv_post p)
{
    constexpr int R = GLU ? 2 : 1, NX_U = GLU ? NX_U_GLU : NX_U_ONE;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int r = blockIdx.x * NX_WARPS + warp;
    const int rows = GLU ? ff : N;
    const bool live = r < rows;
    const int nk = K >> 3;
    const uint4 *w4[R];
#pragma unroll
    for (int i = 0; i < R; i++)
        w4[i] = (const uint4 *)(w + (int64_t)(live ? r + i * ff : 0) * K);
    uint4 wv[R][NX_U];
#pragma unroll
    for (int u = 0; u < NX_U; u++)
#pragma unroll
        for (int i = 0; i < R; i++)
            wv[i][u] = live && lane + u * 32 < nk ? __ldcs(w4[i] + lane + u * 32) : make_uint4(0, 0, 0, 0);
    /* weights are constant: the first round streams while the kernel ahead finishes (PDL) */
    qk_pdl_wait();
    qk_pdl_trigger();
    float acc[R], ss = 0.0f;
#pragma unroll
    for (int i = 0; i < R; i++)
        acc[i] = 0.0f;
    const float4 *x4 = (const float4 *)x;
    const uint4 *g4 = (const uint4 *)nw;
    for (int base = lane;;) {
#pragma unroll
        for (int u = 0; u < NX_U; u++) {
            const int c = base + u * 32;
            if (c < nk) {
                const float4 a = __ldg(x4 + 2 * c), b = __ldg(x4 + 2 * c + 1);
                const float xv[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
                float g[8], xg[8];
                qk_unpack8<NWT>(__ldg(g4 + c), g);
#pragma unroll
                for (int e = 0; e < 8; e++) {
                    ss += xv[e] * xv[e];
                    xg[e] = g[e] * xv[e];
                }
#pragma unroll
                for (int i = 0; i < R; i++) {
                    float wf[8];
                    qk_unpack8<WT>(wv[i][u], wf);
                    acc[i] += nx_dot8(wf, xg);
                }
            }
        }
        base += NX_U * 32;
        if (base >= nk)
            break;
#pragma unroll
        for (int u = 0; u < NX_U; u++)
#pragma unroll
            for (int i = 0; i < R; i++)
                wv[i][u] = live && base + u * 32 < nk ? __ldcs(w4[i] + base + u * 32) : make_uint4(0, 0, 0, 0);
    }
    ss = qk_warp_sum(ss);
    const float inv = rsqrtf(ss / (float)K + eps);
#pragma unroll
    for (int i = 0; i < R; i++)
        acc[i] = qk_warp_sum(acc[i]);
    if (live && lane == 0) {
        float v[R];
#pragma unroll
        for (int i = 0; i < R; i++) {
            const int n = r + i * ff;
            v[i] = acc[i] * inv + (bias ? qk_load(bias, btype, n) : 0.0f);
            y[n] = accumulate ? y[n] + v[i] : v[i];
        }
        if (GLU) {
            const float gv = v[0];
            act[r] = gv / (1.0f + expf(-gv)) * v[R - 1];
        }
    }
    if (blockIdx.x == 0 && side) {   /* the RMSNorm output row, as the unfused kernel writes it */
        for (int c = threadIdx.x; c < nk; c += NX_WARPS * 32) {
            const float4 a = __ldg(x4 + 2 * c), b = __ldg(x4 + 2 * c + 1);
            float g[8];
            qk_unpack8<NWT>(__ldg(g4 + c), g);
            float4 *s4 = (float4 *)side + 2 * c;
            s4[0] = make_float4(g[0] * (a.x * inv), g[1] * (a.y * inv), g[2] * (a.z * inv), g[3] * (a.w * inv));
            s4[1] = make_float4(g[4] * (b.x * inv), g[5] * (b.y * inv), g[6] * (b.z * inv), g[7] * (b.w * inv));
        }
    }
    if (POST) {
        /* the qkv row's post (q/k norm, RoPE, K/V cache write) for head h, by the last of its hd / 8 blocks to
         * finish: each warp's row is fenced before the block counts itself in; the counter goes back to 0 for the
         * next launch */
        __shared__ int nx_last;
        if (live && lane == 0)
            __threadfence();
        __syncthreads();
        const int h = (int)(blockIdx.x * NX_WARPS) / p.hd;
        if (threadIdx.x == 0)
            nx_last = atomicAdd(p.cnt + h, 1) == p.hd / NX_WARPS - 1;
        __syncthreads();
        if (nx_last && warp == 0) {
            __threadfence();
            const int64_t slot = p.slots ? p.slots[0] : -1;
            const bool store = slot >= 0 && slot < (int64_t)p.num_blocks * p.block_size;
            const int64_t blk = store ? slot / p.block_size : 0, off = store ? slot % p.block_size : 0;
            const qp_rope_direct rope = {(float)p.pos[0], p.attn_factor, p.inv_freq};
            float *row = y + (int64_t)h * p.hd;
            if (p.wq)
                qp_head<true>(qp_src32cg{row}, row, h, lane, p.n_q, p.n_kv, p.hd, p.wq, p.wqt, p.wk, p.wkt, p.eps,
                              rope, p.k_cache, p.v_cache, store, blk, off, p.kv_dtype, p.block_size);
            else
                qp_head<false>(qp_src32cg{row}, row, h, lane, p.n_q, p.n_kv, p.hd, nullptr, 0, nullptr, 0, p.eps,
                               rope, p.k_cache, p.v_cache, store, blk, off, p.kv_dtype, p.block_size);
            if (lane == 0)
                p.cnt[h] = 0;
        }
    }
}

extern "C" int cuda_gemv_norm_ok(int wtype, int nwt, int K, const void *x, const void *w, const void *nw,
                                 const void *side)
{
    return (wtype == QK_BF16 || wtype == QK_F16) && (nwt == QK_BF16 || nwt == QK_F16) && K > 0 && K % 8 == 0 &&
           ((uintptr_t)x & 15) == 0 && ((uintptr_t)w & 15) == 0 && ((uintptr_t)nw & 15) == 0 &&
           ((uintptr_t)side & 15) == 0;
}

template <int WT, int NWT>
static void nx_go(qr_cuda_stream st, float *y, const float *x, const void *w, const void *bias, int btype, int N,
                  int K, int accumulate, const void *nw, float eps, float *side, float *act, int ff,
                  const struct qr_cuda_qkv_post *post)
{
    const uint16_t *wp = (const uint16_t *)w, *np = (const uint16_t *)nw;
    const struct qr_cuda_qkv_post none = {};
    if (act)
        qk_launch(k_gemv_norm<WT, NWT, true>, dim3(qk_blocks(ff, NX_WARPS)), dim3(NX_WARPS * 32), 0, st, y, x, wp,
                  bias, btype, N, K, accumulate, np, eps, side, act, ff, none);
    else if (post)
        qk_launch(k_gemv_norm<WT, NWT, false, true>, dim3(qk_blocks(N, NX_WARPS)), dim3(NX_WARPS * 32), 0, st, y, x,
                  wp, bias, btype, N, K, accumulate, np, eps, side, act, 0, *post);
    else
        qk_launch(k_gemv_norm<WT, NWT, false>, dim3(qk_blocks(N, NX_WARPS)), dim3(NX_WARPS * 32), 0, st, y, x, wp,
                  bias, btype, N, K, accumulate, np, eps, side, act, 0, none);
}

static int nx_launch(qr_cuda_stream st, float *y, const float *x, const void *w, const void *bias, int wtype,
                     int btype, int N, int K, int accumulate, const void *nw, int nwt, float eps, float *side,
                     float *act, int ff, const struct qr_cuda_qkv_post *post)
{
    if (N <= 0)
        return 0;
    if (!cuda_gemv_norm_ok(wtype, nwt, K, x, w, nw, side) || (act && (ff <= 0 || N != 2 * ff)))
        return (int)cudaErrorInvalidValue;
    if (wtype == QK_BF16)
        nwt == QK_BF16 ? nx_go<QK_BF16, QK_BF16>(st, y, x, w, bias, btype, N, K, accumulate, nw, eps, side, act, ff, post)
                       : nx_go<QK_BF16, QK_F16>(st, y, x, w, bias, btype, N, K, accumulate, nw, eps, side, act, ff, post);
    else
        nwt == QK_BF16 ? nx_go<QK_F16, QK_BF16>(st, y, x, w, bias, btype, N, K, accumulate, nw, eps, side, act, ff, post)
                       : nx_go<QK_F16, QK_F16>(st, y, x, w, bias, btype, N, K, accumulate, nw, eps, side, act, ff, post);
    return qk_launch_result();
}

extern "C" int cuda_launch_gemv_norm(qr_cuda_stream st, float *y, const float *x, const void *w, const void *bias,
                                     int wtype, int btype, int N, int K, int accumulate, const void *nw, int nwt,
                                     float eps, float *side, float *act, int ff)
{
    return nx_launch(st, y, x, w, bias, wtype, btype, N, K, accumulate, nw, nwt, eps, side, act, ff, NULL);
}

extern "C" int cuda_gemv_norm_qkv_ok(int N, const struct qr_cuda_qkv_post *p)
{
    return p && p->cnt && p->hd >= 2 && p->hd % 2 == 0 && p->hd % NX_WARPS == 0 && p->n_q > 0 && p->n_kv > 0 &&
           p->block_size > 0 && p->pos && p->inv_freq && N == (p->n_q + 2 * p->n_kv) * p->hd && (!p->wq == !p->wk);
}

extern "C" int cuda_launch_gemv_norm_qkv(qr_cuda_stream st, float *y, const float *x, const void *w, const void *bias,
                                         int wtype, int btype, int N, int K, const void *nw, int nwt, float eps,
                                         float *side, const struct qr_cuda_qkv_post *post)
{
    if (N <= 0)
        return 0;
    if (!cuda_gemv_norm_qkv_ok(N, post))
        return (int)cudaErrorInvalidValue;
    return nx_launch(st, y, x, w, bias, wtype, btype, N, K, 0, nw, nwt, eps, side, NULL, 0, post);
}
