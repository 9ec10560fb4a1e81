/* attn_chunk.cu - split-KV attention for short prompt chunks after a long
 * context (a new chat turn on a prefix-cache hit: 16-64 new tokens after
 * thousands of cached ones), on tensor cores.
 *
 * The prompt kernels' grid is (query tiles of 64, head pairs, sequences): a 16-token chunk is 16 blocks for Qwen3-4B,
 * each walking the whole context on one SM while the others idle.  Here, as in the decode kernel (attn_decode_tc.cu),
 * the keys are split over many blocks and the partials merged after:
 *   grid (splits, kv heads x row groups, seqs); W warps per block.  The rows of the m16n8k16 A fragments are
 *   (token, query head of the GQA group) pairs, row r = token * G + head, so each K/V tile of a split is read once
 *   for all the block's tokens and heads.  Warp w owns m-tile (row group * W + w): 16 rows, its Q fragments in
 *   registers.  The block's threads gather each tile of CK_BK keys through a cp.async pipeline of CK_ST stages
 *   (16-byte chunks XOR-swizzled by row, so ldmatrix is conflict-free); every warp then runs S = Q K^T, the masks,
 *   the online softmax and O += P V over it for its rows.
 *   With one split the block divides by the row sums and writes the output rows; with several it writes
 *   (max, sum, O) per (token, head, split) and k_attn_chunk_merge combines them.
 * Causal: query token i of a sequence of qlen tokens and ctx keys (its position ctx - qlen + i) sees keys
 * 0 .. ctx - qlen + i.  A split that lies wholly after some row's last key leaves that row's partial at
 * (-inf, 0, 0), which the merge weighs 0.  Bad block ids mask their keys; lengths are clamped to the block table
 * (attn_seq).  Sequences of one query token are left to the decode kernel where skip_single is set; the host sizes
 * the grid from max_q_len (at most CK_QMAX), as the prompt kernels do.
 * Numerics as the prompt kernel: Q * scale * log2 e and P rounded to the compute type (bf16; f16 for F16 caches),
 * f32 accumulators and partials.  Outputs: a.out (f32 rows, ldo) where set and a.out_h (16-bit rows of
 * n_heads * head_dim, out_h_type) where set, through pf_store2 like the prompt kernels.
 * FP8 caches are not taken (cuda_attn_chunk_supported says no): they stay on the prompt kernels. */
#include "attn_split.cuh"
#include "qr_mma.cuh"

#include <stdlib.h>

#define CK_BK 32        /* keys per tile */
#define CK_ST 3         /* pipeline stages (per block) */
#define CK_MAXW 8       /* warps per block at most (one m-tile of 16 rows each) */
#define CK_QMAX QR_CUDA_ATTN_CHUNK_QMAX
#define CK_MIN_KEYS 256 /* keys per split at least (a multiple of D2_CHUNK): fewer make the partials outweigh K/V */
#define CK_WARPS_SM 8   /* warps per SM the split count aims at (sm_90a, D 128: 176-180 registers a thread, so 8
                         * warps are resident per SM at W 4 and 8) */

static_assert(CK_MIN_KEYS % D2_CHUNK == 0 && D2_CHUNK % CK_BK == 0, "split granularity");

/* stage buffers (K and V tiles of 16-bit elements) + a key mask per stage */
template <int D>
__host__ __device__ constexpr size_t ck_smem_bytes()
{
    return (size_t)CK_ST * 2 * CK_BK * D * 2 + (size_t)CK_ST * sizeof(uint32_t);
}

/* element offset of 16-byte chunk ch of row r in a [CK_BK][D] tile */
template <int D>
__device__ __forceinline__ int ck_sw(int r, int ch)
{
    return r * D + ((ch ^ (r & 7)) << 3);
}

