/* gemv.cu - y[m] (+)= x[m] . W^T + bias for small M (decode), BF16/F16 weights.
 *
 * One warp per output row n, 8 rows per 256-thread block.  Each lane streams
 * 16-byte chunks of the weight row (8 elements) with an evict-first load,
 * eight chunks in flight before the FMAs, and reads the (few, L1-resident) x
 * rows as float4.  The M accumulators are reduced with warp shuffles.  Rows
 * of K not divisible by 8 or unaligned pointers take the scalar variant. */
#include "qr_cuda_common.cuh"

#include <stdlib.h>

int qk_pdl_on = 0;

#define GEMV_WARPS 8
#define GEMV_UNROLL 8

template <int WT, int MT, bool VEC>
__global__ void __launch_bounds__(GEMV_WARPS * 32)
    k_gemv(float *__restrict__ y, const float *__restrict__ x, const uint16_t *__restrict__ w,
           const void *__restrict__ bias, int btype, int M, int N, int K, int ldx, int ldy, int accumulate,
           const int32_t *__restrict__ rows, int64_t max_rows)
{
    qk_pdl_wait();
    qk_pdl_trigger();
    int n = blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (n >= N)
        return;
    const float *xr[MT];
#pragma unroll
    for (int m = 0; m < MT; m++) {
        int64_t r = m < M ? m : 0;
        if (rows) {
            r = rows[m < M ? m : 0];
            r = r < 0 ? 0 : r >= max_rows ? max_rows - 1 : r;
        }
        xr[m] = x + r * ldx;
    }
    float acc[MT];
#pragma unroll
    for (int m = 0; m < MT; m++)
        acc[m] = 0.0f;
    const uint16_t *wr = w + (int64_t)n * K;
    if (VEC) {
        const uint4 *w4 = (const uint4 *)wr;
        const int nk = K >> 3;
        int i = lane;
        /* 16-byte loads in flight per lane (16 for M = 1 measured slower on H100 than 8) */
        constexpr int U = GEMV_UNROLL;
        for (; i + (U - 1) * 32 < nk; i += U * 32) {
            uint4 wv[U];
#pragma unroll
            for (int u = 0; u < U; u++)
                wv[u] = __ldcs(w4 + i + u * 32);
#pragma unroll
            for (int u = 0; u < U; u++) {
                float wf[8];
                qk_unpack8<WT>(wv[u], wf);
#pragma unroll
                for (int m = 0; m < MT; m++) {
                    if (m < M) {
                        const float4 *x4 = (const float4 *)(xr[m]) + 2 * (i + u * 32);
                        float4 a = __ldg(x4), b = __ldg(x4 + 1);
                        acc[m] += wf[0] * a.x + wf[1] * a.y + wf[2] * a.z + wf[3] * a.w + wf[4] * b.x + wf[5] * b.y +
                                  wf[6] * b.z + wf[7] * b.w;
                    }
                }
            }
        }
        for (; i < nk; i += 32) {
            float wf[8];
            qk_unpack8<WT>(__ldcs(w4 + i), wf);
#pragma unroll
            for (int m = 0; m < MT; m++) {
                if (m < M) {
                    const float4 *x4 = (const float4 *)(xr[m]) + 2 * i;
                    float4 a = __ldg(x4), b = __ldg(x4 + 1);
                    acc[m] += wf[0] * a.x + wf[1] * a.y + wf[2] * a.z + wf[3] * a.w + wf[4] * b.x + wf[5] * b.y +
                              wf[6] * b.z + wf[7] * b.w;
                }
            }
        }
    } else {
        for (int k = lane; k < K; k += 32) {
            float wf = WT == QK_BF16 ? qk_bf16_f32(wr[k]) : qk_f16_f32(wr[k]);
#pragma unroll
            for (int m = 0; m < MT; m++)
                if (m < M)
                    acc[m] += wf * xr[m][k];
        }
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

/* The same product with every weight load of a round predicated, so the last
 * partial round is one batch of loads instead of a serial tail: K = 2560 is
 * one round of 10 loads per lane at U = 16 (the loop above: 8, then 2 more one
 * at a time), K = 9728 three rounds instead of 4 + 6.  R rows per warp. */
template <int WT, int MT, int U, int R>
__global__ void __launch_bounds__(GEMV_WARPS * 32)
    k_gemv_p(float *__restrict__ y, const float *__restrict__ x, const uint16_t *__restrict__ w,
             const void *__restrict__ bias, int btype, int M, int N, int K, int ldx, int ldy, int accumulate,
             const int32_t *__restrict__ rows, int64_t max_rows)
{
    qk_pdl_wait();
    qk_pdl_trigger();
    const int n0 = (blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5)) * R;
    const int lane = threadIdx.x & 31;
    if (n0 >= N)
        return;
    const float *xr[MT];
#pragma unroll
    for (int m = 0; m < MT; m++) {
        int64_t r = m < M ? m : 0;
        if (rows) {
            r = rows[m < M ? m : 0];
            r = r < 0 ? 0 : r >= max_rows ? max_rows - 1 : r;
        }
        xr[m] = x + r * ldx;
    }
    const uint4 *w4[R];
#pragma unroll
    for (int r = 0; r < R; r++)
        w4[r] = (const uint4 *)(w + (int64_t)(n0 + r < N ? n0 + r : N - 1) * K);
    float acc[R][MT];
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int m = 0; m < MT; m++)
            acc[r][m] = 0.0f;
    const int nk = K >> 3;
    for (int base = lane; base < nk; base += U * 32) {
        uint4 wv[R][U];
#pragma unroll
        for (int u = 0; u < U; u++)
#pragma unroll
            for (int r = 0; r < R; r++)
                wv[r][u] = base + u * 32 < nk ? __ldcs(w4[r] + base + u * 32) : make_uint4(0, 0, 0, 0);
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int c = base + u * 32;
            if (c < nk) {
#pragma unroll
                for (int m = 0; m < MT; m++) {
                    if (m < M) {
                        const float4 *x4 = (const float4 *)(xr[m]) + 2 * c;
                        const float4 a = __ldg(x4), b = __ldg(x4 + 1);
#pragma unroll
                        for (int r = 0; r < R; r++) {
                            float wf[8];
                            qk_unpack8<WT>(wv[r][u], wf);
                            acc[r][m] += wf[0] * a.x + wf[1] * a.y + wf[2] * a.z + wf[3] * a.w + wf[4] * b.x +
                                         wf[5] * b.y + wf[6] * b.z + wf[7] * b.w;
                        }
                    }
                }
            }
        }
    }
