/* attn_decode_tc.cu - single-token (decode) attention on tensor cores: the
 * fused CUDA path's decode kernel for head_dim 64/128 and GQA groups of at
 * most 16 query heads (attn_decode2.cu serves the rest).
 *
 * attn_decode2.cu does the scores and P V on the CUDA cores; its reads of the
 * query and the probabilities from shared memory outweigh the K/V bytes about
 * ten to one, and long contexts ran at 0.8-1.5 TB/s.  Here the query heads of
 * one GQA group are the rows of an m16n8k16 A fragment (rows >= G are zero),
 * so each K/V element is read from shared memory once, by ldmatrix, and the
 * math runs on the tensor cores, as in the prompt kernel (attn.cu):
 *   grid (splits, kv heads, seqs); DT_W warps per block.  Warp w takes tiles
 *   w, w + W, ... of 32 keys of the block's split, each through its own
 *   cp.async pipeline of ST stages in warp-private shared memory (16-byte
 *   chunks XOR-swizzled by row, so ldmatrix is conflict-free without padding);
 *   S = Q K^T, online softmax in registers, O += P V; at the end the warps'
 *   (max, sum, O) are combined through shared memory.
 * The first stages' gathers are issued before the PDL wait (only the newest
 * key's row, which the kernel ahead writes, and q wait for it).
 * Splits follow attn_split.cuh; with several, the partials go through
 * attn_decode2.cu's merge kernel (or, opt-in, the last split block of a group
 * merges them: slower on the H100).  Numerics as the prompt kernel: Q * scale *
 * log2 e and P are rounded to the compute type (bf16; f16 for F16 caches),
 * accumulators are f32.  Sequences whose query count is not 1 are skipped, so
 * a mixed batch runs the prompt kernel for the others (skip_single).  Bad block
 * ids mask their keys; lengths are clamped to the block table.
 *
 * FP8 E4M3 caches (F8 = true; f16 math, as every E4M3 value is an f16): the
 * same pipeline moves the 1-byte rows (half the bytes), and the fragments are
 * built from them in registers, no 16-bit copy in shared memory:
 *   S = Q K^T: head_dim is contracted, so any order of it that Q and K share
 *   will do.  Lane (g, t4) reads 16 bytes of key row g (d = 16 c .. 16 c + 15,
 *   chunk c = t4 + 4 h); their 4-byte word w is the B fragment of k-step
 *   kk = 4 h + w (bytes 0-1: b0, 2-3: b1, each one cvt e4m3x2 -> f16x2), and
 *   Q's A fragments take the same d's (dt_load_q8).
 *   O += P V: the key (k) order is fixed by P, so lane (g, t4) reads keys 2 t4,
 *   2 t4 + 1, 2 t4 + 8, 2 t4 + 9 of the 16 and pairs their bytes with byte
 *   permutes; the output columns are permuted instead: column g of n-tile dt
 *   is d = (D / 8) g + dt, so a lane's bytes of one key row are contiguous
 *   (16 bytes at D = 128, 8 at 64), and the final reduction puts O back in order.
 *   K and V tiles have their own 16-byte chunk swizzles (dt_k8 / dt_v8) that
 *   keep these shared-memory reads free of bank conflicts. */
#include "attn_split.cuh"
#include "qr_fp8.cuh"
#include "qr_mma.cuh"

#include <stdlib.h>

#define DT_BK 32     /* keys per tile */
#define DT_MAXG 16   /* query heads per group: the rows of one fragment */
#define DT_ST 3      /* pipeline stages per warp */

/* stage buffers (K and V tiles per warp and stage; ES bytes per cache element) + key masks; the final reduction
 * reuses them */
template <int ES, int D, int W>
__host__ __device__ constexpr size_t dt_smem_bytes()
{
    return (size_t)W * DT_ST * 2 * DT_BK * D * ES + (size_t)W * DT_ST * sizeof(uint32_t);
}

/* element offset of 16-byte chunk ch of row r in a [DT_BK][D] tile */
template <int D>
__device__ __forceinline__ int dt_sw(int r, int ch)
{
    return r * D + ((ch ^ (r & 7)) << 3);
}

/* FP8 tiles ([DT_BK][D] bytes): byte offset of 16-byte chunk ch of row r.  K: a quarter warp reads chunks
 * 4h .. 4h+3 of rows r, r + 1 (r even); at D = 128 the odd row's are moved by 4 chunks (at 64 the two rows fill
 * the 32 banks as they are). */
