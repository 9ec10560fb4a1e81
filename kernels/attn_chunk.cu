/* attn_chunk.cu - split-KV attention for short prompt chunks after a long
 * context (a new chat turn on a prefix-cache hit: 16-256 new tokens after
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
 * FP8 caches are not taken (cuda_attn_chunk_supported says no): they stay on the prompt kernels.
 * Chunks of more than CK_MAXW m-tiles of rows (33+ tokens at GQA 4) run k_attn_chunk2 (two m-tiles per warp, below)
 * where QR_CUDA_ATTN_CHUNK_V=1 (the default; =0 the first version); ck_make_plan says how the grid is sized. */
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
/* K/V tile `tile` of the block's split [k_lo, k_hi) into stage st, by the whole block (W warps): lane l of every warp
 * resolves key k_lo + tile * CK_BK + l through the block table (keys at or past k_hi and bad block ids: -1,
 * zero-filled and masked in kmask[st]); the rows' offsets go to the copying threads by shuffles */
template <typename T, int D, int W>
__device__ __forceinline__ void ck_load_tile(T *tiles, uint32_t *kmask, int st, int tile, int k_lo, int k_hi,
                                             const int32_t *table, const struct qr_cuda_attn &a, int kvh, const T *kc,
                                             const T *vc, int lane)
{
    constexpr int CPR = D * 2 / 16, TILE = CK_BK * D;
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
}

/* A block's share of the work: its sequence, its rows r0 .. r0 + block_rows of the (token, query head) pairs, and the
 * keys of its split that some of those rows see (causal).  False where the block has nothing to do. */
