/* prefill_fused.cu - the op before a prompt-sized matmul, writing the GEMM's
 * 16-bit input directly (the fused CUDA path, on by default; see
 * backends/cuda/cuda_graph_fuse.c).  Unfused, RMSNORM / SILU_MUL write an
 * f32 intermediate that the matmul then reads back once more to convert it
 * for cuBLAS; here one pass writes both the f32 intermediate (the graph's
 * buffer, for any later reader) and the converted rows.  Same expressions
 * and reduction order as k_rmsnorm_block, k_silu_mul and k_convert_rows.
 * out == NULL: the f32 intermediate is not written (no later node reads it,
 * see QR_BUF_TRANSIENT in qr_backend.h). */
#include "qr_cuda_common.cuh"

#include <math.h>

__device__ __forceinline__ uint16_t pc_cvt(float v, int ht) { return ht == QK_BF16 ? qk_f32_bf16(v) : qk_f32_f16(v); }

/* one block of 256 per token, as k_rmsnorm_block (n > 512) */
__global__ void k_rmsnorm_cvt(float *out, uint16_t *outh, int ht, const float *x, const void *w, int wtype, int n,
                              int ldx, int ldout, float eps)
{
    __shared__ float sh[32];
    int t = blockIdx.x;
    const float *xr = x + (int64_t)t * ldx;
    float *o = out ? out + (int64_t)t * ldout : NULL;
    uint16_t *oh = outh + (int64_t)t * n;
    float ss = qk_block_sumsq(xr, n, sh);
    float inv = rsqrtf(ss / (float)n + eps);
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        float v = qk_load(w, wtype, i) * (xr[i] * inv);
        if (o)
            o[i] = v;
        oh[i] = pc_cvt(v, ht);
    }
}

/* SwiGLU; gu holds f32 (GT = float) or the 16-bit type ht (GT = uint16_t: a 16-bit gate_up output) */
__device__ __forceinline__ float pc_in(float v, int) { return v; }
__device__ __forceinline__ float pc_in(uint16_t v, int ht) { return ht == QK_BF16 ? qk_bf16_f32(v) : qk_f16_f32(v); }

template <typename GT>
__global__ void k_silu_cvt(float *out, uint16_t *outh, int ht, const GT *gu, int n_ff, int ldgu, int ldout)
{
    int t = blockIdx.y;
    const GT *g = gu + (int64_t)t * ldgu, *u = g + n_ff;
    float *o = out ? out + (int64_t)t * ldout : NULL;
    uint16_t *oh = outh + (int64_t)t * n_ff;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n_ff; i += gridDim.x * blockDim.x) {
        float gv = pc_in(g[i], ht);
        float v = gv / (1.0f + expf(-gv)) * pc_in(u[i], ht);
        if (o)
            o[i] = v;
        oh[i] = pc_cvt(v, ht);
    }
}

template <typename GT>
static int silu_cvt(qr_cuda_stream st, float *out, void *outh, int ht, const GT *gu, int n_tokens, int n_ff, int ldgu,
                    int ldout)
{
    if (n_tokens <= 0 || n_ff <= 0)
        return 0;
    if (ht != QK_BF16 && ht != QK_F16)
        return (int)cudaErrorInvalidValue;
    unsigned gx = qk_blocks(n_ff, 256);
    for (int t0 = 0; t0 < n_tokens; t0 += QK_MAX_GRID_Y) {
        int nt = n_tokens - t0 < QK_MAX_GRID_Y ? n_tokens - t0 : QK_MAX_GRID_Y;
        dim3 grid(gx < 64 ? gx : 64, (unsigned)nt);
        k_silu_cvt<GT><<<grid, 256, 0, st>>>(out ? out + (int64_t)t0 * ldout : NULL,
                                             (uint16_t *)outh + (int64_t)t0 * n_ff, ht, gu + (int64_t)t0 * ldgu, n_ff,
                                             ldgu, ldout);
    }
    return qk_launch_result();
}

extern "C" int cuda_launch_silu_cvt(qr_cuda_stream st, float *out, void *outh, int ht, const float *gu, int n_tokens,
                                    int n_ff, int ldgu, int ldout)
{
    return silu_cvt(st, out, outh, ht, gu, n_tokens, n_ff, ldgu, ldout);
}

extern "C" int cuda_launch_silu16_cvt(qr_cuda_stream st, float *out, void *outh, int ht, const void *gh, int n_tokens,
                                      int n_ff, int ldgu, int ldout)
{
    return silu_cvt(st, out, outh, ht, (const uint16_t *)gh, n_tokens, n_ff, ldgu, ldout);
}

extern "C" int cuda_launch_rmsnorm_cvt(qr_cuda_stream st, float *out, void *outh, int ht, const float *x,
                                       const void *w, int wtype, int n_tokens, int n, int ldx, int ldout, float eps)
{
    if (n_tokens <= 0 || n <= 0)
        return 0;
    if (n <= 512 || (ht != QK_BF16 && ht != QK_F16))
        return (int)cudaErrorInvalidValue;   /* the unfused op takes the warp kernel there */
    k_rmsnorm_cvt<<<(unsigned)n_tokens, 256, 0, st>>>(out, (uint16_t *)outh, ht, x, w, wtype, n, ldx, ldout, eps);
    return qk_launch_result();
}
