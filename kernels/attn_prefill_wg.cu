/* attn_prefill_wg.cu - the prompt attention kernel for Hopper (sm_90a): the
 * attn.cu prompt kernel's algorithm (causal, GQA, paged through the block
 * table, online softmax in registers) with the matrix products on wgmma.
 *
 * attn.cu's kernel reads every K/V fragment from shared memory per warp with
 * ldmatrix and runs mma.sync; on the H100 it reached ~150 TFLOP/s, about half
 * of TTFT(8192).  Here one warpgroup (4 warps) owns 64 query rows of one head
 * and the tensor cores read K and V straight from shared memory:
 *   grid (query tiles of 64, heads / WG_HPB, seqs); WG_HPB warpgroups per
 *   block, the heads of one GQA group, share each K/V tile;
 *   K and V tiles of 128 keys (64 with QR_CUDA_ATTN_WG_BK=64) are gathered
 *   through the block table with cp.async into stages, in the canonical
 *   128-byte-swizzled layout
 *   ([64-element column block][key][128 bytes], 16-byte chunk c of row r at
 *   chunk c ^ (r & 7)), which is both the K-major layout of K for S = Q K^T
 *   and the MN-major (transposed) layout of V for O += P V;
 *   Q (pre-scaled by scale * log2 e) and P are A operands in registers
 *   (the m16n8k16 fragment layout); S and O accumulate in f32 registers;
 *   by default the tiles are software-pipelined as in FA3 (S_j and P V_{j-1}
 *   in flight together, tile j's softmax under P V_{j-1}; 3 stages of 128
 *   keys, 5 of 64), with
 *   QR_CUDA_ATTN_WG_OVL=0 one tile at a time (3 stages); the next tile's
 *   gather is issued after S_j and P V_{j-1}, under them, and its block ids
 *   were read one tile earlier, so no warp waits on a block-table read.
 * Masks: causal, keys past the context and bad block ids (their K/V rows are
 * zero-filled and their scores -inf), applied only on tiles that need them.
 * Sequences with one query token are skipped when skip_single is set.
 * Compiled into code only for sm_90a (__CUDA_ARCH_FEAT_SM90_ALL); the host
 * asks cuda_attn_prefill_wg_available() first. */
#include "attn_wg.cuh"

#include <math.h>
#include <stdlib.h>

/* ST K/V stages of BK keys; OVL: the software-pipelined schedule (else one tile at a time); HPB warpgroups (heads of
 * one GQA group) per block: 2 share each K/V tile in one block per SM, 1 lets two blocks share an SM, which
 * desynchronizes them (one's softmax under the other's MMAs) at twice the K/V reads from L2.  MIX (pipelined only;
 * power-of-two block sizes only, the host checks): the next tile's gather is branch-free and issued inside the
 * softmax's basic block, so ptxas can interleave its independent instructions with the softmax's dependent chains
 * (the gather otherwise sits on each warp's critical path between the MMA issue and the S wait) */
