/* attn.cu - paged causal attention (struct qr_attn_args semantics; reference
 * cpu_attn in backends/cpu/cpu_ref_ops.c).
 *
 * Prompt / mixed batches: a FlashAttention-2 style kernel on tensor cores.
 *   grid (query tiles of 64, heads, seqs), 4 warps, 16 query rows per warp.
 *   Q (pre-scaled by scale*log2 e) lives in registers as mma A fragments;
 *   K and V tiles of 64 keys (32 where shared memory is short) are gathered through the block table into
 *   shared memory ([key][d], padded rows) with cp.async, two tiles in flight
 *   (F32 caches: converted to f16 through registers; FP8 caches: the next tile's bytes are loaded into registers
 *   before the current tile's math and converted to f16 after it, or before it where two blocks share an SM);
 *   fragments come from ldmatrix (.trans for V).  Compute type: bf16, or f16 for F16/F32/FP8 caches.
 *   S = Q K^T and O += P V use mma.sync m16n8k16 (two m16n8k8 on sm_75) with
 *   f32 accumulators whose register layout is known, so the online softmax
 *   rescales O in registers.
 * Decode (max_q_len == 1): split-KV (flash-decoding).  grid (splits of 64
 *   keys, kv heads x head batches, seqs); one block serves up to 8 query heads
 *   of a GQA group, so each K/V row is read once for the group.  Each split
 *   writes an unnormalised partial (acc, max, sum); a second kernel merges.
 * Bad block ids mask their keys; bad q_start ranges skip the sequence;
 * seq_lens are clamped to the block table's capacity. */
#include "attn_split.cuh"
#include "qr_fp8.cuh"
#include "qr_mma.cuh"

#include <math.h>
#include <stdlib.h>

#define LOG2E 1.4426950408889634f

/* ------------------------------------------------------------------------ */
/* prompt kernel                                                            */
/* ------------------------------------------------------------------------ */

#define PF_BQ 64
#define PF_WARPS 4

/* 8 consecutive cache elements (16-byte aligned) -> f32 */
template <int KVT>
__device__ __forceinline__ void kv_load8(const void *base, int64_t elem, float *f)
{
    if (KVT == QK_F32) {
        const float4 *p = (const float4 *)((const float *)base + elem);
        float4 a = p[0], b = p[1];
        f[0] = a.x, f[1] = a.y, f[2] = a.z, f[3] = a.w, f[4] = b.x, f[5] = b.y, f[6] = b.z, f[7] = b.w;
    } else {
        qk_unpack8<KVT>(*(const uint4 *)((const uint16_t *)base + elem), f);
    }
}


/* shared memory of one block: K and V, two stages, plus the key masks */
template <typename T, int D, int PF_BK>
constexpr size_t pf_smem_bytes() { return (size_t)4 * PF_BK * (D + 8) * sizeof(T) + 2 * PF_BK; }

