/* attn_decode2.cu - split-KV decode attention sized to the device
 * (the fused CUDA path, on by default; see backends/cuda/cuda_ops.c).
 *
 * attn.cu's decode kernel gives every 64 keys their own block and partial,
 * so a 128K context makes 2048 partials per head that one block per head then
 * merges serially.  Here the host picks the number of splits from the launch
 * shape (about 4 blocks per SM over kv heads x head groups x sequences,
 * capped by the context), and each block walks its share of the keys in
 * chunks of 64 with an online softmax:
 *   per chunk: K and V rows staged in shared memory with cp.async, scores for
 *   all query heads of the GQA group (each K/V row is read once per group),
 *   chunk max -> running max, O rescaled in registers, O += P V.
 * The split length is decided on the device from each sequence's own length
 * (ceil(ctx / n_splits) rounded up to 64), so a recorded graph stays right
 * when the lengths change.  One split: the block writes the normalised
 * output; several: unnormalised partials and a merge kernel that reduces
 * over the splits in parallel.  Same masking rules as attn.cu: bad block ids
 * mask their keys, bad q_start ranges skip the sequence, lengths are clamped
 * to the block table. */
#include "attn_split.cuh"

#include <math.h>

#define D2_THREADS 128
#define D2_HB 8          /* query heads per block */
#define D2_BLOCKS_PER_SM 4

/* 16-byte async copy global -> shared; ok == false zero-fills without reading */
__device__ __forceinline__ void d2_cp_async16(void *dst, const void *src, bool ok)
{
#if __CUDA_ARCH__ >= 800
    uint32_t s = (uint32_t)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(src), "r"(ok ? 16 : 0));
#else
    *(uint4 *)dst = ok ? *(const uint4 *)src : make_uint4(0, 0, 0, 0);
#endif
}
__device__ __forceinline__ void d2_cp_async_wait_all(void)
{
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.commit_group;\n" ::);
    asm volatile("cp.async.wait_group 0;\n" ::);
#endif
}

/* 8 consecutive 16-bit cache elements (16-byte aligned) -> f32 */
template <int KVT>
__device__ __forceinline__ void d2_load8(const uint16_t *p, float *f)
{
    qk_unpack8<KVT>(*(const uint4 *)p, f);
}

template <int KVT>
__device__ __forceinline__ float2 d2_load2(const uint16_t *p)
{
    uint32_t u = *(const uint32_t *)p;
    if (KVT == QK_BF16)
        return make_float2(__uint_as_float(u << 16), __uint_as_float(u & 0xffff0000u));
    return __half22float2(*(const __half2 *)&u);
}

