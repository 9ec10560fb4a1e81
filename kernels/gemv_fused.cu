/* gemv_fused.cu - decode GEMVs with the op before them folded in
 * (the fused CUDA path, on by default; see backends/cuda/cuda_graph_fuse.c).
 *
 *   XM_PLAIN: y = x . W^T (the plain decode matmul, with the first weight
 *            loads issued before the PDL wait);
 *   XM_SILU: y = (silu(g) * u) . W^T   where the input row is [g | u]
 *            (SILU_MUL + the down_proj MATMUL);
 *   XM_NORM: y = (w_n * (x * inv_rms(x))) . W^T
 *            (RMSNORM + the MATMUL that reads it).
 * The transformed input is computed once per block into shared memory,
 * with the same expressions as the unfused kernels (k_silu_mul;
 * k_rmsnorm_block through qk_block_sumsq), so the results match the unfused
 * pair bit for bit.  Block 0 also stores the transformed rows, so later
 * readers of the intermediate buffer (the runtime's graph contract) still
 * find them.  Layout as gemv.cu's k_gemv_p: one warp per output row, 8 rows
 * per 256-thread block (4 per 128 for the plain one-token GEMV of few rows,
 * see fx_plain_warps), rounds of 8 predicated 16-byte evict-first weight
 * loads per lane, the first round issued before the PDL wait.  Only the
 * vectorised case (K % 8 == 0, 16-byte aligned rows, M * K floats within 48
 * KiB of shared memory) is handled; the host falls back to the unfused ops
 * otherwise. */
#include "qr_cuda_common.cuh"

#include <stdlib.h>
#include <string.h>

#define FX_WARPS 8
#define FX_UNROLL 8
#define FX_MAXM 8
#define FX_MAX_SMEM (48 * 1024)

enum { XM_PLAIN = 0, XM_SILU = 1, XM_NORM = 2 };

__device__ __forceinline__ float fx_silu_mul(float g, float u) { return g / (1.0f + expf(-g)) * u; }

