/* attn_prefill_tma.cu - the Hopper prompt attention with K/V tiles brought in
 * by TMA (opt-in, QR_CUDA_ATTN_WG_TMA=1; attn_prefill_wg.cu is the default).
 *
 * Why: in attn_prefill_wg.cu every thread gathers its share of each K/V tile
 * with cp.async (~190 of ~770 warp instructions per 128-key tile, ncu on the
 * H100), and one __syncthreads per tile keeps the two warpgroups of a block
 * in lockstep, so both wait for S at the same time and the tensor cores idle
 * during the softmax of both (40 % tensor-pipe activity).  Here:
 *   - the K (and V) rows of one head in one cache block are contiguous
 *     ([block][kv head][row][128]), so a tile of BK keys is BK / R boxes of R =
 *     min(block size, BK) rows x 64 columns (two per row range), one
 *     cp.async.bulk.tensor each, into the same 128-byte-swizzled layout the
 *     wgmma descriptors read (the tensor map's SWIZZLE_128B is that swizzle);
 *   - lane b of warp 0 issues box b of every tile (block ids read one tile
 *     ahead); full[st] completes when the tile's bytes have landed (expect_tx)
 *     and lane 0 wrote its key-valid words; empty[st] when the 8 warps are
 *     done with it (after the wait for the P V that read its V);
 *   - bad block ids and keys past the context: the box of a bad id is fetched
 *     from a row past the tensor, which TMA zero-fills; keys past the context
 *     (and bad ids) are masked to -inf through the key-valid words, so their
 *     P is exactly 0 (the rows past the context in a valid block are cache
 *     rows, finite: device memory is zeroed at allocation);
 *   - no block barrier in the loop; with PP the warpgroups take turns to issue
 *     their MMAs (FA3's ping-pong: two named barriers), so one's softmax runs
 *     under the other's products.
 * The per-warpgroup schedule (S_j and P V_{j-1} in flight, tile j's softmax
 * under P V_{j-1}), masks, numerics and outputs are attn_prefill_wg.cu's.
 * Needs a power-of-two block size >= 8 (else the default kernel runs). */
#include "attn_wg.cuh"

#include <cudaTypedefs.h>

#define TMA_SMEM(st, bk) (WG_SMEM(st, bk) + (st) * 16)   /* + full[st], empty[st] */