#pragma unroll
    for (int r = 0; r < R; r++) {
        const int n = n0 + r;
        float bv = bias && n < N ? qk_load(bias, btype, n) : 0.0f;
#pragma unroll
        for (int m = 0; m < MT; m++) {
            float v = qk_warp_sum(acc[r][m]);
            if (lane == 0 && m < M && n < N) {
                float *yp = y + (int64_t)m * ldy + n;
                v += bv;
                *yp = accumulate ? *yp + v : v;
            }
        }
    }
}

/* which vectorised kernel runs: 0 the loop above k_gemv_p, 1..4 k_gemv_p with (U, R) = (8,1) (16,1) (8,2) (4,4),
 * -1 (default) the fastest measured on the H100 for the shape (kernel lab, docs/PERF.md): (8,1) below 65536
 * rows (qkv 17.8 -> 13.6 us, o_proj 11.8 -> 10.7, gate_up 39.0 -> 37.1, down 22.6 -> 22.3 at M = 1), the
 * loop above for the LM head (262 us vs 282) */
int qk_gemv_variant = -1;

template <int WT, int MT>
static void gemv_go(qr_cuda_stream st, bool vec, float *y, const float *x, const void *w, const void *bias, int btype,
                    int M, int N, int K, int ldx, int ldy, int accumulate, const int32_t *rows, int64_t max_rows)
{
    unsigned grid = qk_blocks(N, GEMV_WARPS);
#define GEMV_P(U, R)                                                                                               \
    qk_launch(k_gemv_p<WT, MT, U, R>, dim3(qk_blocks(N, GEMV_WARPS * R)), dim3(GEMV_WARPS * 32), 0, st, y, x,       \
              (const uint16_t *)w, bias, btype, M, N, K, ldx, ldy, accumulate, rows, max_rows)
    const int variant = qk_gemv_variant >= 0 ? qk_gemv_variant : N < 65536 ? 1 : 0;
    if (vec && variant > 0) {
        switch (variant) {
        case 1: GEMV_P(8, 1); break;
        case 2: GEMV_P(16, 1); break;
        case 3: GEMV_P(8, 2); break;
        default: GEMV_P(4, 4); break;
        }
        return;
    }
#undef GEMV_P
    if (vec)
        qk_launch(k_gemv<WT, MT, true>, dim3(grid), dim3(GEMV_WARPS * 32), 0, st, y, x, (const uint16_t *)w, bias, btype, M, N, K, ldx,
                                                               ldy, accumulate, rows, max_rows);
    else
        qk_launch(k_gemv<WT, MT, false>, dim3(grid), dim3(GEMV_WARPS * 32), 0, st, y, x, (const uint16_t *)w, bias, btype, M, N, K, ldx,
                                                                ldy, accumulate, rows, max_rows);
}