template <int KVT, int D>
__global__ void __launch_bounds__(D2_THREADS)
    k_attn_decode2(const struct qr_cuda_attn a, int n_splits, float *part_o, float *part_ml)
{
    qk_pdl_wait();
    qk_pdl_trigger();
    constexpr int NP = D2_THREADS / (D / 2);   /* key parts in the P V phase */
    constexpr int KSTR = D + 8;                /* padded staged row (elements) */
    __shared__ __align__(16) float qsh[D2_HB][D];
    __shared__ float p[D2_HB][D2_CHUNK];
    __shared__ float m_run[D2_HB], l_run[D2_HB], alpha[D2_HB];
    __shared__ int64_t koff[D2_CHUNK];
    __shared__ __align__(16) uint16_t kvs[2][D2_CHUNK * KSTR];
    static_assert(sizeof(float) * NP * D2_HB * D <= sizeof(kvs), "the P V reduction does not fit");
    float (*red)[D2_HB][D] = (float (*)[D2_HB][D])&kvs[0][0];

    const int sp = blockIdx.x, s = blockIdx.z;
    const int G = a.n_heads / a.n_kv_heads;
    const int hgroups = (G + D2_HB - 1) / D2_HB;
    const int kvh = blockIdx.y / hgroups, hb = blockIdx.y % hgroups;
    const int nh = min(D2_HB, G - hb * D2_HB);
    const int h0 = kvh * G + hb * D2_HB;
    int qs, qlen, ctx;
    if (!attn_seq(a, s, &qs, &qlen, &ctx) || qlen != 1)
        return;
    const int used = d2_used_splits(ctx, n_splits);
    if (sp >= used)
        return;
    const int kps = ctx > 0 ? d2_keys_per_split(ctx, n_splits) : 0;
    const int k_lo = sp * kps, k_hi = min(ctx, k_lo + kps);
    const int tid = threadIdx.x;
    const uint16_t *kc = (const uint16_t *)a.k_cache, *vc = (const uint16_t *)a.v_cache;
    const int32_t *table = a.block_tables + (int64_t)s * a.max_blocks_per_seq;

    for (int i = tid; i < nh * D; i += D2_THREADS) {
        int j = i / D, d = i % D;
        qsh[j][d] = a.q[(int64_t)qs * a.ldq + (int64_t)(h0 + j) * D + d] * (a.scale * D2_LOG2E);
    }
    if (tid < D2_HB) {
        m_run[tid] = -INFINITY;
        l_run[tid] = 0.f;
    }
    const int dp = tid % (D / 2), part = tid / (D / 2);
    float acc[D2_HB][2];
#pragma unroll
    for (int j = 0; j < D2_HB; j++)
        acc[j][0] = acc[j][1] = 0.f;

    for (int c0 = k_lo; c0 < k_hi; c0 += D2_CHUNK) {
        const int nk = min(D2_CHUNK, k_hi - c0);
        if (tid < D2_CHUNK) {
            int64_t off = -1;
            if (tid < nk) {
                int k = c0 + tid;
                int64_t blk = table[k / a.block_size];
                if (blk >= 0 && blk < a.num_blocks)
                    off = ((blk * a.n_kv_heads + kvh) * a.block_size + k % a.block_size) * (int64_t)D;
            }
            koff[tid] = off;
        }
        __syncthreads();
        for (int c = tid; c < D2_CHUNK * (D / 8); c += D2_THREADS) {
            int r = c / (D / 8), d = (c % (D / 8)) * 8;
            int64_t off = koff[r];
            d2_cp_async16(&kvs[0][r * KSTR + d], off >= 0 ? kc + off + d : kc, off >= 0);
            d2_cp_async16(&kvs[1][r * KSTR + d], off >= 0 ? vc + off + d : vc, off >= 0);
        }
        d2_cp_async_wait_all();
        __syncthreads();
        /* scores: two threads per key (half of head_dim each), all heads of the block */
        {
            const int kl = tid >> 1, half = tid & 1;
            float sc[D2_HB];
#pragma unroll
            for (int j = 0; j < D2_HB; j++)
                sc[j] = 0.f;
            const bool live = koff[kl] >= 0;
            if (live) {
                float kf[D / 2];
#pragma unroll
                for (int d = 0; d < D / 2; d += 8)
                    d2_load8<KVT>(&kvs[0][kl * KSTR + half * (D / 2) + d], kf + d);
#pragma unroll
                for (int j = 0; j < D2_HB; j++) {
                    if (j < nh) {
                        const float4 *q4 = (const float4 *)&qsh[j][half * (D / 2)];
                        float t = 0.f;
#pragma unroll
                        for (int d = 0; d < D / 2; d += 4) {
                            float4 qq = q4[d / 4];
                            t += qq.x * kf[d] + qq.y * kf[d + 1] + qq.z * kf[d + 2] + qq.w * kf[d + 3];
                        }
                        sc[j] = t;
                    }
                }
            }
#pragma unroll
            for (int j = 0; j < D2_HB; j++) {
                float v = sc[j] + __shfl_xor_sync(0xffffffffu, sc[j], 1);
                if (half == 0 && j < nh)
                    p[j][kl] = live ? v : -INFINITY;
            }
        }
        __syncthreads();
        /* online softmax: warp w handles heads w, w + 4 */
        {
            const int warp = tid >> 5, lane = tid & 31;
            for (int j = warp; j < nh; j += D2_THREADS / 32) {
                float mc = -INFINITY;
                for (int k = lane; k < D2_CHUNK; k += 32)
                    mc = fmaxf(mc, p[j][k]);
                mc = qk_warp_max(mc);
                const float mo = m_run[j];
                const float mn = fmaxf(mo, mc);
                float sum = 0.f;
                for (int k = lane; k < D2_CHUNK; k += 32) {
                    float e = mn == -INFINITY ? 0.f : exp2f(p[j][k] - mn);
                    p[j][k] = e;
                    sum += e;
                }
                sum = qk_warp_sum(sum);
                if (lane == 0) {
                    float al = mo == -INFINITY ? 0.f : exp2f(mo - mn);
                    alpha[j] = al;
                    l_run[j] = l_run[j] * al + sum;
                    m_run[j] = mn;
                }
            }
        }
        __syncthreads();
        /* O = O * alpha + P V: thread = (d pair, key part); 8 V rows in flight per thread */
#pragma unroll
        for (int j = 0; j < D2_HB; j++) {
            if (j < nh) {
                float al = alpha[j];
                acc[j][0] *= al;
                acc[j][1] *= al;
            }
        }
        for (int k0 = part; k0 < nk; k0 += NP * 8) {
            float2 v[8];
#pragma unroll
            for (int u = 0; u < 8; u++) {
                int k = k0 + NP * u;
                v[u] = k < nk && koff[k] >= 0 ? d2_load2<KVT>(&kvs[1][k * KSTR + 2 * dp]) : make_float2(0.f, 0.f);
            }
#pragma unroll
            for (int u = 0; u < 8; u++) {
                int k = k0 + NP * u;
                if (k < nk) {
#pragma unroll
                    for (int j = 0; j < D2_HB; j++) {
                        if (j < nh) {
                            float pk = p[j][k];
                            acc[j][0] += pk * v[u].x;
                            acc[j][1] += pk * v[u].y;
                        }
                    }
                }
            }
        }
        __syncthreads();   /* koff, p, K/V and alpha are rewritten by the next chunk */
    }
    /* reduce the key parts (over the staged K/V, which are no longer read) */
#pragma unroll
    for (int j = 0; j < D2_HB; j++) {
        red[part][j][2 * dp] = acc[j][0];
        red[part][j][2 * dp + 1] = acc[j][1];
    }
    __syncthreads();
    const bool direct = n_splits == 1;
    const int64_t pidx0 = ((int64_t)s * a.n_heads + h0) * n_splits + sp;
    for (int i = tid; i < nh * D; i += D2_THREADS) {
        int j = i / D, d = i % D;
        float v = 0.f;
#pragma unroll
        for (int q = 0; q < NP; q++)
            v += red[q][j][d];
        if (direct) {
            float l = l_run[j];
            a.out[(int64_t)qs * a.ldo + (int64_t)(h0 + j) * D + d] = l > 0.f ? v / l : 0.f;
        } else {
            part_o[(pidx0 + (int64_t)j * n_splits) * D + d] = v;
        }
    }
    if (!direct && tid < nh) {
        part_ml[2 * (pidx0 + (int64_t)tid * n_splits)] = m_run[tid];
        part_ml[2 * (pidx0 + (int64_t)tid * n_splits) + 1] = l_run[tid];
    }
}

