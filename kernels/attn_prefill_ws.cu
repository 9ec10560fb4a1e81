/* attn_prefill_ws.cu - the Hopper prompt attention kernel, warp-specialized
 * (FA3's producer / consumer split, with cp.async gathers in place of TMA
 * since the K/V rows are scattered over paged blocks).  Written after the
 * ninth session's device time was spent: unmeasured, opt-in
 * (QR_CUDA_ATTN_WG_WS=1), checked by the kernel lab.
 *
 * Why: in attn_prefill_wg.cu every warp gathers its share of the next K/V
 * tile (~190 of ~770 instructions per 128-key tile per warp) between issuing
 * its MMAs and waiting for S, on its own critical path, and one
 * __syncthreads per tile holds both warpgroups in lockstep.  Here:
 *   block = 3 warpgroups: warpgroup 0 is the producer (block-table reads,
 *   cp.async of K and V into ST stages, the key-valid masks), warpgroups 1
 *   and 2 are consumers, one query head each (two heads of a GQA group share
 *   every tile), 64 query rows, one tile at a time (S, softmax, P V) with
 *   no block barrier, so one consumer's softmax can run under the other's
 *   MMAs;
 *   full[st]: completes when the producer's copies of the stage landed
 *   (one cp.async-tracked arrival per producer thread, noinc) and its mask
 *   words are written (a plain release arrival per mask warp);
 *   empty[st]: completes when all 8 consumer warps are done with the stage
 *   (after the wait for the P V that read its V).
 * Tiles of 64 keys, ST = 4 stages.  Every thread has 168 registers (384 per
 * block): the pipelined per-warpgroup schedule needs ~194, and ptxas did not
 * honour setmaxnreg regions here (C7512: wgmma serialized, spills), so each
 * consumer runs one tile at a time.
 * Masks, outputs and numerics are attn_prefill_wg.cu's. */
#include "attn_wg.cuh"

#define WS_BK 64
#define WS_ST 4
#define WS_THREADS 384
#define WS_SMEM (WS_ST * 2 * WG_TILE_BYTES(WS_BK) + 1024 + WS_ST * 16 + WS_ST * (WS_BK / 8))