template <typename T, int ST, bool OVL, int BK, int HPB = WG_HPB, bool MIX = false>
__global__ void __launch_bounds__(HPB * 128, HPB == 1 ? 2 : 1) k_attn_prefill_wg(const struct qr_cuda_attn a)
{
#ifdef QR_HAVE_WGMMA
    constexpr int WG_BK = BK;
    constexpr int TILE = WG_TILE_BYTES(BK);
    constexpr int KMW = BK / 32;   /* key-mask words per stage */
    extern __shared__ __align__(1024) unsigned char wg_smem_raw[];
    /* tiles must sit on 1024-byte boundaries (the swizzle pattern repeats every 8 rows of 128 bytes) */
    const uint32_t raw = smem_u32(wg_smem_raw);
    const uint32_t base = (raw + 1023u) & ~1023u;
    unsigned char *sbase = wg_smem_raw + (base - raw);
    uint32_t *kmask = (uint32_t *)(sbase + ST * 2 * TILE);   /* [ST][KMW]: key-valid bits */

    const int tid = threadIdx.x, wg = tid >> 7, warp = (tid >> 5) & 3, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
    const int h = blockIdx.y * HPB + wg;
    wg_rows r;
    if (!wg_rows_of(a, h, warp, g, r))
        return;
    const int qs = r.qs, qlen = r.qlen, kvh = r.kvh, row0 = r.row0, row1 = r.row1, kend = r.kend;
    const int32_t *table = a.block_tables + (int64_t)(int)blockIdx.z * a.max_blocks_per_seq;

    uint32_t qa[WG_D / 16][4];
    wg_load_q<T>(qa, a, r, h, t4);

    const int n_tiles = kend > 0 ? (kend + WG_BK - 1) / WG_BK : 0;
    const T *kc = (const T *)a.k_cache, *vc = (const T *)a.v_cache;

    /* key k -> (block-table column, row in the block): shifts where the block size is a power of two (a branch per
     * tile, not per chunk: the division path of other block sizes stays out of the common loop) */
    const int bs = a.block_size, bs_sh = (bs & (bs - 1)) == 0 ? __ffs(bs) - 1 : -1;
    /* the block ids of the next tile's rows are read one tile ahead (nid; mid for the key-mask threads), so no
     * gather waits on a block-table read */
    constexpr int LOADS = WG_BK * (WG_D / 8) / (HPB * 128);   /* 16-byte chunks per thread per tile (K; V too) */
    constexpr int ROW_STEP = HPB * 128 / (WG_D / 8);          /* rows between a thread's chunks (a multiple of 8) */
    static_assert(ROW_STEP % 8 == 0, "a thread's chunks must share their swizzle");
    /* per thread: its first row and 16-byte column; chunk i sits ROW_STEP * i rows further, same swizzle */
    const int r0 = tid >> 4, ch = tid & 15;
    const uint32_t so0 = wg_sw<BK>(r0, ch);
    const T *kc_t = kc + ch * 8, *vc_t = vc + ch * 8;
    /* cache row of key row `in` of block blk, head kvh: blk * rows_blk + kvh * bs + in (fits 32 bits: the host
     * checks num_blocks * n_kv_heads * block_size < 2^31) */
    const uint32_t rows_blk = (uint32_t)(a.n_kv_heads * bs), row_h = (uint32_t)(kvh * bs);
    const uint32_t nblk = (uint32_t)a.num_blocks;
    int nid[LOADS], mid = -1;
    auto fetch_ids = [&](int k0) {
        const int kb = k0 + r0;
        if (bs_sh >= 0) {
#pragma unroll
            for (int i = 0; i < LOADS; i++) {
                const int k = kb + i * ROW_STEP;
                nid[i] = k < kend ? table[k >> bs_sh] : -1;
            }
            if (tid < WG_BK)
                mid = k0 + tid < kend ? table[(k0 + tid) >> bs_sh] : -1;
        } else {
#pragma unroll
            for (int i = 0; i < LOADS; i++) {
                const int k = kb + i * ROW_STEP;
                nid[i] = k < kend ? table[k / bs] : -1;
            }
            if (tid < WG_BK)
                mid = k0 + tid < kend ? table[(k0 + tid) / bs] : -1;
        }
    };
    /* gathers the tile of keys k0.. (whose ids fetch_ids(k0) read) into stage st, then reads the next tile's ids */
    auto load_tile = [&](int st, int k0) {
        const uint32_t kt = base + st * 2 * TILE + so0, vt = kt + TILE;
        const int kb = k0 + r0;
        auto chunk = [&](int i, int in) {
            const int k = kb + i * ROW_STEP;
            const bool ok = k < kend && (uint32_t)nid[i] < nblk;
            const uint32_t row = ok ? (uint32_t)nid[i] * rows_blk + row_h + (uint32_t)in : 0u;
            cp_async16_s(kt + i * ROW_STEP * 128, kc_t + (size_t)row * WG_D, ok);
            cp_async16_s(vt + i * ROW_STEP * 128, vc_t + (size_t)row * WG_D, ok);
        };
        if (bs_sh >= 0) {
#pragma unroll
            for (int i = 0; i < LOADS; i++)
                chunk(i, (kb + i * ROW_STEP) & (bs - 1));
        } else {
#pragma unroll
            for (int i = 0; i < LOADS; i++)
                chunk(i, (kb + i * ROW_STEP) % bs);
        }
        if (tid < WG_BK) {   /* the first BK / 32 warps: one key each */
            const int k = k0 + tid;
            const bool ok = k < kend && (uint32_t)mid < nblk;
            const uint32_t m = __ballot_sync(0xffffffffu, ok);
            if (lane == 0)
                kmask[st * KMW + (tid >> 5)] = m;
        }
        fetch_ids(k0 + WG_BK);
    };
    /* MIX: the same for power-of-two block sizes without a branch (so it shares the softmax's basic block); tiles
     * past the last are zero-filled into a stage nobody reads again, their ids -1 */
    auto fetch_ids_p2 = [&](int k0) {
        const int kb = k0 + r0;
#pragma unroll
        for (int i = 0; i < LOADS; i++) {
            const int k = kb + i * ROW_STEP;
            nid[i] = k < kend ? table[k >> bs_sh] : -1;
        }
        const int km = k0 + (tid & (WG_BK - 1));
        mid = tid < WG_BK && km < kend ? table[km >> bs_sh] : -1;
    };
    auto load_tile_p2 = [&](int st, int k0) {
        const uint32_t kt = base + st * 2 * TILE + so0, vt = kt + TILE;
        const int kb = k0 + r0;
#pragma unroll
        for (int i = 0; i < LOADS; i++) {
            const int k = kb + i * ROW_STEP;
            const bool ok = k < kend && (uint32_t)nid[i] < nblk;
            const uint32_t row = ok ? (uint32_t)nid[i] * rows_blk + row_h + (uint32_t)(k & (bs - 1)) : 0u;
            cp_async16_s(kt + i * ROW_STEP * 128, kc_t + (size_t)row * WG_D, ok);
            cp_async16_s(vt + i * ROW_STEP * 128, vc_t + (size_t)row * WG_D, ok);
        }
        /* every warp votes (warps past the first BK / 32 on nothing); the first BK / 32 store their word */
        const uint32_t m = __ballot_sync(0xffffffffu, tid < WG_BK && k0 + tid < kend && (uint32_t)mid < nblk);
        if (lane == 0 && tid < WG_BK)
            kmask[st * KMW + (tid >> 5)] = m;
        fetch_ids_p2(k0 + WG_BK);
    };
    fetch_ids(0);

    float o[WG_D / 2];   /* m64n128 accumulator: 16 column groups x 4 */
#pragma unroll
    for (int i = 0; i < WG_D / 2; i++)
        o[i] = 0.f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;

    /* S = Q K^T of the tile in stage st (asynchronous; the caller commits) */
    auto issue_s = [&](float (&sc)[WG_BK / 8][4], int st) { wg_issue_s<T, BK>(sc, qa, base + st * 2 * TILE); };
    /* masks: causal, past the context, bad block ids (-inf) */
    auto apply_masks = [&](float (&sc)[WG_BK / 8][4], int st, int k0) {
        wg_apply_masks<BK>(sc, kmask + st * KMW, k0, r.pos_min, r.pos0, r.pos1, t4);
    };
    /* masks, online softmax: sc becomes P; m, l move; returns the rescale factors of O's rows */
    auto softmax = [&](float (&sc)[WG_BK / 8][4], int st, int k0, float &al0, float &al1) {
        apply_masks(sc, st, k0);
        pf_softmax<WG_BK / 8>(sc, m0, m1, l0, l1, al0, al1);
    };
    uint32_t pa[WG_BK / 16][4];   /* P of a tile: the A operand of P V */
    auto pack_p = [&](const float (&sc)[WG_BK / 8][4]) { wg_pack_p<T, BK>(pa, sc); };
    /* O += P V with V in stage st and P in pa (asynchronous; the caller commits) */
    auto issue_pv = [&](int st) { wg_issue_pv<T, BK>(o, pa, base + st * 2 * TILE + TILE); };
    auto rescale_o = [&](float al0, float al1) { wg_rescale_o(o, al0, al1); };
    float sa[WG_BK / 8][4];   /* S of the current tile, then its P (8 column groups x 4) */
    if constexpr (!OVL) {
        /* one tile at a time: S, wait, softmax, P V, wait */
#pragma unroll
        for (int p = 0; p < ST - 1; p++) {
            if (p < n_tiles)
                load_tile(p, p * WG_BK);
            cp_async_commit();
        }
        for (int it = 0; it < n_tiles; it++) {
            const int nx = it + ST - 1;
            if (nx < n_tiles)
                load_tile(nx % ST, nx * WG_BK);
            cp_async_commit();
            cp_async_wait<ST - 1>();
            wg_fence_proxy_async();
            __syncthreads();
            const int st = it % ST;
            issue_s(sa, st);
            wg_commit();
            wg_wait<0>();
            wg_fence_regs<WG_BK / 2>(&sa[0][0]);
            float al0, al1;
            softmax(sa, st, it * WG_BK, al0, al1);
            rescale_o(al0, al1);
            pack_p(sa);
            issue_pv(st);
            wg_commit();
            wg_wait<0>();
            wg_fence_regs<WG_D / 2>(o);
            __syncthreads();   /* stage st is refilled ST - 1 tiles from now */
        }
    } else {
        /* software pipelined (FA3's intra-warpgroup overlap): iteration j issues S_j and then P V_{j-1} (P_{j-1} is
         * carried in registers as the A operand), waits for S_j only, runs tile j's softmax while P V_{j-1} is on
         * the tensor cores, then waits for it, rescales O and packs P_j.  Nothing is in flight across the loop's
         * back edge, so ptxas keeps the MMAs asynchronous.  Tile t sits in stage t % ST; iteration j loads tile
         * j + ST - 2 into the stage of tile j - 2, which every warpgroup is done with at the barrier. */
        static_assert(ST >= 3, "the pipelined schedule needs 3 stages or more");
#pragma unroll
        for (int p = 0; p < ST - 1; p++) {
            if (p < n_tiles)
                load_tile(p, p * WG_BK);
            cp_async_commit();
        }
        if (n_tiles > 0) {
            cp_async_wait<ST - 2>();   /* tile 0 */
            wg_fence_proxy_async();
            __syncthreads();
            issue_s(sa, 0);
            wg_commit();
            wg_wait<0>();
            wg_fence_regs<WG_BK / 2>(&sa[0][0]);
            float al0, al1;
            softmax(sa, 0, 0, al0, al1);
            pack_p(sa);
        }
        for (int j = 1; j < n_tiles; j++) {
            cp_async_wait<ST - 3>();   /* tile j (committed so far: tiles 0 .. j + ST - 3) */
            wg_fence_proxy_async();
            __syncthreads();
            issue_s(sa, j % ST);
            wg_commit();
            issue_pv((j - 1) % ST);
            wg_commit();
            /* the next gather (block-table reads, cp.async) is issued while both products run (MIX: inside the
             * softmax) */
            const int t = j + ST - 2;
            if constexpr (!MIX) {
                if (t < n_tiles)
                    load_tile(t % ST, t * WG_BK);
                cp_async_commit();
            }
            wg_wait<1>();   /* S_j */
            wg_fence_regs<WG_BK / 2>(&sa[0][0]);
            float al0, al1;
            if constexpr (MIX) {
                apply_masks(sa, j % ST, j * WG_BK);
                load_tile_p2(t % ST, t * WG_BK);   /* in the softmax's basic block */
                cp_async_commit();
                pf_softmax<WG_BK / 8>(sa, m0, m1, l0, l1, al0, al1);
            } else {
                softmax(sa, j % ST, j * WG_BK, al0, al1);
            }
            /* a basic-block boundary between the softmax and the P V wait: within one block ptxas scheduled the wait
             * at the block's top, above the softmax (SASS of dev_s10e / dev_s10f), so the two never overlapped;
             * it does not move the wait into an earlier block.  qlen < 0 never holds. */
            if (qlen < 0)
                __trap();
            wg_wait<0>();   /* P V_{j-1} */
            wg_fence_regs<WG_D / 2>(o);
            rescale_o(al0, al1);
            pack_p(sa);
        }
        if (n_tiles > 0) {
            issue_pv((n_tiles - 1) % ST);
            wg_commit();
        }
        wg_wait<0>();
        wg_fence_regs<WG_D / 2>(o);
    }
    cp_async_wait<0>();
    pf_store_rows<WG_D>(a, o, l0, l1, row0, row1, qs, qlen, h, t4);
#else
    __trap();   /* the host launches this only where the sm_90a code exists */
#endif
}

