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

/* one block of 256 per token, as k_rmsnorm_block (n > 512); VEC: n % 4 == 0 and 16-byte aligned rows */
template <bool VEC>
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
    if constexpr (VEC) {   /* 4 elements per chunk: float4 x (and f32 out), 8-byte 16-bit stores; the same expression per element */
        for (int c = threadIdx.x; c < (n >> 2); c += blockDim.x) {
            float4 xv = ((const float4 *)xr)[c];
            float wv[4];
            if (wtype == QK_F32) {
                float4 w4 = ((const float4 *)w)[c];
                wv[0] = w4.x, wv[1] = w4.y, wv[2] = w4.z, wv[3] = w4.w;
            } else {
                uint2 w2 = ((const uint2 *)w)[c];
                const uint16_t h[4] = {(uint16_t)(w2.x & 0xffffu), (uint16_t)(w2.x >> 16), (uint16_t)(w2.y & 0xffffu),
                                       (uint16_t)(w2.y >> 16)};
#pragma unroll
                for (int j = 0; j < 4; j++)
                    wv[j] = wtype == QK_BF16 ? qk_bf16_f32(h[j]) : qk_f16_f32(h[j]);
            }
            float4 v = make_float4(wv[0] * (xv.x * inv), wv[1] * (xv.y * inv), wv[2] * (xv.z * inv),
                                   wv[3] * (xv.w * inv));
            if (o)
                ((float4 *)o)[c] = v;
            uint2 hv = make_uint2((uint32_t)pc_cvt(v.x, ht) | ((uint32_t)pc_cvt(v.y, ht) << 16),
                                  (uint32_t)pc_cvt(v.z, ht) | ((uint32_t)pc_cvt(v.w, ht) << 16));
            ((uint2 *)oh)[c] = hv;
        }
    } else {
        for (int i = threadIdx.x; i < n; i += blockDim.x) {
            float v = qk_load(w, wtype, i) * (xr[i] * inv);
            if (o)
                o[i] = v;
            oh[i] = pc_cvt(v, ht);
        }
    }
}

/* SwiGLU; gu holds f32 (GT = float) or the 16-bit type ht (GT = uint16_t: a 16-bit gate_up output) */
__device__ __forceinline__ float pc_in(float v, int) { return v; }
__device__ __forceinline__ float pc_in(uint16_t v, int ht) { return ht == QK_BF16 ? qk_bf16_f32(v) : qk_f16_f32(v); }

/* 8 elements per thread (VEC): 16-byte loads of gate and up (two per operand for f32), one 16-byte store of the
 * converted activation (two float4 for the f32 one); n_ff, ldgu % 8 == 0, ldout % 4 == 0, 16-byte aligned rows */
__device__ __forceinline__ void pc_in8(const float *p, int, float *f)
{
    float4 a = ((const float4 *)p)[0], b = ((const float4 *)p)[1];
    f[0] = a.x, f[1] = a.y, f[2] = a.z, f[3] = a.w, f[4] = b.x, f[5] = b.y, f[6] = b.z, f[7] = b.w;
}
__device__ __forceinline__ void pc_in8(const uint16_t *p, int ht, float *f)
{
    if (ht == QK_BF16)
        qk_unpack8<QK_BF16>(*(const uint4 *)p, f);
    else
        qk_unpack8<QK_F16>(*(const uint4 *)p, f);
}

template <typename GT, bool VEC>
__global__ void k_silu_cvt(float *out, uint16_t *outh, int ht, const GT *gu, int n_ff, int ldgu, int ldout)
{
    int t = blockIdx.y;
    const GT *g = gu + (int64_t)t * ldgu, *u = g + n_ff;
    float *o = out ? out + (int64_t)t * ldout : NULL;
    uint16_t *oh = outh + (int64_t)t * n_ff;
    if constexpr (VEC) {
        for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < (n_ff >> 3); c += gridDim.x * blockDim.x) {
            float gv[8], uv[8], v[8];
            pc_in8(g + 8 * c, ht, gv);
            pc_in8(u + 8 * c, ht, uv);
#pragma unroll
            for (int j = 0; j < 8; j++)
                v[j] = gv[j] / (1.0f + expf(-gv[j])) * uv[j];
            if (o) {
                ((float4 *)(o + 8 * c))[0] = make_float4(v[0], v[1], v[2], v[3]);
                ((float4 *)(o + 8 * c))[1] = make_float4(v[4], v[5], v[6], v[7]);
            }
            uint32_t hw[4];
#pragma unroll
            for (int j = 0; j < 4; j++)
                hw[j] = (uint32_t)pc_cvt(v[2 * j], ht) | ((uint32_t)pc_cvt(v[2 * j + 1], ht) << 16);
            *(uint4 *)(oh + 8 * c) = make_uint4(hw[0], hw[1], hw[2], hw[3]);
        }
    } else {
        for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n_ff; i += gridDim.x * blockDim.x) {
            float gv = pc_in(g[i], ht);
            float v = gv / (1.0f + expf(-gv)) * pc_in(u[i], ht);
            if (o)
                o[i] = v;
            oh[i] = pc_cvt(v, ht);
        }
    }
}