/* the 8 transformed inputs of chunk c (elements 8c .. 8c+7) of one row */
template <int XM, int NWT>
__device__ __forceinline__ void fx_x8(const float *xr, int c, int K, const uint16_t *nw, float inv, float *o)
{
    const float4 *x4 = (const float4 *)xr + 2 * c;
    float4 a = __ldg(x4), b = __ldg(x4 + 1);
    float x[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
    if (XM == XM_PLAIN) {
#pragma unroll
        for (int i = 0; i < 8; i++)
            o[i] = x[i];
    } else if (XM == XM_SILU) {
        const float4 *u4 = (const float4 *)(xr + K) + 2 * c;
        float4 ua = __ldg(u4), ub = __ldg(u4 + 1);
        float u[8] = {ua.x, ua.y, ua.z, ua.w, ub.x, ub.y, ub.z, ub.w};
#pragma unroll
        for (int i = 0; i < 8; i++)
            o[i] = fx_silu_mul(x[i], u[i]);
    } else {
        float g[8];
        qk_unpack8<NWT>(__ldg((const uint4 *)nw + c), g);
#pragma unroll
        for (int i = 0; i < 8; i++)
            o[i] = g[i] * (x[i] * inv);
    }
}

template <int WT, int MT, int XM, int NWT, int NW, int U = FX_UNROLL>
__global__ void __launch_bounds__(NW * 32)
    k_gemv_fx(float *__restrict__ y, const float *__restrict__ x, const uint16_t *__restrict__ w,
              const void *__restrict__ bias, int btype, int M, int N, int K, int ldx, int ldy, int accumulate,
              const uint16_t *__restrict__ nw, float eps, float *__restrict__ side, int ld_side, int early)
{
    extern __shared__ float4 fx_smem[];   /* XM != XM_PLAIN: the M transformed input rows, K floats each */
    float *xs = (float *)fx_smem;
    __shared__ float sh[32];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int n = blockIdx.x * NW + warp;
    const int nk = K >> 3;
    const uint4 *w4 = (const uint4 *)(w + (int64_t)(n < N ? n : 0) * K);
    /* the first round of weight loads (all predicated, so a short last round is one batch, not a serial tail)
     * goes out before the PDL wait: weights are constant and may stream while the kernel ahead finishes */
    uint4 wv[U];
#pragma unroll
    for (int u = 0; u < U; u++)
        wv[u] = n < N && lane + u * 32 < nk ? __ldcs(w4 + lane + u * 32) : make_uint4(0, 0, 0, 0);
    if (XM == XM_PLAIN && (early & QK_EARLY_CHAIN)) {
        qk_pdl_trigger();
        qk_pdl_wait();
    } else {
        qk_pdl_wait();
        qk_pdl_trigger();
    }
    if (XM != XM_PLAIN) {
        /* the transformed rows, once per block into shared memory (the SwiGLU's expf and the norm's reduction
         * are not repeated per output row); block 0 also stores them for any later reader of the intermediate */
        for (int m = 0; m < M && m < MT; m++) {
            const float *xr = x + (int64_t)m * ldx;
            float inv = 1.0f;
            if (XM == XM_NORM)
                inv = rsqrtf(qk_block_sumsq(xr, K, sh) / (float)K + eps);
            for (int c = threadIdx.x; c < nk; c += NW * 32) {
                float o[8];
                fx_x8<XM, NWT>(xr, c, K, nw, inv, o);
                float4 *d4 = (float4 *)(xs + (int64_t)m * K) + 2 * c;
                d4[0] = make_float4(o[0], o[1], o[2], o[3]);
                d4[1] = make_float4(o[4], o[5], o[6], o[7]);
                if (blockIdx.x == 0 && side) {
                    float4 *s4 = (float4 *)(side + (int64_t)m * ld_side) + 2 * c;
                    s4[0] = d4[0];
                    s4[1] = d4[1];
                }
            }
        }
        __syncthreads();
    }
    if (n >= N)
        return;
    float acc[MT];
#pragma unroll
    for (int m = 0; m < MT; m++)
        acc[m] = 0.0f;
    for (int base = lane;;) {
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int c = base + u * 32;
            if (c < nk) {
                float wf[8];
                qk_unpack8<WT>(wv[u], wf);
#pragma unroll
                for (int m = 0; m < MT; m++) {
                    if (m < M) {
                        float4 a, b;
                        if (XM == XM_PLAIN) {
                            const float4 *x4 = (const float4 *)(x + (int64_t)m * ldx) + 2 * c;
                            a = __ldg(x4);
                            b = __ldg(x4 + 1);
                        } else {
                            const float4 *x4 = (const float4 *)(xs + (int64_t)m * K) + 2 * c;
                            a = x4[0];
                            b = x4[1];
                        }
                        acc[m] += wf[0] * a.x + wf[1] * a.y + wf[2] * a.z + wf[3] * a.w + wf[4] * b.x +
                                  wf[5] * b.y + wf[6] * b.z + wf[7] * b.w;
                    }
                }
            }
        }
        base += U * 32;
        if (base >= nk)
            break;
#pragma unroll
        for (int u = 0; u < U; u++)
            wv[u] = base + u * 32 < nk ? __ldcs(w4 + base + u * 32) : make_uint4(0, 0, 0, 0);
    }
    float b = bias ? qk_load(bias, btype, n) : 0.0f;
#pragma unroll
    for (int m = 0; m < MT; m++) {
        float v = qk_warp_sum(acc[m]);
        if (lane == 0 && m < M) {
            float *yp = y + (int64_t)m * ldy + n;
            v += b;
            *yp = accumulate ? *yp + v : v;
        }
    }
}

/* The plain one-token GEMV with KS warps per output row (NW / KS rows per block; QR_CUDA_GEMV_KS): warp part p of a
 * row reads its 512-byte spans p, p + KS, p + 2 KS, ... (the KS warps stream adjacent spans together), so a long row
 * (down_proj: K = 9728, 1216 16-byte chunks) is one round of U predicated loads per lane at KS = 8 instead of five,
 * all of it issued before the PDL wait.  The KS partial sums meet in shared memory and the row's first warp adds
 * them in part order (a different summation order from k_gemv_fx's). */
template <int WT, int NW, int KS, int U>
__global__ void __launch_bounds__(NW * 32)
    k_gemv_ks(float *__restrict__ y, const float *__restrict__ x, const uint16_t *__restrict__ w,
              const void *__restrict__ bias, int btype, int N, int K, int accumulate, int early)
{
    __shared__ float part[NW];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, p = warp % KS;
    const int n = blockIdx.x * (NW / KS) + warp / KS;
    const int nk = K >> 3, stride = 32 * KS;
    const uint4 *w4 = (const uint4 *)(w + (int64_t)(n < N ? n : 0) * K);
    int base = p * 32 + lane;
    uint4 wv[U];
#pragma unroll
    for (int u = 0; u < U; u++) {
        const int c = base + u * stride;
        wv[u] = n < N && c < nk ? __ldcs(w4 + c) : make_uint4(0, 0, 0, 0);
    }
    if (early & QK_EARLY_CHAIN) {
        qk_pdl_trigger();
        qk_pdl_wait();
    } else {
        qk_pdl_wait();
        qk_pdl_trigger();
    }
    float acc = 0.0f;
    while (base < nk) {
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int c = base + u * stride;
            if (c < nk) {
                float wf[8];
                qk_unpack8<WT>(wv[u], wf);
                const float4 *x4 = (const float4 *)x + 2 * c;
                const float4 a = __ldg(x4), b = __ldg(x4 + 1);
                acc += wf[0] * a.x + wf[1] * a.y + wf[2] * a.z + wf[3] * a.w + wf[4] * b.x + wf[5] * b.y +
                       wf[6] * b.z + wf[7] * b.w;
            }
        }
        base += U * stride;
        if (base >= nk)
            break;
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int c = base + u * stride;
            wv[u] = n < N && c < nk ? __ldcs(w4 + c) : make_uint4(0, 0, 0, 0);
        }
    }
    const float v = qk_warp_sum(acc);
    if (lane == 0)
        part[warp] = v;
    __syncthreads();
    if (p == 0 && lane == 0 && n < N) {
        float t = part[warp];
#pragma unroll
        for (int q = 1; q < KS; q++)
            t += part[warp + q];
        t += bias ? qk_load(bias, btype, n) : 0.0f;
        float *yp = y + n;
        *yp = accumulate ? *yp + t : t;
    }
}

