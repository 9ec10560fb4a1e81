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
 * Needs a power-of-two block size >= 8 (else the default kernel runs).
 *
 * FP8 E4M3 caches (F8): the boxes (R rows x 128 bytes, no swizzle) land in two 32 KB staging stages; every thread
 * converts its share of a tile to f16 (exact) into f16 slots in the wgmma layout above: K slots t % 2, V slots
 * t % 3, so tile j + 1 is converted in iteration j while S_j and P V_{j-1} run on the tensor cores (K_{j-1} and
 * V_{j-2}, whose slots it takes, are done).  One block-wide named barrier per tile, at the top of iteration j:
 * tile j is converted and both warpgroups are past iteration j - 1.  A conversion releases its staging stage and
 * warp 0 refills it with tile t + 2; the tile's key-valid words are kept in registers.  The math is f16 as in the
 * other FP8 kernels. */
#include "attn_wg.cuh"
#include "qr_fp8.cuh"

#include <cudaTypedefs.h>
#include <type_traits>

#define TMA_SMEM(st, bk) (WG_SMEM(st, bk) + (st) * 16)   /* + full[st], empty[st] */
/* F8: staging stages of 2 * bk rows of 128 bytes, two f16 K slots and three V slots, slack, key masks, barriers
 * (ST 2, BK 128: 230,464 bytes) */
#define TMA_SMEM_F8(st, bk) ((st) * 2 * (bk) * 128 + 5 * WG_TILE_BYTES(bk) + 1024 + (st) * (bk) / 8 + (st) * 16)
#define TMA_F8_BAR 5   /* the named barrier of the conversions (1 and 2 are the turns') */
#define TMA_QS_BAR 6   /* FL & 2: the named barriers (6 + warpgroup) of the Q stores */
#define TMA_QB (WG_BQ * WG_D * 2)   /* FL & 2: one warpgroup's Q tile, 16-bit, swizzled as the K tiles */

/* FL: lab bits (cuda_launch_attn_prefill_tma_fl; 0 is the engine's kernel): 1 no basic-block boundary between the
 * softmax and the P V wait; 2 Q in shared memory (S = Q K^T with both operands there, as FA3: 32 registers fewer);
 * 8 O rescaled after the next S is issued, before its P V (FA3's order), instead of between the P V wait and the
 * next issue; 128 K and V stages on their own barriers: a K stage goes back after its softmax's masks, a V stage
 * after its P V, so K is fetched two tiles ahead and V one tile before its P V (three stages: one tile ahead for
 * both before); 256 heads fastest in the launch order (blocks running together read different KV heads); 512 the
 * two blocks of a head quad as a cluster, each tile fetched once for both (TMA multicast, half the L2 reads);
 * 1024 the last warp to release a stage refills it (each warp counts itself out on the stage's word with an
 * acquire-release atomic; the eighth issues tile t + ST, whose block ids every warp loaded at the top of the
 * iteration): no warp ever waits for a stage to come free, where in the other forms warp 0 -- one of warpgroup 0's
 * MMA warps -- waits for warpgroup 1 to finish with tile j - 2 before its own next softmax;
 * 16 / 32 / 64 timing only (below) */