struct ck_span {
    int qs, qlen, ctx, rows, r0, k_lo, k_hi, n_tiles;
};
__device__ __forceinline__ bool ck_block_span(const struct qr_cuda_attn &a, int n_splits, int G, int s, int sp, int rg,
                                              int block_rows, struct ck_span *o)
{
    if (!attn_seq(a, s, &o->qs, &o->qlen, &o->ctx) || o->qlen <= 0 || (a.skip_single && o->qlen == 1))
        return false;
    o->rows = o->qlen * G;
    o->r0 = rg * block_rows;
    if (o->r0 >= o->rows || sp >= d2_used_splits(o->ctx, n_splits))
        return false;
    const int last_tok = (min(o->r0 + block_rows, o->rows) - 1) / G;
    const int kend = min(o->ctx, o->ctx - o->qlen + last_tok + 1);
    const int kps = o->ctx > 0 ? d2_keys_per_split(o->ctx, n_splits) : 0;
    o->k_lo = sp * kps;
    o->k_hi = min(kend, o->k_lo + kps);
    o->n_tiles = o->k_hi > o->k_lo ? (o->k_hi - o->k_lo + CK_BK - 1) / CK_BK : 0;
    return true;
}

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
    struct ck_span sn;
    if (!ck_block_span(a, n_splits, G, s, sp, rg, W * 16, &sn))
        return;
    const int qs = sn.qs, qlen = sn.qlen, ctx = sn.ctx, rows = sn.rows, r0 = sn.r0;
    const int k_lo = sn.k_lo, k_hi = sn.k_hi, n_tiles = sn.n_tiles;
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

    /* tile -> stage st, by the whole block (ck_load_tile) */
    auto load = [&](int st, int tile) {
        ck_load_tile<T, D, W>(tiles, kmask, st, tile, k_lo, k_hi, table, a, kvh, kc, vc, lane);
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
        pf_rescale(o, al0, al1);
#pragma unroll
        for (int jj = 0; jj < CK_BK / 16; jj++) {
            uint32_t pa[4];
            pf_pack_p<T>(pa, sc, jj);
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

/* The version for longer chunks (QR_CUDA_ATTN_CHUNK_V=1, the default since the fifteenth session; where a
 * sequence has more than CK_MAXW
 * m-tiles of rows): each warp owns CK2_MT = 2 m-tiles (32 rows) and every K / V fragment it loads from shared memory
 * feeds both, so a block of 8 warps holds 256 rows (64 tokens of a GQA-4 group) and shared-memory reads per MMA drop
 * from 1/2 to 3/8 (the Q fragments come from shared memory too: two m-tiles of Q in registers would not fit beside O).
 * The block's Q rows (scaled by scale * log2 e and rounded to T as pf_load_q does) sit in shared memory, swizzled like
 * the tiles, ahead of CK2_ST K / V stages.  Masks, softmax, partials and outputs as k_attn_chunk, per m-tile.
 * Registers: O 2 x 64, S 2 x 16, Q fragments 16 a thread: one 8-warp block per SM. */
#define CK2_MT 2   /* m-tiles per warp */
#define CK2_ST 4   /* pipeline stages (one block per SM: more K / V in flight) */

template <int D, int W>
__host__ __device__ constexpr size_t ck2_smem_bytes()
{
    return (size_t)W * CK2_MT * 16 * D * 2 + (size_t)CK2_ST * 2 * CK_BK * D * 2 + (size_t)CK2_ST * sizeof(uint32_t);
}

template <typename T, int D, int W>
__global__ void __launch_bounds__(W * 32, 1)
    k_attn_chunk2(const struct qr_cuda_attn a, int n_splits, int n_rg, float *part_o, float *part_ml)
{
    constexpr int MT = CK2_MT, ST = CK2_ST;
    constexpr int CPR = D * 2 / 16;    /* 16-byte chunks per row */
    constexpr int TILE = CK_BK * D;    /* elements of one K (or V) tile */
    constexpr int QR = W * MT * 16;    /* query rows of the block */
    static_assert((CK_BK * CPR) % (W * 32) == 0, "whole gather rounds");
    extern __shared__ __align__(128) unsigned char ck_smem[];
    T *qsm = (T *)ck_smem;        /* [QR][D], swizzled */
    T *tiles = qsm + QR * D;      /* stage st: K at st * 2 * TILE, V after it */
    uint32_t *kmask = (uint32_t *)(tiles + ST * 2 * TILE);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;

    const int sp = blockIdx.x, kvh = blockIdx.y / n_rg, rg = blockIdx.y % n_rg, s = blockIdx.z;
    const int G = a.n_heads / a.n_kv_heads;
    struct ck_span sn;
    if (!ck_block_span(a, n_splits, G, s, sp, rg, QR, &sn))
        return;
    const int qs = sn.qs, qlen = sn.qlen, ctx = sn.ctx, rows = sn.rows, r0 = sn.r0;
    const int k_lo = sn.k_lo, k_hi = sn.k_hi, n_tiles = sn.n_tiles;
    const T *kc = (const T *)a.k_cache, *vc = (const T *)a.v_cache;
    const int32_t *table = a.block_tables + (int64_t)s * a.max_blocks_per_seq;

    auto load = [&](int st, int tile) {
        ck_load_tile<T, D, W>(tiles, kmask, st, tile, k_lo, k_hi, table, a, kvh, kc, vc, lane);
    };
#pragma unroll
    for (int p = 0; p < ST - 1; p++) {
        if (p < n_tiles)
            load(p, p);
        cp_async_commit();
    }

    /* the block's Q rows into shared memory (rows past the sequence's: zeros); the first tile's barrier publishes
     * them */
    {
        const float qscale = a.scale * D2_LOG2E;
        for (int i = threadIdx.x; i < QR * (D / 2); i += W * 32) {
            const int r = i / (D / 2), c = (i % (D / 2)) * 2, R = r0 + r;
            uint32_t v = 0;
            if (R < rows) {
                const float *qp = a.q + (int64_t)(qs + R / G) * a.ldq + (int64_t)(kvh * G + R % G) * D + c;
                v = pf_pack<T>(qp[0] * qscale, qp[1] * qscale);
            }
            *(uint32_t *)(qsm + ck_sw<D>(r, c >> 3) + (c & 7)) = v;
        }
    }

    /* this lane's rows: m-tile mt of the warp (block m-tile warp * MT + mt), rows g and g + 8; their last visible
     * keys (-1: no row) */
    const int bm0 = warp * MT;
    int lim[MT][2];
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int hf = 0; hf < 2; hf++) {
            const int R = r0 + (bm0 + mt) * 16 + g + 8 * hf;
            lim[mt][hf] = R < rows ? ctx - qlen + R / G : -1;
        }
    const bool active = r0 + bm0 * 16 < rows;
    const int wlim = active ? ctx - qlen + (min(r0 + bm0 * 16 + MT * 16, rows) - 1) / G : -1;

    float o[MT][D / 8][4];
    float m[MT][2], l[MT][2];
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
#pragma unroll
        for (int i = 0; i < D / 8; i++)
            o[mt][i][0] = o[mt][i][1] = o[mt][i][2] = o[mt][i][3] = 0.f;
        m[mt][0] = m[mt][1] = -INFINITY;
        l[mt][0] = l[mt][1] = 0.f;
    }

    for (int j = 0; j < n_tiles; j++) {
        cp_async_wait<ST - 2>();   /* this thread's copies of tile j have landed ... */
        __syncthreads();           /* ... everyone's (and Q); every warp is done with tile j - 1, whose stage is next */
        const int jn = j + ST - 1;
        if (jn < n_tiles)
            load(jn % ST, jn);
        cp_async_commit();
        const int kb = k_lo + j * CK_BK;
        if (kb > wlim)
            continue;
        const int st = j % ST;
        const T *ks = tiles + st * 2 * TILE, *vs = ks + TILE;
        const uint32_t km = kmask[st];
        float sc[MT][CK_BK / 8][4];
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int n8 = 0; n8 < CK_BK / 8; n8++)
                sc[mt][n8][0] = sc[mt][n8][1] = sc[mt][n8][2] = sc[mt][n8][3] = 0.f;
        /* S = Q K^T: per pair of 16-column slices, the Q fragments of both m-tiles, then each K fragment once */
#pragma unroll
        for (int kk = 0; kk < D / 16; kk += 2) {
            uint32_t qf[MT][2][4];
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
#pragma unroll
                for (int e = 0; e < 2; e++)
                    ldsm_x4(qf[mt][e], qsm + ck_sw<D>((bm0 + mt) * 16 + (lane & 15), (kk + e) * 2 + (lane >> 4)));
#pragma unroll
            for (int n8 = 0; n8 < CK_BK / 8; n8++) {
                uint32_t b[4];
                ldsm_x4(b, ks + ck_sw<D>(n8 * 8 + (lane & 7), kk * 2 + (lane >> 3)));
#pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    pf_mma<T>(sc[mt][n8], qf[mt][0], b);
                    pf_mma<T>(sc[mt][n8], qf[mt][1], b + 2);
                }
            }
        }
        uint32_t pa[MT][CK_BK / 16][4];