/* one block per (head, sequence): the split weights in parallel, then O over the splits */
__global__ void __launch_bounds__(D2_THREADS)
    k_attn_decode2_merge(const struct qr_cuda_attn a, int n_splits, const float *part_o, const float *part_ml,
                         int early)
{
    if (early) {   /* QK_EARLY_MERGE: o_proj may start (and stream weights) while the attention runs */
        qk_pdl_trigger();
        qk_pdl_wait();
    } else {
        qk_pdl_wait();
        qk_pdl_trigger();
    }
    __shared__ float w[D2_MAX_SPLITS];
    __shared__ float red[32];
    const int h = blockIdx.x, s = blockIdx.y, D = a.head_dim, tid = threadIdx.x;
    int qs, qlen, ctx;
    if (!attn_seq(a, s, &qs, &qlen, &ctx) || qlen != 1)
        return;
    const int used = d2_used_splits(ctx, n_splits);
    const int64_t base = ((int64_t)s * a.n_heads + h) * n_splits;
    float mx = -INFINITY;
    for (int i = tid; i < used; i += D2_THREADS)
        mx = fmaxf(mx, part_ml[2 * (base + i)]);
    mx = qk_warp_max(mx);
    if ((tid & 31) == 0)
        red[tid >> 5] = mx;
    __syncthreads();
    float M = -INFINITY;
#pragma unroll
    for (int i = 0; i < D2_THREADS / 32; i++)
        M = fmaxf(M, red[i]);
    __syncthreads();
    float l = 0.f;
    for (int i = tid; i < used; i += D2_THREADS) {
        float mi = part_ml[2 * (base + i)];
        float wi = (M == -INFINITY || mi == -INFINITY) ? 0.f : exp2f(mi - M);
        w[i] = wi;
        l += wi * part_ml[2 * (base + i) + 1];
    }
    float L = qk_block_sum(l, red);   /* its barriers also publish w[] */
    for (int d = tid; d < D; d += D2_THREADS) {
        const float *po = part_o + base * D + d;
        float v0 = 0.f, v1 = 0.f, v2 = 0.f, v3 = 0.f;
        int i = 0;
        for (; i + 3 < used; i += 4) {
            v0 += w[i] * po[(int64_t)i * D];
            v1 += w[i + 1] * po[(int64_t)(i + 1) * D];
            v2 += w[i + 2] * po[(int64_t)(i + 2) * D];
            v3 += w[i + 3] * po[(int64_t)(i + 3) * D];
        }
        for (; i < used; i++)
            v0 += w[i] * po[(int64_t)i * D];
        float v = (v0 + v1) + (v2 + v3);
        a.out[(int64_t)qs * a.ldo + (int64_t)h * D + d] = L > 0.f ? v / L : 0.f;
    }
}