/* would N output rows at 8 per block leave fewer than 4 blocks per SM (the SM count read once)? */
static bool fx_few_blocks(int N)
{
    static int n_sm = -1;
    if (n_sm < 0) {
        int dev = 0, v = 0;
        if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev))
            v = 0;
        (void)cudaGetLastError();
        n_sm = v;
    }
    return n_sm > 0 && qk_blocks(N, FX_WARPS) < 4u * (unsigned)n_sm;
}

/* warps per output row of the plain one-token GEMV (k_gemv_ks): QR_CUDA_GEMV_KS=2|4|8 for every such GEMV,
 * =auto for the long rows (K > 4096) of GEMVs of few blocks (N / 8 < 4 blocks per SM: down_proj of Qwen3-4B);
 * 1 (k_gemv_fx) by default */
static int fx_ksplit(int N, int K)
{
    static int mode = -2;
    if (mode == -2) {
        const char *e = getenv("QR_CUDA_GEMV_KS");
        int v = e && strcmp(e, "auto") == 0 ? -1 : e ? atoi(e) : 0;
        mode = v == -1 || v == 2 || v == 4 || v == 8 ? v : 0;
    }
    if (mode > 0)
        return mode;
    return mode == -1 && K > 4096 && fx_few_blocks(N) ? 8 : 1;
}

/* warps (output rows) per block of the plain one-token GEMV: where N / 8 blocks would leave the SMs unevenly loaded
 * (N = 2560: 320 blocks, 2 or 3 per SM), 4-warp blocks (640: 4 or 5).  QR_CUDA_GEMV_NW=8 / 4 / 2 forces one. */
static int fx_plain_warps(int N)
{
    static int forced = -1;
    if (forced < 0) {
        const char *e = getenv("QR_CUDA_GEMV_NW");
        int v = e ? atoi(e) : 0;
        forced = v == 2 || v == 4 || v == 8 ? v : 0;
    }
    if (forced)
        return forced;
    return fx_few_blocks(N) ? 4 : FX_WARPS;
}

template <int WT, int XM, int NWT>
static void fx_go(qr_cuda_stream st, float *y, const float *x, const void *w, const void *bias, int btype, int M,
                  int N, int K, int ldx, int ldy, int accumulate, const void *nw, float eps, float *side, int ld_side)
{
    const uint16_t *wp = (const uint16_t *)w, *np = (const uint16_t *)nw;
    const size_t smem = XM == XM_PLAIN ? 0 : (size_t)M * (size_t)K * sizeof(float);
    const int early = XM == XM_PLAIN ? qk_pdl_early_mode() : 0;
#define FX_L(MT, NW)                                                                                               \
    qk_launch(k_gemv_fx<WT, MT, XM, NWT, NW>, dim3(qk_blocks(N, NW)), dim3(NW * 32), smem, st, y, x, wp, bias, btype, \
              M, N, K, ldx, ldy, accumulate, np, eps, side, ld_side, early)
    const int nw1 = XM == XM_PLAIN && M == 1 ? fx_plain_warps(N) : FX_WARPS;
    const int ks = XM == XM_PLAIN && M == 1 ? fx_ksplit(N, K) : 1;
    if (ks > 1) {
#define KS_L(KS, U)                                                                                                \
    qk_launch(k_gemv_ks<WT, 8, KS, U>, dim3(qk_blocks(N, 8 / KS)), dim3(8 * 32), 0, st, y, x, wp, bias, btype, N, K, \
              accumulate, early)
        if (ks == 2)
            KS_L(2, 8);
        else if (ks == 4)
            KS_L(4, 8);
        else
            KS_L(8, 8);
#undef KS_L
    } else if (M <= 1) {
        if (XM == XM_PLAIN && (early & QK_EARLY_FULLROW) && K <= 16 * 32 * 8 && nw1 == 4)
            qk_launch(k_gemv_fx<WT, 1, XM, NWT, 4, 16>, dim3(qk_blocks(N, 4)), dim3(4 * 32), smem, st, y, x, wp, bias,
                      btype, M, N, K, ldx, ldy, accumulate, np, eps, side, ld_side, early);
        else if (nw1 == 2)
            FX_L(1, 2);
        else if (nw1 == 4)
            FX_L(1, 4);
        else
            FX_L(1, FX_WARPS);
    } else if (M <= 2)
        FX_L(2, FX_WARPS);
    else if (M <= 4)
        FX_L(4, FX_WARPS);
    else
        FX_L(8, FX_WARPS);
#undef FX_L
}