#pragma unroll
        for (int mt = 0; mt < MT; mt++) {
#pragma unroll
            for (int n8 = 0; n8 < CK_BK / 8; n8++) {
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    const int kr = n8 * 8 + 2 * t4 + e, key = kb + kr;
                    const bool ok = (km >> kr) & 1u;
                    if (!ok || key > lim[mt][0])
                        sc[mt][n8][e] = -INFINITY;
                    if (!ok || key > lim[mt][1])
                        sc[mt][n8][2 + e] = -INFINITY;
                }
            }
            float al0, al1;
            pf_softmax<CK_BK / 8>(sc[mt], m[mt][0], m[mt][1], l[mt][0], l[mt][1], al0, al1);
#pragma unroll
            for (int i = 0; i < D / 8; i++) {
                o[mt][i][0] *= al0;
                o[mt][i][1] *= al0;
                o[mt][i][2] *= al1;
                o[mt][i][3] *= al1;
            }
#pragma unroll
            for (int jj = 0; jj < CK_BK / 16; jj++) {
                pa[mt][jj][0] = pf_pack<T>(sc[mt][2 * jj][0], sc[mt][2 * jj][1]);
                pa[mt][jj][1] = pf_pack<T>(sc[mt][2 * jj][2], sc[mt][2 * jj][3]);
                pa[mt][jj][2] = pf_pack<T>(sc[mt][2 * jj + 1][0], sc[mt][2 * jj + 1][1]);
                pa[mt][jj][3] = pf_pack<T>(sc[mt][2 * jj + 1][2], sc[mt][2 * jj + 1][3]);
            }
        }
        /* O += P V: each V fragment once for both m-tiles */