/* splits for this launch shape: ~D2_BLOCKS_PER_SM blocks per SM, at most one per chunk of the longest context */
static int d2_splits(const struct qr_cuda_attn *a, int n_sm)
{
    int64_t cap = (int64_t)a->max_blocks_per_seq * a->block_size;
    int64_t L = a->max_seq_len < cap ? a->max_seq_len : cap;
    if (L < 1)
        L = 1;
    int64_t by_len = (L + D2_CHUNK - 1) / D2_CHUNK;
    if (a->n_heads <= 0 || a->n_kv_heads <= 0 || a->n_seqs <= 0)
        return 1;
    int G = a->n_heads / a->n_kv_heads;
    int64_t per_split = (int64_t)a->n_kv_heads * ((G + D2_HB - 1) / D2_HB) * a->n_seqs;
    if (per_split <= 0)
        return 1;
    int64_t want = ((int64_t)(n_sm > 0 ? n_sm : 1) * D2_BLOCKS_PER_SM + per_split - 1) / per_split;
    int64_t ns = want < by_len ? want : by_len;
    if (ns > D2_MAX_SPLITS)
        ns = D2_MAX_SPLITS;
    return ns < 1 ? 1 : (int)ns;
}

extern "C" int cuda_attn_decode2_supported(int head_dim, int kv_dtype)
{
    return (head_dim == 64 || head_dim == 128) && (kv_dtype == QK_BF16 || kv_dtype == QK_F16);
}

extern "C" size_t cuda_attn_decode2_scratch(const struct qr_cuda_attn *a, int n_sm)
{
    int ns = d2_splits(a, n_sm);
    if (ns == 1)
        return 16;
    return (size_t)a->n_seqs * (size_t)a->n_heads * (size_t)ns * ((size_t)a->head_dim + 2) * sizeof(float);
}

template <int KVT>
static void decode2_go(qr_cuda_stream st, const struct qr_cuda_attn *a, dim3 grid, int ns, float *po, float *pml)
{
    if (a->head_dim == 64)
        qk_launch(k_attn_decode2<KVT, 64>, grid, dim3(D2_THREADS), 0, st, *a, ns, po, pml);
    else
        qk_launch(k_attn_decode2<KVT, 128>, grid, dim3(D2_THREADS), 0, st, *a, ns, po, pml);
}

extern "C" int cuda_launch_attn_decode2(qr_cuda_stream st, const struct qr_cuda_attn *a, void *scratch, int n_sm)
{
    if (a->n_seqs <= 0 || a->n_tokens <= 0 || a->n_heads <= 0)
        return 0;
    if (!cuda_attn_decode2_supported(a->head_dim, a->kv_dtype) || a->n_kv_heads <= 0 || a->n_heads < a->n_kv_heads)
        return (int)cudaErrorInvalidValue;
    int ns = d2_splits(a, n_sm);
    int G = a->n_heads / a->n_kv_heads;
    int hgroups = (G + D2_HB - 1) / D2_HB;
    float *po = (float *)scratch;
    float *pml = ns > 1 ? po + (size_t)a->n_seqs * a->n_heads * ns * a->head_dim : NULL;
    dim3 grid((unsigned)ns, (unsigned)(a->n_kv_heads * hgroups), (unsigned)a->n_seqs);
    if (a->kv_dtype == QK_BF16)
        decode2_go<QK_BF16>(st, a, grid, ns, po, pml);
    else
        decode2_go<QK_F16>(st, a, grid, ns, po, pml);
    int rc = qk_launch_result();
    if (rc || ns == 1)
        return rc;
    qk_launch(k_attn_decode2_merge, dim3((unsigned)a->n_heads, (unsigned)a->n_seqs), dim3(D2_THREADS), 0, st, *a, ns, po, pml,
              (qk_pdl_early_mode() & QK_EARLY_MERGE) != 0);
    return qk_launch_result();
}

extern "C" int cuda_launch_attn_decode2_merge(qr_cuda_stream st, const struct qr_cuda_attn *a, int n_splits,
                                              const float *part_o, const float *part_ml)
{
    if (n_splits <= 1 || n_splits > D2_MAX_SPLITS)
        return n_splits == 1 ? 0 : (int)cudaErrorInvalidValue;
    qk_launch(k_attn_decode2_merge, dim3((unsigned)a->n_heads, (unsigned)a->n_seqs), dim3(D2_THREADS), 0, st, *a,
              n_splits, part_o, part_ml, (qk_pdl_early_mode() & QK_EARLY_MERGE) != 0);
    return qk_launch_result();
}