static bool al16(const void *p) { return ((uintptr_t)p & 15) == 0; }

template <typename GT>
static int silu_cvt(qr_cuda_stream st, float *out, void *outh, int ht, const GT *gu, int n_tokens, int n_ff, int ldgu,
                    int ldout, int vec)
{
    if (n_tokens <= 0 || n_ff <= 0)
        return 0;
    if (ht != QK_BF16 && ht != QK_F16)
        return (int)cudaErrorInvalidValue;
    if (vec && n_ff % 8 == 0 && ldgu % 8 == 0 && al16(gu) && al16(outh) && (!out || (ldout % 4 == 0 && al16(out)))) {
        unsigned gx = qk_blocks(n_ff / 8, 128);
        for (int t0 = 0; t0 < n_tokens; t0 += QK_MAX_GRID_Y) {
            int nt = n_tokens - t0 < QK_MAX_GRID_Y ? n_tokens - t0 : QK_MAX_GRID_Y;
            k_silu_cvt<GT, true><<<dim3(gx, (unsigned)nt), 128, 0, st>>>(
                out ? out + (int64_t)t0 * ldout : NULL, (uint16_t *)outh + (int64_t)t0 * n_ff, ht,
                gu + (int64_t)t0 * ldgu, n_ff, ldgu, ldout);
        }
        return qk_launch_result();
    }
    unsigned gx = qk_blocks(n_ff, 256);
    for (int t0 = 0; t0 < n_tokens; t0 += QK_MAX_GRID_Y) {
        int nt = n_tokens - t0 < QK_MAX_GRID_Y ? n_tokens - t0 : QK_MAX_GRID_Y;
        dim3 grid(gx < 64 ? gx : 64, (unsigned)nt);
        k_silu_cvt<GT, false><<<grid, 256, 0, st>>>(out ? out + (int64_t)t0 * ldout : NULL,
                                             (uint16_t *)outh + (int64_t)t0 * n_ff, ht, gu + (int64_t)t0 * ldgu, n_ff,
                                             ldgu, ldout);
    }
    return qk_launch_result();
}

extern "C" int cuda_launch_silu_cvt(qr_cuda_stream st, float *out, void *outh, int ht, const float *gu, int n_tokens,
                                    int n_ff, int ldgu, int ldout, int vec)
{
    return silu_cvt(st, out, outh, ht, gu, n_tokens, n_ff, ldgu, ldout, vec);
}

extern "C" int cuda_launch_silu16_cvt(qr_cuda_stream st, float *out, void *outh, int ht, const void *gh, int n_tokens,
                                      int n_ff, int ldgu, int ldout, int vec)
{
    return silu_cvt(st, out, outh, ht, (const uint16_t *)gh, n_tokens, n_ff, ldgu, ldout, vec);
}

extern "C" int cuda_launch_rmsnorm_cvt(qr_cuda_stream st, float *out, void *outh, int ht, const float *x,
                                       const void *w, int wtype, int n_tokens, int n, int ldx, int ldout, float eps,
                                       int vec)
{
    if (n_tokens <= 0 || n <= 0)
        return 0;
    if (n <= 512 || (ht != QK_BF16 && ht != QK_F16))
        return (int)cudaErrorInvalidValue;   /* the unfused op takes the warp kernel there */
    /* 16-byte rows: x, out (f32), w (f32: 16 bytes, 16-bit: 8 bytes per 4-element chunk); outh rows are n * 2 bytes */
    bool v = vec && n % 4 == 0 && ldx % 4 == 0 && al16(x) && (!out || (ldout % 4 == 0 && al16(out))) &&
             ((uintptr_t)outh & 7) == 0 && ((uintptr_t)w & (wtype == QK_F32 ? 15 : 7)) == 0;
    if (v)
        k_rmsnorm_cvt<true><<<(unsigned)n_tokens, 256, 0, st>>>(out, (uint16_t *)outh, ht, x, w, wtype, n, ldx, ldout,
                                                                eps);
    else
        k_rmsnorm_cvt<false><<<(unsigned)n_tokens, 256, 0, st>>>(out, (uint16_t *)outh, ht, x, w, wtype, n, ldx, ldout,
                                                                 eps);
    return qk_launch_result();
}