/* HPB query heads of one GQA group per block (PF_WARPS warps each) share the K/V tiles */
template <typename T, int KVT, int D, int PF_BK, int HPB, int MINB = 1>
__global__ void __launch_bounds__(PF_WARPS * 32 * HPB, MINB) k_attn_prefill(const struct qr_cuda_attn a)
{
    constexpr int KS = D + 8;   /* row stride (elements): conflict-free ldmatrix */
    constexpr int CPR = D / 8;  /* 16-byte chunks per row */
    extern __shared__ __align__(128) unsigned char pf_smem[];
    T (*Ks)[PF_BK * KS] = (T (*)[PF_BK * KS])pf_smem;
    T (*Vs)[PF_BK * KS] = (T (*)[PF_BK * KS])(pf_smem + 2 * PF_BK * KS * sizeof(T));
    bool (*kok)[PF_BK] = (bool (*)[PF_BK])(pf_smem + 4 * PF_BK * KS * sizeof(T));

    const int warp = (threadIdx.x >> 5) % PF_WARPS, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    const int s = blockIdx.z, h = blockIdx.y * HPB + (threadIdx.x >> 5) / PF_WARPS;
    int qs, qlen, ctx;
    if (!attn_seq(a, s, &qs, &qlen, &ctx) || (a.skip_single && qlen == 1))
        return;
    /* the longest (last) query tiles first: better balance at the end of the grid */
    const int q0 = (gridDim.x - 1 - blockIdx.x) * PF_BQ;
    if (q0 >= qlen)
        return;
    const int kvh = h / (a.n_heads / a.n_kv_heads);
    const int32_t *table = a.block_tables + (int64_t)s * a.max_blocks_per_seq;
    const float qscale = a.scale * LOG2E;

    /* rows of this lane: g and g + 8 of the warp's 16 */
    const int row0 = q0 + warp * 16 + g, row1 = row0 + 8;
    const int pos0 = row0 < qlen ? ctx - qlen + row0 : -1;
    const int pos1 = row1 < qlen ? ctx - qlen + row1 : -1;
    const int wrow_last = min(q0 + warp * 16 + 15, qlen - 1);
    const int wpos_max = ctx - qlen + wrow_last;   /* the warp's last key */

    uint32_t qa[D / 16][4];
    {
        const float *qr0 = a.q + (int64_t)(qs + row0) * a.ldq + (int64_t)h * D;
        const float *qr1 = a.q + (int64_t)(qs + row1) * a.ldq + (int64_t)h * D;
        bool v0 = row0 < qlen, v1 = row1 < qlen;
        pf_load_q<T, D>(qa, qr0, qr1, v0, v1, qscale, t4);
    }

    float o[D / 8][4];
#pragma unroll
    for (int i = 0; i < D / 8; i++)
        o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;

    const int tile_last = min(q0 + PF_BQ, qlen) - 1;
    const int kend = min(ctx, ctx - qlen + tile_last + 1);   /* keys this block needs */
    const int n_tiles = kend > 0 ? (kend + PF_BK - 1) / PF_BK : 0;

    /* key k's cache row (element offset of its K/V row) through the block table; false past kend or for a bad id */
    auto key_row = [&](int k, int64_t &off) {
        bool ok = false;
        if (k < kend) {
            const int64_t blk = table[k / a.block_size];
            if (blk >= 0 && blk < a.num_blocks) {
                off = ((blk * a.n_kv_heads + kvh) * a.block_size + k % a.block_size) * (int64_t)D;
                ok = true;
            }
        }
        return ok;
    };
    /* FP8 caches: tile k0's K/V bytes into registers (fetch; zeros for masked keys), then converted to f16 into
     * stage st (put).  NCH chunks of 8 elements per thread and tensor. */
    constexpr int NTH = PF_WARPS * 32 * HPB;
    constexpr int NCH = KVT == QK_F8 ? PF_BK * CPR / NTH : 1;
    static_assert(KVT != QK_F8 || PF_BK * CPR % NTH == 0, "FP8 chunks per thread");
    uint2 kr8[NCH], vr8[NCH];
    bool ok8[NCH];
    auto fetch8 = [&](int k0) {
        const uint8_t *kc = (const uint8_t *)a.k_cache, *vc = (const uint8_t *)a.v_cache;
#pragma unroll
        for (int j = 0; j < NCH; j++) {
            const int c = threadIdx.x + j * NTH, r = c / CPR, d = (c % CPR) * 8;
            int64_t off = 0;
            const bool ok = key_row(k0 + r, off);
            ok8[j] = ok;
            kr8[j] = ok ? *(const uint2 *)(kc + off + d) : make_uint2(0, 0);
            vr8[j] = ok ? *(const uint2 *)(vc + off + d) : make_uint2(0, 0);
        }
    };
    auto put8 = [&](int st) {
#pragma unroll
        for (int j = 0; j < NCH; j++) {
            const int c = threadIdx.x + j * NTH, r = c / CPR, d = (c % CPR) * 8;
            if (d == 0)
                kok[st][r] = ok8[j];
            *(uint4 *)&Ks[st][r * KS + d] = qk_f8x8_h8(kr8[j]);
            *(uint4 *)&Vs[st][r * KS + d] = qk_f8x8_h8(vr8[j]);
        }
    };

    /* gather one tile of K and V through the block table into stage st */
    auto load_tile = [&](int st, int k0) {
        for (int c = threadIdx.x; c < PF_BK * CPR; c += PF_WARPS * 32 * HPB) {
            int r = c / CPR, d = (c % CPR) * 8;
            int64_t off = 0;
            const bool ok = key_row(k0 + r, off);
            if (d == 0)
                kok[st][r] = ok;
            T *kd = &Ks[st][r * KS + d], *vd = &Vs[st][r * KS + d];
            if constexpr (KVT == QK_BF16 || KVT == QK_F16) {
                const T *kc = (const T *)a.k_cache, *vc = (const T *)a.v_cache;
                cp_async16(kd, ok ? kc + off + d : kc, ok);
                cp_async16(vd, ok ? vc + off + d : vc, ok);
            } else {
                float kf[8], vf[8];
                if (ok) {
                    kv_load8<KVT>(a.k_cache, off + d, kf);
                    kv_load8<KVT>(a.v_cache, off + d, vf);
                } else {
#pragma unroll
                    for (int j = 0; j < 8; j++)
                        kf[j] = vf[j] = 0.f;
                }
                uint4 kp, vp;
                kp.x = pf_pack<T>(kf[0], kf[1]);
                kp.y = pf_pack<T>(kf[2], kf[3]);
                kp.z = pf_pack<T>(kf[4], kf[5]);
                kp.w = pf_pack<T>(kf[6], kf[7]);
                vp.x = pf_pack<T>(vf[0], vf[1]);
                vp.y = pf_pack<T>(vf[2], vf[3]);
                vp.z = pf_pack<T>(vf[4], vf[5]);
                vp.w = pf_pack<T>(vf[6], vf[7]);
                *(uint4 *)kd = kp;
                *(uint4 *)vd = vp;
            }
        }
        cp_async_commit();
    };

    if (n_tiles > 0) {
        if constexpr (KVT == QK_F8) {
            fetch8(0);
            put8(0);
        } else {
            load_tile(0, 0);
        }
    }
    for (int it = 0; it < n_tiles; it++) {
        const int st = it & 1, k0 = it * PF_BK;
        if constexpr (KVT == QK_F8) {
            if (it + 1 < n_tiles) {
                fetch8(k0 + PF_BK);   /* in flight during this tile's math; put8 below */
                if constexpr (MINB > 1)
                    put8(st ^ 1);     /* registers are short (two blocks per SM): no prefetch across the math */
            }
        } else if (it + 1 < n_tiles) {
            load_tile(st ^ 1, k0 + PF_BK);
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        if (k0 <= wpos_max) {
            const T *Kt = Ks[st], *Vt = Vs[st];
            float sc[PF_BK / 8][4];
#pragma unroll
            for (int j = 0; j < PF_BK / 8; j++) {
                sc[j][0] = sc[j][1] = sc[j][2] = sc[j][3] = 0.f;
                const T *kr = &Kt[(j * 8 + (lane & 7)) * KS + (lane >> 3) * 8];
#pragma unroll
                for (int kk = 0; kk < D / 16; kk += 2) {
                    uint32_t b[4];
                    ldsm_x4(b, kr + kk * 16);
                    pf_mma<T>(sc[j], qa[kk], b);
                    pf_mma<T>(sc[j], qa[kk + 1], b + 2);
                }
            }
#pragma unroll
            for (int j = 0; j < PF_BK / 8; j++) {
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    int kl = j * 8 + 2 * t4 + e, k = k0 + kl;
                    bool kv = kok[st][kl];
                    if (!kv || k > pos0)
                        sc[j][e] = -INFINITY;
                    if (!kv || k > pos1)
                        sc[j][2 + e] = -INFINITY;
                }
            }
            float al0, al1;
            pf_softmax<PF_BK / 8>(sc, m0, m1, l0, l1, al0, al1);
            if (__any_sync(0xffffffffu, al0 != 1.f || al1 != 1.f)) {   /* the max moved: rescale O */
                pf_rescale(o, al0, al1);
            }
#pragma unroll
            for (int jj = 0; jj < PF_BK / 16; jj++) {
                uint32_t pa[4];
                pf_pack_p<T>(pa, sc, jj);
                const T *vr = &Vt[(jj * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * KS + (lane >> 4) * 8];
#pragma unroll
                for (int dt = 0; dt < D / 8; dt += 2) {
                    uint32_t b[4];
                    ldsm_x4_t(b, vr + dt * 8);
                    pf_mma<T>(o[dt], pa, b);
                    pf_mma<T>(o[dt + 1], pa, b + 2);
                }
            }
        }
        if constexpr (KVT == QK_F8 && MINB == 1) {
            /* stage st ^ 1 was last read in the previous iteration, before its closing barrier */
            if (it + 1 < n_tiles)
                put8(st ^ 1);
        }
        __syncthreads();   /* stage st is refilled by the next iteration's prefetch */
    }
    pf_store_rows<D>(a, &o[0][0], l0, l1, row0, row1, qs, qlen, h, t4);
}

extern "C" int cuda_attn_prefill_supported(int head_dim, int kv_dtype, int cc)
{
    if (head_dim != 64 && head_dim != 128)
        return 0;
    if (kv_dtype == QK_BF16 && cc < 80)
        return 0;   /* the generic kernel serves these */
    return kv_dtype == QK_BF16 || kv_dtype == QK_F16 || kv_dtype == QK_F32 || kv_dtype == QK_F8;
}

/* 64-key tiles (70 KB of shared memory, opt-in) where the device allows, else 32 */
template <typename T, int KVT, int D, int BK, int HPB, int MINB = 1>
static int prefill_launch(qr_cuda_stream st, const struct qr_cuda_attn *a)
{
    constexpr size_t smem = pf_smem_bytes<T, D, BK>();
    static unsigned long long raised;   /* per instantiation, a bit per device */
    const int rs = qk_raise_smem(k_attn_prefill<T, KVT, D, BK, HPB, MINB>, smem, &raised);
    if (rs)
        return rs;
    dim3 grid((unsigned)((a->max_q_len + PF_BQ - 1) / PF_BQ), (unsigned)(a->n_heads / HPB), (unsigned)a->n_seqs);
    k_attn_prefill<T, KVT, D, BK, HPB, MINB><<<grid, PF_WARPS * 32 * HPB, smem, st>>>(*a);
    return qk_launch_result();
}

/* tuning knobs read once: QR_CUDA_ATTN_BK (32|64 keys per tile; default 32),
 * QR_CUDA_ATTN_HPB (1|2 query heads per block; default 2 where the GQA group
 * size is even) and QR_CUDA_ATTN_MINB (2, the default: head_dim 128 with HPB 2
 * compiled for two blocks per SM, i.e. at most 128 registers, 32-key tiles;
 * TTFT(8192) on the H100 251.6 ms vs 271.3 ms at 1: docs/PERF.md) */
static int env_int(const char *name, int def)
{
    const char *v = getenv(name);
    return v && *v ? atoi(v) : def;
}

template <typename T, int KVT, int D>
static int prefill_go_d(qr_cuda_stream st, const struct qr_cuda_attn *a, bool big, bool pair, bool two)
{
    if constexpr (D == 128) {   /* 128 registers for two blocks of 8 warps per SM (QR_CUDA_ATTN_MINB=2; spills a little) */
        if (two && pair)
            return prefill_launch<T, KVT, D, 32, 2, 2>(st, a);
    }
    if (big)
        return pair ? prefill_launch<T, KVT, D, 64, 2>(st, a) : prefill_launch<T, KVT, D, 64, 1>(st, a);
    return pair ? prefill_launch<T, KVT, D, 32, 2>(st, a) : prefill_launch<T, KVT, D, 32, 1>(st, a);
}

extern "C" int cuda_launch_attn_prefill(qr_cuda_stream st, const struct qr_cuda_attn *a)
{
    if (a->n_seqs <= 0 || a->n_tokens <= 0 || a->max_q_len <= 0)
        return 0;
    static int want_bk = -1, want_hpb = -1, want_minb = -1;
    if (want_bk < 0) {
        want_hpb = env_int("QR_CUDA_ATTN_HPB", 2);
        want_minb = env_int("QR_CUDA_ATTN_MINB", 2);
        want_bk = env_int("QR_CUDA_ATTN_BK", 32);
    }
    bool two = want_minb == 2;
    int dev = 0, optin = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
    bool big = want_bk == 64 && (size_t)optin >= pf_smem_bytes<__half, 128, 64>();
    bool pair = want_hpb == 2 && (a->n_heads / a->n_kv_heads) % 2 == 0;
    if (a->kv_dtype == QK_F32)   /* F32 caches (tests): one variant */
        return a->head_dim == 64 ? prefill_launch<__half, QK_F32, 64, 32, 1>(st, a)
                                 : prefill_launch<__half, QK_F32, 128, 32, 1>(st, a);
    if (a->kv_dtype == QK_BF16)
        return a->head_dim == 64 ? prefill_go_d<__nv_bfloat16, QK_BF16, 64>(st, a, big, pair, two)
                                 : prefill_go_d<__nv_bfloat16, QK_BF16, 128>(st, a, big, pair, two);
    if (a->kv_dtype == QK_F8)   /* f16 math on tiles converted from FP8 */
        return a->head_dim == 64 ? prefill_go_d<__half, QK_F8, 64>(st, a, big, pair, two)
                                 : prefill_go_d<__half, QK_F8, 128>(st, a, big, pair, two);
    if (a->kv_dtype != QK_F16)
        return (int)cudaErrorInvalidValue;
    return a->head_dim == 64 ? prefill_go_d<__half, QK_F16, 64>(st, a, big, pair, two)
                             : prefill_go_d<__half, QK_F16, 128>(st, a, big, pair, two);
}

/* ------------------------------------------------------------------------ */
/* split-KV decode                                                          */
/* ------------------------------------------------------------------------ */

#define DC_THREADS 128
#define DC_CHUNK 64    /* keys per split: two threads per key in the score phase */
#define DC_HB 8        /* query heads per block */

static inline int dc_splits(const struct qr_cuda_attn *a)
{
    int64_t cap = (int64_t)a->max_blocks_per_seq * a->block_size;
    int64_t L = a->max_seq_len < cap ? a->max_seq_len : cap;
    if (L < 1)
        L = 1;
    return (int)((L + DC_CHUNK - 1) / DC_CHUNK);
}

template <int KVT, int D>
__device__ __forceinline__ float2 kv_load2(const void *base, int64_t elem)
{
    if (KVT == QK_F32)
        return *(const float2 *)((const float *)base + elem);
    uint32_t u = *(const uint32_t *)((const uint16_t *)base + elem);
    if (KVT == QK_BF16)
        return make_float2(__uint_as_float(u << 16), __uint_as_float(u & 0xffff0000u));
    return __half22float2(*(const __half2 *)&u);
}

template <int KVT, int D>
__global__ void __launch_bounds__(DC_THREADS)
    k_attn_decode(const struct qr_cuda_attn a, int n_splits, float *part_o, float *part_ml)
{
    constexpr int NP = DC_THREADS / (D / 2);   /* key parts in the P V phase */
    __shared__ __align__(16) float qsh[DC_HB][D];
    __shared__ float p[DC_HB][DC_CHUNK];
    __shared__ int64_t koff[DC_CHUNK];
    /* 16-bit caches: the chunk's K and V rows are staged in shared memory with
     * cp.async right at the start (one memory round trip for all of them) */
    constexpr bool STAGE = KVT != QK_F32;
    constexpr int KSTR = D + 8;   /* padded row (elements) */
    __shared__ __align__(16) uint16_t kvs[STAGE ? 2 : 1][STAGE ? DC_CHUNK * KSTR : 8];
    /* the P V partial sums: over the staged K/V once they are consumed */
    static_assert(!STAGE || sizeof(float) * NP * DC_HB * D <= sizeof(kvs), "red does not fit");
    __shared__ float red_own[STAGE ? 1 : NP][DC_HB][D];
    float (*red)[DC_HB][D] = STAGE ? (float (*)[DC_HB][D])&kvs[0][0] : red_own;

    const int sp = blockIdx.x, s = blockIdx.z;
    const int G = a.n_heads / a.n_kv_heads;
    const int hgroups = (G + DC_HB - 1) / DC_HB;
    const int kvh = blockIdx.y / hgroups, hb = blockIdx.y % hgroups;
    const int nh = min(DC_HB, G - hb * DC_HB);   /* heads in this block */
    const int h0 = kvh * G + hb * DC_HB;
    int qs, qlen, ctx;
    if (!attn_seq(a, s, &qs, &qlen, &ctx) || qlen != 1)
        return;
    const int tid = threadIdx.x;
    const int k_begin = sp * DC_CHUNK;
    const int nk = max(0, min(DC_CHUNK, ctx - k_begin));   /* position ctx-1 sees keys 0..ctx-1 */
    const int64_t pidx0 = ((int64_t)s * a.n_heads + h0) * n_splits + sp;

    for (int i = tid; i < nh * D; i += DC_THREADS) {
        int j = i / D, d = i % D;
        qsh[j][d] = a.q[(int64_t)qs * a.ldq + (int64_t)(h0 + j) * D + d] * (a.scale * LOG2E);
    }
    const int32_t *table = a.block_tables + (int64_t)s * a.max_blocks_per_seq;
    if (tid < DC_CHUNK) {
        int64_t off = -1;
        if (tid < nk) {
            int k = k_begin + tid;
            int64_t blk = table[k / a.block_size];
            if (blk >= 0 && blk < a.num_blocks)
                off = ((blk * a.n_kv_heads + kvh) * a.block_size + k % a.block_size) * (int64_t)D;
        }
        koff[tid] = off;
    }
    __syncthreads();
    if (STAGE) {
        const uint16_t *kc = (const uint16_t *)a.k_cache, *vc = (const uint16_t *)a.v_cache;
        for (int c = tid; c < DC_CHUNK * (D / 8); c += DC_THREADS) {
            int r = c / (D / 8), d = (c % (D / 8)) * 8;
            int64_t off = koff[r];
            cp_async16(&kvs[0][r * KSTR + d], off >= 0 ? kc + off + d : kc, off >= 0);
            cp_async16(&kvs[STAGE ? 1 : 0][r * KSTR + d], off >= 0 ? vc + off + d : vc, off >= 0);
        }
        cp_async_commit();
        cp_async_wait<0>();
        __syncthreads();
    }
    const void *kbase = STAGE ? (const void *)kvs[0] : a.k_cache;
    const void *vbase = STAGE ? (const void *)kvs[STAGE ? 1 : 0] : a.v_cache;
    /* scores: two threads per key (half of head_dim each), all heads of the block */
    {
        const int kl = tid >> 1, half = tid & 1;
        float acc[DC_HB];
#pragma unroll
        for (int j = 0; j < DC_HB; j++)
            acc[j] = 0.f;
        int64_t off = koff[kl];
        if (off >= 0) {
            const int64_t ko = STAGE ? (int64_t)kl * KSTR : off;
            float kf[D / 2];
#pragma unroll
            for (int d = 0; d < D / 2; d += 8)
                kv_load8<KVT>(kbase, ko + half * (D / 2) + d, kf + d);
#pragma unroll
            for (int j = 0; j < DC_HB; j++) {
                if (j < nh) {
                    const float4 *q4 = (const float4 *)&qsh[j][half * (D / 2)];
                    float sacc = 0.f;
#pragma unroll
                    for (int d = 0; d < D / 2; d += 4) {
                        float4 qq = q4[d / 4];
                        sacc += qq.x * kf[d] + qq.y * kf[d + 1] + qq.z * kf[d + 2] + qq.w * kf[d + 3];
                    }
                    acc[j] = sacc;
                }
            }
        }
#pragma unroll
        for (int j = 0; j < DC_HB; j++) {
            float v = acc[j] + __shfl_xor_sync(0xffffffffu, acc[j], 1);
            if (half == 0 && j < nh)
                p[j][kl] = off >= 0 ? v : -INFINITY;
        }
    }
    __syncthreads();
    /* softmax pieces: warp w handles heads w, w+4 */
    const int warp = tid >> 5, lane = tid & 31;
    for (int j = warp; j < nh; j += DC_THREADS / 32) {
        float mx = -INFINITY;
        for (int k = lane; k < DC_CHUNK; k += 32)
            mx = fmaxf(mx, p[j][k]);
        mx = qk_warp_max(mx);
        float sum = 0.f;
        for (int k = lane; k < DC_CHUNK; k += 32) {
            float e = mx == -INFINITY ? 0.f : exp2f(p[j][k] - mx);
            p[j][k] = e;
            sum += e;
        }
        sum = qk_warp_sum(sum);
        if (lane == 0) {
            part_ml[2 * (pidx0 + (int64_t)j * n_splits)] = mx;
            part_ml[2 * (pidx0 + (int64_t)j * n_splits) + 1] = sum;
        }
    }
    __syncthreads();
    /* P V: thread = (d pair, key part); 8 V loads in flight per thread */
    const int dp = tid % (D / 2), part = tid / (D / 2);
    float acc[DC_HB][2];
#pragma unroll
    for (int j = 0; j < DC_HB; j++)
        acc[j][0] = acc[j][1] = 0.f;
    for (int k0 = part; k0 < nk; k0 += NP * 8) {
        float2 v[8];
#pragma unroll
        for (int u = 0; u < 8; u++) {
            int k = k0 + NP * u;
            int64_t off = k < nk ? koff[k] : -1;
            if (STAGE && off >= 0)
                off = (int64_t)k * KSTR;
            v[u] = off >= 0 ? kv_load2<KVT, D>(vbase, off + 2 * dp) : make_float2(0.f, 0.f);
        }
#pragma unroll
        for (int u = 0; u < 8; u++) {
            int k = k0 + NP * u;
            if (k < nk) {
#pragma unroll
                for (int j = 0; j < DC_HB; j++) {
                    if (j < nh) {
                        float pk = p[j][k];
                        acc[j][0] += pk * v[u].x;
                        acc[j][1] += pk * v[u].y;
                    }
                }
            }
        }
    }
    if (STAGE)
        __syncthreads();   /* everyone is done reading the staged K/V */
#pragma unroll
    for (int j = 0; j < DC_HB; j++) {
        red[part][j][2 * dp] = acc[j][0];
        red[part][j][2 * dp + 1] = acc[j][1];
    }
    __syncthreads();
    for (int i = tid; i < nh * D; i += DC_THREADS) {
        int j = i / D, d = i % D;
        float v = 0.f;
#pragma unroll
        for (int q = 0; q < NP; q++)
            v += red[q][j][d];
        part_o[(pidx0 + (int64_t)j * n_splits) * D + d] = v;
    }
}

__global__ void k_attn_decode_merge(const struct qr_cuda_attn a, int n_splits, const float *part_o,
                                    const float *part_ml)
{
    const int h = blockIdx.x, s = blockIdx.y, D = a.head_dim;
    int qs, qlen, ctx;
    if (!attn_seq(a, s, &qs, &qlen, &ctx) || qlen != 1)
        return;
    const int64_t base = ((int64_t)s * a.n_heads + h) * n_splits;
    const int used = max(1, min(n_splits, (ctx + DC_CHUNK - 1) / DC_CHUNK));
    float M = -INFINITY;
    for (int i = 0; i < used; i++)
        M = fmaxf(M, part_ml[2 * (base + i)]);
    float sum = 0.f;
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        float v = 0.f;
        sum = 0.f;
        if (M != -INFINITY) {
            for (int i = 0; i < used; i++) {
                float mi = part_ml[2 * (base + i)];
                if (mi == -INFINITY)
                    continue;
                float w = exp2f(mi - M);
                sum += part_ml[2 * (base + i) + 1] * w;
                v += part_o[(base + i) * D + d] * w;
            }
        }
        a.out[(int64_t)qs * a.ldo + (int64_t)h * D + d] = sum > 0.f ? v / sum : 0.f;
    }
}