template <typename T, int ST, int BK, bool PP, bool F8 = false, int FL = 0>
__global__ void __launch_bounds__(WG_HPB * 128, 1)
    k_attn_prefill_tma(const struct qr_cuda_attn a, const __grid_constant__ CUtensorMap tmk,
                       const __grid_constant__ CUtensorMap tmv)
{
#ifdef QR_HAVE_WGMMA
    static_assert(WG_HPB == 2, "two warpgroups (heads of one GQA group) per block");
    static_assert(ST >= 3 || F8, "the pipelined schedule needs 3 stages or more (FP8: staging stages, 2)");
    static_assert(!F8 || (!PP && sizeof(T) == 2), "FP8 caches: f16 math, no turns");
    constexpr int TILE = WG_TILE_BYTES(BK);
    constexpr uint32_t STG = 2 * BK * 128;                          /* F8: one staging stage (K rows, V rows) */
    static_assert(!F8 || ST == 2, "FP8: two staging stages (the shared memory holds no more)");
    constexpr uint32_t TILES = F8 ? ST * STG + 5 * TILE : ST * 2 * TILE;
    constexpr int AHEAD = F8 ? ST : ST - 1;                          /* tiles in flight before the first */
    constexpr int KMW = BK / 32;   /* key-valid words per stage */
    constexpr uint32_t QB = (FL & 2) ? TMA_QB : 0;                   /* FL & 2: Q tiles after the K/V tiles */
    static_assert(!(FL & 2) || !F8, "Q in shared memory: 16-bit caches");
    constexpr bool SKV = (FL & 128) != 0;   /* K and V stages on barriers of their own (below) */
    static_assert(!SKV || (!F8 && !(FL & 64) && ST == 3), "split K/V stages: 16-bit caches, loads on, 3 stages");
    constexpr uint32_t BB = (SKV ? 32 : 16) * ST;   /* barrier bytes */
    /* MC: clusters of 2 blocks over the 4 query heads of one KV head; each block fetches half of every K and V tile
     * (one 64-column half) for both, so the L2 is read once per pair (the host launches it only where the GQA group
     * holds whole head quads) */
    constexpr bool MC = (FL & 512) != 0;
    static_assert(!MC || (!F8 && !(FL & 64)), "multicast: 16-bit caches, loads on");
    /* LR: the last warp out of a stage refills it (empty[st] is then a plain counter word) */
    constexpr bool LR = (FL & 1024) != 0;
    static_assert(!LR || (!F8 && !MC && !(FL & 64) && !PP), "last-releaser refill: 16-bit caches, one block, no turns");
    extern __shared__ __align__(1024) unsigned char tma_smem_raw[];
    const uint32_t raw = smem_u32(tma_smem_raw);
    const uint32_t base = (raw + 1023u) & ~1023u;
    unsigned char *sbase = tma_smem_raw + (base - raw);
    const uint32_t bars = base + TILES + WG_HPB * QB;   /* full[ST], empty[ST] (SKV: fullv[ST], emptyv[ST]): 8 B */
    uint32_t *kmask = (uint32_t *)(sbase + TILES + WG_HPB * QB + BB);   /* [ST][KMW] */
    const uint32_t hb = base + (F8 ? ST * STG : 0);            /* F8: the f16 slots, 2 K then 3 V, TILE each */
    auto full = [&](int st) { return bars + 8u * (uint32_t)st; };
    auto empty = [&](int st) { return bars + 8u * (uint32_t)(ST + st); };
    auto fullv = [&](int st) { return bars + 8u * (uint32_t)(2 * ST + st); };   /* SKV only */
    auto emptyv = [&](int st) { return bars + 8u * (uint32_t)(3 * ST + st); };

    const int tid = threadIdx.x, wg = tid >> 7, warp = (tid >> 5) & 3, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
    constexpr bool HF = (FL & 256) != 0;   /* heads fastest in the launch order (wg_rows_of) */
    const int h = (HF ? blockIdx.x : blockIdx.y) * WG_HPB + wg;
    wg_rows r;
    if (!wg_rows_of(a, h, warp, g, r, HF))
        return;
    const int qs = r.qs, qlen = r.qlen, kvh = r.kvh, row0 = r.row0, row1 = r.row1, kend = r.kend;
    const int32_t *table = a.block_tables + (int64_t)(int)blockIdx.z * a.max_blocks_per_seq;
    const int n_tiles = kend > 0 ? (kend + BK - 1) / BK : 0;

    if (tid == 0) {
        for (int st = 0; st < ST; st++) {
            mb_init(full(st), 1);            /* lane 0's arrive.expect_tx (+ the tile's bytes) */
            if constexpr (LR)
                asm volatile("st.shared.u32 [%0], 0;\n" ::"r"(empty(st)) : "memory");   /* releases so far */
            else
                mb_init(empty(st), WG_HPB * 4 * (MC ? 2 : 1));   /* one arrival per warp (MC: of both blocks) */
            if constexpr (SKV) {
                mb_init(fullv(st), 1);
                if constexpr (LR)
                    asm volatile("st.shared.u32 [%0], 0;\n" ::"r"(emptyv(st)) : "memory");
                else
                    mb_init(emptyv(st), WG_HPB * 4 * (MC ? 2 : 1));
            }
        }
        mb_init_fence();
    }
    if constexpr (MC)
        cluster_sync_all();   /* both blocks' barriers are ready before either multicasts into them */
    else
        __syncthreads();
    const uint32_t crank = MC ? cluster_rank() : 0;

    /* ---- the producer: warp 0; lane b < BK / R issues box b of each tile ---- */
    /* box rows R = min(block size, BK), as the host's tensor maps */
    const int bs = a.block_size, bs_sh = __ffs(bs) - 1, R = min(bs, BK), nbox = BK / R;
    const uint32_t rows_blk = (uint32_t)(a.n_kv_heads * bs), row_h = (uint32_t)(kvh * bs);
    const uint32_t nblk = (uint32_t)a.num_blocks;
    const int rows_total = (int)(nblk * rows_blk);   /* < 2^31 (the host checks); a box there is zero-filled */
    int nid = -1;                                    /* this lane's block id for the next tile */
    int vid = -1;                                    /* SKV: this lane's block id of the last K produced */
    auto fetch_id = [&](int k0) {
        const int k = k0 + lane * R;
        nid = lane < nbox && k < kend ? table[k >> bs_sh] : -1;
    };
    auto box_row = [&](int k, int id) {   /* the cache row of key k in block id; past the tensor if k or id is bad */
        const bool ok = k < kend && (uint32_t)id < nblk;
        return ok ? (int)((uint32_t)id * rows_blk + row_h + (uint32_t)(k & (bs - 1))) : rows_total;
    };
    auto produce = [&](int t, bool next_ids = true) {   /* one warp; tile t's ids are in nid */
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
            mb_arrive_expect_tx(full(st), F8 ? STG : SKV ? TILE : 2 * TILE);   /* release: the words are visible */
        }
        __syncwarp();
        if (lane < nbox) {
            const int row = box_row(k0 + lane * R, nid);
            if constexpr (F8) {   /* whole 128-byte rows */
                const uint32_t kt = base + st * STG + lane * R * 128;
                tma_load_2d(kt, &tmk, 0, row, full(st));
                tma_load_2d(kt + BK * 128, &tmv, 0, row, full(st));
            } else {
                const uint32_t kt = base + st * 2 * TILE + lane * R * 128, vt = kt + TILE;
                if constexpr (MC) {   /* this block's half of K and of V, into both blocks */
                    tma_load_2d_mc(kt + crank * (BK * 128), &tmk, 64 * (int)crank, row, full(st), 3);
                    if constexpr (!SKV)
                        tma_load_2d_mc(vt + crank * (BK * 128), &tmv, 64 * (int)crank, row, full(st), 3);
                } else {
                    tma_load_2d(kt, &tmk, 0, row, full(st));
                    tma_load_2d(kt + BK * 128, &tmk, 64, row, full(st));
                }
                if constexpr (!SKV && !MC) {
                    tma_load_2d(vt, &tmv, 0, row, full(st));
                    tma_load_2d(vt + BK * 128, &tmv, 64, row, full(st));
                }
            }
        }
        if (next_ids) {   /* (LR keeps vid and nid itself) */
            vid = nid;
            fetch_id(k0 + BK);
        }
    };
    /* SKV: tile t's V, one production after its K (whose ids are in vid) */
    auto produce_v = [&](int t) {
        const int st = t % ST;
        if (lane == 0)
            mb_arrive_expect_tx(fullv(st), TILE);
        __syncwarp();
        if (lane < nbox) {
            const int row = box_row(t * BK + lane * R, vid);
            const uint32_t vt = base + st * 2 * TILE + TILE + lane * R * 128;
            if constexpr (MC) {
                tma_load_2d_mc(vt + crank * (BK * 128), &tmv, 64 * (int)crank, row, fullv(st), 3);
            } else {
                tma_load_2d(vt, &tmv, 0, row, fullv(st));
                tma_load_2d(vt + BK * 128, &tmv, 64, row, fullv(st));
            }
        }
    };
    if (tid < 32) {
        fetch_id(0);
        if constexpr (SKV) {   /* K 0 .. ST - 1, V 0 .. ST - 2 (LR: ST - 1), each V right after its K */
#pragma unroll
            for (int p = 0; p < ST; p++)
                if (p < n_tiles) {
                    produce(p);
                    if (LR || p < ST - 1)
                        produce_v(p);
                }
        } else {
#pragma unroll
            for (int p = 0; p < (LR ? ST : AHEAD); p++)
                if (p < n_tiles)
                    produce(p);
        }
    }

    /* ---- the consumers: warpgroup wg owns head h, query rows q0 .. q0 + 63 ---- */
    uint32_t qa[WG_D / 16][4];
    const uint32_t qt = base + TILES + (uint32_t)wg * QB;   /* FL & 2: this warpgroup's Q tile */
    if constexpr (FL & 2) {
        /* thread tl stores 16-byte chunk tl % 16 of rows tl / 16 + 8 i: Q * scale * log2 e in 16 bits, zeros past
         * the queries (the values pf_load_q packs) */
        const int tl = tid & 127, ch = tl & 15;
        const float qscale = a.scale * WG_LOG2E;
#pragma unroll
        for (int i = 0; i < WG_BQ / 8; i++) {
            const int rr = (tl >> 4) + 8 * i, row = r.q0 + rr;
            const float *src = a.q + (int64_t)(qs + row) * a.ldq + (int64_t)h * WG_D + ch * 8;
            float x[8];
#pragma unroll
            for (int e = 0; e < 8; e++)
                x[e] = row < qlen ? src[e] * qscale : 0.f;
            asm volatile("st.shared.v4.b32 [%0], {%1, %2, %3, %4};\n" ::"r"(qt + wg_sw<WG_BQ>(rr, ch)),
                         "r"(pf_pack<T>(x[0], x[1])), "r"(pf_pack<T>(x[2], x[3])), "r"(pf_pack<T>(x[4], x[5])),
                         "r"(pf_pack<T>(x[6], x[7]))
                         : "memory");
        }
        wg_fence_proxy_async();   /* generic-proxy stores, read by wgmma */
        nb_sync(TMA_QS_BAR + wg, 128);
    } else {
        wg_load_q<T>(qa, a, r, h, t4);
    }
    float o[WG_D / 2];
