/* elementwise.cu - embed, rmsnorm / qk_norm, rope, kv_store, silu_mul, add,
 * row conversion and bias add (argmax: argmax.cu).  Semantics: backends/cpu/cpu_ref_ops.c. */
#include "qr_cuda_common.cuh"
#include "qr_fp8.cuh"

#include <math.h>

/* ---- embed ---- */

__global__ void k_embed(float *out, const void *table, const int32_t *ids, int wtype, int n_tokens, int dim,
                        int vocab)
{
    qk_pdl_wait();
    qk_pdl_trigger();
    int t = blockIdx.y;
    int64_t id = ids[t];
    id = id < 0 ? 0 : id >= vocab ? vocab - 1 : id;
    const char *row = (const char *)table;
    size_t es = wtype == QK_F32 ? 4 : 2;
    row += (size_t)id * (size_t)dim * es;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < dim; i += gridDim.x * blockDim.x)
        out[(int64_t)t * dim + i] = qk_load(row, wtype, i);
}

extern "C" int cuda_launch_embed(qr_cuda_stream st, float *out, const void *table, const int32_t *ids, int wtype,
                                 int n_tokens, int dim, int vocab)
{
    if (n_tokens <= 0 || dim <= 0)
        return 0;
    for (int t0 = 0; t0 < n_tokens; t0 += QK_MAX_GRID_Y) {   /* grid.y is limited to 65535 */
        int nt = n_tokens - t0 < QK_MAX_GRID_Y ? n_tokens - t0 : QK_MAX_GRID_Y;
        dim3 grid(qk_blocks(dim, 256) < 64 ? qk_blocks(dim, 256) : 64, (unsigned)nt);
        qk_launch(k_embed, grid, dim3(256), 0, st, out + (int64_t)t0 * dim, table, ids + t0, wtype, nt, dim, vocab);
    }
    return qk_launch_result();
}

/* ---- rows -> bf16/f16 (GEMM input), optional row gather ---- */

__global__ void k_convert_rows(void *dst, int dtype, const float *x, int M, int K, int ldx, const int32_t *rows,
                               int64_t max_rows)
{
    int m = blockIdx.y;
    int64_t r = m;
    if (rows) {
        r = rows[m];
        r = r < 0 ? 0 : r >= max_rows ? max_rows - 1 : r;
    }
    const float *xr = x + r * ldx;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < K; i += gridDim.x * blockDim.x) {
        float v = xr[i];
        if (dtype == QK_BF16)
            ((uint16_t *)dst)[(int64_t)m * K + i] = qk_f32_bf16(v);
        else if (dtype == QK_F16)
            ((uint16_t *)dst)[(int64_t)m * K + i] = qk_f32_f16(v);
        else
            ((float *)dst)[(int64_t)m * K + i] = v;
    }
}

extern "C" int cuda_launch_convert_rows(qr_cuda_stream st, void *dst, int dtype, const float *x, int M, int K,
                                        int ldx, const int32_t *rows, int64_t max_rows)
{
    if (M <= 0 || K <= 0)
        return 0;
    unsigned gx = qk_blocks(K, 256);
    size_t es = dtype == QK_F32 ? 4 : 2;
    for (int m0 = 0; m0 < M; m0 += QK_MAX_GRID_Y) {
        int nm = M - m0 < QK_MAX_GRID_Y ? M - m0 : QK_MAX_GRID_Y;
        dim3 grid(gx < 32 ? gx : 32, (unsigned)nm);
        k_convert_rows<<<grid, 256, 0, st>>>((char *)dst + (size_t)m0 * K * es, dtype,
                                             rows ? x : x + (int64_t)m0 * ldx, nm, K, ldx, rows ? rows + m0 : NULL,
                                             max_rows);
    }
    return qk_launch_result();
}

/* the rows of the one-token sequences of a batch (q_start[s + 1] - q_start[s] == 1), f32 -> 16 bits, into dst at the
 * same row (rows of K); one block row per sequence, as k_convert_rows converts them */