template <typename T, int ST, int BK, bool PP>
__global__ void __launch_bounds__(WG_HPB * 128, 1)
    k_attn_prefill_tma(const struct qr_cuda_attn a, const __grid_constant__ CUtensorMap tmk,
                       const __grid_constant__ CUtensorMap tmv)
{
#ifdef QR_HAVE_WGMMA
    static_assert(WG_HPB == 2, "two warpgroups (heads of one GQA group) per block");
    static_assert(ST >= 3, "the pipelined schedule needs 3 stages or more");
    constexpr int TILE = WG_TILE_BYTES(BK);
    constexpr int KMW = BK / 32;   /* key-valid words per stage */
    extern __shared__ __align__(1024) unsigned char tma_smem_raw[];
    const uint32_t raw = smem_u32(tma_smem_raw);
    const uint32_t base = (raw + 1023u) & ~1023u;
    unsigned char *sbase = tma_smem_raw + (base - raw);
    const uint32_t bars = base + ST * 2 * TILE;                         /* full[ST], empty[ST]: 8 bytes each */
    uint32_t *kmask = (uint32_t *)(sbase + ST * 2 * TILE + ST * 16);   /* [ST][KMW] */
    auto full = [&](int st) { return bars + 8u * (uint32_t)st; };
    auto empty = [&](int st) { return bars + 8u * (uint32_t)(ST + st); };

    const int tid = threadIdx.x, wg = tid >> 7, warp = (tid >> 5) & 3, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
    const int h = blockIdx.y * WG_HPB + wg;
    wg_rows r;
    if (!wg_rows_of(a, h, warp, g, r))
        return;
    const int qs = r.qs, qlen = r.qlen, kvh = r.kvh, row0 = r.row0, row1 = r.row1, kend = r.kend;
    const int32_t *table = a.block_tables + (int64_t)(int)blockIdx.z * a.max_blocks_per_seq;
    const int n_tiles = kend > 0 ? (kend + BK - 1) / BK : 0;

    if (tid == 0) {
        for (int st = 0; st < ST; st++) {
            mb_init(full(st), 1);            /* lane 0's arrive.expect_tx (+ the tile's bytes) */
            mb_init(empty(st), WG_HPB * 4);  /* one arrival per warp */
        }
        mb_init_fence();
    }
    __syncthreads();

    /* ---- the producer: warp 0; lane b < BK / R issues box b of each tile ---- */
    /* box rows R = min(block size, BK), as the host's tensor maps */
    const int bs = a.block_size, bs_sh = __ffs(bs) - 1, R = min(bs, BK), nbox = BK / R;
    const uint32_t rows_blk = (uint32_t)(a.n_kv_heads * bs), row_h = (uint32_t)(kvh * bs);
    const uint32_t nblk = (uint32_t)a.num_blocks;
    const int rows_total = (int)(nblk * rows_blk);   /* < 2^31 (the host checks); a box there is zero-filled */
    int nid = -1;                                    /* this lane's block id for the next tile */
    auto fetch_id = [&](int k0) {
        const int k = k0 + lane * R;
        nid = lane < nbox && k < kend ? table[k >> bs_sh] : -1;
    };
    auto produce = [&](int t) {   /* warp 0 only; tile t's ids are in nid */
        const int st = t % ST, k0 = t * BK;
        uint32_t m[KMW];
#pragma unroll
        for (int w = 0; w < KMW; w++) {
            const int bid = __shfl_sync(0xffffffffu, nid, (32 * w + lane) / R);
            m[w] = __ballot_sync(0xffffffffu, k0 + 32 * w + lane < kend && (uint32_t)bid < nblk);
        }
        if (lane == 0) {
#pragma unroll
            for (int w = 0; w < KMW; w++)
                kmask[st * KMW + w] = m[w];
            mb_arrive_expect_tx(full(st), 2 * TILE);   /* release: the words above are visible to the waiters */
        }
        __syncwarp();
        if (lane < nbox) {
            const int k = k0 + lane * R;
            const bool ok = k < kend && (uint32_t)nid < nblk;
            const int row = ok ? (int)((uint32_t)nid * rows_blk + row_h + (uint32_t)(k & (bs - 1))) : rows_total;
            const uint32_t kt = base + st * 2 * TILE + lane * R * 128, vt = kt + TILE;
            tma_load_2d(kt, &tmk, 0, row, full(st));
            tma_load_2d(kt + BK * 128, &tmk, 64, row, full(st));
            tma_load_2d(vt, &tmv, 0, row, full(st));
            tma_load_2d(vt + BK * 128, &tmv, 64, row, full(st));
        }
        fetch_id(k0 + BK);
    };
    if (tid < 32) {
        fetch_id(0);
#pragma unroll
        for (int p = 0; p < ST - 1; p++)
            if (p < n_tiles)
                produce(p);
    }

    /* ---- the consumers: warpgroup wg owns head h, query rows q0 .. q0 + 63 ---- */
    uint32_t qa[WG_D / 16][4];
    wg_load_q<T>(qa, a, r, h, t4);
    float o[WG_D / 2];
#pragma unroll
    for (int i = 0; i < WG_D / 2; i++)
        o[i] = 0.f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;
    float sa[BK / 8][4];
    uint32_t pa[BK / 16][4];

    auto wait_full = [&](int t) { mb_wait(full(t % ST), (uint32_t)((t / ST) & 1)); };
    auto release = [&](int t) {   /* this warp is done with tile t's stage */
        if (lane == 0)
            mb_arrive(empty(t % ST));
    };
    auto softmax = [&](int t, float &al0, float &al1) {
        wg_apply_masks<BK>(sa, kmask + (t % ST) * KMW, t * BK, r.pos_min, r.pos0, r.pos1, t4);
        pf_softmax<BK / 8>(sa, m0, m1, l0, l1, al0, al1);
    };
    /* PP: the warpgroups issue their MMAs in turn (named barrier 1 + wg: wait for my turn; 2 - wg: pass it on);
     * warpgroup 1 gives warpgroup 0 the first turn, and skips passing on its last */
    auto turn_wait = [&]() {
        if constexpr (PP)
            nb_sync(1 + wg, WG_HPB * 128);
    };
    auto turn_pass = [&](bool last) {
        if constexpr (PP) {
            if (!(last && wg == 1))
                nb_arrive(2 - wg, WG_HPB * 128);
        }
    };
    if constexpr (PP) {
        if (wg == 1 && n_tiles > 0)
            nb_arrive(1, WG_HPB * 128);
    }

    if (n_tiles > 0) {
        wait_full(0);
        turn_wait();
        wg_issue_s<T, BK>(sa, qa, base);
        wg_commit();
        turn_pass(false);
        wg_wait<0>();
        wg_fence_regs<BK / 2>(&sa[0][0]);
        float al0, al1;
        softmax(0, al0, al1);
        wg_pack_p<T, BK>(pa, sa);
    }
    for (int j = 1; j < n_tiles; j++) {
        wait_full(j);
        turn_wait();
        wg_issue_s<T, BK>(sa, qa, base + (j % ST) * 2 * TILE);
        wg_commit();
        wg_issue_pv<T, BK>(o, pa, base + ((j - 1) % ST) * 2 * TILE + TILE);
        wg_commit();
        turn_pass(false);
        /* tile j + ST - 2 goes into the stage of tile j - 2, once every warp released it */
        if (tid < 32) {
            const int t = j + ST - 2;
            if (t < n_tiles) {
                if (t >= ST)
                    mb_wait(empty(t % ST), (uint32_t)(((t - ST) / ST) & 1));
                produce(t);
            }
        }
        wg_wait<1>();   /* S_j */
        wg_fence_regs<BK / 2>(&sa[0][0]);
        float al0, al1;
        softmax(j, al0, al1);
        if (qlen < 0)   /* never: a basic-block boundary, so the P V wait stays below the softmax */
            __trap();
        wg_wait<0>();   /* P V_{j-1} */
        wg_fence_regs<WG_D / 2>(o);
        release(j - 1);
        wg_rescale_o(o, al0, al1);
        wg_pack_p<T, BK>(pa, sa);
    }
    if (n_tiles > 0) {
        turn_wait();
        wg_issue_pv<T, BK>(o, pa, base + ((n_tiles - 1) % ST) * 2 * TILE + TILE);
        wg_commit();
        turn_pass(true);
    }
    wg_wait<0>();
    wg_fence_regs<WG_D / 2>(o);
    pf_store_rows<WG_D>(a, o, l0, l1, row0, row1, qs, qlen, h, t4);
#else
    __trap();   /* the host launches this only where the sm_90a code exists */
#endif
}

