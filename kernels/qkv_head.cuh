/* qkv_head.cuh - one head of the qkv row between the qkv projection and the attention, for one warp: [per-head
 * RMSNorm,] NeoX RoPE, the K/V cache write (k_rmsnorm_warp, k_rope and k_kv_store expression for expression).
 * Shared by qkv_post.cu (a kernel of its own) and gemv_norm.cu (folded into the decode qkv GEMV's last block of
 * each head). */
#pragma once
#include "qr_cuda_common.cuh"
#include "qr_fp8.cuh"

__device__ __forceinline__ void qp_put(void *cache, int kv_dtype, int64_t i, float v)
{
    if (kv_dtype == QK_BF16)
        ((uint16_t *)cache)[i] = qk_f32_bf16(v);
    else if (kv_dtype == QK_F16)
        ((uint16_t *)cache)[i] = qk_f32_f16(v);
    else if (kv_dtype == QK_F8)
        ((uint8_t *)cache)[i] = qk_f32_f8(v);
    else
        ((float *)cache)[i] = v;
}

/* RoPE factors of pair i (cos, sin, each times attn_factor), computed where they are used */
struct qp_rope_direct {
    float p, attn_factor;
    const float *inv_freq;
    __device__ __forceinline__ void operator()(int i, float &c, float &sn) const
    {
        float ang = p * inv_freq[i];
        sincosf(ang, &sn, &c);
        c *= attn_factor;
        sn *= attn_factor;
    }
};
/* the same factors, computed once per token into shared memory by qp_rope_direct: [half] cos, then [half] sin */
struct qp_rope_table {
    const float *cs;
    int half;
    __device__ __forceinline__ void operator()(int i, float &c, float &sn) const
    {
        c = cs[i];
        sn = cs[half + i];
    }
};

/* the input rows: f32 (read in place) or the 16-bit output of the qkv GEMM (qp_src16) */
struct qp_src32 {
    const float *p;
    __device__ __forceinline__ float operator[](int i) const { return p[i]; }
};
struct qp_src16 {
    const uint16_t *p;
    int t;   /* QK_BF16 or QK_F16 */
    __device__ __forceinline__ float operator[](int i) const
    {
        return t == QK_BF16 ? qk_bf16_f32(p[i]) : qk_f16_f32(p[i]);
    }
};

/* a head already in registers: lane l holds elements l, l + 32, l + 64, l + 96 (head_dim 128; qp_head reads only
 * those, so with hd a compile-time 128 the index folds to a register) */
struct qp_src_lane4 {
    const float *v;
    int lane;
    __device__ __forceinline__ float operator[](int i) const { return v[(i - lane) >> 5]; }
};

/* one warp, head h of a token's qkv row stored at (blk, off) when store: v heads to the V cache; q/k heads normed
 * (NORM) and rotated, k heads also to the K cache.  The rotated q/k head goes to r (NULL: nowhere); the f32 kernels
 * read and write the same row (in = r), the 16-bit form reads in and writes only the q heads */
template <bool NORM, typename IN, typename ROPE>
__device__ __forceinline__ void qp_head(const IN &in, float *r, int h, int lane, int n_q, int n_kv, int hd,
                                        const void *wq, int wqt, const void *wk, int wkt, float eps, const ROPE &rope,
                                        void *kc, void *vc, bool store, int64_t blk, int64_t off, int kv_dtype,
                                        int block_size)
{
    if (h >= n_q + n_kv) {
        if (store) {
            const int vh = h - n_q - n_kv;
            const int64_t dst = ((blk * n_kv + vh) * block_size + off) * hd;
            for (int i = lane; i < hd; i += 32)
                qp_put(vc, kv_dtype, dst + i, in[i]);
        }
        return;
    }
    const bool is_k = h >= n_q;
    float inv = 1.0f;
    const void *nw = is_k ? wk : wq;
    const int nwt = is_k ? wkt : wqt;
    if (NORM) {
        float ss = 0.0f;
        for (int i = lane; i < hd; i += 32) {
            const float v = in[i];
            ss += v * v;
        }
        ss = qk_warp_sum(ss);
        inv = rsqrtf(ss / (float)hd + eps);
    }
    const int half = hd / 2;
    const int64_t dst = is_k ? ((blk * n_kv + (h - n_q)) * block_size + off) * hd : 0;
    for (int i = lane; i < half; i += 32) {
        float x0 = in[i], x1 = in[i + half];
        if (NORM) {
            x0 = qk_load(nw, nwt, i) * (x0 * inv);
            x1 = qk_load(nw, nwt, i + half) * (x1 * inv);
        }
        float c, sn;
        rope(i, c, sn);
        float y0 = x0 * c - x1 * sn, y1 = x1 * c + x0 * sn;
        if (r) {
            r[i] = y0;
            r[i + half] = y1;
        }
        if (is_k && store) {
            qp_put(kc, kv_dtype, dst + i, y0);
            qp_put(kc, kv_dtype, dst + i + half, y1);
        }
    }
}

/* f32 rows written by other blocks of the same kernel (read through L2, never a stale L1 line) */
struct qp_src32cg {
    const float *p;
    __device__ __forceinline__ float operator[](int i) const { return __ldcg(p + i); }
};