#pragma unroll
        for (int jj = 0; jj < CK_BK / 16; jj++) {
            const int r = jj * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
#pragma unroll
            for (int dt = 0; dt < D / 8; dt += 2) {
                uint32_t b[4];
                ldsm_x4_t(b, vs + ck_sw<D>(r, dt + (lane >> 4)));
#pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    pf_mma<T>(o[mt][dt], pa[mt][jj], b);
                    pf_mma<T>(o[mt][dt + 1], pa[mt][jj], b + 2);
                }
            }
        }
    }
    cp_async_wait<0>();
    if (!active)
        return;
    const int ldh = a.n_heads * D;
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
#pragma unroll
        for (int hf = 0; hf < 2; hf++) {
            float lr = l[mt][hf];
            lr += __shfl_xor_sync(0xffffffffu, lr, 1);
            lr += __shfl_xor_sync(0xffffffffu, lr, 2);
            const int R = r0 + (bm0 + mt) * 16 + g + 8 * hf;
            if (R >= rows)
                continue;
            const int t = R / G, h = kvh * G + R % G;
            if (n_splits == 1) {   /* the block saw every key of its rows: the output */
                const float inv = lr > 0.f ? 1.f / lr : 0.f;
                float *of = a.out ? a.out + (int64_t)(qs + t) * a.ldo + (int64_t)h * D : NULL;
                uint16_t *oh = a.out_h ? (uint16_t *)a.out_h + (int64_t)(qs + t) * ldh + (int64_t)h * D : NULL;
#pragma unroll
                for (int dt = 0; dt < D / 8; dt++)
                    pf_store2(of, oh, a.out_h_type, dt * 8 + 2 * t4, o[mt][dt][2 * hf] * inv,
                              o[mt][dt][2 * hf + 1] * inv);
                continue;
            }
            /* partial p = ((token * n_heads + head) * n_splits + split), as k_attn_chunk */
            const int64_t p = ((int64_t)(qs + t) * a.n_heads + h) * n_splits + sp;
            float *po = part_o + p * D;
#pragma unroll
            for (int dt = 0; dt < D / 8; dt++)
                *(float2 *)(po + dt * 8 + 2 * t4) = make_float2(o[mt][dt][2 * hf], o[mt][dt][2 * hf + 1]);
            if (t4 == 0) {
                part_ml[2 * p] = m[mt][hf];
                part_ml[2 * p + 1] = lr;
            }
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

/* The launch plan: m-tiles per warp (mt), W warps, row groups of W * mt m-tiles, splits.
 * variant 0 (the first version, the default): one m-tile per warp; W the fewest powers of two that hold
 *   the longest sequence's qlen * G rows, at most CK_MAXW; splits for about CK_WARPS_SM warps per SM over the grid.
 * variant 1 (the default, QR_CUDA_ATTN_CHUNK_V=1): the same for at most CK_MAXW m-tiles; more go to k_attn_chunk2 (two
 *   m-tiles a warp, 8-warp blocks, one per SM).  The split count is the one whose grid finishes first on n_sm
 *   SMs: blocks resident at once (slots) are n_sm x (CK_WARPS_SM / W) for the first kernel, n_sm for the second;
 *   a launch takes ceil(blocks / slots) waves, each as long as one split's keys plus its partial rows (written
 *   and merged: a row of D f32 is as many bytes as a key's K and V); ties go to fewer splits.  A grid just past the
 *   slots (9 splits x 16 row groups = 144 blocks on 132 SMs for 64 tokens in the first version) is two waves:
 *   avoided.
 * Both: at least CK_MIN_KEYS keys per split of the longest context, at most D2_MAX_SPLITS. */
struct ck_plan {
    int w, mt, n_rg, ns;
};

/* the current device's shared memory: the most a block may opt in to and an SM's (false where it cannot be read) */
static bool ck_dev_smem(int *optin, int *per_sm)
{
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess ||
        cudaDeviceGetAttribute(per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, dev) != cudaSuccess) {
        (void)cudaGetLastError();   /* not a launch error: the plan falls back */
        return false;
    }
    return true;
}

