/* attn_wg.cuh - pieces shared by the Hopper prompt attention kernels
 * (attn_prefill_wg.cu, attn_prefill_tma.cu): tile geometry, the 128-byte
 * swizzle of K/V tiles in shared memory, and the m64nN wgmma calls of
 * S = Q K^T (N = keys per tile) and O += P V (N = head_dim). */
#ifndef QRUN_ATTN_WG_CUH
#define QRUN_ATTN_WG_CUH

#include "attn_split.cuh"
#include "qr_mma.cuh"
#include "qr_wgmma.cuh"

#include <math.h>
#include <stdlib.h>

#define WG_BQ 64     /* query rows per warpgroup */
#define WG_HPB 2     /* query heads (warpgroups) per block, by default; HPB = 1 runs two blocks per SM */
#define WG_D 128     /* head_dim */
#define WG_LOG2E 1.4426950408889634f

/* BK keys per tile (64 or 128) */
#define WG_TILE_BYTES(bk) ((bk) * WG_D * 2)   /* one K (or V) tile: 16 or 32 KB */
#define WG_SMEM(st, bk) ((st) * 2 * WG_TILE_BYTES(bk) + 1024 + (st) * (bk) / 8)   /* stages, slack, key masks */

/* byte offset of 16-byte chunk ch (0..15) of key row r in a swizzled tile of BK keys */
template <int BK>
__device__ __forceinline__ uint32_t wg_sw(int r, int ch)
{
    return (uint32_t)((ch >> 3) * (BK * 128) + r * 128 + (((ch & 7) ^ (r & 7)) << 4));
}

/* S = Q K^T of one k16 step over BK keys (N = BK) */
template <typename T, int BK>
__device__ __forceinline__ void wg_s_mma(float *d, const uint32_t *a, uint64_t desc, int acc);
template <typename T>
__device__ __forceinline__ void wg_o_mma(float *d, const uint32_t *a, uint64_t desc);
#ifdef QR_HAVE_WGMMA
template <>
__device__ __forceinline__ void wg_s_mma<__nv_bfloat16, 64>(float *d, const uint32_t *a, uint64_t desc, int acc)
{
    wg_mma_n64_bf<0>(d, a, desc, acc);
}
template <>
__device__ __forceinline__ void wg_s_mma<__half, 64>(float *d, const uint32_t *a, uint64_t desc, int acc)
{
    wg_mma_n64_h<0>(d, a, desc, acc);
}
template <>
__device__ __forceinline__ void wg_s_mma<__nv_bfloat16, 128>(float *d, const uint32_t *a, uint64_t desc, int acc)
{
    wg_mma_n128_bf<0>(d, a, desc, acc);
}
template <>
__device__ __forceinline__ void wg_s_mma<__half, 128>(float *d, const uint32_t *a, uint64_t desc, int acc)
{
    wg_mma_n128_h<0>(d, a, desc, acc);
}
template <>
__device__ __forceinline__ void wg_o_mma<__nv_bfloat16>(float *d, const uint32_t *a, uint64_t desc)
{
    wg_mma_n128_bf<1>(d, a, desc, 1);
}
template <>
__device__ __forceinline__ void wg_o_mma<__half>(float *d, const uint32_t *a, uint64_t desc)
{
    wg_mma_n128_h<1>(d, a, desc, 1);
}
#endif

/* ---- where a warpgroup's 64 query rows sit (block (query tile, head group, sequence) of the grid) ---- */
struct wg_rows {
    int qs, qlen, ctx;   /* the sequence's first token, its query count, its context length */
    int q0, kvh;         /* the tile's first query row; the KV head */
    int row0, row1;      /* this lane's rows (g and g + 8 of its warp's 16) */
    int pos0, pos1;      /* their positions, -1 past the queries */
    int pos_min, kend;   /* the tile's first position; keys below kend matter (causal, context) */
};
/* false: nothing to do (a bad sequence, one query token left to the decode kernel, a tile past the queries) */
/* heads_fast: the grid is (head groups, query blocks, sequences), so blocks launched together read different KV
 * heads; else (query blocks, head groups, sequences) */
__device__ __forceinline__ bool wg_rows_of(const struct qr_cuda_attn &a, int h, int warp, int g, wg_rows &r,
                                           bool heads_fast = false)
{
    if (!attn_seq(a, blockIdx.z, &r.qs, &r.qlen, &r.ctx) || (a.skip_single && r.qlen == 1))
        return false;
    r.q0 = (heads_fast ? gridDim.y - 1 - blockIdx.y : gridDim.x - 1 - blockIdx.x) * WG_BQ;   /* longest first */
    if (r.q0 >= r.qlen)
        return false;
    r.kvh = h / (a.n_heads / a.n_kv_heads);
    r.row0 = r.q0 + warp * 16 + g;
    r.row1 = r.row0 + 8;
    r.pos0 = r.row0 < r.qlen ? r.ctx - r.qlen + r.row0 : -1;
    r.pos1 = r.row1 < r.qlen ? r.ctx - r.qlen + r.row1 : -1;
    const int last_row = min(r.q0 + WG_BQ, r.qlen) - 1;
    r.pos_min = r.ctx - r.qlen + r.q0;
    r.kend = min(r.ctx, r.ctx - r.qlen + last_row + 1);   /* the block's rows (every head) */
    return true;
}
/* this lane's Q rows of head h, pre-scaled by scale * log2 e, as the A operand (zeros past the queries) */
template <typename T>
__device__ __forceinline__ void wg_load_q(uint32_t (&qa)[WG_D / 16][4], const struct qr_cuda_attn &a, const wg_rows &r,
                                          int h, int t4)
{
    const float qscale = a.scale * WG_LOG2E;
    const float *qr0 = a.q + (int64_t)(r.qs + r.row0) * a.ldq + (int64_t)h * WG_D;
    const float *qr1 = a.q + (int64_t)(r.qs + r.row1) * a.ldq + (int64_t)h * WG_D;
    pf_load_q<T, WG_D>(qa, qr0, qr1, r.row0 < r.qlen, r.row1 < r.qlen, qscale, t4);
}

