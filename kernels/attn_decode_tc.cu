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
 * ids mask their keys; lengths are clamped to the block table. */
#include "attn_split.cuh"
#include "qr_mma.cuh"

#include <stdlib.h>

#define DT_BK 32     /* keys per tile */
#define DT_MAXG 16   /* query heads per group: the rows of one fragment */
#define DT_ST 3      /* pipeline stages per warp */

/* stage buffers (K and V tiles per warp and stage) + key masks; the final reduction reuses them */
template <typename T, int D, int W>
__host__ __device__ constexpr size_t dt_smem_bytes()
{
    return (size_t)W * DT_ST * 2 * DT_BK * D * sizeof(T) + (size_t)W * DT_ST * sizeof(uint32_t);
}

/* element offset of 16-byte chunk ch of row r in a [DT_BK][D] tile */
template <int D>
__device__ __forceinline__ int dt_sw(int r, int ch)
{
    return r * D + ((ch ^ (r & 7)) << 3);
}

template <typename T, int D, int W>
__global__ void __launch_bounds__(W * 32, 1)
    k_attn_decode_tc(const struct qr_cuda_attn a, int n_splits, float *part_o, float *part_ml, int early, int *cnt)
{
    constexpr int CPR = D / 8;        /* 16-byte chunks per row */
    constexpr int TILE = DT_BK * D;   /* elements of one K (or V) tile */
    static_assert((size_t)W * DT_MAXG * (D + 2) * sizeof(float) <= dt_smem_bytes<T, D, W>(), "reduction space");
    extern __shared__ __align__(128) unsigned char dt_smem[];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    T *kw = (T *)dt_smem + (size_t)warp * DT_ST * 2 * TILE;   /* stage st: K at kw + st*2*TILE, V after it */
    uint32_t *kmask = (uint32_t *)((T *)dt_smem + (size_t)W * DT_ST * 2 * TILE) + warp * DT_ST;

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
        T *ks = kw + dst_st * 2 * TILE, *vs = ks + TILE;
        for (int c = lane; c < 2 * CPR; c += 32) {
            const int ch = c % CPR;
            const T *src = (c < CPR ? kc : vc) + dst_off + ch * 8;
            *(uint4 *)((c < CPR ? ks : vs) + dt_sw<D>(dst_row, ch)) = __ldcg((const uint4 *)src);
        }
    }

    /* the group's query heads as fragment rows g and g + 8 */
    uint32_t qa[D / 16][4];
    {
        const float qscale = a.scale * D2_LOG2E;
        const bool v0 = g < G, v1 = g + 8 < G;
        const float *q0 = a.q + (int64_t)qs * a.ldq + (int64_t)(h0 + g) * D;
        const float *q1 = q0 + 8 * D;
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
        const T *ks = kw + st * 2 * TILE, *vs = ks + TILE;
        const uint32_t km = kmask[st];

        float sc[DT_BK / 8][4];
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
#pragma unroll
        for (int i = 0; i < D / 8; i++) {
            o[i][0] *= al0;
            o[i][1] *= al0;
            o[i][2] *= al1;
            o[i][3] *= al1;
        }
#pragma unroll
        for (int jj = 0; jj < DT_BK / 16; jj++) {
            uint32_t pa[4];
            pa[0] = pf_pack<T>(sc[2 * jj][0], sc[2 * jj][1]);
            pa[1] = pf_pack<T>(sc[2 * jj][2], sc[2 * jj][3]);
            pa[2] = pf_pack<T>(sc[2 * jj + 1][0], sc[2 * jj + 1][1]);
            pa[3] = pf_pack<T>(sc[2 * jj + 1][2], sc[2 * jj + 1][3]);
            const int r = jj * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
#pragma unroll
            for (int dt = 0; dt < D / 8; dt += 2) {
                uint32_t b[4];
                ldsm_x4_t(b, vs + dt_sw<D>(r, dt + (lane >> 4)));
                pf_mma<T>(o[dt], pa, b);
                pf_mma<T>(o[dt + 1], pa, b + 2);
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

    float *red_o = (float *)dt_smem;              /* [W][16][D] */
    float *red_ml = red_o + W * DT_MAXG * D;      /* [W][16][2] */
    if (g < G) {
        float *ro = red_o + (warp * DT_MAXG + g) * D;
#pragma unroll
        for (int dt = 0; dt < D / 8; dt++) {
            ro[dt * 8 + 2 * t4] = o[dt][0];
            ro[dt * 8 + 2 * t4 + 1] = o[dt][1];
        }
        if (t4 == 0) {
            red_ml[(warp * DT_MAXG + g) * 2] = m0;
            red_ml[(warp * DT_MAXG + g) * 2 + 1] = l0;
        }
    }
    if (g + 8 < G) {
        float *ro = red_o + (warp * DT_MAXG + g + 8) * D;
#pragma unroll
        for (int dt = 0; dt < D / 8; dt++) {
            ro[dt * 8 + 2 * t4] = o[dt][2];
            ro[dt * 8 + 2 * t4 + 1] = o[dt][3];
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
                O += wt * red_o[(w * DT_MAXG + r) * D + d];
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
    return kv_dtype == QK_F16 && cc >= 75;
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
    size_t w4 = a->head_dim == 64 ? dt_smem_bytes<__half, 64, 4>() : dt_smem_bytes<__half, 128, 4>();
    size_t w2 = a->head_dim == 64 ? dt_smem_bytes<__half, 64, 2>() : dt_smem_bytes<__half, 128, 2>();
    struct dt_plan p;
    p.w = (size_t)optin >= w4 ? 4 : (size_t)optin >= w2 ? 2 : 1;
    int64_t cap = (int64_t)a->max_blocks_per_seq * a->block_size;
    int64_t L = a->max_seq_len < cap ? a->max_seq_len : cap;
    if (L < 1)
        L = 1;
    int64_t by_len = (L + D2_CHUNK - 1) / D2_CHUNK;
    int64_t per_split = (int64_t)(a->n_kv_heads > 0 ? a->n_kv_heads : 1) * (a->n_seqs > 0 ? a->n_seqs : 1);
    int64_t want = ((int64_t)(n_sm > 0 ? n_sm : 1) * 4 / p.w + per_split - 1) / per_split;
    int64_t ns = want < by_len ? want : by_len;
    if (ns > D2_MAX_SPLITS)
        ns = D2_MAX_SPLITS;
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

template <typename T, int D, int W>
static int dt_launch(qr_cuda_stream st, const struct qr_cuda_attn *a, int ns, float *po, float *pml, int *cnt,
                     int early)
{
    constexpr size_t smem = dt_smem_bytes<T, D, W>();
    static bool raised;   /* per instantiation; idempotent, so a race is harmless */
    if (smem > 48 * 1024 && !raised) {
        cudaError_t e = cudaFuncSetAttribute(k_attn_decode_tc<T, D, W>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             (int)smem);
        if (e != cudaSuccess)
            return (int)e;
        raised = true;
    }
    dim3 grid((unsigned)ns, (unsigned)a->n_kv_heads, (unsigned)a->n_seqs);
    qk_launch(k_attn_decode_tc<T, D, W>, grid, dim3(W * 32), smem, st, *a, ns, po, pml, early, cnt);
    return qk_launch_result();
}

template <typename T, int D>
static int dt_go(qr_cuda_stream st, const struct qr_cuda_attn *a, const struct dt_plan &p, float *po, float *pml,
                 int *cnt, int early)
{
    if (p.w == 4)
        return dt_launch<T, D, 4>(st, a, p.ns, po, pml, cnt, early);
    if (p.w == 2)
        return dt_launch<T, D, 2>(st, a, p.ns, po, pml, cnt, early);
    return dt_launch<T, D, 1>(st, a, p.ns, po, pml, cnt, early);
}

extern "C" int cuda_launch_attn_decode_tc(qr_cuda_stream st, const struct qr_cuda_attn *a, void *scratch, int n_sm,
                                          int *counters, int early)
{
    if (a->n_seqs <= 0 || a->n_tokens <= 0 || a->n_heads <= 0)
        return 0;
    if ((a->head_dim != 64 && a->head_dim != 128) || (a->kv_dtype != QK_BF16 && a->kv_dtype != QK_F16) ||
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
    else
        rc = a->head_dim == 64 ? dt_go<__half, 64>(st, a, p, po, pml, cnt, early)
                               : dt_go<__half, 128>(st, a, p, po, pml, cnt, early);
    if (rc || p.ns == 1 || cnt)
        return rc;
    return cuda_launch_attn_decode2_merge(st, a, p.ns, po, pml);
}