template <int D>
__device__ __forceinline__ int dt_k8(int r, int ch)
{
    return r * D + ((D == 128 ? ch ^ ((r & 1) << 2) : ch) << 4);
}
/* V: at D = 128 a quarter warp reads chunks 2p, 2p + 1 of rows j, j + 2, j + 4, j + 6 (j = 0, 1, 8, 9 + 16 jj):
 * chunk ^ 2 ((r >> 1) & 3).  At D = 64 a half warp reads 8-byte units 4p .. 4p+3 of those rows, which are 64 bytes
 * long: rows 2 and 3 of every 4 trade places (pairs of rows share a 128-byte line) and chunk ^ 2 ((r >> 2) & 1) */
template <int D>
__device__ __forceinline__ int dt_v8(int r, int ch)
{
    if (D == 128)
        return r * 128 + ((ch ^ (((r >> 1) & 3) << 1)) << 4);
    return (r ^ ((r >> 1) & 1)) * 64 + ((ch ^ (((r >> 2) & 1) << 1)) << 4);
}
/* ... and byte offset of the lane's slice of V row r: chunk g (D = 128) or 8-byte unit g (D = 64) */
template <int D>
__device__ __forceinline__ int dt_v8_lane(int r, int g)
{
    if (D == 128)
        return dt_v8<128>(r, g);
    return (r ^ ((r >> 1) & 1)) * 64 + ((g ^ (((r >> 2) & 1) << 2)) << 3);
}

/* Q's A fragments for FP8 K tiles: k-step kk, lane t4 takes d0 .. d0 + 3, d0 = 16 (t4 + 4 (kk / 4)) + 4 (kk % 4):
 * d0, d0 + 1 in registers 0 / 1 (rows g / g + 8), d0 + 2, d0 + 3 in 2 / 3 (the header comment) */
template <int D>
__device__ __forceinline__ void dt_load_q8(uint32_t (&qa)[D / 16][4], const float *q0, const float *q1, bool v0,
                                           bool v1, float qscale, int t4)
{
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) {
        const int c = 16 * (t4 + 4 * (kk >> 2)) + 4 * (kk & 3);
        float x00 = v0 ? q0[c] * qscale : 0.f, x01 = v0 ? q0[c + 1] * qscale : 0.f;
        float x10 = v1 ? q1[c] * qscale : 0.f, x11 = v1 ? q1[c + 1] * qscale : 0.f;
        float y00 = v0 ? q0[c + 2] * qscale : 0.f, y01 = v0 ? q0[c + 3] * qscale : 0.f;
        float y10 = v1 ? q1[c + 2] * qscale : 0.f, y11 = v1 ? q1[c + 3] * qscale : 0.f;
        qa[kk][0] = pf_pack<__half>(x00, x01);
        qa[kk][1] = pf_pack<__half>(x10, x11);
        qa[kk][2] = pf_pack<__half>(y00, y01);
        qa[kk][3] = pf_pack<__half>(y10, y11);
    }
}

/* O += P V for n-tiles o[0 .. 3] from FP8 V: word a / b / c / d of keys r, r + 1, r + 8, r + 9 (byte i: n-tile i).
 * B fragment of n-tile i: b0 = (V[r][.], V[r + 1][.]), b1 = (V[r + 8][.], V[r + 9][.]), paired by byte permutes */
template <typename T>
__device__ __forceinline__ void dt_pv4(float (*o)[4], const uint32_t *pa, uint32_t a, uint32_t b, uint32_t c,
                                       uint32_t d)
{
    const uint32_t lo01 = __byte_perm(a, b, 0x5140), lo23 = __byte_perm(a, b, 0x7362);   /* a0 b0 a1 b1, a2 b2 .. */
    const uint32_t hi01 = __byte_perm(c, d, 0x5140), hi23 = __byte_perm(c, d, 0x7362);
    uint32_t f[2];
    f[0] = qk_f8x2_h2(lo01 & 0xffffu), f[1] = qk_f8x2_h2(hi01 & 0xffffu);
    pf_mma<T>(o[0], pa, f);
    f[0] = qk_f8x2_h2(lo01 >> 16), f[1] = qk_f8x2_h2(hi01 >> 16);
    pf_mma<T>(o[1], pa, f);
    f[0] = qk_f8x2_h2(lo23 & 0xffffu), f[1] = qk_f8x2_h2(hi23 & 0xffffu);
    pf_mma<T>(o[2], pa, f);
    f[0] = qk_f8x2_h2(lo23 >> 16), f[1] = qk_f8x2_h2(hi23 >> 16);
    pf_mma<T>(o[3], pa, f);
}

