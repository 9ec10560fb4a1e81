/* argmax.cu - each row's argmax (QR_OP_ARGMAX; semantics: backends/cpu/cpu_ref_ops.c): the lowest index on ties,
 * NaN never wins, a row of NaN alone gives 0.
 * Split form (the default for rows wider than one chunk; H100: 15 us against 76 for 151936; QR_CUDA_ARGMAX_SPLIT=0
 * turns it off): k_argmax_part,
 * one 256-thread block per 2048-element chunk with its eight loads a thread in flight at once, writes the chunk's
 * best (value, index; index -1 for a chunk of NaN) to scratch; k_argmax_merge, one warp a row, reduces those.
 * The one-block form (k_argmax, one 1024-thread block streaming the row; rows of one chunk, or the switch) keeps
 * few loads in flight: latency bound on a 151936-wide row. */
#include "qr_cuda_common.cuh"

#include <stdlib.h>

#define AM_THREADS 256
#define AM_E 8
#define AM_CHUNK (AM_THREADS * AM_E)

__device__ __forceinline__ bool qk_better(float v, int i, float bv, int bi)
{
    if (isnan(v) || i < 0)
        return false;
    if (bi < 0)
        return true;
    return v > bv || (v == bv && i < bi);
}

__device__ __forceinline__ void am_warp_reduce(float &bv, int &bi)
{
    for (int o = 16; o > 0; o >>= 1) {
        const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
        const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
        if (qk_better(ov, oi, bv, bi)) {
            bv = ov;
            bi = oi;
        }
    }
}

/* the block's best into (bv, bi) of thread 0 */
__device__ __forceinline__ void am_block_reduce(float &bv, int &bi)
{
    __shared__ float sv[32];
    __shared__ int si[32];
    am_warp_reduce(bv, bi);
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    if (lane == 0) {
        sv[w] = bv;
        si[w] = bi;
    }
    __syncthreads();
    if (w == 0) {
        const int nw = blockDim.x >> 5;
        bv = lane < nw ? sv[lane] : 0.0f;
        bi = lane < nw ? si[lane] : -1;
        am_warp_reduce(bv, bi);
    }
}

__global__ void k_argmax(int32_t *out, const float *x, int n)
{
    qk_pdl_wait();
    qk_pdl_trigger();
    const float *row = x + (int64_t)blockIdx.x * n;
    float bv = 0.0f;
    int bi = -1;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        const float v = row[i];
        if (qk_better(v, i, bv, bi)) {
            bv = v;
            bi = i;
        }
    }
    am_block_reduce(bv, bi);
    if (threadIdx.x == 0)
        out[blockIdx.x] = bi < 0 ? 0 : bi;
}

/* grid (chunks, rows): each chunk's best to pv / pi [row][chunk] */
__global__ void __launch_bounds__(AM_THREADS) k_argmax_part(float *pv, int32_t *pi, const float *x, int n)
{
    qk_pdl_wait();
    qk_pdl_trigger();
    const int c = blockIdx.x, r = blockIdx.y, tid = threadIdx.x;
    const int base = c * AM_CHUNK, len = min(AM_CHUNK, n - base);
    const float *row = x + (int64_t)r * n + base;
    float v[AM_E];
#pragma unroll
    for (int s = 0; s < AM_E; s++) {
        const int p = s * AM_THREADS + tid;
        v[s] = p < len ? row[p] : 0.0f;
    }
    float bv = 0.0f;
    int bi = -1;
#pragma unroll
    for (int s = 0; s < AM_E; s++) {
        const int p = s * AM_THREADS + tid;
        if (qk_better(v[s], p < len ? base + p : -1, bv, bi)) {
            bv = v[s];
            bi = base + p;
        }
    }
    am_block_reduce(bv, bi);
    if (tid == 0) {
        pv[(int64_t)r * gridDim.x + c] = bv;
        pi[(int64_t)r * gridDim.x + c] = bi;
    }
}

/* one warp a row over its nc chunk bests */
__global__ void __launch_bounds__(32) k_argmax_merge(int32_t *out, const float *pv, const int32_t *pi, int nc)
{
    qk_pdl_wait();
    qk_pdl_trigger();
    const int r = blockIdx.x;
    float bv = 0.0f;
    int bi = -1;
    for (int c = threadIdx.x; c < nc; c += 32) {
        const float v = pv[(int64_t)r * nc + c];
        const int i = pi[(int64_t)r * nc + c];
        if (qk_better(v, i, bv, bi)) {
            bv = v;
            bi = i;
        }
    }
    am_warp_reduce(bv, bi);
    if (threadIdx.x == 0)
        out[r] = bi < 0 ? 0 : bi;
}

/* chunks a row of the split form, 0 for the one-block form */
static int argmax_chunks(int n)
{
    static int split = -1;
    if (split < 0) {
        const char *e = getenv("QR_CUDA_ARGMAX_SPLIT");
        split = !(e && *e && atoi(e) == 0);   /* the default; QR_CUDA_ARGMAX_SPLIT=0: the one-block form */
    }
    const int nc = (n + AM_CHUNK - 1) / AM_CHUNK;
    return split && nc > 1 ? nc : 0;
}

extern "C" size_t cuda_argmax_scratch(int n_rows, int n)
{
    if (n_rows <= 0 || n <= 0)
        return 0;
    return (size_t)n_rows * (size_t)argmax_chunks(n) * 8;
}

extern "C" int cuda_launch_argmax(qr_cuda_stream st, int32_t *out, const float *x, int n_rows, int n, void *scratch)
{
    if (n_rows <= 0 || n <= 0)
        return 0;
    const int nc = argmax_chunks(n);
    if (nc == 0) {
        qk_launch(k_argmax, dim3((unsigned)n_rows), dim3(1024), 0, st, out, x, n);
        return qk_launch_result();
    }
    if (!scratch)
        return (int)cudaErrorInvalidValue;
    float *pv = (float *)scratch;
    int32_t *pi = (int32_t *)(pv + (size_t)n_rows * nc);
    qk_launch(k_argmax_part, dim3((unsigned)nc, (unsigned)n_rows), dim3(AM_THREADS), 0, st, pv, pi, x, n);
    const int e = qk_launch_result();
    if (e)
        return e;
    qk_launch(k_argmax_merge, dim3((unsigned)n_rows), dim3(32), 0, st, out, (const float *)pv, (const int32_t *)pi, nc);
    return qk_launch_result();
}