/* ---- per-warpgroup tile math shared by the kernels (sc: S then P of one tile, m16n8 fragment layout per warp) ---- */

/* S = Q K^T of the K tile at shared address kt (asynchronous; the caller commits) */
template <typename T, int BK>
__device__ __forceinline__ void wg_issue_s(float (&sc)[BK / 8][4], const uint32_t (&qa)[WG_D / 16][4], uint32_t kt)
{
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < WG_D / 16; kk++) {
        /* K-major B: 64-element column block kk / 4, 32 bytes per k16 step inside the 128-byte rows */
        const uint64_t desc = wg_desc(kt + (kk >> 2) * (BK * 128) + (kk & 3) * 32, 16, 1024);
        wg_s_mma<T, BK>(&sc[0][0], qa[kk], desc, kk > 0);
    }
}

/* O += P V with the V tile at shared address vt (asynchronous; the caller commits) */
template <typename T, int BK>
__device__ __forceinline__ void wg_issue_pv(float (&o)[WG_D / 2], const uint32_t (&pa)[BK / 16][4], uint32_t vt)
{
    wg_fence_regs<WG_D / 2>(o);
    wg_fence();
#pragma unroll
    for (int jj = 0; jj < BK / 16; jj++) {
        /* MN-major (transposed) B: 16 keys from row 16 jj; 64-element column blocks BK * 128 bytes apart */
        const uint64_t desc = wg_desc(vt + jj * 16 * 128, BK * 128, 1024);
        wg_o_mma<T>(o, pa[jj], desc);
    }
}

/* masks of a tile of keys k0..: causal (rows at positions pos0 / pos1), past the context and bad block ids (the
 * stage's key-valid bits km_st, -inf); applied only where the tile reaches past the block's first row or a key
 * is invalid */
template <int BK>
__device__ __forceinline__ void wg_apply_masks(float (&sc)[BK / 8][4], const uint32_t *km_st, int k0, int pos_min,
                                               int pos0, int pos1, int t4)
{
    constexpr int KMW = BK / 32;
    uint32_t km[KMW], all = 0xffffffffu;
#pragma unroll
    for (int w = 0; w < KMW; w++)
        all &= (km[w] = km_st[w]);
    if (k0 + BK - 1 > pos_min || all != 0xffffffffu) {
#pragma unroll
        for (int j = 0; j < BK / 8; j++) {
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const int kl = j * 8 + 2 * t4 + e, k = k0 + kl;
                const bool kv = ((km[kl >> 5] >> (kl & 31)) & 1u) != 0;
                if (!kv || k > pos0)
                    sc[j][e] = -INFINITY;
                if (!kv || k > pos1)
                    sc[j][2 + e] = -INFINITY;
            }
        }
    }
}

/* P (f32 fragments) -> the 16-bit A operand of P V */
template <typename T, int BK>
__device__ __forceinline__ void wg_pack_p(uint32_t (&pa)[BK / 16][4], const float (&sc)[BK / 8][4])
{
#pragma unroll
    for (int jj = 0; jj < BK / 16; jj++) {
        pa[jj][0] = pf_pack<T>(sc[2 * jj][0], sc[2 * jj][1]);
        pa[jj][1] = pf_pack<T>(sc[2 * jj][2], sc[2 * jj][3]);
        pa[jj][2] = pf_pack<T>(sc[2 * jj + 1][0], sc[2 * jj + 1][1]);
        pa[jj][3] = pf_pack<T>(sc[2 * jj + 1][2], sc[2 * jj + 1][3]);
    }
}

/* O's rows scaled by the softmax's factors, skipped where no row max of the warp moved (common) */
__device__ __forceinline__ void wg_rescale_o(float (&o)[WG_D / 2], float al0, float al1)
{
    if (__all_sync(0xffffffffu, al0 == 1.f && al1 == 1.f))
        return;
#pragma unroll
    for (int i = 0; i < WG_D / 8; i++) {
        o[4 * i] *= al0;
        o[4 * i + 1] *= al0;
        o[4 * i + 2] *= al1;
        o[4 * i + 3] *= al1;
    }
}

#endif