__global__ void k_convert_single_rows(uint16_t *dst, int dtype, const float *x, int K, int ldx, const int32_t *q_start)
{
    const int s = blockIdx.y;
    const int32_t r = q_start[s];
    if (q_start[s + 1] - r != 1)
        return;
    const float *xr = x + (int64_t)r * ldx;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < K; i += gridDim.x * blockDim.x)
        dst[(int64_t)r * K + i] = dtype == QK_BF16 ? qk_f32_bf16(xr[i]) : qk_f32_f16(xr[i]);
}

extern "C" int cuda_launch_convert_single_rows(qr_cuda_stream st, void *dst, int dtype, const float *x, int K, int ldx,
                                               const int32_t *q_start, int n_seqs)
{
    if (n_seqs <= 0 || K <= 0)
        return 0;
    if (n_seqs > QK_MAX_GRID_Y || (dtype != QK_BF16 && dtype != QK_F16))
        return (int)cudaErrorInvalidValue;
    unsigned gx = qk_blocks(K, 256);
    k_convert_single_rows<<<dim3(gx < 32 ? gx : 32, (unsigned)n_seqs), 256, 0, st>>>((uint16_t *)dst, dtype, x, K,
                                                                                       ldx, q_start);
    return qk_launch_result();
}

__global__ void k_bias_add(float *y, const void *bias, int btype, int M, int N, int ldy)
{
    int m = blockIdx.y;
    for (int n = blockIdx.x * blockDim.x + threadIdx.x; n < N; n += gridDim.x * blockDim.x)
        y[(int64_t)m * ldy + n] += qk_load(bias, btype, n);
}

extern "C" int cuda_launch_bias_add(qr_cuda_stream st, float *y, const void *bias, int btype, int M, int N, int ldy)
{
    if (M <= 0 || N <= 0)
        return 0;
    unsigned gx = qk_blocks(N, 256);
    for (int m0 = 0; m0 < M; m0 += QK_MAX_GRID_Y) {
        int nm = M - m0 < QK_MAX_GRID_Y ? M - m0 : QK_MAX_GRID_Y;
        dim3 grid(gx < 64 ? gx : 64, (unsigned)nm);
        k_bias_add<<<grid, 256, 0, st>>>(y + (int64_t)m0 * ldy, bias, btype, nm, N, ldy);
    }
    return qk_launch_result();
}

/* ---- RMSNorm: one block per row (n_heads == 1) or one warp per (token, head) ---- */

__global__ void k_rmsnorm_block(float *out, const float *x, const void *w, int wtype, int n, int ldx, int ldout,
                                float eps)
{
    qk_pdl_wait();
    qk_pdl_trigger();
    __shared__ float sh[32];
    int t = blockIdx.x;
    const float *xr = x + (int64_t)t * ldx;
    float *o = out + (int64_t)t * ldout;
    float ss = qk_block_sumsq(xr, n, sh);
    float inv = rsqrtf(ss / (float)n + eps);
    if ((n & 3) == 0 && ((uintptr_t)xr & 15) == 0 && ((uintptr_t)o & 15) == 0) {
        const float4 *x4 = (const float4 *)xr;
#pragma unroll 4
        for (int c = threadIdx.x; c < (n >> 2); c += blockDim.x) {
            float4 v = x4[c];
            int i = 4 * c;
            ((float4 *)o)[c] = make_float4(qk_load(w, wtype, i) * (v.x * inv), qk_load(w, wtype, i + 1) * (v.y * inv),
                                           qk_load(w, wtype, i + 2) * (v.z * inv),
                                           qk_load(w, wtype, i + 3) * (v.w * inv));
        }
    } else {
        for (int i = threadIdx.x; i < n; i += blockDim.x)
            o[i] = qk_load(w, wtype, i) * (xr[i] * inv);
    }
}

__global__ void k_rmsnorm_warp(float *out, const float *x, const void *w, int wtype, int n_rows, int n_heads, int n,
                               int ldx, int ldout, float eps)
{
    qk_pdl_wait();
    qk_pdl_trigger();
    int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (row >= n_rows)
        return;
    int64_t t = row / n_heads, h = row % n_heads;
    const float *xr = x + t * ldx + h * n;
    float *o = out + t * ldout + h * n;
    float ss = 0.0f;
    for (int i = lane; i < n; i += 32)
        ss += xr[i] * xr[i];
    ss = qk_warp_sum(ss);
    float inv = rsqrtf(ss / (float)n + eps);
    for (int i = lane; i < n; i += 32)
        o[i] = qk_load(w, wtype, i) * (xr[i] * inv);
}

