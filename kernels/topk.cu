/* topk.cu - each row's k best for sampling on the device (QR_OP_TOPK; semantics: backends/cpu/cpu_ref_ops.c):
 * v = x * inv_t[row] (one f32 multiply, NaN as -inf), the k best by (v descending, index ascending), written in that
 * order.  Keys are order-preserving maps of v (-0 and +0 one key, as the float compare has them equal); (key, index)
 * is a total order, so a row's k best are among the k best of each of its chunks.
 *
 * Split form (the default since the twenty-seventh session, H100: 37 us against 358 for a 151936-wide row at k = 20;
 * taken while the candidates fit, topk_chunks; QR_CUDA_TOPK_SPLIT=0 turns it off):
 *   1. k_topk_part: one 256-thread block per 2048-element chunk of a row holds its keys in registers (eight loads in
 *      flight per thread), radix-selects the chunk's k best and writes them in index order to scratch, so a row's
 *      candidates, chunk after chunk, are in index order too;
 *   2. k_topk_merge: one 512-thread block per row selects the k best of those candidates the same way and writes
 *      them ranked.  A row of one chunk skips the merge (the part kernel writes it ranked).
 * One-block form (rows too wide for the merge's registers, or QR_CUDA_TOPK_SPLIT=0): k_topk, one 1024-thread block
 * per row streaming the row five times (load-latency bound: ~0.36 ms for a 151936-wide row on the H100).
 *
 * The selection (tk_select): four 8-bit radix passes find the k-th best key T and how many keys rank above it
 * (warp-aggregated shared-memory histograms, as logits crowd into few bins; one warp scans the 256 bins); then the
 * keys above T (any order) and the lowest-position keys equal to T (a block scan per slice) are gathered into shared
 * memory, and each candidate's place is the count of candidates before it (k <= 256: at most 64K compares). */
#include "qr_cuda_common.cuh"

#include <stdlib.h>

#define TK_MAX 256
#define TK_ONE_THREADS 1024
#define TK_PART_THREADS 256
#define TK_PART_E 8          /* keys per thread in the part kernel */
#define TK_CHUNK (TK_PART_THREADS * TK_PART_E)
#define TK_MERGE_THREADS 512
#define TK_MERGE_E 40        /* candidates per thread in the merge kernel: up to 20480 (80 chunks at k = 256) */
/* candidates in scratch above this take the one-block form instead (keeps the stream's scratch small) */
#define TK_SCRATCH_MAX ((size_t)16 << 20)   /* candidates' bytes; QR_CUDA_TOPK_SCRATCH_MB overrides (lab) */

__device__ __forceinline__ float tk_val(float x, float it) { return isnan(x) ? -INFINITY : __fmul_rn(x, it); }

/* larger v, larger key; -0 as +0 */
__device__ __forceinline__ unsigned tk_key(float v)
{
    unsigned b = __float_as_uint(v == 0.0f ? 0.0f : v);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

/* a ranks above b */
__device__ __forceinline__ bool tk_above(float va, int ia, float vb, int ib)
{
    return va > vb || (va == vb && ia < ib);
}

struct tk_smem {
    unsigned hist[256];
    unsigned prefix, need, gt;   /* the key prefix found so far; keys matching it still to take; keys above it */
    unsigned ngt, base, done;
    unsigned wsum[32];
    float cv[TK_MAX];
    int ci[TK_MAX];
};

/* adds one key's bin (256: none) to the histogram, one atomic per distinct bin of the warp */
__device__ __forceinline__ void tk_count(unsigned *hist, unsigned bin)
{
    const unsigned same = __match_any_sync(0xffffffffu, bin);
    if (bin < 256 && (threadIdx.x & 31) == __ffs(same) - 1)
        atomicAdd(&hist[bin], (unsigned)__popc(same));
}

/* after a pass's histogram: the digit d where the count of keys from the top reaches need (one warp, eight bins a
 * lane from the top); prefix |= d, need and gt move past the bins above d.  The caller syncs before and after. */
__device__ __forceinline__ void tk_digit(tk_smem &sm, int shift)
{
    if (threadIdx.x >= 32)
        return;
    const int lane = threadIdx.x;
    unsigned c[8], s = 0;
#pragma unroll
    for (int j = 0; j < 8; j++) {
        c[j] = sm.hist[255 - 8 * lane - j];
        s += c[j];
    }
    unsigned cum = s;   /* inclusive scan over the lanes, then exclusive */
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
        const unsigned t = __shfl_up_sync(0xffffffffu, cum, o);
        if (lane >= o)
            cum += t;
    }
    cum -= s;
    const unsigned need = sm.need;
    __syncwarp();
#pragma unroll
    for (int j = 0; j < 8; j++) {
        if (cum < need && cum + c[j] >= need) {   /* exactly one (lane, j): need <= the keys matching the prefix */
            sm.prefix |= (unsigned)(255 - 8 * lane - j) << shift;
            sm.gt += cum;
            sm.need = need - cum;
        }
        cum += c[j];
    }
}