/* T: the cache's 16-bit type and the compute type */
template <typename T, int D, int W>
__global__ void __launch_bounds__(W * 32)
    k_attn_chunk(const struct qr_cuda_attn a, int n_splits, int n_rg, float *part_o, float *part_ml)
{
    constexpr int CPR = D * 2 / 16;   /* 16-byte chunks per row */
    constexpr int TILE = CK_BK * D;   /* elements of one K (or V) tile */
    static_assert((CK_BK * CPR) % (W * 32) == 0, "whole gather rounds");
    extern __shared__ __align__(128) unsigned char ck_smem[];
    T *tiles = (T *)ck_smem;   /* stage st: K at st * 2 * TILE, V after it */
    uint32_t *kmask = (uint32_t *)(tiles + CK_ST * 2 * TILE);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;

    const int sp = blockIdx.x, kvh = blockIdx.y / n_rg, rg = blockIdx.y % n_rg, s = blockIdx.z;
    const int G = a.n_heads / a.n_kv_heads;
    int qs, qlen, ctx;
    if (!attn_seq(a, s, &qs, &qlen, &ctx) || qlen <= 0 || (a.skip_single && qlen == 1))
        return;
    const int rows = qlen * G, r0 = rg * W * 16;
    if (r0 >= rows)
        return;
    const int used = d2_used_splits(ctx, n_splits);
    if (sp >= used)
        return;
    /* keys below kend matter to some row of the block (causal); the split's share of them */
    const int last_tok = (min(r0 + W * 16, rows) - 1) / G;
    const int kend = min(ctx, ctx - qlen + last_tok + 1);
    const int kps = ctx > 0 ? d2_keys_per_split(ctx, n_splits) : 0;
    const int k_lo = sp * kps, k_hi = min(kend, k_lo + kps);
    const int n_tiles = k_hi > k_lo ? (k_hi - k_lo + CK_BK - 1) / CK_BK : 0;
    const T *kc = (const T *)a.k_cache, *vc = (const T *)a.v_cache;
    const int32_t *table = a.block_tables + (int64_t)s * a.max_blocks_per_seq;

    /* this lane's rows (g, g + 8 of the warp's m-tile): token, query head, last visible key (-1: no row) */
    const int ra = r0 + warp * 16 + g, rb = ra + 8;
    const bool va = ra < rows, vb = rb < rows;
    const int ta = va ? ra / G : 0, tb = vb ? rb / G : 0;
    const int ha = kvh * G + (va ? ra % G : 0), hb = kvh * G + (vb ? rb % G : 0);
    const int lim_a = va ? ctx - qlen + ta : -1, lim_b = vb ? ctx - qlen + tb : -1;
    const bool active = r0 + warp * 16 < rows;   /* the warp has rows */
    const int wlim = active ? ctx - qlen + (min(r0 + warp * 16 + 16, rows) - 1) / G : -1;   /* its last key */

    /* tile -> stage st, by the whole block: lane l of every warp resolves key k_lo + tile * CK_BK + l through the
     * block table (keys at or past k_hi and bad block ids: -1, zero-filled and masked); rows by shuffles */
    auto load = [&](int st, int tile) {
        const int k = k_lo + tile * CK_BK + lane;
        long long off = -1;
        if (k < k_hi) {
            const int64_t blk = table[k / a.block_size];
            if (blk >= 0 && blk < a.num_blocks)
                off = ((blk * a.n_kv_heads + kvh) * a.block_size + k % a.block_size) * (int64_t)D;
        }
        const uint32_t m = __ballot_sync(0xffffffffu, off >= 0);
        if (threadIdx.x == 0)
            kmask[st] = m;
        T *ks = tiles + st * 2 * TILE, *vs = ks + TILE;
#pragma unroll
        for (int i = 0; i < CK_BK * CPR / (W * 32); i++) {
            const int c = threadIdx.x + i * W * 32, r = c / CPR, ch = c % CPR;
            const long long ro = __shfl_sync(0xffffffffu, off, r);
            const bool ok = ro >= 0;
            const int so = ck_sw<D>(r, ch);
            cp_async16(ks + so, ok ? kc + ro + ch * 8 : kc, ok);
            cp_async16(vs + so, ok ? vc + ro + ch * 8 : vc, ok);
        }
    };
#pragma unroll
    for (int p = 0; p < CK_ST - 1; p++) {
        if (p < n_tiles)
            load(p, p);
        cp_async_commit();
    }

    uint32_t qa[D / 16][4];
    {
        const float qscale = a.scale * D2_LOG2E;
        const float *q0 = a.q + (int64_t)(qs + ta) * a.ldq + (int64_t)ha * D;
        const float *q1 = a.q + (int64_t)(qs + tb) * a.ldq + (int64_t)hb * D;
        pf_load_q<T, D>(qa, q0, q1, va, vb, qscale, t4);
    }
    float o[D / 8][4];
#pragma unroll
    for (int i = 0; i < D / 8; i++)
        o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;

    for (int j = 0; j < n_tiles; j++) {
        cp_async_wait<CK_ST - 2>();   /* this thread's copies of tile j have landed ... */
        __syncthreads();              /* ... everyone's; and every warp is done with tile j - 1, whose stage is next */
        const int jn = j + CK_ST - 1;
        if (jn < n_tiles)
            load(jn % CK_ST, jn);
        cp_async_commit();
        const int kb = k_lo + j * CK_BK;   /* the tile's first key */
        if (kb > wlim)                     /* every key of the tile is after the warp's rows: p = 0 throughout */
            continue;
        const int st = j % CK_ST;
        const T *ks = tiles + st * 2 * TILE, *vs = ks + TILE;
        const uint32_t km = kmask[st];
        float sc[CK_BK / 8][4];
#pragma unroll
        for (int n8 = 0; n8 < CK_BK / 8; n8++) {
            sc[n8][0] = sc[n8][1] = sc[n8][2] = sc[n8][3] = 0.f;
            const int r = n8 * 8 + (lane & 7);
#pragma unroll
            for (int kk = 0; kk < D / 16; kk += 2) {
                uint32_t b[4];
                ldsm_x4(b, ks + ck_sw<D>(r, kk * 2 + (lane >> 3)));
                pf_mma<T>(sc[n8], qa[kk], b);
                pf_mma<T>(sc[n8], qa[kk + 1], b + 2);
            }
        }
        /* masks: keys past the split or behind a bad block id (km), and causal per row */
#pragma unroll
        for (int n8 = 0; n8 < CK_BK / 8; n8++) {
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const int kr = n8 * 8 + 2 * t4 + e, key = kb + kr;
                const bool ok = (km >> kr) & 1u;
                if (!ok || key > lim_a)
                    sc[n8][e] = -INFINITY;
                if (!ok || key > lim_b)
                    sc[n8][2 + e] = -INFINITY;
            }
        }
        float al0, al1;
        pf_softmax<CK_BK / 8>(sc, m0, m1, l0, l1, al0, al1);
#pragma unroll
        for (int i = 0; i < D / 8; i++) {
            o[i][0] *= al0;
            o[i][1] *= al0;
            o[i][2] *= al1;
            o[i][3] *= al1;
        }
#pragma unroll
        for (int jj = 0; jj < CK_BK / 16; jj++) {
            uint32_t pa[4];
            pa[0] = pf_pack<T>(sc[2 * jj][0], sc[2 * jj][1]);
            pa[1] = pf_pack<T>(sc[2 * jj][2], sc[2 * jj][3]);
            pa[2] = pf_pack<T>(sc[2 * jj + 1][0], sc[2 * jj + 1][1]);
            pa[3] = pf_pack<T>(sc[2 * jj + 1][2], sc[2 * jj + 1][3]);
            const int r = jj * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
#pragma unroll
            for (int dt = 0; dt < D / 8; dt += 2) {
                uint32_t b[4];
                ldsm_x4_t(b, vs + ck_sw<D>(r, dt + (lane >> 4)));
                pf_mma<T>(o[dt], pa, b);
                pf_mma<T>(o[dt + 1], pa, b + 2);
            }
        }
    }
    cp_async_wait<0>();
    if (!active)
        return;
    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    if (n_splits == 1) {   /* the block saw every key of its rows: the output */
        const int ldh = a.n_heads * D;
#pragma unroll
        for (int half = 0; half < 2; half++) {
            const bool v = half ? vb : va;
            if (!v)
                continue;
            const int t = half ? tb : ta, h = half ? hb : ha;
            const float l = half ? l1 : l0, inv = l > 0.f ? 1.f / l : 0.f;
            float *of = a.out ? a.out + (int64_t)(qs + t) * a.ldo + (int64_t)h * D : NULL;
            uint16_t *oh = a.out_h ? (uint16_t *)a.out_h + (int64_t)(qs + t) * ldh + (int64_t)h * D : NULL;
#pragma unroll
            for (int dt = 0; dt < D / 8; dt++)
                pf_store2(of, oh, a.out_h_type, dt * 8 + 2 * t4, o[dt][2 * half] * inv, o[dt][2 * half + 1] * inv);
        }
        return;
    }
    /* partial p = ((token * n_heads + head) * n_splits + split): O unnormalized, (max, sum) in log2 units */