template <typename T>
__global__ void __launch_bounds__(WS_THREADS, 1) k_attn_prefill_ws(const struct qr_cuda_attn a)
{
#ifdef QR_HAVE_WGMMA
    constexpr int BK = WS_BK, ST = WS_ST, TILE = WG_TILE_BYTES(BK), KMW = BK / 32;
    extern __shared__ __align__(1024) unsigned char ws_smem_raw[];
    const uint32_t raw = smem_u32(ws_smem_raw);
    const uint32_t base = (raw + 1023u) & ~1023u;
    unsigned char *sbase = ws_smem_raw + (base - raw);
    const uint32_t bars = base + ST * 2 * TILE;   /* full[ST] then empty[ST], 8 bytes each */
    uint32_t *kmask = (uint32_t *)(sbase + ST * 2 * TILE + ST * 16);   /* [ST][KMW] */
    auto full = [&](int st) { return bars + 8u * (uint32_t)st; };
    auto empty = [&](int st) { return bars + 8u * (uint32_t)(ST + st); };

    const int tid = threadIdx.x, role = tid >> 7, lane = tid & 31;
    const int s = blockIdx.z;
    int qs, qlen, ctx;
    if (!attn_seq(a, s, &qs, &qlen, &ctx) || (a.skip_single && qlen == 1))
        return;
    const int q0 = (gridDim.x - 1 - blockIdx.x) * WG_BQ;   /* longest tiles first */
    if (q0 >= qlen)
        return;
    const int last_row = min(q0 + WG_BQ, qlen) - 1;
    const int pos_min = ctx - qlen + q0, pos_max = ctx - qlen + last_row;
    const int kend = min(ctx, pos_max + 1);
    const int n_tiles = kend > 0 ? (kend + BK - 1) / BK : 0;
    const int kvh = blockIdx.y * 2 / (a.n_heads / a.n_kv_heads);   /* both heads of the block share it */

    if (tid == 0) {
        for (int st = 0; st < ST; st++) {
            mb_init(full(st), 128 + KMW);   /* 128 cp.async-tracked arrivals + one per mask warp */
            mb_init(empty(st), 8);          /* the consumer warps */
        }
    }
    __syncthreads();

    if (role == 0) {
        /* ---- producer: gathers tile t into stage t % ST once the consumers released tile t - ST ---- */
        const int32_t *table = a.block_tables + (int64_t)s * a.max_blocks_per_seq;
        const T *kc = (const T *)a.k_cache, *vc = (const T *)a.v_cache;
        const int bs = a.block_size;
        const int r0 = tid >> 4, ch = tid & 15;   /* rows r0 + 8 i, 16-byte column ch */
        constexpr int LOADS = BK * (WG_D / 8) / 128, ROW_STEP = 128 / (WG_D / 8);
        const uint32_t so0 = wg_sw<BK>(r0, ch);
        const T *kc_t = kc + ch * 8, *vc_t = vc + ch * 8;
        const uint32_t rows_blk = (uint32_t)(a.n_kv_heads * bs), row_h = (uint32_t)(kvh * bs);
        const uint32_t nblk = (uint32_t)a.num_blocks;
        for (int t = 0; t < n_tiles; t++) {
            const int st = t % ST, k0 = t * BK;
            if (t >= ST)
                mb_wait(empty(st), (uint32_t)((t / ST + 1) & 1));
            const uint32_t kt = base + st * 2 * TILE + so0, vt = kt + TILE;
#pragma unroll
            for (int i = 0; i < LOADS; i++) {
                const int k = k0 + r0 + i * ROW_STEP;
                const int blk = k < kend ? table[k / bs] : -1;
                const bool ok = k < kend && (uint32_t)blk < nblk;
                const uint32_t row = ok ? (uint32_t)blk * rows_blk + row_h + (uint32_t)(k % bs) : 0u;
                cp_async16_s(kt + i * ROW_STEP * 128, kc_t + (size_t)row * WG_D, ok);
                cp_async16_s(vt + i * ROW_STEP * 128, vc_t + (size_t)row * WG_D, ok);
            }
            if (tid < BK) {   /* the first BK / 32 warps: one key each */
                const int k = k0 + tid;
                const int blk = k < kend ? table[k / bs] : -1;
                const uint32_t m = __ballot_sync(0xffffffffu, k < kend && (uint32_t)blk < nblk);
                if (lane == 0) {
                    kmask[st * KMW + (tid >> 5)] = m;
                    mb_arrive(full(st));
                }
            }
            mb_arrive_cp_async(full(st));
        }
        asm volatile("cp.async.wait_all;\n" ::: "memory");
        return;
    }

    /* ---- consumers: warpgroup role - 1 owns head h, query rows q0 .. q0 + 63 ---- */
    const int ctid = tid - 128, cw = ctid >> 7, warp = (ctid >> 5) & 3, g = lane >> 2, t4 = lane & 3;
    const int h = blockIdx.y * 2 + cw;
    const int row0 = q0 + warp * 16 + g, row1 = row0 + 8;
    const int pos0 = row0 < qlen ? ctx - qlen + row0 : -1;
    const int pos1 = row1 < qlen ? ctx - qlen + row1 : -1;

    uint32_t qa[WG_D / 16][4];
    {
        const float qscale = a.scale * WG_LOG2E;
        const float *qr0 = a.q + (int64_t)(qs + row0) * a.ldq + (int64_t)h * WG_D;
        const float *qr1 = a.q + (int64_t)(qs + row1) * a.ldq + (int64_t)h * WG_D;
        pf_load_q<T, WG_D>(qa, qr0, qr1, row0 < qlen, row1 < qlen, qscale, t4);
    }
    float o[WG_D / 2];
#pragma unroll
    for (int i = 0; i < WG_D / 2; i++)
        o[i] = 0.f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;
    float sa[BK / 8][4];
    uint32_t pa[BK / 16][4];

    auto wait_full = [&](int j) {
        mb_wait(full(j % ST), (uint32_t)((j / ST) & 1));
        wg_fence_proxy_async();   /* the cp.async writes, now visible, before the tensor cores read them */
    };
    auto issue_s = [&](int st) { wg_issue_s<T, BK>(sa, qa, base + st * 2 * TILE); };
    auto issue_pv = [&](int st) { wg_issue_pv<T, BK>(o, pa, base + st * 2 * TILE + TILE); };
    auto softmax = [&](int st, int k0, float &al0, float &al1) {
        wg_apply_masks<BK>(sa, kmask + st * KMW, k0, pos_min, pos0, pos1, t4);
        pf_softmax<BK / 8>(sa, m0, m1, l0, l1, al0, al1);
    };

    /* one tile at a time per consumer warpgroup (the pipelined schedule of attn_prefill_wg.cu needs more registers
     * than the 168 a thread of a 384-thread block has, and ptxas did not apply setmaxnreg regions to this kernel),
     * so the overlap is between the two consumer warpgroups, which no block barrier keeps in step */
    for (int j = 0; j < n_tiles; j++) {
        const int st = j % ST;
        wait_full(j);
        issue_s(st);
        wg_commit();
        wg_wait<0>();
        wg_fence_regs<BK / 2>(&sa[0][0]);
        float al0, al1;
        softmax(st, j * BK, al0, al1);
        wg_rescale_o(o, al0, al1);
        wg_pack_p<T, BK>(pa, sa);
        issue_pv(st);
        wg_commit();
        wg_wait<0>();
        wg_fence_regs<WG_D / 2>(o);
        if (lane == 0)   /* this warp is done with the stage */
            mb_arrive(empty(st));
    }
    wg_wait<0>();
    wg_fence_regs<WG_D / 2>(o);
    pf_store_rows<WG_D>(a, o, l0, l1, row0, row1, qs, qlen, h, t4);
#else
    __trap();   /* the host launches this only where the sm_90a code exists */
#endif
}