/* ------------------------------------------------------------------------ */
/* generic path: any head_dim (<= 256), any query length                    */
/* ------------------------------------------------------------------------ */

#define GN_THREADS 128
#define GN_MAXD 256

/* element i of a cache row of dtype t (FP8 too) as f32 */
__device__ __forceinline__ float gn_kv(const void *p, int t, int64_t i)
{
    return t == QK_F8 ? qk_f8_f32(((const uint8_t *)p)[i]) : qk_load(p, t, i);
}

/* one block per (token, head): keys in chunks of 128, one per thread, online softmax */
__global__ void __launch_bounds__(GN_THREADS) k_attn_generic(const struct qr_cuda_attn a)
{
    __shared__ float qsh[GN_MAXD];
    __shared__ float p[GN_THREADS];
    __shared__ int64_t koff[GN_THREADS];
    __shared__ float red[32];
    const int t = blockIdx.x, h = blockIdx.y, D = a.head_dim, tid = threadIdx.x;
    int s = -1;
    for (int i = 0; i < a.n_seqs; i++) {   /* the first valid sequence that owns token t */
        int b = a.q_start[i], e = a.q_start[i + 1];
        if (b >= 0 && e >= b && e <= a.n_tokens && t >= b && t < e) {
            s = i;
            break;
        }
    }
    if (s < 0)
        return;
    int qs, qlen, ctx;
    attn_seq(a, s, &qs, &qlen, &ctx);
    const int pos = ctx - qlen + (t - qs);
    const int kvh = h / (a.n_heads / a.n_kv_heads);
    const int32_t *table = a.block_tables + (int64_t)s * a.max_blocks_per_seq;
    for (int d = tid; d < D; d += GN_THREADS)
        qsh[d] = a.q[(int64_t)t * a.ldq + (int64_t)h * D + d] * (a.scale * LOG2E);
    float acc0 = 0.f, acc1 = 0.f, m = -INFINITY, l = 0.f;
    const size_t es = a.kv_dtype == QK_F32 ? 4 : 2;
    (void)es;
    for (int k0 = 0; k0 <= pos; k0 += GN_THREADS) {
        __syncthreads();
        int k = k0 + tid;
        int64_t off = -1;
        if (k <= pos) {
            int64_t blk = table[k / a.block_size];
            if (blk >= 0 && blk < a.num_blocks)
                off = ((blk * a.n_kv_heads + kvh) * a.block_size + k % a.block_size) * (int64_t)D;
        }
        koff[tid] = off;
        float sc = -INFINITY;
        if (off >= 0) {
            float d_ = 0.f;
            for (int d = 0; d < D; d++)
                d_ += qsh[d] * gn_kv(a.k_cache, a.kv_dtype, off + d);
            sc = d_;
        }
        /* chunk max */
        float mx = qk_warp_max(sc);
        if ((tid & 31) == 0)
            red[tid >> 5] = mx;
        __syncthreads();
        mx = fmaxf(fmaxf(red[0], red[1]), fmaxf(red[2], red[3]));
        float mn = fmaxf(m, mx);
        float pk = mn == -INFINITY ? 0.f : exp2f(sc - mn);
        p[tid] = pk;
        float al = mn == -INFINITY ? 1.f : exp2f(m - mn);
        __syncthreads();
        float sum = 0.f;
        for (int j = 0; j < GN_THREADS; j++)
            sum += p[j];
        l = l * al + sum;
        acc0 *= al;
        acc1 *= al;
        m = mn;
        int nk = min(GN_THREADS, pos + 1 - k0);
        for (int j = 0; j < nk; j++) {
            int64_t o = koff[j];
            if (o < 0)
                continue;
            if (tid < D)
                acc0 += p[j] * gn_kv(a.v_cache, a.kv_dtype, o + tid);
            if (tid + GN_THREADS < D)
                acc1 += p[j] * gn_kv(a.v_cache, a.kv_dtype, o + tid + GN_THREADS);
        }
    }
    float inv = l > 0.f ? 1.f / l : 0.f;
    float *orow = a.out + (int64_t)t * a.ldo + (int64_t)h * D;
    if (tid < D)
        orow[tid] = acc0 * inv;
    if (tid + GN_THREADS < D)
        orow[tid + GN_THREADS] = acc1 * inv;
}

