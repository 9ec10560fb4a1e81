/* attn_split.cuh - the split-KV decode rules shared by attn_decode2.cu and
 * attn_decode_tc.cu, so both write partials the one merge kernel reads:
 * keys per split = ceil(ctx / n_splits) rounded up to D2_CHUNK; partials are
 * indexed ((seq * n_heads + head) * n_splits + split), (max, sum) in log2
 * units (scores pre-scaled by scale * log2 e). */
#ifndef QRUN_ATTN_SPLIT_CUH
#define QRUN_ATTN_SPLIT_CUH

#include "qr_cuda_common.cuh"

#define D2_CHUNK 64      /* split granularity (keys) */
#define D2_MAX_SPLITS 256
#define D2_LOG2E 1.4426950408889634f

/* validated sequence range of sequence s (every attention kernel): false skips the sequence; the context length is
 * clamped to the block table's capacity */
__device__ __forceinline__ bool attn_seq(const struct qr_cuda_attn &a, int s, int *qs, int *qlen, int *ctx)
{
    int b = a.q_start[s], e = a.q_start[s + 1];
    if (b < 0 || e < b || e > a.n_tokens)
        return false;
    int64_t cap = (int64_t)a.max_blocks_per_seq * a.block_size;
    int64_t c = a.seq_lens[s];
    c = c < 0 ? 0 : c > cap ? cap : c;
    *qs = b;
    *qlen = e - b;
    *ctx = (int)c;
    return true;
}

/* keys per split for a sequence of ctx keys (a multiple of the chunk), and the splits that hold keys */
__device__ __forceinline__ int d2_keys_per_split(int ctx, int n_splits)
{
    int per = (ctx + n_splits - 1) / n_splits;
    return ((per + D2_CHUNK - 1) / D2_CHUNK) * D2_CHUNK;
}
__device__ __forceinline__ int d2_used_splits(int ctx, int n_splits)
{
    if (ctx <= 0)
        return 1;
    int kps = d2_keys_per_split(ctx, n_splits);
    return (ctx + kps - 1) / kps;
}

#endif
