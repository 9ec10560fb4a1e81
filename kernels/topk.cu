/* topk.cu - each row's k best for sampling on the device (QR_OP_TOPK; semantics: backends/cpu/cpu_ref_ops.c):
 * v = x * inv_t[row] (one f32 multiply, NaN as -inf), the k best by (v descending, index ascending), written in that
 * order.  One 1024-thread block per row:
 *   1. radix select: four passes of 8 bits over the row find the k-th best key T (keys order-preserving maps of v,
 *      -0 and +0 one key as the float compare has them equal), and how many rank above it (warp-aggregated
 *      shared-memory histograms: logits crowd into few bins);
 *   2. one pass in index order takes every key above T (any order) and the lowest-index ones equal to T (a block
 *      scan per 1024-element chunk), into shared memory;
 *   3. each candidate's place is the count of candidates ranking above it (k <= 256: at most 64K compares).
 * The row is read five times (from L2 right after the LM head wrote it); ~20 us for one 151936-wide row. */
#include "qr_cuda_common.cuh"

#include <stdlib.h>

#define TK_THREADS 1024
#define TK_MAX 256

__device__ __forceinline__ float tk_val(float x, float it) { return isnan(x) ? -INFINITY : __fmul_rn(x, it); }

/* larger v, larger key; -0 as +0 */
__device__ __forceinline__ unsigned tk_key(float v)
{
    unsigned b = __float_as_uint(v == 0.0f ? 0.0f : v);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

/* a ranks above b */
__device__ __forceinline__ bool tk_above(float va, int ia, float vb, int ib) { return va > vb || (va == vb && ia < ib); }

/* U: elements each thread loads before it uses them in the radix passes (U = 1 the measured default; U = 8 keeps
 * eight loads in flight, QR_CUDA_TOPK_U=8, not yet run on a GPU) */
template <int U>
__global__ void __launch_bounds__(TK_THREADS) k_topk(int32_t *ids, float *vals, const float *x, const float *inv_t,
                                                     int n, int k)
{
    qk_pdl_wait();
    qk_pdl_trigger();
    __shared__ unsigned hist[256];
    __shared__ unsigned s_prefix, s_need, s_gt;
    __shared__ float cv[TK_MAX];
    __shared__ int ci[TK_MAX];
    __shared__ unsigned s_ngt, s_base;
    __shared__ unsigned wsum[TK_THREADS / 32];
    const int r = blockIdx.x, tid = threadIdx.x, lane = tid & 31, w = tid >> 5;
    const float *row = x + (int64_t)r * n;
    const float it = inv_t[r];
    if (tid == 0) {
        s_prefix = 0;
        s_need = (unsigned)k;   /* how many of the keys matching the prefix are still to be taken */
        s_gt = 0;               /* keys above the prefix's range */
    }
    /* 1. radix select, most significant byte first */
    for (int pass = 0; pass < 4; pass++) {
        const int shift = 24 - 8 * pass;
        for (int i = tid; i < 256; i += TK_THREADS)
            hist[i] = 0;
        __syncthreads();
        const unsigned prefix = s_prefix;
        const unsigned pmask = pass == 0 ? 0u : 0xffffffffu << (32 - 8 * pass);
        if constexpr (U == 1) {
            for (int c0 = 0; c0 < n; c0 += TK_THREADS) {   /* whole warps: the lanes of one bin add once */
                const int i = c0 + tid;
                unsigned bin = 256;
                if (i < n) {
                    const unsigned key = tk_key(tk_val(row[i], it));
                    if ((key & pmask) == prefix)
                        bin = (key >> shift) & 255u;
                }
                const unsigned same = __match_any_sync(0xffffffffu, bin);
                if (bin < 256 && lane == __ffs(same) - 1)
                    atomicAdd(&hist[bin], (unsigned)__popc(same));
            }
        } else {
            for (int c0 = 0; c0 < n; c0 += TK_THREADS * U) {   /* U loads in flight, then U bins */
                float xv[U];
#pragma unroll
                for (int u = 0; u < U; u++) {
                    const int i = c0 + u * TK_THREADS + tid;
                    xv[u] = i < n ? row[i] : 0.0f;
                }
#pragma unroll
                for (int u = 0; u < U; u++) {
                    const int i = c0 + u * TK_THREADS + tid;
                    unsigned bin = 256;
                    if (i < n) {
                        const unsigned key = tk_key(tk_val(xv[u], it));
                        if ((key & pmask) == prefix)
                            bin = (key >> shift) & 255u;
                    }
                    const unsigned same = __match_any_sync(0xffffffffu, bin);
                    if (bin < 256 && lane == __ffs(same) - 1)
                        atomicAdd(&hist[bin], (unsigned)__popc(same));
                }
            }
        }
        __syncthreads();
        if (tid == 0) {
            unsigned need = s_need, cum = 0;
            int d = 255;
            for (; d > 0; d--) {   /* the digit where the count from the top reaches need */
                if (cum + hist[d] >= need)
                    break;
                cum += hist[d];
            }
            s_gt += cum;
            s_need = need - cum;
            s_prefix = prefix | ((unsigned)d << shift);
        }
        __syncthreads();
    }
    const unsigned T = s_prefix, need_eq = s_need;
    /* 2. the keys above T, and the first need_eq keys equal to T in index order */
    if (tid == 0) {
        s_ngt = 0;
        s_base = 0;
    }
    __syncthreads();
    const unsigned n_gt = s_gt;
    for (int c0 = 0; c0 < n; c0 += TK_THREADS) {
        const int i = c0 + tid;
        float v = 0.0f;
        unsigned key = 0;
        if (i < n) {
            v = tk_val(row[i], it);
            key = tk_key(v);
        }
        const bool gt = i < n && key > T, eq = i < n && key == T;
        if (gt) {
            unsigned p = atomicAdd(&s_ngt, 1u);
            cv[p] = v;
            ci[p] = i;
        }
        const unsigned bal = __ballot_sync(0xffffffffu, eq);
        if (lane == 0)
            wsum[w] = __popc(bal);
        __syncthreads();
        unsigned before = s_base;
        for (int j = 0; j < w; j++)
            before += wsum[j];
        before += __popc(bal & ((1u << lane) - 1u));
        if (eq && before < need_eq) {
            cv[n_gt + before] = v;
            ci[n_gt + before] = i;
        }
        __syncthreads();
        if (tid == 0) {
            unsigned tot = 0;
            for (int j = 0; j < TK_THREADS / 32; j++)
                tot += wsum[j];
            s_base += tot;
        }
        __syncthreads();
        if (s_base >= need_eq && s_ngt >= n_gt)
            break;   /* uniform: every thread read the same shared words after the barrier */
    }
    __syncthreads();
    /* 3. each candidate to its place */
    if (tid < k) {
        const float v = cv[tid];
        const int i = ci[tid];
        int place = 0;
        for (int j = 0; j < k; j++)
            place += tk_above(cv[j], ci[j], v, i);
        ids[(int64_t)r * k + place] = i;
        vals[(int64_t)r * k + place] = v;
    }
}

extern "C" int cuda_launch_topk(qr_cuda_stream st, int32_t *ids, float *vals, const float *x, const float *inv_t,
                                int n_rows, int n, int k)
{
    if (n_rows <= 0 || n <= 0 || k < 1 || k > TK_MAX || k > n)
        return n_rows <= 0 ? 0 : (int)cudaErrorInvalidValue;
    static int u8 = -1;
    if (u8 < 0) {
        const char *e = getenv("QR_CUDA_TOPK_U");
        u8 = e && atoi(e) == 8;
    }
    if (u8)
        qk_launch(k_topk<8>, dim3((unsigned)n_rows), dim3(TK_THREADS), 0, st, ids, vals, x, inv_t, n, k);
    else
        qk_launch(k_topk<1>, dim3((unsigned)n_rows), dim3(TK_THREADS), 0, st, ids, vals, x, inv_t, n, k);
    return qk_launch_result();
}