/* cuTensorMapEncodeTiled from the driver, through the runtime (no link against libcuda); NULL where missing */
static PFN_cuTensorMapEncodeTiled_v12000 tma_encoder(void)
{
    static PFN_cuTensorMapEncodeTiled_v12000 fn;
    static bool asked;   /* the same answer every time, so a race is harmless */
    if (!asked) {
        void *p = NULL;
        cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
        if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &q) ==
                cudaSuccess &&
            q == cudaDriverEntryPointSuccess)
            fn = (PFN_cuTensorMapEncodeTiled_v12000)p;
        else
            (void)cudaGetLastError();
        asked = true;
    }
    return fn;
}

/* the cache as a 2-D tensor [rows][128] of 16-bit elements, boxes of 64 columns x box_rows rows, 128-byte swizzle */
static bool tma_map(CUtensorMap *m, PFN_cuTensorMapEncodeTiled_v12000 enc, const void *cache, int dtype,
                    uint64_t rows, int box_rows)
{
    const cuuint64_t dims[2] = {WG_D, rows};
    const cuuint64_t strides[1] = {WG_D * 2};
    const cuuint32_t box[2] = {64, (cuuint32_t)box_rows};
    const cuuint32_t estr[2] = {1, 1};
    CUresult r = enc(m, dtype == QK_BF16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 2,
                     (void *)cache, dims, strides, box, estr, CU_TENSOR_MAP_INTERLEAVE_NONE,
                     CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    return r == CUDA_SUCCESS;
}

template <typename T, int ST, int BK, bool PP>
static int tma_launch(qr_cuda_stream st, const struct qr_cuda_attn *a, const CUtensorMap &mk, const CUtensorMap &mv)
{
    static bool raised;   /* per instantiation; idempotent, so a race is harmless */
    if (!raised) {
        cudaError_t e = cudaFuncSetAttribute(k_attn_prefill_tma<T, ST, BK, PP>,
                                             cudaFuncAttributeMaxDynamicSharedMemorySize, TMA_SMEM(ST, BK));
        if (e != cudaSuccess)
            return (int)e;
        raised = true;
    }
    dim3 grid((unsigned)((a->max_q_len + WG_BQ - 1) / WG_BQ), (unsigned)(a->n_heads / WG_HPB), (unsigned)a->n_seqs);
    k_attn_prefill_tma<T, ST, BK, PP><<<grid, WG_HPB * 128, TMA_SMEM(ST, BK), st>>>(*a, mk, mv);
    return qk_launch_result();
}

/* checks the shape; where TMA cannot serve it (block size not a power of two >= 8, no encoder, a cache not 16-byte
 * aligned, 2^31 rows or more) the default kernel runs */
template <int ST, int BK, bool PP>
static int tma_dispatch(qr_cuda_stream st, const struct qr_cuda_attn *a)
{
    if (a->n_seqs <= 0 || a->n_tokens <= 0 || a->max_q_len <= 0)
        return 0;
    if (!cuda_attn_prefill_wg_supported(a->head_dim, a->kv_dtype, a->n_heads, a->n_kv_heads))
        return (int)cudaErrorInvalidValue;
    const int bs = a->block_size;
    const uint64_t rows = (uint64_t)a->num_blocks * (uint64_t)a->n_kv_heads * (uint64_t)(bs > 0 ? bs : 0);
    PFN_cuTensorMapEncodeTiled_v12000 enc = tma_encoder();
    if (bs < 8 || (bs & (bs - 1)) != 0 || rows == 0 || rows >= (1ull << 31) || !enc ||
        ((uintptr_t)a->k_cache & 15) != 0 || ((uintptr_t)a->v_cache & 15) != 0)
        return cuda_launch_attn_prefill_wg(st, a);
    const int box_rows = bs < BK ? bs : BK;
    CUtensorMap mk, mv;
    if (!tma_map(&mk, enc, a->k_cache, a->kv_dtype, rows, box_rows) ||
        !tma_map(&mv, enc, a->v_cache, a->kv_dtype, rows, box_rows))
        return cuda_launch_attn_prefill_wg(st, a);
    return a->kv_dtype == QK_BF16 ? tma_launch<__nv_bfloat16, ST, BK, PP>(st, a, mk, mv)
                                  : tma_launch<__half, ST, BK, PP>(st, a, mk, mv);
}

/* 128-key tiles, 3 stages, no turn-taking (QR_CUDA_ATTN_WG_TMA=1) */
extern "C" int cuda_launch_attn_prefill_tma(qr_cuda_stream st, const struct qr_cuda_attn *a)
{
    return tma_dispatch<3, 128, false>(st, a);
}
/* 128-key tiles, 3 stages, the warpgroups taking turns (QR_CUDA_ATTN_WG_TMA=pp) */
extern "C" int cuda_launch_attn_prefill_tma_pp(qr_cuda_stream st, const struct qr_cuda_attn *a)
{
    return tma_dispatch<3, 128, true>(st, a);
}