#ifdef QR_HAVE_WGMMA
#define WG_PROBE_VALUE 1
#else
#define WG_PROBE_VALUE 0
#endif
__global__ void k_attn_prefill_wg_probe(int *out) { *out = WG_PROBE_VALUE; }

/* 1 if the device runs sm_90a code of this file (an H100/H200 and a build with arch 90a), else 0; asked once */
extern "C" int cuda_attn_prefill_wg_available(void)
{
    static int avail = -1;
    if (avail >= 0)
        return avail;
    int dev = 0, major = 0, minor = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) || major != 9 || minor != 0) {
        (void)cudaGetLastError();
        return avail = 0;
    }
    int *d = NULL, h = 0;
    if (cudaMalloc(&d, sizeof(int)) != cudaSuccess) {
        (void)cudaGetLastError();
        return avail = 0;
    }
    k_attn_prefill_wg_probe<<<1, 1>>>(d);
    if (cudaGetLastError() != cudaSuccess || cudaMemcpy(&h, d, sizeof(int), cudaMemcpyDeviceToHost) != cudaSuccess)
        h = 0;
    cudaFree(d);
    (void)cudaGetLastError();
    return avail = h == 1;
}

extern "C" int cuda_attn_prefill_wg_supported(int head_dim, int kv_dtype, int n_heads, int n_kv_heads)
{
    return head_dim == WG_D && (kv_dtype == QK_BF16 || kv_dtype == QK_F16) && n_kv_heads > 0 &&
           n_heads % n_kv_heads == 0 && (n_heads / n_kv_heads) % WG_HPB == 0;
}