/* radix select over a block's len keys (key_at(s): this thread's key at position p = s * NT + tid, asked only for
 * p < len; E > 0: E slices, unrolled, as from registers; E = 0: as many as len needs): leaves sm.prefix = T, the k-th
 * best key, sm.need = how many keys equal to T to take, sm.gt = how many keys are above T */
template <int NT, int E, typename K>
__device__ __forceinline__ void tk_select(tk_smem &sm, int len, int k, K key_at)
{
    const int tid = threadIdx.x, ns = E > 0 ? E : (len + NT - 1) / NT;
    if (tid == 0) {
        sm.prefix = 0;
        sm.need = (unsigned)k;
        sm.gt = 0;
    }
    for (int pass = 0; pass < 4; pass++) {
        const int shift = 24 - 8 * pass;
        for (int i = tid; i < 256; i += NT)
            sm.hist[i] = 0;
        __syncthreads();
        const unsigned prefix = sm.prefix;
        const unsigned pmask = pass == 0 ? 0u : 0xffffffffu << (32 - 8 * pass);
#pragma unroll
        for (int s = 0; s < (E > 0 ? E : ns); s++)
            if (s * NT < len) {   /* uniform: whole warps reach the match */
                const int p = s * NT + tid;
                const unsigned key = p < len ? key_at(s) : 0u;
                tk_count(sm.hist, p < len && (key & pmask) == prefix ? (key >> shift) & 255u : 256u);
            }
        __syncthreads();
        tk_digit(sm, shift);
        __syncthreads();
    }
}

/* after tk_select: the keys above T and the first sm.need keys equal to T by position into sm.cv / sm.ci (value and
 * index from val_at / idx_at (p), read for the taken keys only); returns how many (min(k, len)) */
template <int NT, int E, typename K, typename V, typename I>
__device__ __forceinline__ int tk_gather(tk_smem &sm, int len, K key_at, V val_at, I idx_at)
{
    const int tid = threadIdx.x, lane = tid & 31, w = tid >> 5, ns = E > 0 ? E : (len + NT - 1) / NT;
    const unsigned T = sm.prefix, need_eq = sm.need, n_gt = sm.gt;
    if (tid == 0) {
        sm.ngt = 0;
        sm.base = 0;
    }
    __syncthreads();
#pragma unroll
    for (int s = 0; s < (E > 0 ? E : ns); s++) {
        if (s * NT >= len)
            break;   /* uniform */
        const int p = s * NT + tid;
        const unsigned key = p < len ? key_at(s) : 0u;
        const bool gt = p < len && key > T, eq = p < len && key == T;
        if (gt) {
            const unsigned q = atomicAdd(&sm.ngt, 1u);
            sm.cv[q] = val_at(p);
            sm.ci[q] = idx_at(p);
        }
        const unsigned bal = __ballot_sync(0xffffffffu, eq);
        if (lane == 0)
            sm.wsum[w] = __popc(bal);
        __syncthreads();
        unsigned before = sm.base;
        for (int j = 0; j < w; j++)
            before += sm.wsum[j];
        before += __popc(bal & ((1u << lane) - 1u));
        if (eq && before < need_eq) {
            sm.cv[n_gt + before] = val_at(p);
            sm.ci[n_gt + before] = idx_at(p);
        }
        __syncthreads();
        if (tid == 0) {
            unsigned tot = 0;
            for (int j = 0; j < NT / 32; j++)
                tot += sm.wsum[j];
            sm.base += tot;
            sm.done = sm.base >= need_eq && sm.ngt >= n_gt;   /* one word, written before the barrier: uniform */
        }
        __syncthreads();
        if (sm.done)
            break;
    }
    __syncthreads();
    return (int)(n_gt + need_eq);
}