template <int WT>
static void gemv_dispatch(qr_cuda_stream st, bool vec, float *y, const float *x, const void *w, const void *bias,
                          int btype, int M, int N, int K, int ldx, int ldy, int accumulate, const int32_t *rows,
                          int64_t max_rows)
{
    if (M <= 1)
        gemv_go<WT, 1>(st, vec, y, x, w, bias, btype, M, N, K, ldx, ldy, accumulate, rows, max_rows);
    else if (M <= 2)
        gemv_go<WT, 2>(st, vec, y, x, w, bias, btype, M, N, K, ldx, ldy, accumulate, rows, max_rows);
    else if (M <= 4)
        gemv_go<WT, 4>(st, vec, y, x, w, bias, btype, M, N, K, ldx, ldy, accumulate, rows, max_rows);
    else
        gemv_go<WT, 8>(st, vec, y, x, w, bias, btype, M, N, K, ldx, ldy, accumulate, rows, max_rows);
}

extern "C" int cuda_launch_gemv(qr_cuda_stream st, float *y, const float *x, const void *w, const void *bias,
                                int wtype, int btype, int M, int N, int K, int ldx, int ldy, int accumulate,
                                const int32_t *rows, int64_t max_rows)
{
    if (M <= 0 || N <= 0)
        return 0;
    if (M > QR_CUDA_GEMV_MAX_M || (wtype != QK_BF16 && wtype != QK_F16))
        return (int)cudaErrorInvalidValue;
    bool vec = K % 8 == 0 && ldx % 4 == 0 && ((uintptr_t)w & 15) == 0 && ((uintptr_t)x & 15) == 0;
    if (wtype == QK_BF16)
        gemv_dispatch<QK_BF16>(st, vec, y, x, w, bias, btype, M, N, K, ldx, ldy, accumulate, rows, max_rows);
    else
        gemv_dispatch<QK_F16>(st, vec, y, x, w, bias, btype, M, N, K, ldx, ldy, accumulate, rows, max_rows);
    return qk_launch_result();
}

/* PDL needs the griddepcontrol instructions in the code that actually runs: the kernels' PTX must be sm_90+ */
extern "C" int cuda_kernels_ptx_version(void)
{
    cudaFuncAttributes fa;
    if (cudaFuncGetAttributes(&fa, k_gemv<QK_BF16, 1, true>) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return fa.ptxVersion;
}

int qk_pdl_early_mode(void)
{
    static int mode = -1;
    if (mode < 0) {
        const char *e = getenv("QR_CUDA_PDL_EARLY");
        mode = e ? atoi(e) & 15 : QK_EARLY_MERGE | QK_EARLY_CHAIN;   /* measured best, dev_s37.sh */
    }
    return qk_pdl_on ? mode : 0;
}

/* process-wide: on only while every device opened so far asked for it */
extern "C" void cuda_kernels_set_pdl(int on)
{
    static int opened, wanting;
    opened++;
    wanting += on != 0;
    qk_pdl_on = opened == wanting;
}