template <typename T, int ST, bool OVL, int BK = 64, int HPB = WG_HPB, bool MIX = false>
static int wg_launch(qr_cuda_stream st, const struct qr_cuda_attn *a)
{
    static unsigned long long raised;   /* per instantiation, a bit per device */
    const int rs = qk_raise_smem(k_attn_prefill_wg<T, ST, OVL, BK, HPB, MIX>, (size_t)WG_SMEM(ST, BK), &raised);
    if (rs)
        return rs;
    dim3 grid((unsigned)((a->max_q_len + WG_BQ - 1) / WG_BQ), (unsigned)(a->n_heads / HPB), (unsigned)a->n_seqs);
    k_attn_prefill_wg<T, ST, OVL, BK, HPB, MIX><<<grid, HPB * 128, WG_SMEM(ST, BK), st>>>(*a);
    return qk_launch_result();
}

/* checks the shape, then launches the instantiation for the cache's element type */
template <int ST, bool OVL, int BK, int HPB = WG_HPB, bool MIX = false>
static int wg_dispatch(qr_cuda_stream st, const struct qr_cuda_attn *a)
{
    if (a->n_seqs <= 0 || a->n_tokens <= 0 || a->max_q_len <= 0)
        return 0;
    if (!cuda_attn_prefill_wg_supported(a->head_dim, a->kv_dtype, a->n_heads, a->n_kv_heads))
        return (int)cudaErrorInvalidValue;
    return a->kv_dtype == QK_BF16 ? wg_launch<__nv_bfloat16, ST, OVL, BK, HPB, MIX>(st, a)
                                  : wg_launch<__half, ST, OVL, BK, HPB, MIX>(st, a);
}