/* FP8 output fragments (rows g: E0 = 0, g + 8: E0 = 2) into a reduction row: the lane's columns 2 t4 + e of n-tile
 * dt are d = (D / 8) (2 t4 + e) + dt, i.e. the D / 4 contiguous d = (D / 4) t4 .. that rl points at */
template <int D, int E0>
__device__ __forceinline__ void dt_store_o8(float *rl, const float (&o)[D / 8][4])
{
#pragma unroll
    for (int v = 0; v < D / 16; v++) {
        constexpr int NT = D / 8;
        const int e = E0 + 4 * v / NT, dt = 4 * v % NT;
        *(float4 *)(rl + 4 * v) = make_float4(o[dt][e], o[dt + 1][e], o[dt + 2][e], o[dt + 3][e]);
    }
}

/* T: the compute type (and, unless F8, the cache's); F8: an FP8 E4M3 cache, T = __half */
template <typename T, int D, int W, bool F8 = false>
__global__ void __launch_bounds__(W * 32, 1)
    k_attn_decode_tc(const struct qr_cuda_attn a, int n_splits, float *part_o, float *part_ml, int early, int *cnt)
{
    static_assert(!F8 || sizeof(T) == 2, "FP8 caches compute in f16");
    constexpr int ES = F8 ? 1 : (int)sizeof(T);   /* bytes per cache element */
    constexpr int CPR = D * ES / 16;              /* 16-byte chunks per row */
    constexpr int TILE = DT_BK * D;               /* elements of one K (or V) tile */
    /* reduction rows of RS floats; F8: 4 floats of padding after every 32 (rix), so the lanes' float4 stores of
     * their contiguous 32 (16) output columns hit distinct banks */
    constexpr int RS = F8 ? D + D / 8 : D;
    static_assert((size_t)W * DT_MAXG * (RS + 2) * sizeof(float) <= dt_smem_bytes<ES, D, W>(), "reduction space");
    extern __shared__ __align__(128) unsigned char dt_smem[];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    /* stage st: K at kw + st*2*TILE, V after it (F8: the same in bytes from kw8) */
    T *kw = (T *)dt_smem + (size_t)warp * DT_ST * 2 * TILE;
    unsigned char *kw8 = dt_smem + (size_t)warp * DT_ST * 2 * TILE;
    uint32_t *kmask = F8 ? (uint32_t *)(dt_smem + (size_t)W * DT_ST * 2 * TILE) + warp * DT_ST
                         : (uint32_t *)((T *)dt_smem + (size_t)W * DT_ST * 2 * TILE) + warp * DT_ST;

    const int sp = blockIdx.x, kvh = blockIdx.y, s = blockIdx.z;
    const int G = a.n_heads / a.n_kv_heads;
    int qs, qlen, ctx;
    if (!attn_seq(a, s, &qs, &qlen, &ctx) || qlen != 1)
        return;
    const int used = d2_used_splits(ctx, n_splits);
    if (sp >= used)
        return;
    const int kps = ctx > 0 ? d2_keys_per_split(ctx, n_splits) : 0;
    const int k_lo = sp * kps, k_hi = min(ctx, k_lo + kps);
    const int n_tiles = k_hi > k_lo ? (k_hi - k_lo + DT_BK - 1) / DT_BK : 0;
    const int my_n = n_tiles > warp ? (n_tiles - warp + W - 1) / W : 0;
    const int h0 = kvh * G;
    const T *kc = (const T *)a.k_cache, *vc = (const T *)a.v_cache;
    const int32_t *table = a.block_tables + (int64_t)s * a.max_blocks_per_seq;

    /* tile -> stage st: lane l resolves key k0 + l through the block table; rows are gathered by shuffles.
     * Before the PDL wait (pre) the row of the newest key (ctx - 1: the kernel ahead writes it) is left out and
     * remembered in (dst_st, dst_row, dst_off), to be copied once that kernel is done. */
    int dst_st = -1, dst_row = 0;
    long long dst_off = -1;
    auto load = [&](int st, int tile, bool pre) {
        const int k = k_lo + tile * DT_BK + lane;
        long long off = -1;
        if (k < k_hi) {
            int64_t blk = table[k / a.block_size];
            if (blk >= 0 && blk < a.num_blocks)
                off = ((blk * a.n_kv_heads + kvh) * a.block_size + k % a.block_size) * (int64_t)D;
        }
        const uint32_t m = __ballot_sync(0xffffffffu, off >= 0);
        if (lane == 0)
            kmask[st] = m;
        int newest = pre && k_hi == ctx ? ctx - 1 - (k_lo + tile * DT_BK) : -1;   /* its row, if in this tile */
        if (newest >= 0 && newest < DT_BK) {   /* warp-uniform */
            const long long o = __shfl_sync(0xffffffffu, off, newest);
            if (o >= 0) {
                dst_st = st;
                dst_row = newest;
                dst_off = o;
            } else {
                newest = -1;   /* a masked key: zero-filled below like any other */
            }
        } else {
            newest = -1;
        }
        if constexpr (F8) {
            unsigned char *ks = kw8 + st * 2 * TILE, *vs = ks + TILE;
            const unsigned char *kb = (const unsigned char *)a.k_cache, *vb = (const unsigned char *)a.v_cache;
#pragma unroll
            for (int i = 0; i < DT_BK * CPR / 32; i++) {
                const int c = lane + 32 * i, r = c / CPR, ch = c % CPR;
                const long long ro = __shfl_sync(0xffffffffu, off, r);
                const bool ok = ro >= 0;
                if (r != newest) {
                    cp_async16(ks + dt_k8<D>(r, ch), ok ? kb + ro + ch * 16 : kb, ok);
                    cp_async16(vs + dt_v8<D>(r, ch), ok ? vb + ro + ch * 16 : vb, ok);
                }
            }
        } else {
            T *ks = kw + st * 2 * TILE, *vs = ks + TILE;
#pragma unroll
            for (int i = 0; i < DT_BK * CPR / 32; i++) {
                const int c = lane + 32 * i, r = c / CPR, ch = c % CPR;
                const long long ro = __shfl_sync(0xffffffffu, off, r);
                const bool ok = ro >= 0;
                const int so = dt_sw<D>(r, ch);
                if (r != newest) {
                    cp_async16(ks + so, ok ? kc + ro + ch * 8 : kc, ok);
                    cp_async16(vs + so, ok ? vc + ro + ch * 8 : vc, ok);
                }
            }
        }
    };

    /* the first stages' gathers go out before the PDL wait (early): the cache rows of earlier steps and the block
     * table are not written by the kernel ahead, so they stream while it finishes */
    if (!early) {
        qk_pdl_wait();
        qk_pdl_trigger();
    }
#pragma unroll
    for (int p = 0; p < DT_ST - 1; p++) {
        if (p < my_n)
            load(p, warp + p * W, early != 0);
        cp_async_commit();
    }
    if (early) {
        qk_pdl_wait();
        qk_pdl_trigger();
    }
    if (dst_st >= 0) {   /* the newest key's K and V rows, written by now: one 16-byte chunk per lane, from L2 */
        if constexpr (F8) {
            unsigned char *ks = kw8 + dst_st * 2 * TILE, *vs = ks + TILE;
            const unsigned char *kb = (const unsigned char *)a.k_cache, *vb = (const unsigned char *)a.v_cache;
            if (lane < 2 * CPR) {
                const int ch = lane % CPR;
                const unsigned char *src = (lane < CPR ? kb : vb) + dst_off + ch * 16;
                *(uint4 *)(lane < CPR ? ks + dt_k8<D>(dst_row, ch) : vs + dt_v8<D>(dst_row, ch)) =
                    __ldcg((const uint4 *)src);
            }
        } else {
            T *ks = kw + dst_st * 2 * TILE, *vs = ks + TILE;
            for (int c = lane; c < 2 * CPR; c += 32) {
                const int ch = c % CPR;
                const T *src = (c < CPR ? kc : vc) + dst_off + ch * 8;
                *(uint4 *)((c < CPR ? ks : vs) + dt_sw<D>(dst_row, ch)) = __ldcg((const uint4 *)src);
            }
        }
    }

    /* the group's query heads as fragment rows g and g + 8 */
    uint32_t qa[D / 16][4];
    {
        const float qscale = a.scale * D2_LOG2E;
        const bool v0 = g < G, v1 = g + 8 < G;
        const float *q0 = a.q + (int64_t)qs * a.ldq + (int64_t)(h0 + g) * D;
        const float *q1 = q0 + 8 * D;
        if constexpr (F8)
            dt_load_q8<D>(qa, q0, q1, v0, v1, qscale, t4);
        else
            pf_load_q<T, D>(qa, q0, q1, v0, v1, qscale, t4);
    }
    float o[D / 8][4];
#pragma unroll
    for (int i = 0; i < D / 8; i++)
        o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;

    for (int j = 0; j < my_n; j++) {
        const int jn = j + DT_ST - 1;
        if (jn < my_n)
            load(jn % DT_ST, warp + jn * W, false);
        cp_async_commit();
        cp_async_wait<DT_ST - 1>();
        __syncwarp();
        const int st = j % DT_ST;
        [[maybe_unused]] const T *ks = kw + st * 2 * TILE, *vs = ks + TILE;   /* 16-bit caches */
        const uint32_t km = kmask[st];

        float sc[DT_BK / 8][4];
        if constexpr (F8) {
            const unsigned char *ks8 = kw8 + st * 2 * TILE;
#pragma unroll
            for (int n8 = 0; n8 < DT_BK / 8; n8++) {
                sc[n8][0] = sc[n8][1] = sc[n8][2] = sc[n8][3] = 0.f;
#pragma unroll
                for (int h = 0; h < D / 64; h++) {   /* chunk t4 + 4 h of key row n8 * 8 + g: k-steps 4 h .. 4 h + 3 */
                    const uint4 kv = *(const uint4 *)(ks8 + dt_k8<D>(n8 * 8 + g, t4 + 4 * h));
                    const uint32_t w[4] = {kv.x, kv.y, kv.z, kv.w};
#pragma unroll
                    for (int wi = 0; wi < 4; wi++) {
                        const uint32_t b[2] = {qk_f8x2_h2(w[wi] & 0xffffu), qk_f8x2_h2(w[wi] >> 16)};
                        pf_mma<T>(sc[n8], qa[4 * h + wi], b);
                    }
                }
            }
        } else {
#pragma unroll
            for (int n8 = 0; n8 < DT_BK / 8; n8++) {
                sc[n8][0] = sc[n8][1] = sc[n8][2] = sc[n8][3] = 0.f;
                const int r = n8 * 8 + (lane & 7);
#pragma unroll
                for (int kk = 0; kk < D / 16; kk += 2) {
                    uint32_t b[4];
                    ldsm_x4(b, ks + dt_sw<D>(r, kk * 2 + (lane >> 3)));
                    pf_mma<T>(sc[n8], qa[kk], b);
                    pf_mma<T>(sc[n8], qa[kk + 1], b + 2);
                }
            }
        }
#pragma unroll
        for (int n8 = 0; n8 < DT_BK / 8; n8++) {
#pragma unroll
            for (int e = 0; e < 2; e++) {
                if (!((km >> (n8 * 8 + 2 * t4 + e)) & 1u))
                    sc[n8][e] = sc[n8][2 + e] = -INFINITY;
            }
        }
        float al0, al1;
        pf_softmax<DT_BK / 8>(sc, m0, m1, l0, l1, al0, al1);
        pf_rescale(o, al0, al1);
#pragma unroll
        for (int jj = 0; jj < DT_BK / 16; jj++) {
            uint32_t pa[4];
            pf_pack_p<T>(pa, sc, jj);
            if constexpr (F8) {
                /* keys r, r + 1, r + 8, r + 9: the lane's bytes of each row are n-tiles 0 .. D / 8 - 1 */
                const unsigned char *vs8 = kw8 + st * 2 * TILE + TILE;
                const int r = jj * 16 + 2 * t4;
                if constexpr (D == 128) {
                    const uint4 x0 = *(const uint4 *)(vs8 + dt_v8_lane<D>(r, g));
                    const uint4 x1 = *(const uint4 *)(vs8 + dt_v8_lane<D>(r + 1, g));
                    const uint4 x8 = *(const uint4 *)(vs8 + dt_v8_lane<D>(r + 8, g));
                    const uint4 x9 = *(const uint4 *)(vs8 + dt_v8_lane<D>(r + 9, g));
                    dt_pv4<T>(o + 0, pa, x0.x, x1.x, x8.x, x9.x);
                    dt_pv4<T>(o + 4, pa, x0.y, x1.y, x8.y, x9.y);
                    dt_pv4<T>(o + 8, pa, x0.z, x1.z, x8.z, x9.z);
                    dt_pv4<T>(o + 12, pa, x0.w, x1.w, x8.w, x9.w);
                } else {
                    const uint2 x0 = *(const uint2 *)(vs8 + dt_v8_lane<D>(r, g));
                    const uint2 x1 = *(const uint2 *)(vs8 + dt_v8_lane<D>(r + 1, g));
                    const uint2 x8 = *(const uint2 *)(vs8 + dt_v8_lane<D>(r + 8, g));
                    const uint2 x9 = *(const uint2 *)(vs8 + dt_v8_lane<D>(r + 9, g));
                    dt_pv4<T>(o + 0, pa, x0.x, x1.x, x8.x, x9.x);
                    dt_pv4<T>(o + 4, pa, x0.y, x1.y, x8.y, x9.y);
                }
            } else {
                const int r = jj * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
#pragma unroll
                for (int dt = 0; dt < D / 8; dt += 2) {
                    uint32_t b[4];
                    ldsm_x4_t(b, vs + dt_sw<D>(r, dt + (lane >> 4)));
                    pf_mma<T>(o[dt], pa, b);
                    pf_mma<T>(o[dt + 1], pa, b + 2);
                }
            }
        }
        __syncwarp();   /* this stage is refilled two tiles from now */
    }
    cp_async_wait<0>();
    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    __syncthreads();   /* every warp is done with its stages: they become the reduction space */

    float *red_o = (float *)dt_smem;              /* [W][16][RS] */
    float *red_ml = red_o + W * DT_MAXG * RS;     /* [W][16][2] */
    auto rix = [](int d) { return F8 ? d + 4 * (d >> 5) : d; };   /* column d's place in a reduction row */
    if (g < G) {
        float *ro = red_o + (warp * DT_MAXG + g) * RS;
        if constexpr (F8) {
            dt_store_o8<D, 0>(ro + rix((D / 4) * t4), o);
        } else {
#pragma unroll
            for (int dt = 0; dt < D / 8; dt++) {
                ro[dt * 8 + 2 * t4] = o[dt][0];
                ro[dt * 8 + 2 * t4 + 1] = o[dt][1];
            }
        }
        if (t4 == 0) {
            red_ml[(warp * DT_MAXG + g) * 2] = m0;
            red_ml[(warp * DT_MAXG + g) * 2 + 1] = l0;
        }
    }
    if (g + 8 < G) {
        float *ro = red_o + (warp * DT_MAXG + g + 8) * RS;
        if constexpr (F8) {
            dt_store_o8<D, 2>(ro + rix((D / 4) * t4), o);
        } else {
#pragma unroll
            for (int dt = 0; dt < D / 8; dt++) {
                ro[dt * 8 + 2 * t4] = o[dt][2];
                ro[dt * 8 + 2 * t4 + 1] = o[dt][3];
            }
        }
        if (t4 == 0) {
            red_ml[(warp * DT_MAXG + g + 8) * 2] = m1;
            red_ml[(warp * DT_MAXG + g + 8) * 2 + 1] = l1;
        }
    }
    __syncthreads();
    const bool direct = n_splits == 1;
    const int64_t pidx0 = ((int64_t)s * a.n_heads + h0) * n_splits + sp;
    for (int i = threadIdx.x; i < G * D; i += W * 32) {
        const int r = i / D, d = i % D;
        float M = -INFINITY;
#pragma unroll
        for (int w = 0; w < W; w++)
            M = fmaxf(M, red_ml[(w * DT_MAXG + r) * 2]);
        float O = 0.f, L = 0.f;
        if (M != -INFINITY) {
#pragma unroll
            for (int w = 0; w < W; w++) {
                const float mw = red_ml[(w * DT_MAXG + r) * 2];
                if (mw == -INFINITY)
                    continue;
                const float wt = exp2f(mw - M);
                O += wt * red_o[(w * DT_MAXG + r) * RS + rix(d)];
                L += wt * red_ml[(w * DT_MAXG + r) * 2 + 1];
            }
        }
        if (direct) {
            a.out[(int64_t)qs * a.ldo + (int64_t)(h0 + r) * D + d] = L > 0.f ? O / L : 0.f;
        } else {
            part_o[(pidx0 + (int64_t)r * n_splits) * D + d] = O;
            if (d == 0) {
                part_ml[2 * (pidx0 + (int64_t)r * n_splits)] = M;
                part_ml[2 * (pidx0 + (int64_t)r * n_splits) + 1] = L;
            }
        }
    }
    if (direct || !cnt)
        return;
    /* the last split block of this (sequence, kv head) to finish merges the group's partials (no merge kernel):
     * partials fenced before the count, read back from L2; the counter is left at zero for the next launch */
    __shared__ int dt_last;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) {
        int *c = cnt + (int64_t)s * a.n_kv_heads + kvh;
        dt_last = atomicAdd(c, 1) == used - 1;
        if (dt_last)
            atomicExch(c, 0);
    }
    __syncthreads();
    if (!dt_last)
        return;
    __threadfence();
    for (int i = threadIdx.x; i < G * D; i += W * 32) {
        const int r = i / D, d = i % D;
        const int64_t base = pidx0 - sp + (int64_t)r * n_splits;
        float M = -INFINITY;
        for (int j = 0; j < used; j++)
            M = fmaxf(M, __ldcg(part_ml + 2 * (base + j)));
        float O = 0.f, L = 0.f;
        for (int j = 0; j < used; j++) {
            const float mj = __ldcg(part_ml + 2 * (base + j));
            const float wj = M == -INFINITY || mj == -INFINITY ? 0.f : exp2f(mj - M);
            L += wj * __ldcg(part_ml + 2 * (base + j) + 1);
            O += wj * __ldcg(part_o + (base + j) * D + d);
        }
        a.out[(int64_t)qs * a.ldo + (int64_t)(h0 + r) * D + d] = L > 0.f ? O / L : 0.f;
    }
}