/* each gathered candidate (m of them) to its place: ranked (v descending, index ascending) or by index */
__device__ __forceinline__ void tk_place(const tk_smem &sm, int m, bool ranked, int32_t *ids, float *vals)
{
    for (int t = threadIdx.x; t < m; t += blockDim.x) {
        const float v = sm.cv[t];
        const int i = sm.ci[t];
        int place = 0;
        for (int j = 0; j < m; j++)
            place += ranked ? tk_above(sm.cv[j], sm.ci[j], v, i) : sm.ci[j] < i;
        ids[place] = i;
        vals[place] = v;
    }
}

/* grid (chunks, rows): a chunk's min(k, len) best; with one chunk a row the row's answer, ranked, into ids / vals;
 * else in index order into cids / cvals at [row][chunk * k] */
__global__ void __launch_bounds__(TK_PART_THREADS) k_topk_part(int32_t *ids, float *vals, int32_t *cids, float *cvals,
                                                               const float *x, const float *inv_t, int n, int k)
{
    qk_pdl_wait();
    qk_pdl_trigger();
    __shared__ tk_smem sm;
    const int c = blockIdx.x, r = blockIdx.y, nc = gridDim.x, tid = threadIdx.x;
    const int base = c * TK_CHUNK, len = min(TK_CHUNK, n - base);
    const float *row = x + (int64_t)r * n + base;
    const float it = inv_t[r];
    unsigned key[TK_PART_E];
#pragma unroll
    for (int s = 0; s < TK_PART_E; s++) {
        const int p = s * TK_PART_THREADS + tid;
        key[s] = p < len ? tk_key(tk_val(row[p], it)) : 0u;
    }
    auto key_at = [&](int s) { return key[s]; };
    tk_select<TK_PART_THREADS, TK_PART_E>(sm, len, min(k, len), key_at);
    const int m = tk_gather<TK_PART_THREADS, TK_PART_E>(
        sm, len, key_at, [&](int p) { return tk_val(row[p], it); }, [&](int p) { return base + p; });
    if (nc == 1)
        tk_place(sm, m, true, ids + (int64_t)r * k, vals + (int64_t)r * k);
    else
        tk_place(sm, m, false, cids + ((int64_t)r * nc + c) * k, cvals + ((int64_t)r * nc + c) * k);
}

/* one block a row: the k best of the row's n_cand candidates (values already scaled), ranked */
__global__ void __launch_bounds__(TK_MERGE_THREADS) k_topk_merge(int32_t *ids, float *vals, const int32_t *cids,
                                                                 const float *cvals, int stride, int n_cand, int k)
{
    qk_pdl_wait();
    qk_pdl_trigger();
    __shared__ tk_smem sm;
    const int r = blockIdx.x, tid = threadIdx.x;
    const float *cv = cvals + (int64_t)r * stride;
    const int32_t *ci = cids + (int64_t)r * stride;
    unsigned key[TK_MERGE_E];
#pragma unroll
    for (int s = 0; s < TK_MERGE_E; s++) {
        const int p = s * TK_MERGE_THREADS + tid;
        key[s] = p < n_cand ? tk_key(cv[p]) : 0u;
    }
    auto key_at = [&](int s) { return key[s]; };
    tk_select<TK_MERGE_THREADS, TK_MERGE_E>(sm, n_cand, k, key_at);
    const int m = tk_gather<TK_MERGE_THREADS, TK_MERGE_E>(
        sm, n_cand, key_at, [&](int p) { return cv[p]; }, [&](int p) { return ci[p]; });
    tk_place(sm, m, true, ids + (int64_t)r * k, vals + (int64_t)r * k);
}