#pragma unroll
    for (int half = 0; half < 2; half++) {
        const bool v = half ? vb : va;
        if (!v)
            continue;
        const int t = half ? tb : ta, h = half ? hb : ha;
        const int64_t p = ((int64_t)(qs + t) * a.n_heads + h) * n_splits + sp;
        float *po = part_o + p * D;
#pragma unroll
        for (int dt = 0; dt < D / 8; dt++)
            *(float2 *)(po + dt * 8 + 2 * t4) = make_float2(o[dt][2 * half], o[dt][2 * half + 1]);
        if (t4 == 0) {
            part_ml[2 * p] = half ? m1 : m0;
            part_ml[2 * p + 1] = half ? l1 : l0;
        }
    }
}

/* grid (n_heads, max_q_len, n_seqs), D / 2 threads: token i of sequence s, head h, two columns per thread */
template <int D>
__global__ void __launch_bounds__(D / 2) k_attn_chunk_merge(const struct qr_cuda_attn a, int n_splits,
                                                           const float *part_o, const float *part_ml)
{
    const int h = blockIdx.x, i = blockIdx.y, s = blockIdx.z;
    int qs, qlen, ctx;
    if (!attn_seq(a, s, &qs, &qlen, &ctx) || i >= qlen || (a.skip_single && qlen == 1))
        return;
    const int used = d2_used_splits(ctx, n_splits);
    const int64_t base = ((int64_t)(qs + i) * a.n_heads + h) * n_splits;
    float M = -INFINITY;
    for (int j = 0; j < used; j++)
        M = fmaxf(M, part_ml[2 * (base + j)]);
    const int c = 2 * threadIdx.x;
    float L = 0.f, O0 = 0.f, O1 = 0.f;
    if (M != -INFINITY) {
        for (int j = 0; j < used; j++) {
            const float mj = part_ml[2 * (base + j)];
            if (mj == -INFINITY)   /* no key of the split is visible to this row */
                continue;
            const float w = exp2f(mj - M);
            const float2 v = *(const float2 *)(part_o + (base + j) * D + c);
            L += w * part_ml[2 * (base + j) + 1];
            O0 += w * v.x;
            O1 += w * v.y;
        }
    }
    const float inv = L > 0.f ? 1.f / L : 0.f;
    float *of = a.out ? a.out + (int64_t)(qs + i) * a.ldo + (int64_t)h * D : NULL;
    uint16_t *oh = a.out_h ? (uint16_t *)a.out_h + (int64_t)(qs + i) * a.n_heads * D + (int64_t)h * D : NULL;
    pf_store2(of, oh, a.out_h_type, c, O0 * inv, O1 * inv);
}