extern "C" int cuda_attn_decode_tc_supported(int head_dim, int kv_dtype, int n_heads, int n_kv_heads, int cc)
{
    if (head_dim != 64 && head_dim != 128)
        return 0;
    if (n_kv_heads <= 0 || n_heads < n_kv_heads || n_heads % n_kv_heads || n_heads / n_kv_heads > DT_MAXG)
        return 0;
    if (kv_dtype == QK_BF16)
        return cc >= 80;
    return (kv_dtype == QK_F16 || kv_dtype == QK_F8) && cc >= 75;   /* FP8: f16 math */
}

/* the launch plan: warps per block (the most whose shared memory fits) and splits
 * (about one block per SM, at most one split per D2_CHUNK keys of the longest context) */
struct dt_plan {
    int w, ns;
};

static struct dt_plan dt_make_plan(const struct qr_cuda_attn *a, int n_sm)
{
    int dev = 0, optin = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
    const bool f8 = a->kv_dtype == QK_F8;   /* 1-byte tiles: half the shared memory */
    size_t w4 = a->head_dim == 64 ? (f8 ? dt_smem_bytes<1, 64, 4>() : dt_smem_bytes<2, 64, 4>())
                                  : (f8 ? dt_smem_bytes<1, 128, 4>() : dt_smem_bytes<2, 128, 4>());
    size_t w2 = a->head_dim == 64 ? (f8 ? dt_smem_bytes<1, 64, 2>() : dt_smem_bytes<2, 64, 2>())
                                  : (f8 ? dt_smem_bytes<1, 128, 2>() : dt_smem_bytes<2, 128, 2>());
    /* lab switches (read once): QR_CUDA_DT_W = 1 | 2 | 4 caps the warps per block, QR_CUDA_DT_SPB = blocks aimed
     * at per SM (default 4 / warps: four warps' pipelines per SM), QR_CUDA_DT_MAXNS caps the splits */
    static int env_w = -1, env_spb = -1, env_maxns = 0;
    if (env_w < 0) {
        const char *e = getenv("QR_CUDA_DT_W"), *f = getenv("QR_CUDA_DT_SPB"), *m = getenv("QR_CUDA_DT_MAXNS");
        int w = e ? atoi(e) : 4, spb = f ? atoi(f) : 0, mx = m ? atoi(m) : 0;
        env_maxns = mx > 0 && mx <= D2_MAX_SPLITS ? mx : 0;
        env_spb = spb > 0 && spb <= 64 ? spb : 0;
        env_w = w == 1 || w == 2 ? w : 4;
    }
    struct dt_plan p;
    p.w = (size_t)optin >= w4 ? 4 : (size_t)optin >= w2 ? 2 : 1;
    if (p.w > env_w)
        p.w = env_w;
    int64_t cap = (int64_t)a->max_blocks_per_seq * a->block_size;
    int64_t L = a->max_seq_len < cap ? a->max_seq_len : cap;
    if (L < 1)
        L = 1;
    int64_t by_len = (L + D2_CHUNK - 1) / D2_CHUNK;
    int64_t per_split = (int64_t)(a->n_kv_heads > 0 ? a->n_kv_heads : 1) * (a->n_seqs > 0 ? a->n_seqs : 1);
    const int64_t spb = env_spb ? env_spb : 4 / p.w;
    int64_t want = ((int64_t)(n_sm > 0 ? n_sm : 1) * spb + per_split - 1) / per_split;
    int64_t ns = want < by_len ? want : by_len;
    if (ns > D2_MAX_SPLITS)
        ns = D2_MAX_SPLITS;
    if (env_maxns && ns > env_maxns)   /* QR_CUDA_DT_MAXNS: at most this many splits (1: no merge kernel) */
        ns = env_maxns;
    p.ns = ns < 1 ? 1 : (int)ns;
    return p;
}