/* the one-block form: the row streamed from memory in every pass */
__global__ void __launch_bounds__(TK_ONE_THREADS) k_topk(int32_t *ids, float *vals, const float *x, const float *inv_t,
                                                         int n, int k)
{
    qk_pdl_wait();
    qk_pdl_trigger();
    __shared__ tk_smem sm;
    const int r = blockIdx.x;
    const float *row = x + (int64_t)r * n;
    const float it = inv_t[r];
    auto key_at = [&](int s) { return tk_key(tk_val(row[s * TK_ONE_THREADS + threadIdx.x], it)); };
    tk_select<TK_ONE_THREADS, 0>(sm, n, k, key_at);
    const int m = tk_gather<TK_ONE_THREADS, 0>(
        sm, n, key_at, [&](int p) { return tk_val(row[p], it); }, [&](int p) { return p; });
    tk_place(sm, m, true, ids + (int64_t)r * k, vals + (int64_t)r * k);
}

/* chunks a row of the split form, 0 when the one-block form runs */
static int topk_chunks(int n_rows, int n, int k)
{
    static int split = -1;
    if (split < 0) {
        const char *e = getenv("QR_CUDA_TOPK_SPLIT");
        split = !(e && *e && atoi(e) == 0);   /* the default; QR_CUDA_TOPK_SPLIT=0: the one-block form */
    }
    const int nc = (n + TK_CHUNK - 1) / TK_CHUNK;
    if (!split || (int64_t)nc * k > (int64_t)TK_MERGE_THREADS * TK_MERGE_E)
        return 0;
    static size_t cap;
    if (!cap) {
        const char *m = getenv("QR_CUDA_TOPK_SCRATCH_MB");
        const long mb = m && *m ? atol(m) : 0;
        cap = mb > 0 && mb <= 1024 ? (size_t)mb << 20 : TK_SCRATCH_MAX;
    }
    if (nc > 1 && (size_t)n_rows * (size_t)nc * (size_t)k * 8 > cap)
        return 0;
    return nc;
}

extern "C" size_t cuda_topk_scratch(int n_rows, int n, int k)
{
    if (n_rows <= 0 || n <= 0 || k < 1 || k > TK_MAX || k > n)
        return 0;
    const int nc = topk_chunks(n_rows, n, k);
    return nc > 1 ? (size_t)n_rows * (size_t)nc * (size_t)k * 8 : 0;
}

extern "C" int cuda_launch_topk(qr_cuda_stream st, int32_t *ids, float *vals, const float *x, const float *inv_t,
                                int n_rows, int n, int k, void *scratch)
{
    if (n_rows <= 0 || n <= 0 || k < 1 || k > TK_MAX || k > n)
        return n_rows <= 0 ? 0 : (int)cudaErrorInvalidValue;
    const int nc = topk_chunks(n_rows, n, k);
    if (nc == 0) {
        qk_launch(k_topk, dim3((unsigned)n_rows), dim3(TK_ONE_THREADS), 0, st, ids, vals, x, inv_t, n, k);
        return qk_launch_result();
    }
    if (nc > 1 && !scratch)
        return (int)cudaErrorInvalidValue;
    const int stride = nc * k;
    int32_t *cids = (int32_t *)scratch;
    float *cvals = nc > 1 ? (float *)(cids + (size_t)n_rows * stride) : NULL;
    qk_launch(k_topk_part, dim3((unsigned)nc, (unsigned)n_rows), dim3(TK_PART_THREADS), 0, st, ids, vals, cids,
              cvals, x, inv_t, n, k);
    if (nc > 1) {
        int e = qk_launch_result();
        if (e)
            return e;
        const int n_cand = (nc - 1) * k + min(k, n - (nc - 1) * TK_CHUNK);
        qk_launch(k_topk_merge, dim3((unsigned)n_rows), dim3(TK_MERGE_THREADS), 0, st, ids, vals,
                  (const int32_t *)cids, (const float *)cvals, stride, n_cand, k);
    }
    return qk_launch_result();
}