/* the one-tile-at-a-time schedule (3 stages of 64 keys), for A/B runs: QR_CUDA_ATTN_WG_OVL=0 or the kernel lab */
extern "C" int cuda_launch_attn_prefill_wg_serial(qr_cuda_stream st, const struct qr_cuda_attn *a)
{
    return wg_dispatch<3, false, 64>(st, a);
}

/* the pipelined schedule with tiles of 64 keys (5 stages of 32 KB), the default before 128-key tiles measured
 * faster, for A/B runs: QR_CUDA_ATTN_WG_BK=64 or the kernel lab */
extern "C" int cuda_launch_attn_prefill_wg_bk64(qr_cuda_stream st, const struct qr_cuda_attn *a)
{
    return wg_dispatch<5, true, 64>(st, a);
}

/* the pipelined schedule with one warpgroup per block, two blocks per SM (3 stages of 64 keys), for A/B runs:
 * QR_CUDA_ATTN_WG_HPB=1 or the kernel lab */
extern "C" int cuda_launch_attn_prefill_wg_1wg(qr_cuda_stream st, const struct qr_cuda_attn *a)
{
    return wg_dispatch<3, true, 64, 1>(st, a);
}

/* the pipelined schedule over 128-key tiles with the gather behind a branch per chunk, outside the softmax's basic
 * block: the default of the ninth session (1434 us at 8192), for A/B runs: QR_CUDA_ATTN_WG_MIX=0 or the kernel lab */