extern "C" int cuda_launch_rmsnorm(qr_cuda_stream st, float *out, const float *x, const void *w, int wtype,
                                   int n_tokens, int n_heads, int n, int ldx, int ldout, float eps)
{
    if (n_tokens <= 0 || n_heads <= 0 || n <= 0)
        return 0;
    if (n_heads == 1 && n > 512) {
        qk_launch(k_rmsnorm_block, dim3((unsigned)n_tokens), dim3(256), 0, st, out, x, w, wtype, n, ldx, ldout, eps);
    } else {
        int rows = n_tokens * n_heads;
        qk_launch(k_rmsnorm_warp, dim3(qk_blocks(rows, 8)), dim3(256), 0, st, out, x, w, wtype, rows, n_heads, n, ldx, ldout, eps);
    }
    return qk_launch_result();
}

/* ---- RoPE (NeoX), in place ---- */

__global__ void k_rope(float *x, const int32_t *pos, const float *inv_freq, int n_tokens, int n_heads, int head_dim,
                       int ld, float attn_factor)
{
    int half = head_dim / 2;
    int t = blockIdx.y;
    float p = (float)pos[t];
    for (int e = blockIdx.x * blockDim.x + threadIdx.x; e < n_heads * half; e += gridDim.x * blockDim.x) {
        int h = e / half, i = e % half;
        float ang = p * inv_freq[i];
        float sn, c;
        sincosf(ang, &sn, &c);
        c *= attn_factor;
        sn *= attn_factor;
        float *r = x + (int64_t)t * ld + (int64_t)h * head_dim;
        float x0 = r[i], x1 = r[i + half];
        r[i] = x0 * c - x1 * sn;
        r[i + half] = x1 * c + x0 * sn;
    }
}

extern "C" int cuda_launch_rope(qr_cuda_stream st, float *x, const int32_t *pos, const float *inv_freq, int n_tokens,
                                int n_heads, int head_dim, int ld, float attn_factor)
{
    if (n_tokens <= 0 || n_heads <= 0 || head_dim < 2)
        return 0;
    unsigned gx = qk_blocks((int64_t)n_heads * (head_dim / 2), 256);
    for (int t0 = 0; t0 < n_tokens; t0 += QK_MAX_GRID_Y) {
        int nt = n_tokens - t0 < QK_MAX_GRID_Y ? n_tokens - t0 : QK_MAX_GRID_Y;
        dim3 grid(gx < 16 ? gx : 16, (unsigned)nt);
        k_rope<<<grid, 256, 0, st>>>(x + (int64_t)t0 * ld, pos + t0, inv_freq, nt, n_heads, head_dim, ld,
                                     attn_factor);
    }
    return qk_launch_result();
}

/* ---- paged KV write ---- */

__global__ void k_kv_store(void *kc, void *vc, const float *k, const float *v, const int32_t *slots, int kv_dtype,
                           int n_kv_heads, int head_dim, int ld, int block_size, int num_blocks)
{
    int t = blockIdx.y;
    int64_t slot = slots[t];
    if (slot < 0 || slot >= (int64_t)num_blocks * block_size)
        return;
    int64_t blk = slot / block_size, off = slot % block_size;
    for (int e = blockIdx.x * blockDim.x + threadIdx.x; e < n_kv_heads * head_dim; e += gridDim.x * blockDim.x) {
        int h = e / head_dim, i = e % head_dim;
        int64_t dst = ((blk * n_kv_heads + h) * block_size + off) * head_dim + i;
        float kv = k[(int64_t)t * ld + e], vv = v[(int64_t)t * ld + e];
        (void)h;
        if (kv_dtype == QK_BF16) {
            ((uint16_t *)kc)[dst] = qk_f32_bf16(kv);
            ((uint16_t *)vc)[dst] = qk_f32_bf16(vv);
        } else if (kv_dtype == QK_F16) {
            ((uint16_t *)kc)[dst] = qk_f32_f16(kv);
            ((uint16_t *)vc)[dst] = qk_f32_f16(vv);
        } else if (kv_dtype == QK_F8) {   /* from the f32 value, as the CPU's qr_f32_to_f8e4m3 */
            ((uint8_t *)kc)[dst] = qk_f32_f8(kv);
            ((uint8_t *)vc)[dst] = qk_f32_f8(vv);
        } else {
            ((float *)kc)[dst] = kv;
            ((float *)vc)[dst] = vv;
        }
    }
}