extern "C" size_t cuda_attn_decode_tc_scratch(const struct qr_cuda_attn *a, int n_sm)
{
    struct dt_plan p = dt_make_plan(a, n_sm);
    if (p.ns == 1)
        return 16;
    return (size_t)a->n_seqs * (size_t)a->n_heads * (size_t)p.ns * ((size_t)a->head_dim + 2) * sizeof(float);
}

template <typename T, int D, int W, bool F8 = false>
static int dt_launch(qr_cuda_stream st, const struct qr_cuda_attn *a, int ns, float *po, float *pml, int *cnt,
                     int early)
{
    constexpr size_t smem = dt_smem_bytes<F8 ? 1 : (int)sizeof(T), D, W>();
    static unsigned long long raised;   /* per instantiation, a bit per device */
    const int rs = qk_raise_smem(k_attn_decode_tc<T, D, W, F8>, smem, &raised);
    if (rs)
        return rs;
    dim3 grid((unsigned)ns, (unsigned)a->n_kv_heads, (unsigned)a->n_seqs);
    qk_launch(k_attn_decode_tc<T, D, W, F8>, grid, dim3(W * 32), smem, st, *a, ns, po, pml, early, cnt);
    return qk_launch_result();
}

template <typename T, int D, bool F8 = false>
static int dt_go(qr_cuda_stream st, const struct qr_cuda_attn *a, const struct dt_plan &p, float *po, float *pml,
                 int *cnt, int early)
{
    if (p.w == 4)
        return dt_launch<T, D, 4, F8>(st, a, p.ns, po, pml, cnt, early);
    if (p.w == 2)
        return dt_launch<T, D, 2, F8>(st, a, p.ns, po, pml, cnt, early);
    return dt_launch<T, D, 1, F8>(st, a, p.ns, po, pml, cnt, early);
}