/* xmode 1 = SwiGLU input (x rows hold [gate | up], each K long), 2 = RMSNorm input (norm weight nw of dtype nwt).
 * side (may be NULL): where block 0 stores the transformed rows (ld_side). */
extern "C" int cuda_gemv_fused_ok(int wtype, int M, int K, int ldx, const void *x, const void *w, int xmode, int nwt,
                                  const void *nw, int ld_side, const void *side)
{
    bool ok = (wtype == QK_BF16 || wtype == QK_F16) && M >= 1 && M <= FX_MAXM && K > 0 && K % 8 == 0 &&
              ldx % 4 == 0 && ((uintptr_t)x & 15) == 0 && ((uintptr_t)w & 15) == 0 &&
              (!side || (ld_side % 4 == 0 && ((uintptr_t)side & 15) == 0));
    if (xmode != XM_PLAIN)   /* the transformed rows live in shared memory (no opt-in above 48 KiB) */
        ok = ok && (size_t)M * (size_t)K * sizeof(float) <= FX_MAX_SMEM;
    if (xmode == XM_NORM)
        ok = ok && (nwt == QK_BF16 || nwt == QK_F16) && ((uintptr_t)nw & 15) == 0;
    else
        ok = ok && (xmode == XM_SILU || (xmode == XM_PLAIN && !side));
    return ok;
}

extern "C" int cuda_launch_gemv_fused(qr_cuda_stream st, int xmode, float *y, const float *x, const void *w,
                                      const void *bias, int wtype, int btype, int M, int N, int K, int ldx, int ldy,
                                      int accumulate, const void *nw, int nwt, float eps, float *side, int ld_side)
{
    if (M <= 0 || N <= 0)
        return 0;
    if (!cuda_gemv_fused_ok(wtype, M, K, ldx, x, w, xmode, nwt, nw, ld_side, side))
        return (int)cudaErrorInvalidValue;
    if (xmode == XM_PLAIN) {
        if (wtype == QK_BF16)
            fx_go<QK_BF16, XM_PLAIN, QK_BF16>(st, y, x, w, bias, btype, M, N, K, ldx, ldy, accumulate, nw, eps, NULL,
                                             0);
        else
            fx_go<QK_F16, XM_PLAIN, QK_BF16>(st, y, x, w, bias, btype, M, N, K, ldx, ldy, accumulate, nw, eps, NULL,
                                            0);
    } else if (xmode == XM_SILU) {
        if (wtype == QK_BF16)
            fx_go<QK_BF16, XM_SILU, QK_BF16>(st, y, x, w, bias, btype, M, N, K, ldx, ldy, accumulate, nw, eps, side,
                                            ld_side);
        else
            fx_go<QK_F16, XM_SILU, QK_BF16>(st, y, x, w, bias, btype, M, N, K, ldx, ldy, accumulate, nw, eps, side,
                                           ld_side);
    } else if (wtype == QK_BF16) {
        if (nwt == QK_BF16)
            fx_go<QK_BF16, XM_NORM, QK_BF16>(st, y, x, w, bias, btype, M, N, K, ldx, ldy, accumulate, nw, eps, side,
                                            ld_side);
        else
            fx_go<QK_BF16, XM_NORM, QK_F16>(st, y, x, w, bias, btype, M, N, K, ldx, ldy, accumulate, nw, eps, side,
                                           ld_side);
    } else {
        if (nwt == QK_BF16)
            fx_go<QK_F16, XM_NORM, QK_BF16>(st, y, x, w, bias, btype, M, N, K, ldx, ldy, accumulate, nw, eps, side,
                                           ld_side);
        else
            fx_go<QK_F16, XM_NORM, QK_F16>(st, y, x, w, bias, btype, M, N, K, ldx, ldy, accumulate, nw, eps, side,
                                          ld_side);
    }
    return qk_launch_result();
}