#pragma unroll
    for (int i = 0; i < WG_D / 2; i++)
        o[i] = 0.f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;
    float sa[BK / 8][4];
    uint32_t pa[BK / 16][4];

    auto wait_full = [&](int t) {
        if (!(FL & 64) || t < ST)   /* FL & 64 (timing only): tiles past the first ST are never loaded */
            mb_wait(full(t % ST), (uint32_t)((t / ST) & 1));
    };
    /* LR: this warp counts itself out of the stage word at w; true for the eighth (it refills the stage), never for
     * a stage whose next tile t + ST does not exist */
    auto last_out = [&](uint32_t w, int t) {
        uint32_t old = 0;
        if (lane == 0)
            asm volatile("atom.acq_rel.cta.shared::cta.add.u32 %0, [%1], 1;\n" : "=r"(old) : "r"(w) : "memory");
        old = __shfl_sync(0xffffffffu, old, 0);
        const bool last = (old & (WG_HPB * 4 - 1)) == WG_HPB * 4 - 1 && t + ST < n_tiles;
        if (last)
            wg_fence_proxy_async();   /* the other warps' MMA reads of the stage before the TMA writes */
        return last;
    };
    auto release = [&](int t) {   /* this warp is done with tile t's stage (SKV: its V; MC: in both blocks) */
        if constexpr (LR) {   /* the eighth warp out refills the stage with tile t + ST (ids: nid, SKV's V: vid) */
            if (last_out(SKV ? emptyv(t % ST) : empty(t % ST), t)) {
                if constexpr (SKV)
                    produce_v(t + ST);
                else
                    produce(t + ST, false);
            }
            return;
        }
        if (lane == 0) {
            mb_arrive(SKV ? emptyv(t % ST) : empty(t % ST));
            if constexpr (MC)
                mb_arrive_cluster(SKV ? emptyv(t % ST) : empty(t % ST), crank ^ 1u);
        }
    };
    auto release_k = [&](int t) {   /* SKV: this warp is done with tile t's K and key-valid words */
        if constexpr (SKV && LR) {   /* the eighth refills the K stage with tile t + ST (ids in nid) */
            if (last_out(empty(t % ST), t))
                produce(t + ST, false);
            return;
        }
        if (SKV && lane == 0) {
            mb_arrive(empty(t % ST));
            if constexpr (MC)
                mb_arrive_cluster(empty(t % ST), crank ^ 1u);
        }
    };
    auto wait_v = [&](int t) {
        if constexpr (SKV)
            mb_wait(fullv(t % ST), (uint32_t)((t / ST) & 1));
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

    /* S = Q K^T of the K tile at kt (asynchronous; the caller commits) */
    auto issue_s = [&](uint32_t kt) {
        if constexpr (FL & 2) {
            wg_fence();
#pragma unroll
            for (int kk = 0; kk < WG_D / 16; kk++) {
                const uint64_t ad = wg_desc(qt + (kk >> 2) * (WG_BQ * 128) + (kk & 3) * 32, 16, 1024);
                const uint64_t bd = wg_desc(kt + (kk >> 2) * (BK * 128) + (kk & 3) * 32, 16, 1024);
                if constexpr (sizeof(T) == 2 && std::is_same<T, __half>::value)
                    wg_mma_n128_ss_h(&sa[0][0], ad, bd, kk > 0);
                else
                    wg_mma_n128_ss_bf(&sa[0][0], ad, bd, kk > 0);
            }
        } else {
            wg_issue_s<T, BK>(sa, qa, kt);
        }
    };
    /* the K tile of tile t for the MMAs, its V tile */
    auto ktile = [&](int t) { return F8 ? hb + (uint32_t)(t & 1) * TILE : base + (uint32_t)(t % ST) * 2 * TILE; };
    auto vtile = [&](int t) { return F8 ? hb + (uint32_t)(2 + t % 3) * TILE : ktile(t) + TILE; };
    /* F8: tile t's staging bytes -> its f16 slots (8 bytes in, 16 out per chunk; 16 chunks per thread) and its
     * key-valid words -> km; then the stage goes back and warp 0 refills it with tile t + ST */
    auto convert = [&](int t, uint32_t (&km)[KMW]) {
        if constexpr (F8) {
            wait_full(t);
#pragma unroll
            for (int w = 0; w < KMW; w++)
                km[w] = kmask[(t % ST) * KMW + w];
            /* thread tid takes 8-byte chunk cc = tid % 16 of rows rr = tid / 16 + 16 i (i < BK / 16) of K, then of
             * V: the swizzle term (cc & 7) ^ (rr & 7) is the same for all its rows, so every address is a fixed
             * per-thread base plus an immediate */
            static_assert(WG_HPB * 128 == 256, "16 threads per row, 16 rows per pass");
            const int cc = tid & 15, r0 = tid >> 4;
            const unsigned char *src = sbase + (t % ST) * STG + r0 * 128 + cc * 8;
            const uint32_t doff = (uint32_t)((cc >> 3) * (BK * 128) + r0 * 128 + (((cc & 7) ^ (r0 & 7)) << 4));
            const uint32_t kd = ktile(t) + doff, vd = vtile(t) + doff;
#pragma unroll
            for (int i = 0; i < 2 * BK / 16; i++) {
                const uint4 h = qk_f8x8_h8(*(const uint2 *)(src + i * 16 * 128));
                const uint32_t dst = (i < BK / 16 ? kd : vd) + (uint32_t)((i % (BK / 16)) * 16 * 128);
                asm volatile("st.shared.v4.b32 [%0], {%1, %2, %3, %4};\n" ::"r"(dst), "r"(h.x), "r"(h.y), "r"(h.z),
                             "r"(h.w)
                             : "memory");
            }
            wg_fence_proxy_async();   /* generic-proxy stores, read by wgmma */
            __syncwarp();
            release(t);   /* the staging stage goes back to the producer */
            if (tid < 32 && t + ST < n_tiles) {
                mb_wait(empty(t % ST), (uint32_t)((t / ST) & 1));
                produce(t + ST);
            }
        }
    };

    float ral0 = 1.f, ral1 = 1.f;   /* FL & 8: the factors of the last softmax, applied before the next P V issue */
    /* timing-only lab bits (wrong results; never in the engine): 16 no softmax (P = S), 32 no MMAs (S stays opaque
     * registers) -- the two halves of a tile's time, to see how much of them overlaps; 64 no K/V loads after the
     * first ST tiles (the MMAs read the stale stages): what the loads cost */
    if constexpr ((FL & 32) != 0) {
#pragma unroll
        for (int j = 0; j < BK / 8; j++)
            sa[j][0] = sa[j][1] = sa[j][2] = sa[j][3] = 0.f;
    }
    auto smx = [&](int t, float &x0, float &x1) {
        if constexpr ((FL & 16) != 0)
            x0 = x1 = 1.f;
        else
            softmax(t, x0, x1);
    };
    auto iss = [&](uint32_t kt) {
        if constexpr ((FL & 32) == 0)
            issue_s(kt);
    };
    auto ipv = [&](uint32_t vt) {
        if constexpr ((FL & 32) == 0) {
            wg_issue_pv<T, BK>(o, pa, vt);
        } else {
#pragma unroll
            for (int jj = 0; jj < BK / 16; jj++)
                asm volatile("" ::"r"(pa[jj][0]), "r"(pa[jj][1]), "r"(pa[jj][2]), "r"(pa[jj][3]));
        }
    };
    if constexpr (F8) {
        uint32_t kmc[KMW], kmn[KMW];
        auto softmax8 = [&](int t, float &al0, float &al1) {
            wg_apply_masks<BK>(sa, kmc, t * BK, r.pos_min, r.pos0, r.pos1, t4);
            pf_softmax<BK / 8>(sa, m0, m1, l0, l1, al0, al1);
        };
        if (n_tiles > 0) {
            convert(0, kmc);
            nb_sync(TMA_F8_BAR, WG_HPB * 128);   /* tile 0 converted */
            wg_issue_s<T, BK>(sa, qa, ktile(0));
            wg_commit();
            if (n_tiles > 1)
                convert(1, kmn);
            wg_wait<0>();
            wg_fence_regs<BK / 2>(&sa[0][0]);
            float al0, al1;
            softmax8(0, al0, al1);
            wg_pack_p<T, BK>(pa, sa);
        }
        for (int j = 1; j < n_tiles; j++) {
#pragma unroll
            for (int w = 0; w < KMW; w++)
                kmc[w] = kmn[w];
            nb_sync(TMA_F8_BAR, WG_HPB * 128);   /* tile j converted; both warpgroups past iteration j - 1 */
            wg_issue_s<T, BK>(sa, qa, ktile(j));
            wg_commit();
            wg_issue_pv<T, BK>(o, pa, vtile(j - 1));
            wg_commit();
            if (j + 1 < n_tiles)   /* under the MMAs: K slot of K_{j-1}, V slot of V_{j-2} */
                convert(j + 1, kmn);
            wg_wait<1>();   /* S_j */
            wg_fence_regs<BK / 2>(&sa[0][0]);
            float al0, al1;
            softmax8(j, al0, al1);
            if (qlen < 0)
                __trap();
            wg_wait<0>();   /* P V_{j-1} */
            wg_fence_regs<WG_D / 2>(o);
            wg_rescale_o(o, al0, al1);
            wg_pack_p<T, BK>(pa, sa);
        }
    } else {
    if constexpr (LR && SKV)   /* tile ST's ids, for the refill of tile 0's K stage below */
        fetch_id(ST * BK);
    if (n_tiles > 0) {
        wait_full(0);
        turn_wait();
        iss(ktile(0));
        wg_commit();
        turn_pass(false);
        wg_wait<0>();
        wg_fence_regs<BK / 2>(&sa[0][0]);
        float al0, al1;
        smx(0, al0, al1);
        release_k(0);
        wg_pack_p<T, BK>(pa, sa);
    }
    for (int j = 1; j < n_tiles; j++) {
        if constexpr (LR && SKV) {   /* ids: V refill of tile j - 1's stage (tile j + 2), K refill of tile j's */
            vid = nid;
            fetch_id((j + ST) * BK);
        } else if constexpr (LR) {   /* tile j + 2's ids, for whichever warp refills tile j - 1's stage */
            fetch_id((j - 1 + ST) * BK);
        }
        wait_full(j);
        turn_wait();
        iss(ktile(j));
        wg_commit();
        if constexpr ((FL & 8) != 0)   /* softmax j - 1's factors, under S_j (P V_{j-2} is done) */
            wg_rescale_o(o, ral0, ral1);
        wait_v(j - 1);
        ipv(vtile(j - 1));
        wg_commit();
        turn_pass(false);
        if constexpr (SKV) {   /* V j + 1 into V j + 1 - ST's stage, K j + 2 into K j + 2 - ST's, once released */
            if (!LR && tid < 32) {
                if (j + 1 < n_tiles) {
                    if (j + 1 >= ST)
                        mb_wait(emptyv((j + 1) % ST), (uint32_t)(((j + 1 - ST) / ST) & 1));
                    produce_v(j + 1);
                }
                if (j + 2 < n_tiles) {
                    mb_wait(empty((j + 2) % ST), (uint32_t)(((j + 2 - ST) / ST) & 1));
                    produce(j + 2);
                }
            }
        } else if (!LR && tid < 32) {   /* tile j + AHEAD - 1 into tile j + AHEAD - 1 - ST's stage, once released */
            const int t = j + AHEAD - 1;
            if (t < n_tiles && (!(FL & 64) || t < ST)) {
                if (t >= ST)
                    mb_wait(empty(t % ST), (uint32_t)(((t - ST) / ST) & 1));
                produce(t);
            }
        }
        wg_wait<1>();   /* S_j */
        wg_fence_regs<BK / 2>(&sa[0][0]);
        float al0, al1;
        smx(j, al0, al1);
        release_k(j);
        if (!(FL & 1) && qlen < 0)   /* never: a basic-block boundary, so the P V wait stays below the softmax */
            __trap();
        wg_wait<0>();   /* P V_{j-1} */
        wg_fence_regs<WG_D / 2>(o);
        release(j - 1);
        if constexpr ((FL & 8) != 0) {
            ral0 = al0;
            ral1 = al1;
        } else {
            wg_rescale_o(o, al0, al1);
        }
        wg_pack_p<T, BK>(pa, sa);
    }
    }
    if (n_tiles > 0) {
        turn_wait();
        if constexpr ((FL & 8) != 0)
            wg_rescale_o(o, ral0, ral1);
        wait_v(n_tiles - 1);
        ipv(vtile(n_tiles - 1));
        wg_commit();
        turn_pass(true);
    }
    wg_wait<0>();
    wg_fence_regs<WG_D / 2>(o);
    pf_store_rows<WG_D>(a, o, l0, l1, row0, row1, qs, qlen, h, t4);
    if constexpr (MC)
        cluster_sync_all();   /* no block leaves while the other may still arrive on its barriers */
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

/* the cache as a 2-D tensor [rows][128]: 16-bit elements in boxes of 64 columns x box_rows rows with the 128-byte
 * swizzle, or FP8 bytes in boxes of whole rows, unswizzled (the conversion reads them) */
static bool tma_map(CUtensorMap *m, PFN_cuTensorMapEncodeTiled_v12000 enc, const void *cache, int dtype,
                    uint64_t rows, int box_rows)
{
    const bool f8 = dtype == QK_F8;
    const cuuint64_t dims[2] = {WG_D, rows};
    const cuuint64_t strides[1] = {WG_D * (f8 ? 1u : 2u)};
    const cuuint32_t box[2] = {f8 ? (cuuint32_t)WG_D : 64u, (cuuint32_t)box_rows};
    const cuuint32_t estr[2] = {1, 1};
    const CUtensorMapDataType dt = f8                ? CU_TENSOR_MAP_DATA_TYPE_UINT8
                                   : dtype == QK_BF16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16
                                                      : CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
    CUresult r = enc(m, dt, 2, (void *)cache, dims, strides, box, estr, CU_TENSOR_MAP_INTERLEAVE_NONE,
                     f8 ? CU_TENSOR_MAP_SWIZZLE_NONE : CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                     CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    return r == CUDA_SUCCESS;
}

template <typename T, int ST, int BK, bool PP, bool F8 = false, int FL = 0>
static int tma_launch(qr_cuda_stream st, const struct qr_cuda_attn *a, const CUtensorMap &mk, const CUtensorMap &mv)
{
    constexpr int smem = F8 ? TMA_SMEM_F8(ST, BK)
                            : TMA_SMEM(ST, BK) + ((FL & 2) ? WG_HPB * TMA_QB : 0) + ((FL & 128) ? ST * 16 : 0);
    static unsigned long long raised;   /* per instantiation, a bit per device */
    const int rs = qk_raise_smem(k_attn_prefill_tma<T, ST, BK, PP, F8, FL>, (size_t)smem, &raised);
    if (rs)
        return rs;
    const unsigned nq = (unsigned)((a->max_q_len + WG_BQ - 1) / WG_BQ), nh = (unsigned)(a->n_heads / WG_HPB);
    const dim3 grid((FL & 256) ? nh : nq, (FL & 256) ? nq : nh, (unsigned)a->n_seqs);
    if constexpr ((FL & 512) != 0) {   /* clusters of the two blocks of a head quad (grid y pairs) */
        static_assert((FL & 256) == 0, "multicast pairs along y");
        cudaLaunchConfig_t cfg = {};
        cfg.gridDim = grid;
        cfg.blockDim = dim3(WG_HPB * 128);
        cfg.dynamicSmemBytes = (size_t)smem;
        cfg.stream = st;
        cudaLaunchAttribute at[1];
        at[0].id = cudaLaunchAttributeClusterDimension;
        at[0].val.clusterDim.x = 1;
        at[0].val.clusterDim.y = 2;
        at[0].val.clusterDim.z = 1;
        cfg.attrs = at;
        cfg.numAttrs = 1;
        const cudaError_t e = cudaLaunchKernelEx(&cfg, k_attn_prefill_tma<T, ST, BK, PP, F8, FL>, *a, mk, mv);
        return e != cudaSuccess ? (int)e : qk_launch_result();
    }
    k_attn_prefill_tma<T, ST, BK, PP, F8, FL><<<grid, WG_HPB * 128, smem, st>>>(*a, mk, mv);
    return qk_launch_result();
}

/* an FP8 cache: head_dim 128, GQA groups of whole head pairs, a power-of-two block size >= 8, 16-byte aligned
 * caches under 2^31 rows, and the driver's encoder; then cuda_launch_attn_prefill_tma takes it (on a device where
 * cuda_attn_prefill_wg_available()) */
extern "C" int cuda_attn_prefill_tma_f8_supported(const struct qr_cuda_attn *a)
{
    const int bs = a->block_size;
    const uint64_t rows = (uint64_t)(a->num_blocks > 0 ? a->num_blocks : 0) * (uint64_t)(a->n_kv_heads > 0 ? a->n_kv_heads : 0) *
                          (uint64_t)(bs > 0 ? bs : 0);
    return a->kv_dtype == QK_F8 && a->head_dim == WG_D && a->n_kv_heads > 0 && a->n_heads % a->n_kv_heads == 0 &&
           (a->n_heads / a->n_kv_heads) % WG_HPB == 0 && bs >= 8 && (bs & (bs - 1)) == 0 && rows > 0 &&
           rows < (1ull << 31) && ((uintptr_t)a->k_cache & 15) == 0 && ((uintptr_t)a->v_cache & 15) == 0 &&
           tma_encoder() != NULL;
}

static int tma_f8(qr_cuda_stream st, const struct qr_cuda_attn *a)
{
    const int bs = a->block_size;
    const uint64_t rows = (uint64_t)a->num_blocks * (uint64_t)a->n_kv_heads * (uint64_t)bs;
    const int box_rows = bs < 128 ? bs : 128;
    CUtensorMap mk, mv;
    PFN_cuTensorMapEncodeTiled_v12000 enc = tma_encoder();
    if (!tma_map(&mk, enc, a->k_cache, QK_F8, rows, box_rows) || !tma_map(&mv, enc, a->v_cache, QK_F8, rows, box_rows))
        return (int)cudaErrorInvalidValue;
    return tma_launch<__half, 2, 128, false, true>(st, a, mk, mv);
}

/* checks the shape; where TMA cannot serve it (block size not a power of two >= 8, no encoder, a cache not 16-byte
 * aligned, 2^31 rows or more) the default kernel runs */
template <int ST, int BK, bool PP, int FL = 0>
static int tma_dispatch(qr_cuda_stream st, const struct qr_cuda_attn *a)
{
    if (a->n_seqs <= 0 || a->n_tokens <= 0 || a->max_q_len <= 0)
        return 0;
    if (a->kv_dtype == QK_F8)   /* FP8 has no cp.async wgmma kernel to fall back to */
        return cuda_attn_prefill_tma_f8_supported(a) ? tma_f8(st, a) : (int)cudaErrorInvalidValue;
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
    if constexpr ((FL & 512) != 0) {   /* multicast pairs need GQA groups of whole head quads */
        if ((a->n_heads / a->n_kv_heads) % (2 * WG_HPB) != 0)
            return a->kv_dtype == QK_BF16 ? tma_launch<__nv_bfloat16, ST, BK, PP, false, (FL & ~512)>(st, a, mk, mv)
                                          : tma_launch<__half, ST, BK, PP, false, (FL & ~512)>(st, a, mk, mv);
    }
    return a->kv_dtype == QK_BF16 ? tma_launch<__nv_bfloat16, ST, BK, PP, false, FL>(st, a, mk, mv)
                                  : tma_launch<__half, ST, BK, PP, false, FL>(st, a, mk, mv);
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
/* the variants the engine may select (QR_CUDA_ATTN_TMA_FL): number, turns, FL bits (7 is 3 with the turns, bit 4) */
#define TMA_FL_ENGINE(X)                                                                                              \
    X(0, false, 0) X(1, false, 1) X(2, false, 2) X(3, false, 3) X(7, true, 3) X(8, false, 8) X(9, false, 9)            \
    X(11, false, 11) X(128, false, 128) X(129, false, 129) X(137, false, 137) X(256, false, 256) X(257, false, 257)   \
    X(385, false, 385) X(512, false, 512) X(513, false, 513) X(641, false, 641) X(1024, false, 1024)                 \
    X(1025, false, 1025) X(1152, false, 1152) X(1153, false, 1153)
/* timing-only bits (the lab; wrong results, never selectable in the engine) */
#define TMA_FL_TIMING(X)                                                                                              \
    X(16, false, 16) X(18, false, 18) X(32, false, 32) X(64, false, 64) X(65, false, 65) X(80, false, 80)              \
    X(82, false, 82) X(320, false, 320)
#define TMA_FL_IS(n, pp, bits) || fl == (n)
#define TMA_FL_CASE(n, pp, bits)                                                                                      \
    case (n): return tma_dispatch<3, 128, (pp), (bits)>(st, a);

/* the lab variants built (cuda_launch_attn_prefill_tma_fl takes these) */
extern "C" int cuda_attn_prefill_tma_fl_built(int fl)
{
    return false TMA_FL_ENGINE(TMA_FL_IS);
}

/* lab variants of the default (FL bits above, 4 for turns; 16-bit caches): 0 is cuda_launch_attn_prefill_tma */
extern "C" int cuda_launch_attn_prefill_tma_fl(qr_cuda_stream st, const struct qr_cuda_attn *a, int fl)
{
    switch (fl) {
        TMA_FL_ENGINE(TMA_FL_CASE)
        TMA_FL_TIMING(TMA_FL_CASE)
    default: return (int)cudaErrorInvalidValue;
    }
}