extern "C" int cuda_launch_attn_prefill_wg_nomix(qr_cuda_stream st, const struct qr_cuda_attn *a)
{
    return wg_dispatch<3, true, 128>(st, a);
}

/* the variant the CUDA device chose at open (its QR_CUDA_ATTN_WG_* switches) */
extern "C" int cuda_launch_attn_prefill_wg_variant(qr_cuda_stream st, const struct qr_cuda_attn *a, int variant)
{
    switch (variant) {
    case QK_WG_SERIAL: return cuda_launch_attn_prefill_wg_serial(st, a);
    case QK_WG_1WG: return cuda_launch_attn_prefill_wg_1wg(st, a);
    case QK_WG_BK64: return cuda_launch_attn_prefill_wg_bk64(st, a);
    case QK_WG_NOMIX: return cuda_launch_attn_prefill_wg_nomix(st, a);
    case QK_WG_TMA: return cuda_launch_attn_prefill_tma(st, a);
    case QK_WG_TMA_PP: return cuda_launch_attn_prefill_tma_pp(st, a);
    case QK_WG_NOTMA: return cuda_launch_attn_prefill_wg(st, a);
    default:
        if (variant > QK_WG_TMA_FL0 && a->block_size >= 64 && (a->block_size & (a->block_size - 1)) == 0)
            return cuda_launch_attn_prefill_tma_fl(st, a, variant - QK_WG_TMA_FL0);
        /* TMA boxes of 64 rows or more beat the cp.async gather (H100, tenth session: 1174-1196 vs 1392-1405 us at
         * 8192 causal with 64- and 128-row blocks); with 16-row boxes they lose (1488 vs 1393 us) */
        if (a->block_size >= 64 && (a->block_size & (a->block_size - 1)) == 0)
            return cuda_launch_attn_prefill_tma(st, a);
        return cuda_launch_attn_prefill_wg(st, a);
    }
}

/* the default: the pipelined schedule over 128-key tiles, 3 stages of 64 KB (1818 vs 1912 us for 64-key tiles at
 * 8192), with the next tile's gather branch-free inside the softmax's basic block (MIX; H100, tenth session: 1403 vs
 * 1434 us at 8192 causal, 4699 vs 4952 us for 4096 queries after 28672 keys; docs/PERF.md).  MIX needs a
 * power-of-two block size; other block sizes run the branchy gather. */
extern "C" int cuda_launch_attn_prefill_wg(qr_cuda_stream st, const struct qr_cuda_attn *a)
{
    if (a->block_size <= 0 || (a->block_size & (a->block_size - 1)) != 0)
        return wg_dispatch<3, true, 128>(st, a);
    return wg_dispatch<3, true, 128, WG_HPB, true>(st, a);
}
