/* qr_cuda_common.cuh - device helpers shared by the kernels: dtype loads and
 * stores, warp/block reductions. */
#ifndef QRUN_QR_CUDA_COMMON_CUH
#define QRUN_QR_CUDA_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "qr_kernels.h"

enum { QK_F32 = 0, QK_F16 = 1, QK_BF16 = 2, QK_F8 = 4 /* FP8 E4M3, KV caches only (qr_fp8.cuh) */ };

/* launchers with one block row per token split larger counts into several launches */
#define QK_MAX_GRID_Y 65535

__device__ __forceinline__ float qk_bf16_f32(uint16_t h) { return __uint_as_float((uint32_t)h << 16); }
__device__ __forceinline__ float qk_f16_f32(uint16_t h)
{
    __half x = __ushort_as_half(h);
    return __half2float(x);
}

/* element i of a row of dtype t as f32 */
__device__ __forceinline__ float qk_load(const void *p, int t, int64_t i)
{
    if (t == QK_BF16)
        return qk_bf16_f32(((const uint16_t *)p)[i]);
    if (t == QK_F16)
        return qk_f16_f32(((const uint16_t *)p)[i]);
    return ((const float *)p)[i];
}

/* f32 -> bf16 / f16 bits, round to nearest even (NaN stays NaN) */
__device__ __forceinline__ uint16_t qk_f32_bf16(float f)
{
    __nv_bfloat16 b = __float2bfloat16_rn(f);
    return *(uint16_t *)&b;
}
__device__ __forceinline__ uint16_t qk_f32_f16(float f) { return __half_as_ushort(__float2half_rn(f)); }

__device__ __forceinline__ float qk_warp_sum(float v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float qk_warp_max(float v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* sum over the block (blockDim.x a multiple of 32, <= 1024); every thread gets it */
__device__ __forceinline__ float qk_block_sum(float v, float *sh /* >= 32 floats */)
{
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = qk_warp_sum(v);
    __syncthreads();
    if (lane == 0)
        sh[w] = v;
    __syncthreads();
    float r = lane < nw ? sh[lane] : 0.0f;
    return qk_warp_sum(r);
}

/* sum of x[i]^2 over i < n by the whole block; float4 chunks c = threadIdx.x + j * blockDim.x where x is
 * 16-byte aligned and n % 4 == 0 (all loads of a thread issued together), else element-strided.  Every RMSNorm
 * kernel (plain, fused into the GEMV, writing the cuBLAS input) uses this, so they agree bit for bit. */
__device__ __forceinline__ float qk_block_sumsq(const float *__restrict__ x, int n, float *sh /* >= 32 floats */)
{
    float ss = 0.0f;
    if ((n & 3) == 0 && ((uintptr_t)x & 15) == 0) {
        const float4 *x4 = (const float4 *)x;
#pragma unroll 4
        for (int c = threadIdx.x; c < (n >> 2); c += blockDim.x) {
            float4 v = x4[c];
            ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
        }
    } else {
        for (int i = threadIdx.x; i < n; i += blockDim.x)
            ss += x[i] * x[i];
    }
    return qk_block_sum(ss, sh);
}

static inline int qk_launch_result(void) { return (int)cudaGetLastError(); }

/* A kernel's dynamic shared memory above 48 KiB, raised once per device: the attribute belongs to the current
 * device's context, so *done keeps a bit per device ordinal (ordinals of 64 and up set it at every launch).  The
 * call is idempotent, so two threads racing on a bit only repeat it. */
template <typename K>
static inline int qk_raise_smem(K kernel, size_t smem, unsigned long long *done)
{
    if (smem <= 48 * 1024)
        return 0;
    int dev = 0;
    cudaError_t e = cudaGetDevice(&dev);
    if (e != cudaSuccess)
        return (int)e;
    const unsigned long long bit = dev >= 0 && dev < 64 ? 1ull << dev : 0;
    if (bit && (__atomic_load_n(done, __ATOMIC_RELAXED) & bit))
        return 0;
    e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (e != cudaSuccess)
        return (int)e;
    if (bit)
        __atomic_fetch_or(done, bit, __ATOMIC_RELAXED);
    return 0;
}

/* ---- programmatic dependent launch (sm_90+, the experimental path) ----
 * A kernel launched with qk_launch() while PDL is on may start before the
 * kernel ahead of it in the stream has finished.  Such a kernel calls
 * qk_pdl_wait() before it reads anything an earlier kernel writes (it may
 * read weights before), and qk_pdl_trigger() to let the next one start.
 * Both are no-ops when the kernel was launched normally. */
__device__ __forceinline__ void qk_pdl_wait(void)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void qk_pdl_trigger(void)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

/* process-wide switch, set by the backend (cuda_kernels_set_pdl in qr_kernels.h) */
extern int qk_pdl_on;

/* Early starts along the decode chain q/k-norm -> attention -> merge -> o_proj (bits, QR_CUDA_PDL_EARLY, read by
 * qk_pdl_early_mode() in gemv.cu; 0 while PDL is off; default MERGE | CHAIN = 5: decode after 512 275.9 -> 280.4
 * tok/s, at 8192 233.7 -> 235.5, means of three alternating rounds on the H100, fourteenth session):
 *   QK_EARLY_MERGE: the split-KV merge lets its dependent (o_proj) start before it waits for the attention, so
 *                   o_proj's first weight round streams while the latency-bound attention runs;
 *   QK_EARLY_FULLROW: o_proj (the plain one-token GEMV, K <= 4096) loads its whole rows into registers before its
 *                   wait (16 loads per lane; the default first round is 8).  (A cp.async.bulk.prefetch.L2 of the rest
 *                   of the rows measured 2-4 % slower decode on the H100, fourteenth session: dropped);
 *   QK_EARLY_CHAIN: o_proj in turn lets the next GEMV (gate_up) start before it waits;
 *   QK_EARLY_POST: the one-token q/k-norm + RoPE + KV kernel lets the attention start before it waits (the
 *                   attention's blocks then issue their gathers of older keys during the qkv GEMV).
 * A kernel that triggers before its wait stays correct: a dependent's griddepcontrol.wait still returns only after
 * this grid has completed, and this grid completes only after the grid it waits on. */
enum { QK_EARLY_MERGE = 1, QK_EARLY_FULLROW = 2, QK_EARLY_CHAIN = 4, QK_EARLY_POST = 8 };
int qk_pdl_early_mode(void);

template <typename... KArgs, typename... Args>
static inline void qk_launch(void (*kern)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t st,
                             Args... args)
{
    if (!qk_pdl_on) {
        kern<<<grid, block, smem, st>>>(args...);
        return;
    }
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = st;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    (void)cudaLaunchKernelEx(&cfg, kern, ((KArgs)args)...);   /* errors: cudaGetLastError() in the launcher */
}

/* 8 consecutive 16-bit values (one 16-byte load) -> f32; T = QK_BF16 or QK_F16 */
template <int T>
__device__ __forceinline__ void qk_unpack8(const uint4 v, float *f)
{
    const uint32_t u[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int j = 0; j < 4; j++) {
        if (T == QK_BF16) {
            f[2 * j] = __uint_as_float(u[j] << 16);
            f[2 * j + 1] = __uint_as_float(u[j] & 0xffff0000u);
        } else {
            float2 t = __half22float2(*(const __half2 *)&u[j]);
            f[2 * j] = t.x;
            f[2 * j + 1] = t.y;
        }
    }
}

static inline unsigned qk_blocks(int64_t n, int per) { return (unsigned)((n + per - 1) / per); }

#endif