static struct ck_plan ck_make_plan(const struct qr_cuda_attn *a, int n_sm, int variant)
{
    const int G = a->n_kv_heads > 0 ? a->n_heads / a->n_kv_heads : 1;
    const int mq = a->max_q_len < 1 ? 1 : a->max_q_len > CK_QMAX ? CK_QMAX : a->max_q_len;
    const int mtiles = (mq * G + 15) / 16;
    struct ck_plan p;
    /* k_attn_chunk2's Q rows + CK2_ST stages (128 KiB at D 128) fit a block on sm_80 / sm_90 (163 / 227 KiB), not on
     * sm_86 / sm_89 (99 KiB) or sm_75 (64 KiB): those keep one m-tile per warp */
    int optin = 0, smem_sm = 0;
    const bool smem_known = ck_dev_smem(&optin, &smem_sm);
    const size_t ck2_smem = a->head_dim == 64 ? ck2_smem_bytes<64, CK_MAXW>() : ck2_smem_bytes<128, CK_MAXW>();
    p.mt = variant >= 1 && mtiles > CK_MAXW && smem_known && (size_t)optin >= ck2_smem ? CK2_MT : 1;
    const int wtiles = (mtiles + p.mt - 1) / p.mt;
    p.w = 1;
    while (p.w < wtiles && p.w < CK_MAXW)
        p.w *= 2;
    p.n_rg = (mtiles + p.w * p.mt - 1) / (p.w * p.mt);
    int64_t cap = (int64_t)a->max_blocks_per_seq * a->block_size;
    int64_t L = a->max_seq_len < cap ? a->max_seq_len : cap;
    if (L < 1)
        L = 1;
    const int64_t by_len = (L + CK_MIN_KEYS - 1) / CK_MIN_KEYS;
    const int64_t per_split =   /* blocks per split */
        (int64_t)(a->n_kv_heads > 0 ? a->n_kv_heads : 1) * p.n_rg * (a->n_seqs > 0 ? a->n_seqs : 1);
    const int64_t sms = n_sm > 0 ? n_sm : 1;
    int64_t ns;
    if (variant < 1) {
        const int64_t want = (sms * CK_WARPS_SM / p.w + per_split - 1) / per_split;
        ns = want < by_len ? want : by_len;
    } else {
        /* blocks resident per SM: by registers CK_WARPS_SM / W (one m-tile a warp) or 1; by shared memory (1 KiB
         * of it reserved per block) at most smem_sm / (bytes + 1 KiB) */
        int64_t per_sm = p.mt > 1 ? 1 : CK_WARPS_SM / p.w > 1 ? CK_WARPS_SM / p.w : 1;
        const size_t sb = p.mt > 1 ? ck2_smem : a->head_dim == 64 ? ck_smem_bytes<64>() : ck_smem_bytes<128>();
        const int64_t by_smem = smem_known ? (int64_t)((size_t)smem_sm / (sb + 1024)) : per_sm;
        if (by_smem < per_sm)
            per_sm = by_smem > 1 ? by_smem : 1;
        const int64_t slots = sms * per_sm;
        const int64_t rows_blk = (int64_t)p.w * p.mt * 16;
        const int64_t top = by_len < D2_MAX_SPLITS ? by_len : D2_MAX_SPLITS;
        int64_t best = INT64_MAX;
        ns = 1;
        for (int64_t n = 1; n <= top; n++) {
            /* d2_keys_per_split / d2_used_splits on the longest context */
            int64_t kps = (L + n - 1) / n;
            kps = (kps + D2_CHUNK - 1) / D2_CHUNK * D2_CHUNK;
            const int64_t used = (L + kps - 1) / kps;
            const int64_t waves = (per_split * used + slots - 1) / slots;
            const int64_t cost = waves * (kps + (n > 1 ? rows_blk : 0));
            if (cost < best) {
                best = cost;
                ns = n;
            }
        }
    }
    if (ns > D2_MAX_SPLITS)
        ns = D2_MAX_SPLITS;
    p.ns = ns < 1 ? 1 : (int)ns;
    return p;
}

extern "C" size_t cuda_attn_chunk_scratch(const struct qr_cuda_attn *a, int n_sm, int variant)
{
    struct ck_plan p = ck_make_plan(a, n_sm, variant);
    if (p.ns == 1)
        return 16;
    return (size_t)(a->n_tokens > 0 ? a->n_tokens : 0) * (size_t)a->n_heads * (size_t)p.ns *
           ((size_t)a->head_dim + 2) * sizeof(float);
}