extern "C" int cuda_launch_kv_store(qr_cuda_stream st, void *k_cache, void *v_cache, const float *k, const float *v,
                                    const int32_t *slots, int kv_dtype, int n_tokens, int n_kv_heads, int head_dim,
                                    int ld, int block_size, int num_blocks)
{
    if (n_tokens <= 0 || n_kv_heads <= 0 || head_dim <= 0 || block_size <= 0)
        return 0;
    unsigned gx = qk_blocks((int64_t)n_kv_heads * head_dim, 256);
    for (int t0 = 0; t0 < n_tokens; t0 += QK_MAX_GRID_Y) {
        int nt = n_tokens - t0 < QK_MAX_GRID_Y ? n_tokens - t0 : QK_MAX_GRID_Y;
        dim3 grid(gx < 16 ? gx : 16, (unsigned)nt);
        k_kv_store<<<grid, 256, 0, st>>>(k_cache, v_cache, k + (int64_t)t0 * ld, v + (int64_t)t0 * ld, slots + t0,
                                         kv_dtype, n_kv_heads, head_dim, ld, block_size, num_blocks);
    }
    return qk_launch_result();
}

/* ---- SwiGLU, add ---- */

__global__ void k_silu_mul(float *out, const float *gu, int n_ff, int ldgu, int ldout)
{
    int t = blockIdx.y;
    const float *g = gu + (int64_t)t * ldgu, *u = g + n_ff;
    float *o = out + (int64_t)t * ldout;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n_ff; i += gridDim.x * blockDim.x) {
        float gv = g[i];
        o[i] = gv / (1.0f + expf(-gv)) * u[i];
    }
}

extern "C" int cuda_launch_silu_mul(qr_cuda_stream st, float *out, const float *gu, int n_tokens, int n_ff, int ldgu,
                                    int ldout)
{
    if (n_tokens <= 0 || n_ff <= 0)
        return 0;
    unsigned gx = qk_blocks(n_ff, 256);
    for (int t0 = 0; t0 < n_tokens; t0 += QK_MAX_GRID_Y) {
        int nt = n_tokens - t0 < QK_MAX_GRID_Y ? n_tokens - t0 : QK_MAX_GRID_Y;
        dim3 grid(gx < 64 ? gx : 64, (unsigned)nt);
        k_silu_mul<<<grid, 256, 0, st>>>(out + (int64_t)t0 * ldout, gu + (int64_t)t0 * ldgu, n_ff, ldgu, ldout);
    }
    return qk_launch_result();
}

__global__ void k_add(float *y, const float *x, int64_t n)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        y[i] += x[i];
}

extern "C" int cuda_launch_add(qr_cuda_stream st, float *y, const float *x, int64_t n)
{
    if (n <= 0)
        return 0;
    unsigned g = qk_blocks(n, 256);
    k_add<<<g < 4096 ? g : 4096, 256, 0, st>>>(y, x, n);
    return qk_launch_result();
}

/* holds the stream for ns nanoseconds (profiling: lets the host queue a whole step
 * before the GPU starts, so the events between kernels time GPU work, not launches) */
__global__ void k_spin(unsigned long long ns)
{
    unsigned long long t0, t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
    do {
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    } while (t - t0 < ns);
}

extern "C" int cuda_launch_spin(qr_cuda_stream st, unsigned long long ns)
{
    k_spin<<<1, 1, 0, (cudaStream_t)st>>>(ns);
    return qk_launch_result();
}
