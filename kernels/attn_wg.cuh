/* attn_wg.cuh - pieces shared by the Hopper prompt attention kernels
 * (attn_prefill_wg.cu, attn_prefill_ws.cu): tile geometry, the 128-byte
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

#endif