extern "C" int cuda_attn_chunk_supported(int head_dim, int kv_dtype, int n_heads, int n_kv_heads, int cc)
{
    if (head_dim != 64 && head_dim != 128)
        return 0;
    if (n_kv_heads <= 0 || n_heads < n_kv_heads || n_heads % n_kv_heads)
        return 0;
    if (kv_dtype == QK_BF16)
        return cc >= 80;
    return kv_dtype == QK_F16 && cc >= 75;
}

/* the launch plan: W warps (one m-tile of 16 (token, head) rows each; the fewest powers of two that hold the
 * longest sequence's qlen * G rows, at most CK_MAXW), row groups of W m-tiles, and splits (about CK_WARPS_SM warps
 * per SM over the grid, at least CK_MIN_KEYS keys per split of the longest context, at most D2_MAX_SPLITS) */
struct ck_plan {
    int w, n_rg, ns;
};

static struct ck_plan ck_make_plan(const struct qr_cuda_attn *a, int n_sm)
{
    const int G = a->n_kv_heads > 0 ? a->n_heads / a->n_kv_heads : 1;
    const int mq = a->max_q_len < 1 ? 1 : a->max_q_len > CK_QMAX ? CK_QMAX : a->max_q_len;
    const int mtiles = (mq * G + 15) / 16;
    struct ck_plan p;
    p.w = 1;
    while (p.w < mtiles && p.w < CK_MAXW)
        p.w *= 2;
    p.n_rg = (mtiles + p.w - 1) / p.w;
    int64_t cap = (int64_t)a->max_blocks_per_seq * a->block_size;
    int64_t L = a->max_seq_len < cap ? a->max_seq_len : cap;
    if (L < 1)
        L = 1;
    const int64_t by_len = (L + CK_MIN_KEYS - 1) / CK_MIN_KEYS;
    const int64_t per_split = (int64_t)(a->n_kv_heads > 0 ? a->n_kv_heads : 1) * p.n_rg * (a->n_seqs > 0 ? a->n_seqs : 1);
    const int64_t want = ((int64_t)(n_sm > 0 ? n_sm : 1) * CK_WARPS_SM / p.w + per_split - 1) / per_split;
    int64_t ns = want < by_len ? want : by_len;
    if (ns > D2_MAX_SPLITS)
        ns = D2_MAX_SPLITS;
    p.ns = ns < 1 ? 1 : (int)ns;
    return p;
}