extern "C" int cuda_launch_attn_generic(qr_cuda_stream st, const struct qr_cuda_attn *a)
{
    if (a->n_seqs <= 0 || a->n_tokens <= 0)
        return 0;
    if (a->head_dim <= 0 || a->head_dim > GN_MAXD)
        return (int)cudaErrorInvalidValue;
    k_attn_generic<<<dim3((unsigned)a->n_tokens, (unsigned)a->n_heads), GN_THREADS, 0, st>>>(*a);
    return qk_launch_result();
}

extern "C" size_t cuda_attn_decode_scratch(const struct qr_cuda_attn *a, int n_sm)
{
    (void)n_sm;
    size_t n = (size_t)a->n_seqs * (size_t)a->n_heads * (size_t)dc_splits(a);
    return n * ((size_t)a->head_dim + 2) * sizeof(float);
}

template <int KVT>
static void decode_go(qr_cuda_stream st, const struct qr_cuda_attn *a, dim3 grid, int ns, float *po, float *pml)
{
    if (a->head_dim == 64)
        k_attn_decode<KVT, 64><<<grid, DC_THREADS, 0, st>>>(*a, ns, po, pml);
    else
        k_attn_decode<KVT, 128><<<grid, DC_THREADS, 0, st>>>(*a, ns, po, pml);
}