/* the merge of several splits' partials */
template <int D>
static int ck_merge(qr_cuda_stream st, const struct qr_cuda_attn *a, const struct ck_plan &p, float *po, float *pml)
{
    dim3 mgrid((unsigned)a->n_heads, (unsigned)a->max_q_len, (unsigned)a->n_seqs);
    k_attn_chunk_merge<D><<<mgrid, dim3(D / 2), 0, st>>>(*a, p.ns, po, pml);
    return qk_launch_result();
}

/* one launch of a chunk kernel (its shared-memory limit raised once per instantiation and device), then the merge of
 * its splits */
template <int D, typename... KArgs>
static int ck_run(void (*kern)(KArgs...), size_t smem, unsigned long long *raised, int warps, qr_cuda_stream st,
                  const struct qr_cuda_attn *a, const struct ck_plan &p, float *po, float *pml)
{
    int rc = qk_raise_smem(kern, smem, raised);
    if (rc)
        return rc;
    dim3 grid((unsigned)p.ns, (unsigned)(a->n_kv_heads * p.n_rg), (unsigned)a->n_seqs);
    kern<<<grid, dim3(warps * 32), smem, st>>>(*a, p.ns, p.n_rg, po, pml);
    rc = qk_launch_result();
    if (rc || p.ns == 1)
        return rc;
    return ck_merge<D>(st, a, p, po, pml);
}

template <typename T, int D, int W>
static int ck_launch(qr_cuda_stream st, const struct qr_cuda_attn *a, const struct ck_plan &p, float *po, float *pml)
{
    static unsigned long long raised;   /* per instantiation, a bit per device */
    return ck_run<D>(k_attn_chunk<T, D, W>, ck_smem_bytes<D>(), &raised, W, st, a, p, po, pml);
}

/* k_attn_chunk2: always CK_MAXW warps (it takes only more than CK_MAXW m-tiles) */
template <typename T, int D>
static int ck_launch2(qr_cuda_stream st, const struct qr_cuda_attn *a, const struct ck_plan &p, float *po, float *pml)
{
    static unsigned long long raised;   /* per instantiation, a bit per device */
    return ck_run<D>(k_attn_chunk2<T, D, CK_MAXW>, ck2_smem_bytes<D, CK_MAXW>(), &raised, CK_MAXW, st, a, p, po,
                     pml);
}

template <typename T, int D>
static int ck_go(qr_cuda_stream st, const struct qr_cuda_attn *a, const struct ck_plan &p, float *po, float *pml)
{
    if (p.mt > 1)
        return ck_launch2<T, D>(st, a, p, po, pml);
    switch (p.w) {
    case 1: return ck_launch<T, D, 1>(st, a, p, po, pml);
    case 2: return ck_launch<T, D, 2>(st, a, p, po, pml);
    case 4: return ck_launch<T, D, 4>(st, a, p, po, pml);
    default: return ck_launch<T, D, 8>(st, a, p, po, pml);
    }
}

extern "C" int cuda_launch_attn_chunk(qr_cuda_stream st, const struct qr_cuda_attn *a, void *scratch, int n_sm,
                                      int variant)
{
    if (a->n_seqs <= 0 || a->n_tokens <= 0 || a->n_heads <= 0)
        return 0;
    if ((a->head_dim != 64 && a->head_dim != 128) || (a->kv_dtype != QK_BF16 && a->kv_dtype != QK_F16) ||
        a->n_kv_heads <= 0 || a->n_heads % a->n_kv_heads || a->max_q_len < 1 || a->max_q_len > CK_QMAX ||
        a->n_seqs > QK_MAX_GRID_Y || (!a->out && !a->out_h))
        return (int)cudaErrorInvalidValue;
    struct ck_plan p = ck_make_plan(a, n_sm, variant);
    if ((int64_t)a->n_kv_heads * p.n_rg > QK_MAX_GRID_Y)
        return (int)cudaErrorInvalidValue;
    float *po = (float *)scratch;
    float *pml = p.ns > 1 ? po + (size_t)a->n_tokens * a->n_heads * p.ns * a->head_dim : NULL;
    if (a->kv_dtype == QK_BF16)
        return a->head_dim == 64 ? ck_go<__nv_bfloat16, 64>(st, a, p, po, pml)
                                 : ck_go<__nv_bfloat16, 128>(st, a, p, po, pml);
    return a->head_dim == 64 ? ck_go<__half, 64>(st, a, p, po, pml) : ck_go<__half, 128>(st, a, p, po, pml);
}