/* the warp-specialized kernel (QR_CUDA_ATTN_WG_WS=1 or the kernel lab): same shapes as cuda_launch_attn_prefill_wg */
extern "C" int cuda_launch_attn_prefill_ws(qr_cuda_stream st, const struct qr_cuda_attn *a)
{
    if (a->n_seqs <= 0 || a->n_tokens <= 0 || a->max_q_len <= 0)
        return 0;
    if (!cuda_attn_prefill_wg_supported(a->head_dim, a->kv_dtype, a->n_heads, a->n_kv_heads))
        return (int)cudaErrorInvalidValue;
    static bool raised_bf, raised_h;   /* idempotent, so a race is harmless */
    bool bf = a->kv_dtype == QK_BF16;
    if (!(bf ? raised_bf : raised_h)) {
        cudaError_t e = bf ? cudaFuncSetAttribute(k_attn_prefill_ws<__nv_bfloat16>,
                                                  cudaFuncAttributeMaxDynamicSharedMemorySize, WS_SMEM)
                           : cudaFuncSetAttribute(k_attn_prefill_ws<__half>,
                                                  cudaFuncAttributeMaxDynamicSharedMemorySize, WS_SMEM);
        if (e != cudaSuccess)
            return (int)e;
        (bf ? raised_bf : raised_h) = true;
    }
    dim3 grid((unsigned)((a->max_q_len + WG_BQ - 1) / WG_BQ), (unsigned)(a->n_heads / 2), (unsigned)a->n_seqs);
    if (bf)
        k_attn_prefill_ws<__nv_bfloat16><<<grid, WS_THREADS, WS_SMEM, st>>>(*a);
    else
        k_attn_prefill_ws<__half><<<grid, WS_THREADS, WS_SMEM, st>>>(*a);
    return qk_launch_result();
}