extern "C" int cuda_launch_attn_decode(qr_cuda_stream st, const struct qr_cuda_attn *a, void *scratch, int n_sm)
{
    (void)n_sm;
    if (a->n_seqs <= 0 || a->n_tokens <= 0)
        return 0;
    if ((a->head_dim != 64 && a->head_dim != 128) ||
        (a->kv_dtype != QK_BF16 && a->kv_dtype != QK_F16 && a->kv_dtype != QK_F32))
        return (int)cudaErrorInvalidValue;   /* FP8 caches: the tensor-core or the prompt kernel */
    int ns = dc_splits(a);
    int G = a->n_heads / a->n_kv_heads;
    int hgroups = (G + DC_HB - 1) / DC_HB;
    float *po = (float *)scratch;
    float *pml = po + (size_t)a->n_seqs * a->n_heads * ns * a->head_dim;
    dim3 grid((unsigned)ns, (unsigned)(a->n_kv_heads * hgroups), (unsigned)a->n_seqs);
    if (a->kv_dtype == QK_BF16)
        decode_go<QK_BF16>(st, a, grid, ns, po, pml);
    else if (a->kv_dtype == QK_F16)
        decode_go<QK_F16>(st, a, grid, ns, po, pml);
    else
        decode_go<QK_F32>(st, a, grid, ns, po, pml);
    int rc = qk_launch_result();
    if (rc)
        return rc;
    k_attn_decode_merge<<<dim3((unsigned)a->n_heads, (unsigned)a->n_seqs), a->head_dim, 0, st>>>(*a, ns, po, pml);
    return qk_launch_result();
}