extern "C" int cuda_launch_attn_decode_tc(qr_cuda_stream st, const struct qr_cuda_attn *a, void *scratch, int n_sm,
                                          int *counters, int early)
{
    if (a->n_seqs <= 0 || a->n_tokens <= 0 || a->n_heads <= 0)
        return 0;
    if ((a->head_dim != 64 && a->head_dim != 128) ||
        (a->kv_dtype != QK_BF16 && a->kv_dtype != QK_F16 && a->kv_dtype != QK_F8) ||
        a->n_kv_heads <= 0 || a->n_heads % a->n_kv_heads || a->n_heads / a->n_kv_heads > DT_MAXG)
        return (int)cudaErrorInvalidValue;
    struct dt_plan p = dt_make_plan(a, n_sm);
    float *po = (float *)scratch;
    float *pml = p.ns > 1 ? po + (size_t)a->n_seqs * a->n_heads * p.ns * a->head_dim : NULL;
    int *cnt = p.ns > 1 ? counters : NULL;
    int rc;
    if (a->kv_dtype == QK_BF16)
        rc = a->head_dim == 64 ? dt_go<__nv_bfloat16, 64>(st, a, p, po, pml, cnt, early)
                               : dt_go<__nv_bfloat16, 128>(st, a, p, po, pml, cnt, early);
    else if (a->kv_dtype == QK_F8)
        rc = a->head_dim == 64 ? dt_go<__half, 64, true>(st, a, p, po, pml, cnt, early)
                               : dt_go<__half, 128, true>(st, a, p, po, pml, cnt, early);
    else
        rc = a->head_dim == 64 ? dt_go<__half, 64>(st, a, p, po, pml, cnt, early)
                               : dt_go<__half, 128>(st, a, p, po, pml, cnt, early);
    if (rc || p.ns == 1 || cnt)
        return rc;
    return cuda_launch_attn_decode2_merge(st, a, p.ns, po, pml);
}