extern "C" size_t cuda_attn_chunk_scratch(const struct qr_cuda_attn *a, int n_sm)
{
    struct ck_plan p = ck_make_plan(a, n_sm);
    if (p.ns == 1)
        return 16;
    return (size_t)(a->n_tokens > 0 ? a->n_tokens : 0) * (size_t)a->n_heads * (size_t)p.ns *
           ((size_t)a->head_dim + 2) * sizeof(float);
}

template <typename T, int D, int W>
static int ck_launch(qr_cuda_stream st, const struct qr_cuda_attn *a, const struct ck_plan &p, float *po, float *pml)
{
    constexpr size_t smem = ck_smem_bytes<D>();
    static bool raised;   /* per instantiation; idempotent, so a race is harmless */
    if (smem > 48 * 1024 && !raised) {
        cudaError_t e = cudaFuncSetAttribute(k_attn_chunk<T, D, W>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             (int)smem);
        if (e != cudaSuccess)
            return (int)e;
        raised = true;
    }
    dim3 grid((unsigned)p.ns, (unsigned)(a->n_kv_heads * p.n_rg), (unsigned)a->n_seqs);
    k_attn_chunk<T, D, W><<<grid, dim3(W * 32), smem, st>>>(*a, p.ns, p.n_rg, po, pml);
    int rc = qk_launch_result();
    if (rc || p.ns == 1)
        return rc;
    dim3 mgrid((unsigned)a->n_heads, (unsigned)a->max_q_len, (unsigned)a->n_seqs);
    k_attn_chunk_merge<D><<<mgrid, dim3(D / 2), 0, st>>>(*a, p.ns, po, pml);
    return qk_launch_result();
}

template <typename T, int D>
static int ck_go(qr_cuda_stream st, const struct qr_cuda_attn *a, const struct ck_plan &p, float *po, float *pml)
{
    switch (p.w) {
    case 1: return ck_launch<T, D, 1>(st, a, p, po, pml);
    case 2: return ck_launch<T, D, 2>(st, a, p, po, pml);
    case 4: return ck_launch<T, D, 4>(st, a, p, po, pml);
    default: return ck_launch<T, D, 8>(st, a, p, po, pml);
    }
}

extern "C" int cuda_launch_attn_chunk(qr_cuda_stream st, const struct qr_cuda_attn *a, void *scratch, int n_sm)
{
    if (a->n_seqs <= 0 || a->n_tokens <= 0 || a->n_heads <= 0)
        return 0;
    if ((a->head_dim != 64 && a->head_dim != 128) || (a->kv_dtype != QK_BF16 && a->kv_dtype != QK_F16) ||
        a->n_kv_heads <= 0 || a->n_heads % a->n_kv_heads || a->max_q_len < 1 || a->max_q_len > CK_QMAX ||
        a->n_seqs > QK_MAX_GRID_Y || (!a->out && !a->out_h))
        return (int)cudaErrorInvalidValue;
    struct ck_plan p = ck_make_plan(a, n_sm);
    if ((int64_t)a->n_kv_heads * p.n_rg > QK_MAX_GRID_Y)
        return (int)cudaErrorInvalidValue;
    float *po = (float *)scratch;
    float *pml = p.ns > 1 ? po + (size_t)a->n_tokens * a->n_heads * p.ns * a->head_dim : NULL;
    if (a->kv_dtype == QK_BF16)
        return a->head_dim == 64 ? ck_go<__nv_bfloat16, 64>(st, a, p, po, pml)
                                 : ck_go<__nv_bfloat16, 128>(st, a, p, po, pml);
    return a->head_dim == 64 ? ck_go<__half, 64>(st, a, p, po, pml) : ck_go<__half, 128>(st, a, p, po, pml);
}
