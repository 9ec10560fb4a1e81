/* test_backend_ops.c - op-by-op parity of every backend with the CPU reference.
 *
 *   test_backend_ops [-o OP] [-b BACKEND] [-p SUBSTR] [--perf] [--list] [--coverage]
 *                    [--config INI] [--threads N] [-v]
 *
 * For every case of the table k_cases below:
 *   1. inputs are generated from a fixed seed (per case);
 *   2. the CPU reference runs the op; its result is checked against a naive
 *      double-precision implementation written here ("cpu-self": matmul vs a
 *      plain loop, paged attention vs dense attention over the same tokens
 *      scattered into randomly shuffled blocks, norms/rope vs their formulas);
 *   3. every other loaded backend (all non-CPU ones, or the one named by -b)
 *      runs the same op on the same inputs and is compared with the CPU
 *      result using per-op tolerances (NMSE, then |a-b| <= atol + rtol*|ref|;
 *      a NaN/Inf where the reference has none, or vice versa, always fails).
 * A backend with graph_exec also runs each case as a one-node graph with a
 * fresh key twice (record, then replay with the buffers reset); the replay
 * must match the reference as well.
 * Every tensor lives in its own buffer between two 256-byte canary regions; a
 * changed canary (an out-of-bounds write) or a changed input fails the case.
 * Strided outputs keep random values in their gaps: a backend writing there
 * differs from the reference.  Unsupported (op, dtype) pairs print SKIP.
 * Cases marked "bad-idx" feed out-of-range indices: only the absence of
 * crashes and out-of-bounds writes is checked (clamp vs skip may differ).
 * --coverage prints the (op x dtype) support matrix of every device.
 * --perf adds the large cases (Qwen3-4B shapes) and prints time, GB/s and
 * TFLOP/s per device (L2 flushed with a 64 MiB memset before each rep).
 *
 * To add a case: add a row to k_cases.  To add an op: write gen_<op> (make
 * tensors, fill inputs, set args and bind views), naive_<op> (expected
 * outputs in double), a tolerance row in k_tol, and a line in gen()/naive().
 */
#include "qrun/qr_registry.h"
#include "testutil.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CANARY 256
#define MAXT 10
#define MAXV 12

enum {
    F_BIAS = 1 << 0,      /* matmul: with bias */
    F_ACCUM = 1 << 1,     /* matmul: y += */
    F_INPLACE = 1 << 2,   /* norms: out == x */
    F_BADIDX = 1 << 3,    /* out-of-range indices (embed: ids; kv_store: slots; attn: block ids) */
    F_YARN = 1 << 4,      /* rope: attn_factor != 1 */
    F_NEGSLOT = 1 << 5,   /* kv_store: some slots are -1 (skipped) */
    F_TIES = 1 << 6,      /* argmax, topk: values from a small set (ties) */
    F_NANINF = 1 << 7,    /* matmul: an Inf in one x row, a NaN in another (must propagate alike); topk: NaN, +-Inf
                           * in x; argmax: NaN and -Inf, a row of NaN alone */
    F_RAMP = 1 << 8,      /* attn: keys grow with their position, so a row's max keeps rising tile after tile */
};

/* One row per case.  Meaning of a, b, c by op:
 *   embed: tokens, dim, vocab          matmul: M, N, K            logits: rows, vocab, dim
 *   rmsnorm: tokens, -, n              qk_norm: tokens (heads, head_dim below)
 *   rope: tokens (heads, head_dim)     kv_store: tokens, -, num_blocks (kv_heads, head_dim, block_size)
 *   attn: seqs = "ctx:qlen,..." ("ctx:qlen*R" repeats R times)
 *   silu_mul: tokens, n_ff             add: n                     argmax: rows, n
 *   topk: rows, n, k
 * pad: extra elements in every activation row stride (non-contiguous rows). */
struct tcase {
    enum qr_op op;
    enum qr_dtype dt;   /* weight dtype; KV dtype for kv_store and attn */
    int a, b, c;
    int pad;
    int flags;
    int heads, kv_heads, head_dim, block_size;
    const char *seqs;
    bool perf;          /* large: only with --perf */
};

#define F32 QR_DTYPE_F32
#define F16 QR_DTYPE_F16
#define BF16 QR_DTYPE_BF16
#define F8 QR_DTYPE_F8E4M3

/* rows list only the leading fields they need */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
static const struct tcase k_cases[] = {
    /* embed */
    {QR_OP_EMBED, BF16, 9, 67, 100, 0, F_BADIDX},
    {QR_OP_EMBED, F32, 1, 2560, 50},
    {QR_OP_EMBED, F16, 5, 33, 10},
    /* matmul: one row, odd sizes, long K, bias, accumulate, strides */
    {QR_OP_MATMUL, F32, 1, 1, 1},
    {QR_OP_MATMUL, BF16, 1, 77, 300},
    {QR_OP_MATMUL, F16, 1, 77, 300},
    {QR_OP_MATMUL, F32, 1, 77, 300},
    {QR_OP_MATMUL, BF16, 1, 33, 70, 0, F_BIAS | F_ACCUM},
    {QR_OP_MATMUL, BF16, 4, 19, 45, 0, F_NANINF},
    {QR_OP_MATMUL, BF16, 7, 129, 257, 3, F_BIAS},
    {QR_OP_MATMUL, F16, 7, 129, 257, 3, F_BIAS | F_ACCUM},
    {QR_OP_MATMUL, F32, 5, 1000, 64, 0, F_ACCUM},
    {QR_OP_MATMUL, BF16, 33, 65, 4099},
    {QR_OP_MATMUL, BF16, 130, 96, 200, 1, F_ACCUM},
    {QR_OP_MATMUL, BF16, 2, 512, 2560, 0, F_BIAS},
    /* prompt GEMMs on the vector path (K % 32 == 0): partial 128-row and 256-column tiles (Vulkan matmul_cm2) */
    {QR_OP_MATMUL, BF16, 200, 300, 96, 4, F_BIAS | F_ACCUM},
    {QR_OP_MATMUL, F16, 129, 257, 64},
    {QR_OP_MATMUL, F32, 70, 520, 128, 0, F_ACCUM},
    {QR_OP_MATMUL, BF16, 256, 512, 2560},
    /* ... one K slice (the pipelined matmul_cm3's prologue alone) and five (odd: both of its stages, then a tail) */
    {QR_OP_MATMUL, BF16, 65, 130, 32, 0, F_BIAS},
    {QR_OP_MATMUL, F16, 300, 257, 160, 4, F_ACCUM},
    /* GEMV variants (x rows per workgroup 1/2/4/8): M = 3, 6, 8, 12; vector rounds with a predicated tail */
    {QR_OP_MATMUL, BF16, 3, 67, 264},
    {QR_OP_MATMUL, F16, 6, 31, 2056, 0, F_ACCUM},
    {QR_OP_MATMUL, BF16, 8, 40, 4104, 4, F_BIAS},
    {QR_OP_MATMUL, F32, 12, 45, 1028},
    {QR_OP_MATMUL, BF16, 1, 129, 9736, 0, F_ACCUM},
    {QR_OP_MATMUL, BF16, 16, 23, 136, 0, F_NANINF},
    /* a decode batch with a long K, accumulating: the CUDA tuner's split-K variants (QR_CUDA_GEMM_TUNE_SPLITK) */
    {QR_OP_MATMUL, BF16, 24, 640, 3072, 0, F_ACCUM},
    {QR_OP_MATMUL, BF16, 1, 9728, 2560, 0, 0, .perf = true},
    {QR_OP_MATMUL, BF16, 1, 2560, 9728, 0, F_ACCUM, .perf = true},
    {QR_OP_MATMUL, BF16, 1, 6144, 2560, 0, 0, .perf = true},
    {QR_OP_MATMUL, BF16, 64, 6144, 2560, 0, 0, .perf = true},
    {QR_OP_MATMUL, BF16, 512, 9728, 2560, 0, 0, .perf = true},
    /* logits */
    {QR_OP_LOGITS, BF16, 3, 1001, 67},
    {QR_OP_LOGITS, F32, 1, 517, 128},
    {QR_OP_LOGITS, F16, 2, 300, 96, 5},
    {QR_OP_LOGITS, BF16, 1, 151936, 2560, 0, 0, .perf = true},
    /* rmsnorm */
    {QR_OP_RMSNORM, BF16, 5, 0, 2560},
    {QR_OP_RMSNORM, F32, 3, 0, 67, 5},
    {QR_OP_RMSNORM, F16, 1, 0, 1000},
    {QR_OP_RMSNORM, BF16, 4, 0, 300, 0, F_INPLACE},
    {QR_OP_RMSNORM, BF16, 2, 0, 5000, 0, F_INPLACE},   /* longer than the register-cached part */
    {QR_OP_RMSNORM, BF16, 512, 0, 2560, 0, 0, .perf = true},
    /* qk_norm: per head */
    {QR_OP_QK_NORM, BF16, 5, 0, 0, 0, F_INPLACE, 32, 0, 128},
    {QR_OP_QK_NORM, F32, 3, 0, 0, 7, 0, 8, 0, 64},
    {QR_OP_QK_NORM, F16, 1, 0, 0, 0, 0, 4, 0, 128},
    /* rope */
    {QR_OP_ROPE, F32, 7, 0, 0, 0, 0, 32, 0, 128},
    {QR_OP_ROPE, F32, 3, 0, 0, 16, 0, 8, 0, 64},
    {QR_OP_ROPE, F32, 1, 0, 0, 0, F_YARN, 5, 0, 128},
    {QR_OP_ROPE, F32, 512, 0, 0, 0, 0, 40, 0, 128, .perf = true},
    /* kv_store */
    {QR_OP_KV_STORE, F32, 9, 0, 11, 0, F_NEGSLOT, 0, 8, 128, 16},
    {QR_OP_KV_STORE, BF16, 1, 0, 7, 0, 0, 0, 8, 128, 16},
    {QR_OP_KV_STORE, F16, 37, 0, 13, 3, F_NEGSLOT, 0, 2, 64, 5},
    {QR_OP_KV_STORE, BF16, 5, 0, 3, 0, F_BADIDX, 0, 4, 64, 16},
    {QR_OP_KV_STORE, BF16, 512, 0, 64, 0, 0, 0, 8, 128, 16, .perf = true},
    /* FP8 E4M3 KV cache: rounding, saturation past 448, skipped and bad slots */
    {QR_OP_KV_STORE, F8, 37, 0, 13, 3, F_NEGSLOT, 0, 2, 64, 5},
    {QR_OP_KV_STORE, F8, 5, 0, 3, 0, F_BADIDX, 0, 4, 64, 16},
    /* attn: prompt chunks, single-token decodes, mixed varlen, GQA 1/4/8, head_dim 64/128 */
    {QR_OP_ATTN, F32, .heads = 32, .kv_heads = 8, .head_dim = 128, .block_size = 16, .seqs = "37:37"},
    {QR_OP_ATTN, BF16, .heads = 32, .kv_heads = 8, .head_dim = 128, .block_size = 16, .seqs = "1:1"},
    {QR_OP_ATTN, BF16, .heads = 32, .kv_heads = 8, .head_dim = 128, .block_size = 16, .seqs = "100:1"},
    {QR_OP_ATTN, F16, .pad = 8, .heads = 8, .kv_heads = 8, .head_dim = 64, .block_size = 16, .seqs = "77:13"},
    {QR_OP_ATTN, BF16, .heads = 16, .kv_heads = 2, .head_dim = 128, .block_size = 5,
     .seqs = "300:1,5:5,49:17,1:1,130:1"},
    {QR_OP_ATTN, F32, .heads = 4, .kv_heads = 1, .head_dim = 64, .block_size = 32, .seqs = "1000:1,200:1"},
    {QR_OP_ATTN, BF16, .pad = 3, .heads = 8, .kv_heads = 1, .head_dim = 128, .block_size = 16, .seqs = "64:64,33:2"},
    {QR_OP_ATTN, F16, .heads = 12, .kv_heads = 4, .head_dim = 64, .block_size = 16, .seqs = "16:16,17:1,15:15"},
    {QR_OP_ATTN, BF16, .flags = F_BADIDX, .heads = 8, .kv_heads = 2, .head_dim = 64, .block_size = 16,
     .seqs = "90:1,40:40"},
    /* rising scores: every online-softmax rescale path (Vulkan attn_cm2 moves its reference max only on big jumps) */
    {QR_OP_ATTN, BF16, .flags = F_RAMP, .heads = 32, .kv_heads = 8, .head_dim = 128, .block_size = 16,
     .seqs = "300:300"},
    {QR_OP_ATTN, F16, .flags = F_RAMP, .heads = 8, .kv_heads = 2, .head_dim = 128, .block_size = 16,
     .seqs = "700:64,90:90,400:1"},
    /* decodes on each attn_dec variant: GQA 1, 2, 6 (8 heads per workgroup, 6 used), 7; head_dim 72 */
    {QR_OP_ATTN, BF16, .heads = 8, .kv_heads = 8, .head_dim = 64, .block_size = 16, .seqs = "300:1,17:1"},
    {QR_OP_ATTN, F16, .heads = 6, .kv_heads = 3, .head_dim = 128, .block_size = 16, .seqs = "129:1,1000:1"},
    {QR_OP_ATTN, BF16, .heads = 12, .kv_heads = 2, .head_dim = 128, .block_size = 16, .seqs = "500:1,64:1"},
    {QR_OP_ATTN, BF16, .heads = 28, .kv_heads = 4, .head_dim = 128, .block_size = 16, .seqs = "2000:1,1:1"},
    {QR_OP_ATTN, BF16, .heads = 4, .kv_heads = 2, .head_dim = 72, .block_size = 7, .seqs = "333:1"},
    /* long decodes: several chunks per split, splits of different lengths per sequence */
    {QR_OP_ATTN, BF16, .heads = 32, .kv_heads = 8, .head_dim = 128, .block_size = 16, .seqs = "9000:1"},
    {QR_OP_ATTN, F16, .heads = 16, .kv_heads = 2, .head_dim = 64, .block_size = 16,
     .seqs = "5000:1,3:1,2047:1,64:1,65:1"},
    {QR_OP_ATTN, BF16, .flags = F_BADIDX, .heads = 32, .kv_heads = 8, .head_dim = 128, .block_size = 16,
     .seqs = "3000:1,700:1"},
    {QR_OP_ATTN, BF16, .heads = 32, .kv_heads = 8, .head_dim = 128, .block_size = 16, .seqs = "700:1*40"},
    {QR_OP_ATTN, BF16, .heads = 32, .kv_heads = 8, .head_dim = 128, .block_size = 16, .seqs = "1024:1*32",
     .perf = true},
    {QR_OP_ATTN, BF16, .heads = 32, .kv_heads = 8, .head_dim = 128, .block_size = 16, .seqs = "2048:512",
     .perf = true},
    /* KV blocks of 64 / 128 rows (the Hopper prompt kernel reads them by TMA): chunks after a context, mixed with
     * decodes, bad block ids */
    {QR_OP_ATTN, BF16, .heads = 32, .kv_heads = 8, .head_dim = 128, .block_size = 64, .seqs = "700:300,64:64,1:1"},
    {QR_OP_ATTN, BF16, .flags = F_BADIDX, .heads = 8, .kv_heads = 2, .head_dim = 128, .block_size = 64,
     .seqs = "300:200,129:129,3000:1"},
    {QR_OP_ATTN, F16, .heads = 8, .kv_heads = 2, .head_dim = 128, .block_size = 128, .seqs = "1000:1000"},
    {QR_OP_ATTN, BF16, .heads = 32, .kv_heads = 8, .head_dim = 128, .block_size = 64, .seqs = "3000:1,129:1,65:1,64:1"},
    /* short chunks after long contexts (CUDA: the split-KV chunk kernel with QR_CUDA_ATTN_CHUNK=1 / force): q_len 2, 5,
     * 16, 33, 64; several sequences of different lengths; GQA 4, 8, 6, 1; mixed with one-token sequences (left to
     * the decode kernel); odd block sizes; bad block ids; rising scores (rescales across splits).  Head counts are
     * kept small where the shape allows: the CPU reference and lavapipe run them too */
    {QR_OP_ATTN, BF16, .heads = 32, .kv_heads = 8, .head_dim = 128, .block_size = 16, .seqs = "2000:16"},
    {QR_OP_ATTN, BF16, .heads = 16, .kv_heads = 4, .head_dim = 128, .block_size = 16,
     .seqs = "1100:5,700:33,300:64,100:2"},
    {QR_OP_ATTN, F16, .heads = 8, .kv_heads = 2, .head_dim = 128, .block_size = 16, .seqs = "1000:64,1500:16"},
    {QR_OP_ATTN, F16, .heads = 8, .kv_heads = 1, .head_dim = 128, .block_size = 16, .seqs = "1000:64,333:17"},
    {QR_OP_ATTN, BF16, .heads = 12, .kv_heads = 2, .head_dim = 64, .block_size = 5,
     .seqs = "1200:33,250:2,3000:1"},
    {QR_OP_ATTN, BF16, .heads = 16, .kv_heads = 4, .head_dim = 128, .block_size = 64,
     .seqs = "2048:16,900:1,64:1"},
    {QR_OP_ATTN, F16, .pad = 5, .heads = 8, .kv_heads = 8, .head_dim = 64, .block_size = 16, .seqs = "1000:64,130:2"},
    {QR_OP_ATTN, BF16, .flags = F_BADIDX, .heads = 8, .kv_heads = 2, .head_dim = 128, .block_size = 16,
     .seqs = "2000:16,1000:5,500:1"},
    {QR_OP_ATTN, F16, .flags = F_RAMP, .heads = 8, .kv_heads = 2, .head_dim = 128, .block_size = 16,
     .seqs = "800:40,130:16"},
    /* chunks of 65-256 tokens (CUDA: past 8 m-tiles of rows, two m-tiles a warp; several row groups per kv head):
     * q_len 65, 100, 128, 130, 200, 255, 256; GQA 4, 6, 8; head_dim 64 and 128; several sequences of different
     * lengths; mixed with decodes; padded rows; bad block ids; rising scores */
    {QR_OP_ATTN, BF16, .heads = 8, .kv_heads = 2, .head_dim = 128, .block_size = 16, .seqs = "1500:256"},
    {QR_OP_ATTN, F16, .pad = 3, .heads = 12, .kv_heads = 2, .head_dim = 128, .block_size = 64,
     .seqs = "1200:65,900:130,2000:1"},
    {QR_OP_ATTN, BF16, .heads = 8, .kv_heads = 1, .head_dim = 64, .block_size = 5, .seqs = "2000:255,300:1,700:100"},
    {QR_OP_ATTN, BF16, .flags = F_BADIDX, .heads = 8, .kv_heads = 2, .head_dim = 128, .block_size = 16,
     .seqs = "1100:100,700:1,1300:255"},
    {QR_OP_ATTN, F16, .flags = F_RAMP, .heads = 8, .kv_heads = 2, .head_dim = 128, .block_size = 16,
     .seqs = "1000:200,256:256"},
    {QR_OP_ATTN, BF16, .heads = 32, .kv_heads = 8, .head_dim = 128, .block_size = 64, .seqs = "1300:128"},
    /* FP8 E4M3 KV: prompt chunks, decodes, odd block sizes, bad block ids */
    {QR_OP_ATTN, F8, .heads = 16, .kv_heads = 2, .head_dim = 128, .block_size = 5, .seqs = "300:1,5:5,49:17,1:1,130:1"},
    {QR_OP_ATTN, F8, .heads = 32, .kv_heads = 8, .head_dim = 128, .block_size = 64, .seqs = "700:300,64:64,1:1"},
    {QR_OP_ATTN, F8, .flags = F_BADIDX, .heads = 8, .kv_heads = 2, .head_dim = 64, .block_size = 16,
     .seqs = "90:1,40:40"},
    /* FP8 on every CUDA path: long and batched decodes (splits), GQA 1 / 7 / 8, head_dim 64, rising scores, head_dim
     * 72 (the generic kernel) */
    {QR_OP_ATTN, F8, .heads = 32, .kv_heads = 8, .head_dim = 128, .block_size = 16, .seqs = "9000:1"},
    {QR_OP_ATTN, F8, .heads = 32, .kv_heads = 8, .head_dim = 128, .block_size = 16, .seqs = "700:1*40"},
    {QR_OP_ATTN, F8, .heads = 16, .kv_heads = 2, .head_dim = 64, .block_size = 16,
     .seqs = "5000:1,3:1,2047:1,64:1,65:1"},
    {QR_OP_ATTN, F8, .heads = 8, .kv_heads = 8, .head_dim = 64, .block_size = 16, .seqs = "300:1,17:1"},
    {QR_OP_ATTN, F8, .heads = 28, .kv_heads = 4, .head_dim = 128, .block_size = 16, .seqs = "2000:1,1:1"},
    {QR_OP_ATTN, F8, .flags = F_RAMP, .heads = 8, .kv_heads = 2, .head_dim = 128, .block_size = 16,
     .seqs = "700:64,90:90,400:1"},
    {QR_OP_ATTN, F8, .pad = 8, .heads = 8, .kv_heads = 8, .head_dim = 64, .block_size = 16, .seqs = "77:13"},
    {QR_OP_ATTN, F8, .heads = 4, .kv_heads = 2, .head_dim = 72, .block_size = 7, .seqs = "333:1,20:20"},
    /* silu_mul, add, argmax */
    {QR_OP_SILU_MUL, F32, 5, 300, 0, 7},
    {QR_OP_SILU_MUL, F32, 1, 9728},
    {QR_OP_SILU_MUL, F32, 33, 67},
    {QR_OP_SILU_MUL, F32, 512, 9728, 0, 0, .perf = true},
    {QR_OP_ADD, F32, 1},
    {QR_OP_ADD, F32, 1001},
    {QR_OP_ADD, F32, 2560 * 7},
    {QR_OP_ARGMAX, F32, 1, 151936},
    {QR_OP_ARGMAX, F32, 3, 1001},
    {QR_OP_ARGMAX, F32, 5, 7, 0, 0, F_TIES},
    {QR_OP_ARGMAX, F32, 4, 10007, 0, 0, F_TIES},   /* ties across the chunks of the two-pass reduction */
    {QR_OP_ARGMAX, F32, 4, 151936, 0, 0, F_NANINF},
    {QR_OP_ARGMAX, F32, 3, 2049, 0, 0, F_NANINF | F_TIES},
    {QR_OP_ARGMAX, F32, 64, 151936, .perf = true},
    {QR_OP_ARGMAX, F32, 1, 151936, 0, 0, F_TIES, .perf = true},
    {QR_OP_TOPK, F32, 1, 151936, 64},
    {QR_OP_TOPK, F32, 3, 1001, 20},
    {QR_OP_TOPK, F32, 5, 300, 64, 0, F_TIES},
    {QR_OP_TOPK, F32, 4, 10007, 256, 0, F_TIES},
    {QR_OP_TOPK, F32, 6, 5000, 50, 0, F_NANINF},
    {QR_OP_TOPK, F32, 2, 7, 7, 0, F_TIES},
    {QR_OP_TOPK, F32, 9, 151936, 1, 0, F_TIES},
    {QR_OP_TOPK, F32, 1, 151936, 256, 0, F_TIES},   /* CUDA: ties across 75 chunks, 19200 candidates */
    {QR_OP_TOPK, F32, 3, 4097, 256},                /* CUDA: a last chunk of one element */
    {QR_OP_TOPK, F32, 2, 2048, 33, 0, F_NANINF},    /* CUDA: one chunk, ranked by the part kernel */
    {QR_OP_TOPK, F32, 2, 200003, 256, 0, F_TIES},   /* CUDA: 98 chunks x 256 too many candidates: one-block form */
    {QR_OP_TOPK, F32, 256, 151936, 64, .perf = true},
    {QR_OP_TOPK, F32, 256, 151936, 256, .perf = true},   /* penalty rows at 256 sequences (CUDA: scratch cap) */
    {QR_OP_TOPK, F32, 1, 151936, 20, .perf = true},
};
#pragma GCC diagnostic pop
#define N_CASES ((int)(sizeof k_cases / sizeof k_cases[0]))

/* Tolerances.  self: CPU vs the naive double loops (f32 rounding only).
 * parity: another backend vs the CPU; loose enough for bf16 tensor-core
 * inputs in matmul/attention (NMSE ~1e-5), tight for the elementwise ops. */
struct tol {
    double nmse;        /* < 0: not checked */
    double atol, rtol;  /* atol < 0: not checked */
};
static const struct tol k_tol_self[QR_OP_COUNT] = {
    [QR_OP_EMBED] = {-1, 0, 0},
    [QR_OP_MATMUL] = {1e-10, 1e-4, 1e-4},
    [QR_OP_RMSNORM] = {1e-12, 1e-5, 1e-5},
    [QR_OP_QK_NORM] = {1e-12, 1e-5, 1e-5},
    [QR_OP_ROPE] = {1e-12, 1e-5, 1e-5},
    [QR_OP_KV_STORE] = {-1, 0, 0},
    [QR_OP_ATTN] = {1e-10, 1e-5, 1e-4},
    [QR_OP_SILU_MUL] = {1e-12, 1e-6, 1e-5},
    [QR_OP_ADD] = {-1, 0, 0},
    [QR_OP_LOGITS] = {1e-10, 1e-4, 1e-4},
    [QR_OP_ARGMAX] = {-1, 0, 0},
    [QR_OP_TOPK] = {-1, 0, 0},   /* exact: the same ids and values, in the same order */
};
static const struct tol k_tol_parity[QR_OP_COUNT] = {
    [QR_OP_EMBED] = {-1, 0, 0},
    [QR_OP_MATMUL] = {1e-4, -1, 0},
    [QR_OP_RMSNORM] = {1e-8, 1e-4, 1e-4},
    [QR_OP_QK_NORM] = {1e-8, 1e-4, 1e-4},
    [QR_OP_ROPE] = {1e-8, 1e-4, 1e-4},
    [QR_OP_KV_STORE] = {-1, 0, 0},   /* exact for F32; 1 ulp of the KV dtype otherwise (see tol_for) */
    [QR_OP_ATTN] = {1e-4, -1, 0},
    [QR_OP_SILU_MUL] = {1e-10, 1e-5, 1e-4},
    [QR_OP_ADD] = {-1, 1e-7, 1e-6},
    [QR_OP_LOGITS] = {1e-4, -1, 0},
    [QR_OP_ARGMAX] = {-1, 0, 0},
    [QR_OP_TOPK] = {-1, 0, 0},   /* exact: the same ids and values, in the same order */
};

static struct tol tol_for(const struct tcase *c, bool parity)
{
    struct tol t = parity ? k_tol_parity[c->op] : k_tol_self[c->op];
    /* rising keys (F_RAMP) reach scores in the hundreds, where f32 rounding of the scores alone moves exp() by
     * ~1e-5 relative per key: the CPU kernel's f32 online softmax lands within ~3e-5 + 1e-3 relative of the double
     * loops (NMSE stays ~1e-11) */
    if (!parity && c->op == QR_OP_ATTN && (c->flags & F_RAMP)) {
        t.atol = 3e-5;
        t.rtol = 1e-3;
    }
    /* FP8: exact, every backend's conversion must be the CPU's byte for byte (round to nearest even, saturating) */
    if (parity && c->op == QR_OP_KV_STORE)
        t.rtol = c->dt == BF16 ? 1.0 / 128 : c->dt == F16 ? 1.0 / 1024 : 0;
    return t;
}

/* ------------------------------------------------------------------------ */
/* problems: tensors + one node                                             */
/* ------------------------------------------------------------------------ */

struct tensor {
    const char *name;
    enum qr_dtype dt;
    size_t n;           /* elements */
    uint8_t *host;      /* initial contents, n * dtype size bytes */
    bool out;           /* written by the op: compared afterwards */
};

struct problem {
    const struct tcase *c;
    struct tensor t[MAXT];
    int nt;
    struct qr_node node;          /* views hold offsets of struct qr_view within node */
    size_t view_off[MAXV];
    int view_t[MAXV];
    int nv;
    bool values_defined;          /* false: bad-index case, canaries only */
    double flops, bytes;          /* per run, for --perf */
    char desc[200];
    /* attention: dense per-sequence K/V (as stored), for the naive check */
    int n_seqs, *ctx, *qlen;
    float **kd, **vd;
};

static uint64_t g_rng;
static uint64_t rng_next(void)
{
    uint64_t z = (g_rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static float rnd(void) { return (float)((double)(rng_next() >> 11) / 9007199254740992.0 * 2.0 - 1.0); }
static int rndi(int n) { return (int)(rng_next() % (uint64_t)n); }

static void *xcalloc(size_t n, size_t s)
{
    void *p = calloc(n ? n : 1, s ? s : 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

static int add_t(struct problem *P, const char *name, enum qr_dtype dt, size_t n, bool out)
{
    struct tensor *t = &P->t[P->nt];
    t->name = name;
    t->dt = dt;
    t->n = n;
    t->host = xcalloc(n, qr_dtype_size(dt));
    t->out = out;
    return P->nt++;
}

static void bind(struct problem *P, struct qr_view *v, int ti)
{
    P->view_off[P->nv] = (size_t)((char *)v - (char *)&P->node);
    P->view_t[P->nv++] = ti;
}

static float get_f(const struct tensor *t, size_t i)
{
    switch (t->dt) {
    case F16: return qr_f16_to_f32(((uint16_t *)t->host)[i]);
    case BF16: return qr_bf16_to_f32(((uint16_t *)t->host)[i]);
    case F8: return qr_f8e4m3_to_f32(((uint8_t *)t->host)[i]);
    case QR_DTYPE_I32: return (float)((int32_t *)t->host)[i];
    default: return ((float *)t->host)[i];
    }
}

static void set_f(struct tensor *t, size_t i, float v)
{
    switch (t->dt) {
    case F16: ((uint16_t *)t->host)[i] = qr_f32_to_f16(v); break;
    case BF16: ((uint16_t *)t->host)[i] = qr_f32_to_bf16(v); break;
    case F8: ((uint8_t *)t->host)[i] = qr_f32_to_f8e4m3(v); break;
    case QR_DTYPE_I32: ((int32_t *)t->host)[i] = (int32_t)v; break;
    default: ((float *)t->host)[i] = v; break;
    }
}

static int32_t *ti32(struct problem *P, int ti) { return (int32_t *)P->t[ti].host; }

static void fill(struct tensor *t, float scale)
{
    for (size_t i = 0; i < t->n; i++)
        set_f(t, i, rnd() * scale);
}

static void problem_free(struct problem *P)
{
    for (int i = 0; i < P->nt; i++)
        free(P->t[i].host);
    for (int s = 0; s < P->n_seqs; s++) {
        free(P->kd[s]);
        free(P->vd[s]);
    }
    free(P->kd);
    free(P->vd);
    free(P->ctx);
    free(P->qlen);
    memset(P, 0, sizeof *P);
}

/* ---- generators ---- */

static void gen_embed(struct problem *P, const struct tcase *c)
{
    struct qr_embed_args *a = &P->node.a.embed;
    int T = c->a, D = c->b, V = c->c;
    int o = add_t(P, "out", F32, (size_t)T * D, true);
    int tb = add_t(P, "table", c->dt, (size_t)V * D, false);
    int id = add_t(P, "ids", QR_DTYPE_I32, (size_t)T, false);
    fill(&P->t[o], 1);
    fill(&P->t[tb], 1);
    for (int t = 0; t < T; t++)
        ti32(P, id)[t] = rndi(V);
    if (c->flags & F_BADIDX) {   /* defined: clamped to [0, vocab) */
        ti32(P, id)[0] = -5;
        if (T > 1)
            ti32(P, id)[T - 1] = V + 1000;
    }
    *a = (struct qr_embed_args){.wtype = c->dt, .n_tokens = T, .dim = D, .vocab = V};
    bind(P, &a->out, o), bind(P, &a->table, tb), bind(P, &a->ids, id);
    P->bytes = (double)T * D * (4 + qr_dtype_size(c->dt));
    snprintf(P->desc, sizeof P->desc, "T=%d dim=%d vocab=%d%s", T, D, V, c->flags & F_BADIDX ? " ids-clamped" : "");
}

static void gen_matmul(struct problem *P, const struct tcase *c)
{
    struct qr_matmul_args *a = &P->node.a.matmul;
    int M = c->a, N = c->b, K = c->c, ldx = K + c->pad, ldy = N + c->pad;
    int y = add_t(P, "y", F32, (size_t)(M - 1) * ldy + N, true);
    int x = add_t(P, "x", F32, (size_t)(M - 1) * ldx + K, false);
    int w = add_t(P, "w", c->dt, (size_t)N * K, false);
    fill(&P->t[y], 1);
    fill(&P->t[x], 1);
    fill(&P->t[w], 1);
    if (c->flags & F_NANINF) {
        ((float *)P->t[x].host)[(size_t)1 * ldx + 3] = INFINITY;
        ((float *)P->t[x].host)[(size_t)(M - 1) * ldx + K - 1] = NAN;
    }
    *a = (struct qr_matmul_args){.wtype = c->dt, .btype = c->dt, .M = M, .N = N, .K = K, .ldx = ldx, .ldy = ldy,
                                 .accumulate = !!(c->flags & F_ACCUM)};
    bind(P, &a->y, y), bind(P, &a->x, x), bind(P, &a->w, w);
    if (c->flags & F_BIAS) {
        int b = add_t(P, "bias", c->dt, (size_t)N, false);
        fill(&P->t[b], 1);
        bind(P, &a->bias, b);
    }
    P->flops = 2.0 * M * N * K;
    P->bytes = (double)N * K * qr_dtype_size(c->dt) + 4.0 * M * K + 4.0 * M * N * (a->accumulate ? 2 : 1);
    snprintf(P->desc, sizeof P->desc, "M=%d N=%d K=%d%s%s%s%s", M, N, K, c->pad ? " strided" : "",
             c->flags & F_BIAS ? " +bias" : "", c->flags & F_ACCUM ? " accumulate" : "",
             c->flags & F_NANINF ? " nan/inf-in-x" : "");
}

static void gen_logits(struct problem *P, const struct tcase *c)
{
    struct qr_logits_args *a = &P->node.a.logits;
    int R = c->a, V = c->b, D = c->c, ldx = D + c->pad, rows = R + 3;
    int o = add_t(P, "out", F32, (size_t)R * V, true);
    int x = add_t(P, "x", F32, (size_t)(rows - 1) * ldx + D, false);
    int id = add_t(P, "idx", QR_DTYPE_I32, (size_t)R, false);
    int w = add_t(P, "w", c->dt, (size_t)V * D, false);
    fill(&P->t[o], 1);
    fill(&P->t[x], 1);
    fill(&P->t[w], 1);
    for (int r = 0; r < R; r++)
        ti32(P, id)[r] = rows - 1 - 2 * r >= 0 ? rows - 1 - 2 * r : rndi(rows);
    *a = (struct qr_logits_args){.wtype = c->dt, .n_out = R, .dim = D, .vocab = V, .ldx = ldx};
    bind(P, &a->out, o), bind(P, &a->x, x), bind(P, &a->idx, id), bind(P, &a->w, w);
    P->flops = 2.0 * R * V * D;
    P->bytes = (double)V * D * qr_dtype_size(c->dt) + 4.0 * R * (V + D);
    snprintf(P->desc, sizeof P->desc, "rows=%d vocab=%d dim=%d%s", R, V, D, c->pad ? " strided" : "");
}

static void gen_norm(struct problem *P, const struct tcase *c)
{
    struct qr_rmsnorm_args *a = &P->node.a.rmsnorm;
    int T = c->a, H = c->op == QR_OP_QK_NORM ? c->heads : 1;
    int n = c->op == QR_OP_QK_NORM ? c->head_dim : c->c;
    int ld = H * n + c->pad;
    bool inplace = c->flags & F_INPLACE;
    int o = add_t(P, inplace ? "x/out" : "out", F32, (size_t)(T - 1) * ld + H * n, true);
    int x = inplace ? o : add_t(P, "x", F32, (size_t)(T - 1) * ld + H * n, false);
    int w = add_t(P, "w", c->dt, (size_t)n, false);
    fill(&P->t[o], 1);
    if (!inplace)
        fill(&P->t[x], 3);
    for (size_t i = 0; i < (size_t)n; i++)   /* weights around 1, not exactly 1 */
        set_f(&P->t[w], i, 1.0f + 0.5f * rnd());
    *a = (struct qr_rmsnorm_args){.wtype = c->dt, .n_tokens = T, .n_heads = H, .n = n, .ldx = ld, .ldout = ld,
                                  .eps = 1e-6f};
    bind(P, &a->out, o), bind(P, &a->x, x), bind(P, &a->w, w);
    P->bytes = 8.0 * T * H * n;
    snprintf(P->desc, sizeof P->desc, "T=%d heads=%d n=%d%s%s", T, H, n, c->pad ? " strided" : "",
             inplace ? " in-place" : "");
}

static void gen_rope(struct problem *P, const struct tcase *c)
{
    struct qr_rope_args *a = &P->node.a.rope;
    int T = c->a, H = c->heads, hd = c->head_dim, ld = H * hd + c->pad;
    int x = add_t(P, "x", F32, (size_t)(T - 1) * ld + H * hd, true);
    int pos = add_t(P, "pos", QR_DTYPE_I32, (size_t)T, false);
    int inv = add_t(P, "inv_freq", F32, (size_t)hd / 2, false);
    fill(&P->t[x], 2);
    static const int far[] = {0, 1, 2, 17, 4095, 32767, 131071, 262143};
    for (int t = 0; t < T; t++)
        ti32(P, pos)[t] = t < 8 ? far[t] : rndi(300000);
    double theta = hd == 64 ? 1e6 : 5e6;
    for (int i = 0; i < hd / 2; i++)   /* inv_freq[i] = 1 / theta^(2i/d), computed in f32 like HF */
        ((float *)P->t[inv].host)[i] = (float)(1.0 / pow(theta, (double)(2 * i) / hd));
    *a = (struct qr_rope_args){.n_tokens = T, .n_heads = H, .head_dim = hd, .ld = ld,
                               .attn_factor = c->flags & F_YARN ? 1.1386f : 1.0f};
    bind(P, &a->x, x), bind(P, &a->pos, pos), bind(P, &a->inv_freq, inv);
    P->bytes = 8.0 * T * H * hd;
    snprintf(P->desc, sizeof P->desc, "T=%d heads=%d hd=%d%s%s (pos up to 262143)", T, H, hd,
             c->pad ? " strided" : "", c->flags & F_YARN ? " attn_factor" : "");
}

static void gen_kv_store(struct problem *P, const struct tcase *c)
{
    struct qr_kv_store_args *a = &P->node.a.kv_store;
    int T = c->a, KH = c->kv_heads, hd = c->head_dim, bs = c->block_size, NB = c->c;
    int ld = KH * hd + c->pad, n_slots = NB * bs;
    size_t cache_n = (size_t)NB * KH * bs * hd;
    int kc = add_t(P, "k_cache", c->dt, cache_n, true);
    int vc = add_t(P, "v_cache", c->dt, cache_n, true);
    int k = add_t(P, "k", F32, (size_t)(T - 1) * ld + KH * hd, false);
    int v = add_t(P, "v", F32, (size_t)(T - 1) * ld + KH * hd, false);
    int sl = add_t(P, "slots", QR_DTYPE_I32, (size_t)T, false);
    fill(&P->t[kc], 1), fill(&P->t[vc], 1), fill(&P->t[k], 2), fill(&P->t[v], 2);
    if (c->dt == F8) {   /* token 0's row: saturation, Inf, NaN, ties to even, E4M3 subnormals, f32 denormals */
        static const float sp[] = {448.0f, -448.0f, 449.0f, 460.0f, 464.0f, 465.0f, 500.0f, -1e6f, INFINITY,
                                   -INFINITY, NAN, -NAN, 1e-3f, 0x1p-10f, 0x3p-10f, -0x3p-10f, 0x1p-7f, 0x1.08p-6f,
                                   1.0625f, 1.1875f, -1.0625f, 0x1p-12f, -0x1p-12f, 232.0f, 240.0f, 1e-40f, -1e-40f};
        for (int i = 0; i < (int)(sizeof sp / sizeof sp[0]) && i < KH * hd; i++) {
            ((float *)P->t[k].host)[i] = sp[i];
            ((float *)P->t[v].host)[KH * hd - 1 - i] = sp[i];
        }
    }
    /* distinct random slots (a shuffled prefix of all slots) */
    int *perm = xcalloc((size_t)n_slots, sizeof *perm);
    for (int i = 0; i < n_slots; i++)
        perm[i] = i;
    for (int i = n_slots - 1; i > 0; i--) {
        int j = rndi(i + 1), tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
    for (int t = 0; t < T; t++) {
        int s = t < n_slots ? perm[t] : -1;
        if ((c->flags & F_NEGSLOT) && t % 4 == 1)
            s = -1;
        ti32(P, sl)[t] = s;
    }
    free(perm);
    P->values_defined = true;
    if (c->flags & F_BADIDX) {
        ti32(P, sl)[0] = n_slots;
        if (T > 2)
            ti32(P, sl)[2] = 0x7fffffff;
        if (T > 3)
            ti32(P, sl)[3] = -0x7fffffff;
        P->values_defined = false;
    }
    *a = (struct qr_kv_store_args){.kv_dtype = c->dt, .n_tokens = T, .n_kv_heads = KH, .head_dim = hd, .ld = ld,
                                   .block_size = bs, .num_blocks = NB};
    bind(P, &a->k_cache, kc), bind(P, &a->v_cache, vc), bind(P, &a->k, k), bind(P, &a->v, v);
    bind(P, &a->slots, sl);
    P->bytes = 2.0 * T * KH * hd * (4 + qr_dtype_size(c->dt));
    snprintf(P->desc, sizeof P->desc, "T=%d kv_heads=%d hd=%d bs=%d blocks=%d%s%s%s", T, KH, hd, bs, NB,
             c->pad ? " strided" : "", c->flags & F_NEGSLOT ? " some-slots=-1" : "",
             c->flags & F_BADIDX ? " bad-idx" : "");
}

/* "ctx:q,ctx:q*R" -> arrays */
static int parse_seqs(const char *s, int **ctx, int **ql)
{
    int n = 0, cap = 8;
    *ctx = xcalloc((size_t)cap, sizeof **ctx);
    *ql = xcalloc((size_t)cap, sizeof **ql);
    while (*s) {
        int c = 0, q = 0, r = 1, used = 0;
        if (sscanf(s, "%d:%d%n", &c, &q, &used) < 2)
            break;
        s += used;
        if (*s == '*') {
            r = (int)strtol(s + 1, (char **)&s, 10);
        }
        for (int i = 0; i < r; i++) {
            if (n == cap) {
                cap *= 2;
                *ctx = realloc(*ctx, (size_t)cap * sizeof **ctx);
                *ql = realloc(*ql, (size_t)cap * sizeof **ql);
                if (!*ctx || !*ql)
                    exit(1);
            }
            (*ctx)[n] = c;
            (*ql)[n++] = q;
        }
        if (*s == ',')
            s++;
    }
    return n;
}

static void gen_attn(struct problem *P, const struct tcase *c)
{
    struct qr_attn_args *a = &P->node.a.attn;
    int H = c->heads, KH = c->kv_heads, hd = c->head_dim, bs = c->block_size;
    int S = parse_seqs(c->seqs, &P->ctx, &P->qlen);
    P->n_seqs = S;
    int T = 0, max_ctx = 0, max_q = 0, need = 0, mb = 0;
    for (int s = 0; s < S; s++) {
        T += P->qlen[s];
        max_ctx = P->ctx[s] > max_ctx ? P->ctx[s] : max_ctx;
        max_q = P->qlen[s] > max_q ? P->qlen[s] : max_q;
        int nb = (P->ctx[s] + bs - 1) / bs;
        need += nb;
        mb = nb > mb ? nb : mb;
    }
    mb += 1;                       /* one unused column, filled with -1 */
    int NB = need + 7;             /* spare blocks hold garbage */
    int ld = H * hd + c->pad;
    size_t cache_n = (size_t)NB * KH * bs * hd;
    int o = add_t(P, "out", F32, (size_t)(T - 1) * ld + H * hd, true);
    int q = add_t(P, "q", F32, (size_t)(T - 1) * ld + H * hd, false);
    int kc = add_t(P, "k_cache", c->dt, cache_n, false);
    int vc = add_t(P, "v_cache", c->dt, cache_n, false);
    int bt = add_t(P, "block_tables", QR_DTYPE_I32, (size_t)S * mb, false);
    int sl = add_t(P, "seq_lens", QR_DTYPE_I32, (size_t)S, false);
    int qs = add_t(P, "q_start", QR_DTYPE_I32, (size_t)S + 1, false);
    fill(&P->t[o], 1), fill(&P->t[q], 2), fill(&P->t[kc], 1), fill(&P->t[vc], 1);
    /* shuffled, non-contiguous block ids */
    int *perm = xcalloc((size_t)NB, sizeof *perm);
    for (int i = 0; i < NB; i++)
        perm[i] = i;
    for (int i = NB - 1; i > 0; i--) {
        int j = rndi(i + 1), tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
    int used = 0, tok = 0;
    P->kd = xcalloc((size_t)S, sizeof *P->kd);
    P->vd = xcalloc((size_t)S, sizeof *P->vd);
    for (int s = 0; s < S; s++) {
        int32_t *row = ti32(P, bt) + (size_t)s * mb;
        int nb = (P->ctx[s] + bs - 1) / bs;
        for (int j = 0; j < mb; j++)
            row[j] = j < nb ? perm[used++] : -1;
        ti32(P, sl)[s] = P->ctx[s];
        ti32(P, qs)[s] = tok;
        tok += P->qlen[s];
        /* dense K/V of this sequence (as stored in the KV dtype), scattered into the blocks */
        size_t dn = (size_t)P->ctx[s] * KH * hd;
        P->kd[s] = xcalloc(dn, sizeof(float));
        P->vd[s] = xcalloc(dn, sizeof(float));
        for (int j = 0; j < P->ctx[s]; j++)
            for (int h = 0; h < KH; h++)
                for (int i = 0; i < hd; i++) {
                    size_t di = ((size_t)j * KH + h) * hd + i;
                    size_t ci = (((size_t)row[j / bs] * KH + h) * bs + j % bs) * hd + i;
                    set_f(&P->t[kc], ci, rnd() + (c->flags & F_RAMP ? (float)j * 0.125f : 0.0f));
                    set_f(&P->t[vc], ci, rnd());
                    P->kd[s][di] = get_f(&P->t[kc], ci);
                    P->vd[s][di] = get_f(&P->t[vc], ci);
                }
    }
    ti32(P, qs)[S] = tok;
    free(perm);
    P->values_defined = true;
    if (c->flags & F_BADIDX) {     /* out-of-range block ids inside the context */
        ti32(P, bt)[0] = NB + 5;
        ti32(P, bt)[1] = -7;
        if (S > 1)
            ti32(P, bt)[mb] = 0x7fffffff;
        P->values_defined = false;
    }
    *a = (struct qr_attn_args){.kv_dtype = c->dt, .n_tokens = T, .n_seqs = S, .n_heads = H, .n_kv_heads = KH,
                               .head_dim = hd, .block_size = bs, .max_blocks_per_seq = mb, .num_blocks = NB,
                               .ldq = ld, .ldo = ld, .max_seq_len = max_ctx, .max_q_len = max_q,
                               .scale = (float)(1.0 / sqrt((double)hd))};
    bind(P, &a->out, o), bind(P, &a->q, q), bind(P, &a->k_cache, kc), bind(P, &a->v_cache, vc);
    bind(P, &a->block_tables, bt), bind(P, &a->seq_lens, sl), bind(P, &a->q_start, qs);
    double fl = 0, by = 8.0 * T * H * hd;
    for (int s = 0; s < S; s++) {
        for (int i = 0; i < P->qlen[s]; i++)
            fl += 4.0 * H * hd * (P->ctx[s] - P->qlen[s] + i + 1);
        by += 2.0 * P->ctx[s] * KH * hd * qr_dtype_size(c->dt);
    }
    P->flops = fl;
    P->bytes = by;
    const char *sq = c->seqs;
    snprintf(P->desc, sizeof P->desc, "H=%d/%d hd=%d bs=%d seqs(ctx:q)=%.60s%s%s", H, KH, hd, bs, sq,
             c->pad ? " strided" : "", c->flags & F_BADIDX ? " bad-idx" : "");
}

static void gen_silu(struct problem *P, const struct tcase *c)
{
    struct qr_silu_mul_args *a = &P->node.a.silu_mul;
    int T = c->a, F = c->b, ldo = F + c->pad, ldg = 2 * F + c->pad;
    int o = add_t(P, "out", F32, (size_t)(T - 1) * ldo + F, true);
    int g = add_t(P, "gu", F32, (size_t)(T - 1) * ldg + 2 * F, false);
    fill(&P->t[o], 1);
    fill(&P->t[g], 6);
    *a = (struct qr_silu_mul_args){.n_tokens = T, .n_ff = F, .ldgu = ldg, .ldout = ldo};
    bind(P, &a->out, o), bind(P, &a->gu, g);
    P->bytes = 12.0 * T * F;
    snprintf(P->desc, sizeof P->desc, "T=%d n_ff=%d%s", T, F, c->pad ? " strided" : "");
}

static void gen_add(struct problem *P, const struct tcase *c)
{
    struct qr_add_args *a = &P->node.a.add;
    int y = add_t(P, "y", F32, (size_t)c->a, true);
    int x = add_t(P, "x", F32, (size_t)c->a, false);
    fill(&P->t[y], 1), fill(&P->t[x], 1);
    *a = (struct qr_add_args){.n = c->a};
    bind(P, &a->y, y), bind(P, &a->x, x);
    P->bytes = 12.0 * c->a;
    snprintf(P->desc, sizeof P->desc, "n=%d", c->a);
}

static void gen_argmax(struct problem *P, const struct tcase *c)
{
    struct qr_argmax_args *a = &P->node.a.argmax;
    int R = c->a, n = c->b;
    int o = add_t(P, "out", QR_DTYPE_I32, (size_t)R, true);
    int x = add_t(P, "x", F32, (size_t)R * n, false);
    for (int r = 0; r < R; r++)
        ti32(P, o)[r] = -1;
    for (size_t i = 0; i < (size_t)R * n; i++)
        ((float *)P->t[x].host)[i] = c->flags & F_TIES ? (float)rndi(3) : rnd() * 10;
    if (c->flags & F_NANINF) {   /* NaN and -inf here and there, a row of NaN alone, a 2048-wide run of NaN */
        float *xv = (float *)P->t[x].host;
        for (size_t i = 0; i < (size_t)R * n; i++) {
            int q = rndi(20);
            xv[i] = q == 0 ? NAN : q == 1 ? -INFINITY : xv[i];
        }
        xv[0] = NAN;
        for (int i = 0; R > 1 && i < n; i++)
            xv[(size_t)n + i] = NAN;
        for (int i = 2048; R > 2 && i < 4096 && i < n; i++)
            xv[(size_t)2 * n + i] = NAN;
    }
    *a = (struct qr_argmax_args){.n_rows = R, .n = n};
    bind(P, &a->out, o), bind(P, &a->x, x);
    P->bytes = 4.0 * R * n;
    snprintf(P->desc, sizeof P->desc, "rows=%d n=%d%s%s", R, n, c->flags & F_TIES ? " ties" : "",
             c->flags & F_NANINF ? " nan/inf" : "");
}

static void gen_topk(struct problem *P, const struct tcase *c)
{
    struct qr_topk_args *a = &P->node.a.topk;
    int R = c->a, n = c->b, k = c->c;
    int oi = add_t(P, "ids", QR_DTYPE_I32, (size_t)R * k, true);
    int ov = add_t(P, "vals", F32, (size_t)R * k, true);
    int x = add_t(P, "x", F32, (size_t)R * n, false);
    int it = add_t(P, "inv_t", F32, (size_t)R, false);
    for (size_t i = 0; i < (size_t)R * k; i++)
        ti32(P, oi)[i] = -1;
    float *xv = (float *)P->t[x].host;
    for (size_t i = 0; i < (size_t)R * n; i++) {
        xv[i] = c->flags & F_TIES ? (float)rndi(5) * 0.5f : rnd() * 10;
        if (c->flags & F_NANINF) {
            int q = rndi(40);
            xv[i] = q == 0 ? NAN : q == 1 ? -INFINITY : q == 2 && i % 977 == 0 ? INFINITY : xv[i];
        }
    }
    if ((c->flags & F_NANINF) && R > 1)   /* a row with nothing finite */
        for (int i = 0; i < n; i++)
            xv[(size_t)n + i] = i % 3 ? NAN : -INFINITY;
    for (int r = 0; r < R; r++)
        ((float *)P->t[it].host)[r] = r % 3 == 0 ? 1.0f : 1.0f / (0.3f + 1.7f * (rnd() + 1) / 2);
    *a = (struct qr_topk_args){.n_rows = R, .n = n, .k = k};
    bind(P, &a->ids, oi), bind(P, &a->vals, ov), bind(P, &a->x, x), bind(P, &a->inv_t, it);
    P->bytes = 4.0 * R * n;
    snprintf(P->desc, sizeof P->desc, "rows=%d n=%d k=%d%s%s", R, n, k, c->flags & F_TIES ? " ties" : "",
             c->flags & F_NANINF ? " nan/inf" : "");
}

static void gen(struct problem *P, const struct tcase *c, int idx)
{
    memset(P, 0, sizeof *P);
    P->c = c;
    P->values_defined = true;
    P->node.op = c->op;
    g_rng = 0x5eed0000ull + (uint64_t)idx * 7919u;
    switch (c->op) {
    case QR_OP_EMBED: gen_embed(P, c); break;
    case QR_OP_MATMUL: gen_matmul(P, c); break;
    case QR_OP_LOGITS: gen_logits(P, c); break;
    case QR_OP_RMSNORM:
    case QR_OP_QK_NORM: gen_norm(P, c); break;
    case QR_OP_ROPE: gen_rope(P, c); break;
    case QR_OP_KV_STORE: gen_kv_store(P, c); break;
    case QR_OP_ATTN: gen_attn(P, c); break;
    case QR_OP_SILU_MUL: gen_silu(P, c); break;
    case QR_OP_ADD: gen_add(P, c); break;
    case QR_OP_ARGMAX: gen_argmax(P, c); break;
    case QR_OP_TOPK: gen_topk(P, c); break;
    default: break;
    }
}

/* ------------------------------------------------------------------------ */
/* naive references (double precision), written from the op definitions    */
/* ------------------------------------------------------------------------ */

/* exp[i]: f32 image of output tensor i, pre-filled with its initial values */

static void naive_embed(struct problem *P, float **e)
{
    const struct qr_embed_args *a = &P->node.a.embed;
    for (int t = 0; t < a->n_tokens; t++) {
        int id = ti32(P, 2)[t];
        id = id < 0 ? 0 : id >= a->vocab ? a->vocab - 1 : id;
        for (int i = 0; i < a->dim; i++)
            e[0][(size_t)t * a->dim + i] = get_f(&P->t[1], (size_t)id * a->dim + i);
    }
}

static void naive_matmul(struct problem *P, float **e)
{
    const struct qr_matmul_args *a = &P->node.a.matmul;
    const float *x = (const float *)P->t[1].host;
    for (int m = 0; m < a->M; m++)
        for (int n = 0; n < a->N; n++) {
            double acc = 0;
            for (int k = 0; k < a->K; k++)
                acc += (double)x[(size_t)m * a->ldx + k] * get_f(&P->t[2], (size_t)n * a->K + k);
            if (P->nt > 3)
                acc += get_f(&P->t[3], (size_t)n);
            float *y = &e[0][(size_t)m * a->ldy + n];
            *y = (float)(a->accumulate ? *y + acc : acc);
        }
}

static void naive_logits(struct problem *P, float **e)
{
    const struct qr_logits_args *a = &P->node.a.logits;
    const float *x = (const float *)P->t[1].host;
    for (int r = 0; r < a->n_out; r++) {
        const float *xr = x + (size_t)ti32(P, 2)[r] * a->ldx;
        for (int v = 0; v < a->vocab; v++) {
            double acc = 0;
            for (int k = 0; k < a->dim; k++)
                acc += (double)xr[k] * get_f(&P->t[3], (size_t)v * a->dim + k);
            e[0][(size_t)r * a->vocab + v] = (float)acc;
        }
    }
}

static void naive_norm(struct problem *P, float **e)
{
    const struct qr_rmsnorm_args *a = &P->node.a.rmsnorm;
    bool inplace = P->c->flags & F_INPLACE;
    const struct tensor *xt = &P->t[inplace ? 0 : 1], *wt = &P->t[inplace ? 1 : 2];
    for (int t = 0; t < a->n_tokens; t++)
        for (int h = 0; h < a->n_heads; h++) {
            size_t base = (size_t)t * a->ldx + (size_t)h * a->n;
            double ss = 0;
            for (int i = 0; i < a->n; i++)
                ss += (double)get_f(xt, base + i) * get_f(xt, base + i);
            double r = 1.0 / sqrt(ss / a->n + a->eps);
            for (int i = 0; i < a->n; i++)
                e[0][base + i] = (float)(get_f(wt, (size_t)i) * (get_f(xt, base + i) * r));
        }
}

static void naive_rope(struct problem *P, float **e)
{
    const struct qr_rope_args *a = &P->node.a.rope;
    int half = a->head_dim / 2;
    for (int t = 0; t < a->n_tokens; t++)
        for (int h = 0; h < a->n_heads; h++) {
            size_t base = (size_t)t * a->ld + (size_t)h * a->head_dim;
            for (int i = 0; i < half; i++) {
                /* HF: freqs = inv_freq.float() @ pos.float() -> the angle is an f32 product */
                float ang = (float)ti32(P, 1)[t] * ((float *)P->t[2].host)[i];
                double c = cos((double)ang) * a->attn_factor, s = sin((double)ang) * a->attn_factor;
                double x0 = get_f(&P->t[0], base + i), x1 = get_f(&P->t[0], base + i + half);
                e[0][base + i] = (float)(x0 * c - x1 * s);
                e[0][base + i + half] = (float)(x1 * c + x0 * s);
            }
        }
}

static void naive_kv_store(struct problem *P, float **e)
{
    const struct qr_kv_store_args *a = &P->node.a.kv_store;
    for (int t = 0; t < a->n_tokens; t++) {
        int slot = ti32(P, 4)[t];
        if (slot < 0 || slot >= a->num_blocks * a->block_size)
            continue;
        int blk = slot / a->block_size, off = slot % a->block_size;
        for (int h = 0; h < a->n_kv_heads; h++)
            for (int i = 0; i < a->head_dim; i++) {
                size_t ci = (((size_t)blk * a->n_kv_heads + h) * a->block_size + off) * a->head_dim + i;
                size_t si = (size_t)t * a->ld + (size_t)h * a->head_dim + i;
                /* the value as stored in the KV dtype (round to nearest even) */
                struct tensor tmp = {.dt = a->kv_dtype, .n = 1};
                uint8_t b[4];
                tmp.host = b;
                set_f(&tmp, 0, get_f(&P->t[2], si));
                e[0][ci] = get_f(&tmp, 0);
                set_f(&tmp, 0, get_f(&P->t[3], si));
                e[1][ci] = get_f(&tmp, 0);
            }
    }
}

/* dense causal attention over each sequence's own K/V arrays (no paging) */
static void naive_attn(struct problem *P, float **e)
{
    const struct qr_attn_args *a = &P->node.a.attn;
    int hd = a->head_dim, group = a->n_heads / a->n_kv_heads;
    int tok = 0;
    for (int s = 0; s < P->n_seqs; s++) {
        int ctx = P->ctx[s], ql = P->qlen[s];
        double *sc = xcalloc((size_t)ctx, sizeof *sc);
        for (int i = 0; i < ql; i++, tok++) {
            int pos = ctx - ql + i;
            for (int h = 0; h < a->n_heads; h++) {
                int g = h / group;
                const float *q = (const float *)P->t[1].host + (size_t)tok * a->ldq + (size_t)h * hd;
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j <= pos; j++) {
                    const float *k = P->kd[s] + ((size_t)j * a->n_kv_heads + g) * hd;
                    double d = 0;
                    for (int x = 0; x < hd; x++)
                        d += (double)q[x] * k[x];
                    sc[j] = d * a->scale;
                    mx = sc[j] > mx ? sc[j] : mx;
                }
                for (int j = 0; j <= pos; j++) {
                    sc[j] = exp(sc[j] - mx);
                    sum += sc[j];
                }
                float *o = e[0] + (size_t)tok * a->ldo + (size_t)h * hd;
                for (int x = 0; x < hd; x++) {
                    double acc = 0;
                    for (int j = 0; j <= pos; j++)
                        acc += sc[j] * P->vd[s][((size_t)j * a->n_kv_heads + g) * hd + x];
                    o[x] = (float)(pos >= 0 ? acc / sum : 0.0);
                }
            }
        }
        free(sc);
    }
}

static void naive_silu(struct problem *P, float **e)
{
    const struct qr_silu_mul_args *a = &P->node.a.silu_mul;
    const float *gu = (const float *)P->t[1].host;
    for (int t = 0; t < a->n_tokens; t++)
        for (int i = 0; i < a->n_ff; i++) {
            double g = gu[(size_t)t * a->ldgu + i], u = gu[(size_t)t * a->ldgu + a->n_ff + i];
            e[0][(size_t)t * a->ldout + i] = (float)(g / (1.0 + exp(-g)) * u);
        }
}

static void naive_add(struct problem *P, float **e)
{
    for (int64_t i = 0; i < P->node.a.add.n; i++)
        e[0][i] = ((float *)P->t[0].host)[i] + ((float *)P->t[1].host)[i];
}

static void naive_argmax(struct problem *P, float **e)
{
    const struct qr_argmax_args *a = &P->node.a.argmax;
    const float *x = (const float *)P->t[1].host;
    for (int r = 0; r < a->n_rows; r++) {
        int best = -1;   /* NaN never wins; a row of NaN alone gives 0 */
        for (int j = 0; j < a->n; j++) {
            float v = x[(size_t)r * a->n + j];
            if (!isnan(v) && (best < 0 || v > x[(size_t)r * a->n + best]))
                best = j;
        }
        e[0][r] = (float)(best < 0 ? 0 : best);
    }
}

/* the k best by (v desc, index asc), v = x * inv_t in f32, NaN as -inf: k selection passes */
static void naive_topk(struct problem *P, float **e)
{
    const struct qr_topk_args *a = &P->node.a.topk;
    const float *x = (const float *)P->t[2].host, *it = (const float *)P->t[3].host;
    float *v = malloc((size_t)a->n * sizeof *v);
    bool *used = malloc((size_t)a->n);
    for (int r = 0; r < a->n_rows; r++) {
        for (int j = 0; j < a->n; j++) {
            float xj = x[(size_t)r * a->n + j];
            v[j] = isnan(xj) ? -INFINITY : xj * it[r];
            used[j] = false;
        }
        for (int i = 0; i < a->k; i++) {
            int b = -1;
            for (int j = 0; j < a->n; j++)
                if (!used[j] && (b < 0 || v[j] > v[b]))
                    b = j;
            used[b] = true;
            e[0][(size_t)r * a->k + i] = (float)b;
            e[1][(size_t)r * a->k + i] = v[b];
        }
    }
    free(v);
    free(used);
}

static void naive(struct problem *P, float **e)
{
    switch (P->c->op) {
    case QR_OP_EMBED: naive_embed(P, e); break;
    case QR_OP_MATMUL: naive_matmul(P, e); break;
    case QR_OP_LOGITS: naive_logits(P, e); break;
    case QR_OP_RMSNORM:
    case QR_OP_QK_NORM: naive_norm(P, e); break;
    case QR_OP_ROPE: naive_rope(P, e); break;
    case QR_OP_KV_STORE: naive_kv_store(P, e); break;
    case QR_OP_ATTN: naive_attn(P, e); break;
    case QR_OP_SILU_MUL: naive_silu(P, e); break;
    case QR_OP_ADD: naive_add(P, e); break;
    case QR_OP_ARGMAX: naive_argmax(P, e); break;
    case QR_OP_TOPK: naive_topk(P, e); break;
    default: break;
    }
}

/* ------------------------------------------------------------------------ */
/* running a problem on a device                                             */
/* ------------------------------------------------------------------------ */

struct dev {
    const char *name;
    struct qr_device *d;
    struct qr_stream *s;
    struct qr_buf *flush;   /* 64 MiB, memset before each perf rep */
    bool f32_math;          /* no cooperative matrices: f32 arithmetic on every path (see tol_dev) */
};

/* the parity limits for device D: capped for f32-math devices (testutil.h) */
static struct tol tol_dev(struct tol t, const struct dev *D)
{
    if (D->f32_math && t.nmse > QT_F32_MATH_NMSE)
        t.nmse = QT_F32_MATH_NMSE;
    return t;
}

static uint8_t canary_byte(size_t i) { return (uint8_t)(0xA5u ^ (i * 29u)); }

/* reads every tensor back: canaries intact, inputs unchanged, outputs -> outs */
static int read_check(struct dev *D, struct problem *P, struct qr_buf **bufs, uint8_t **img, float **outs, char *err,
                      size_t ecap)
{
    int rc = 0;
    for (int i = 0; i < P->nt && !rc; i++) {
        size_t nb = P->t[i].n * qr_dtype_size(P->t[i].dt), tot = nb + 2 * CANARY;
        uint8_t *back = xcalloc(tot, 1);
        if (qr_stream_read(D->s, bufs[i], 0, back, tot) != QR_OK) {
            snprintf(err, ecap, "read back failed: %s", qr_last_error());
            rc = 2;
        }
        for (size_t k = 0; k < CANARY && !rc; k++) {
            if (back[k] != img[i][k]) {
                snprintf(err, ecap, "out-of-bounds write: canary %zu bytes before %s changed", CANARY - k,
                         P->t[i].name);
                rc = 1;
            } else if (back[CANARY + nb + k] != img[i][CANARY + nb + k]) {
                snprintf(err, ecap, "out-of-bounds write: canary %zu bytes after the end of %s changed", k + 1,
                         P->t[i].name);
                rc = 1;
            }
        }
        if (!rc && !P->t[i].out && memcmp(back + CANARY, img[i] + CANARY, nb) != 0) {
            snprintf(err, ecap, "input %s was modified", P->t[i].name);
            rc = 1;
        }
        if (!rc && P->t[i].out) {
            struct tensor tv = P->t[i];
            tv.host = back + CANARY;
            free(outs[i]);
            outs[i] = xcalloc(tv.n, sizeof(float));
            for (size_t k = 0; k < tv.n; k++)
                outs[i][k] = get_f(&tv, k);
        }
        free(back);
    }
    return rc;
}

/* Runs P on D.  outs: f32 images of every output tensor (NULL for inputs).
 * graph_outs != NULL: afterwards the node also runs as a one-node graph with
 * a fresh key, twice (record, then replay), the buffers reset before each;
 * graph_outs gets the replay's outputs and must match outs' reference too.
 * Returns 0, 1 on a failed check (message in err), 2 when the op failed. */
static uint64_t g_graph_key = 0x7e57000000000000ull;

static int run_problem(struct dev *D, struct problem *P, float **outs, float **graph_outs, char *err, size_t ecap,
                       int perf_reps, double *us)
{
    struct qr_buf *bufs[MAXT] = {0};
    uint8_t *img[MAXT] = {0};
    int rc = 0;
    err[0] = 0;
    for (int i = 0; i < P->nt; i++) {
        size_t nb = P->t[i].n * qr_dtype_size(P->t[i].dt), tot = nb + 2 * CANARY;
        img[i] = xcalloc(tot, 1);
        for (size_t k = 0; k < CANARY; k++) {
            img[i][k] = canary_byte(k);
            img[i][CANARY + nb + k] = canary_byte(k + 7);
        }
        memcpy(img[i] + CANARY, P->t[i].host, nb);
        if (qr_buf_alloc(D->d, tot, QR_BUF_SCRATCH, &bufs[i]) != QR_OK ||
            qr_stream_write(D->s, bufs[i], 0, img[i], tot) != QR_OK) {
            snprintf(err, ecap, "setup of %s failed: %s", P->t[i].name, qr_last_error());
            rc = 2;
            goto out;
        }
    }
    struct qr_node node = P->node;
    for (int v = 0; v < P->nv; v++) {
        struct qr_view *view = (struct qr_view *)((char *)&node + P->view_off[v]);
        view->buf = bufs[P->view_t[v]];
        view->off = CANARY;
    }
    if (qr_node_run(D->s, &node) != QR_OK || qr_stream_sync(D->s) != QR_OK) {
        snprintf(err, ecap, "op failed: %s", qr_last_error());
        rc = 2;
        goto out;
    }
    rc = read_check(D, P, bufs, img, outs, err, ecap);
    if (!rc && graph_outs) {
        struct qr_graph g = {&node, 1, ++g_graph_key};
        for (int run = 0; run < 2 && !rc; run++) {
            for (int i = 0; i < P->nt && !rc; i++) {
                size_t tot = P->t[i].n * qr_dtype_size(P->t[i].dt) + 2 * CANARY;
                if (qr_stream_write(D->s, bufs[i], 0, img[i], tot) != QR_OK)
                    rc = 2;
            }
            if (!rc && (qr_graph_run(D->s, &g) != QR_OK || qr_stream_sync(D->s) != QR_OK)) {
                snprintf(err, ecap, "graph %s failed: %s", run ? "replay" : "record", qr_last_error());
                rc = 2;
            }
            if (!rc) {
                rc = read_check(D, P, bufs, img, graph_outs, err, ecap);
                if (rc) {
                    char tmp[400];
                    snprintf(tmp, sizeof tmp, "%s", err);
                    snprintf(err, ecap, "graph %s: %s", run ? "replay" : "record", tmp);
                }
            }
        }
    }
    if (!rc && perf_reps > 0 && us) {
        double *ts = xcalloc((size_t)perf_reps, sizeof *ts);
        for (int r = 0; r < perf_reps && !rc; r++) {
            if (D->flush)
                qr_stream_memset0(D->s, D->flush, 0, D->flush->size);
            qr_stream_sync(D->s);
            double t0 = qr_time_s();
            if (qr_node_run(D->s, &node) != QR_OK || qr_stream_sync(D->s) != QR_OK)
                rc = 2;
            ts[r] = qr_time_s() - t0;
        }
        for (int i = 1; i < perf_reps; i++)   /* median */
            for (int j = i; j > 0 && ts[j] < ts[j - 1]; j--) {
                double t = ts[j];
                ts[j] = ts[j - 1];
                ts[j - 1] = t;
            }
        *us = ts[perf_reps / 2] * 1e6;
        free(ts);
    }
out:
    for (int i = 0; i < P->nt; i++) {
        qr_buf_free(bufs[i]);
        free(img[i]);
    }
    return rc;
}

/* ---- comparison ---- */

static bool compare(const struct problem *P, float **ref, float **got, struct tol tl, char *msg, size_t cap)
{
    double se = 0, sr = 0;
    size_t n_bad = 0, first = 0;
    int first_t = -1;
    msg[0] = 0;
    for (int i = 0; i < P->nt; i++) {
        if (!P->t[i].out)
            continue;
        for (size_t k = 0; k < P->t[i].n; k++) {
            double r = ref[i][k], g = got[i][k];
            bool rf = isfinite(r), gf = isfinite(g);
            if (rf != gf || (!rf && !(r == g))) {
                if (!(isnan(r) && isnan(g))) {
                    snprintf(msg, cap, "NaN/Inf mismatch at %s[%zu]: ref=%g got=%g", P->t[i].name, k, r, g);
                    return false;
                }
                continue;
            }
            if (!rf)
                continue;
            se += (r - g) * (r - g);
            sr += r * r;
            bool bad = tl.atol >= 0 && fabs(r - g) > tl.atol + tl.rtol * fabs(r);
            if (P->t[i].dt == QR_DTYPE_I32)
                bad = r != g;
            if (bad && n_bad++ == 0) {
                first = k;
                first_t = i;
            }
        }
    }
    double nmse = sr > 0 ? se / sr : se;
    int w = snprintf(msg, cap, "nmse=%.2e", nmse);
    bool ok = true;
    if (tl.nmse >= 0 && nmse > tl.nmse) {
        snprintf(msg + w, cap - (size_t)w, " > %.0e", tl.nmse);
        ok = false;
    } else if (n_bad) {
        snprintf(msg + w, cap - (size_t)w, "; %zu element(s) off, first %s[%zu]: ref=%.7g got=%.7g (atol %.0e rtol %.0e)",
                 n_bad, P->t[first_t].name, first, ref[first_t][first], got[first_t][first], tl.atol, tl.rtol);
        ok = false;
    }
    return ok;
}

static void appendf(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void appendf(char *buf, size_t cap, const char *fmt, ...)
{
    size_t l = strlen(buf);
    va_list ap;
    va_start(ap, fmt);
    if (l < cap)
        vsnprintf(buf + l, cap - l, fmt, ap);
    va_end(ap);
}

static void free_outs(float **o)
{
    for (int i = 0; i < MAXT; i++) {
        free(o[i]);
        o[i] = NULL;
    }
}

/* ------------------------------------------------------------------------ */

static const char *dt_label(const struct tcase *c)
{
    static char b[16];
    switch (c->op) {
    case QR_OP_KV_STORE:
    case QR_OP_ATTN: snprintf(b, sizeof b, "kv=%s%s", qr_dtype_name(c->dt), c->flags & F_RAMP ? " ramp" : ""); break;
    case QR_OP_ROPE:
    case QR_OP_SILU_MUL:
    case QR_OP_ADD:
    case QR_OP_ARGMAX:
    case QR_OP_TOPK: snprintf(b, sizeof b, "f32"); break;
    default: snprintf(b, sizeof b, "w=%s", qr_dtype_name(c->dt)); break;
    }
    return b;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: test_backend_ops [-o OP] [-b BACKEND] [-p SUBSTR] [--perf] [--list] [--config INI]\n"
               "                        [--threads N] [-v]\n"
               "  -o OP       only this op (embed matmul rmsnorm qk_norm rope kv_store attn silu_mul add logits argmax topk)\n"
               "  -b NAME     compare only this backend with the CPU reference (default: every loaded non-CPU one;\n"
               "              -b cpu: CPU self-checks only)\n"
               "  -p SUBSTR   only cases whose description contains SUBSTR\n"
               "  --if-available  with -b: a backend without a device is a skip, not a failure (ctest runs of GPU\n"
               "              switches on machines without the GPU)\n"
               "  --perf      also run the large (Qwen3-4B-shaped) cases and print time, GB/s, TFLOP/s\n"
               "  --list      list the cases and exit\n"
               "  --coverage  print each device's (op x dtype) support matrix\n"
               "  --threads N CPU reference threads (default: backends.ini / all cores)\n");
}

int main(int argc, char **argv)
{
    const char *only_op = NULL, *only_be = NULL, *pat = NULL, *config = NULL;
    bool perf = false, list = false, verbose = false, coverage = false, if_avail = false;
    int threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-o") && v) only_op = argv[++i];
        else if (!strcmp(a, "-b") && v) only_be = argv[++i];
        else if (!strcmp(a, "-p") && v) pat = argv[++i];
        else if (!strcmp(a, "--config") && v) config = argv[++i];
        else if (!strcmp(a, "--threads") && v) threads = atoi(argv[++i]);
        else if (!strcmp(a, "--perf")) perf = true;
        else if (!strcmp(a, "--list")) list = true;
        else if (!strcmp(a, "--coverage")) coverage = true;
        else if (!strcmp(a, "--if-available")) if_avail = true;
        else if (!strcmp(a, "-v")) verbose = true;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        else { usage(stderr); return 2; }
    }
    if (only_op) {
        bool known = false;
        for (int o = 0; o < QR_OP_COUNT; o++)
            known |= !strcmp(only_op, qr_op_name((enum qr_op)o));
        if (!known) {
            fprintf(stderr, "unknown op '%s'\n", only_op);
            usage(stderr);
            return 2;
        }
    }

    /* which cases */
    int sel[N_CASES], n_sel = 0;
    for (int i = 0; i < N_CASES; i++) {
        const struct tcase *c = &k_cases[i];
        if (c->perf && !perf)
            continue;
        if (only_op && strcmp(only_op, qr_op_name(c->op)))
            continue;
        if (pat) {
            struct problem P;
            gen(&P, c, i);
            char full[300];
            snprintf(full, sizeof full, "%s %s %s", qr_op_name(c->op), dt_label(c), P.desc);
            problem_free(&P);
            if (!strstr(full, pat))
                continue;
        }
        sel[n_sel++] = i;
    }
    if (list) {
        for (int k = 0; k < n_sel; k++) {
            struct problem P;
            gen(&P, &k_cases[sel[k]], sel[k]);
            printf("%3d  %-8s %-8s %s%s\n", sel[k], qr_op_name(P.c->op), dt_label(P.c), P.desc,
                   P.c->perf ? "  [perf]" : "");
            problem_free(&P);
        }
        return 0;
    }

    /* devices: the CPU reference, then the others */
    qr_log_set_level(QR_LOG_WARN);
    struct qr_config_ini *ini = NULL;
    if (qr_ini_load(config, &ini) != QR_OK) {
        fprintf(stderr, "config: %s\n", qr_last_error());
        return 1;
    }
    struct dev devs[8];
    int n_dev = 0;
    struct qr_backend_opts ov = {.device_index = -1, .n_threads = threads};
    memset(devs, 0, sizeof devs);
    devs[0].name = "cpu";
    if (qr_backend_open(ini, "cpu", &ov, &devs[0].d) != QR_OK || qr_stream_create(devs[0].d, &devs[0].s) != QR_OK) {
        fprintf(stderr, "cannot open the CPU reference backend: %s\n", qr_last_error());
        CHECK(false);
        return qt_summary("test_backend_ops");
    }
    n_dev = 1;
    struct qr_backend_info infos[16];
    int n_info = 0;
    if (qr_backends_list(ini, infos, 16, &n_info) != QR_OK)
        n_info = 0;
    bool want_be_found = only_be == NULL || !strcmp(only_be, "cpu");
    for (int i = 0; i < n_info && n_dev < 8; i++) {
        if (!strcmp(infos[i].name, "cpu"))
            continue;
        if (only_be && strcmp(only_be, infos[i].name))
            continue;
        if (!infos[i].loaded || infos[i].n_devices == 0) {
            printf("backend %-7s not tested: %s\n", infos[i].name, infos[i].why);
            continue;
        }
        struct dev *D = &devs[n_dev];
        static char names[8][32];
        memcpy(names[n_dev], infos[i].name, sizeof names[n_dev]);
        names[n_dev][sizeof names[n_dev] - 1] = 0;
        D->name = names[n_dev];
        if (qr_backend_open(ini, infos[i].name, NULL, &D->d) != QR_OK ||
            qr_stream_create(D->d, &D->s) != QR_OK) {
            printf("backend %-7s FAIL to open: %s\n", infos[i].name, qr_last_error());
            CHECK(false);
            continue;
        }
        D->f32_math = qt_f32_math(D->d, D->name);
        want_be_found = true;
        n_dev++;
    }
    if (!want_be_found && if_avail) {
        printf("backend %s requested with -b --if-available is not available: nothing to test\n", only_be);
        for (int i = 0; i < n_dev; i++) {
            qr_stream_destroy(devs[i].s);
            qr_device_close(devs[i].d);
        }
        qr_ini_free(ini);
        return qt_summary("test_backend_ops");
    }
    if (!want_be_found) {
        printf("backend %s requested with -b but not available\n", only_be);
        CHECK(false);
    }
    for (int i = 0; i < n_dev; i++) {
        struct qr_device_props p;
        if (qr_dev_props(devs[i].d, &p) == QR_OK)
            printf("device [%s]: %s (%s)\n", devs[i].name, p.name, p.description);
        if (perf && qr_buf_alloc(devs[i].d, 64u << 20, QR_BUF_SCRATCH, &devs[i].flush) != QR_OK)
            devs[i].flush = NULL;
    }
    if (coverage) {
        for (int i = 0; i < n_dev; i++) {
            printf("coverage [%s] (weights dtype; KV dtype for kv_store/attn)\n  %-9s F32 F16 BF16 F8\n",
                   devs[i].name, "op");
            for (int o = 0; o < QR_OP_COUNT; o++) {
                printf("  %-9s", qr_op_name((enum qr_op)o));
                static const enum qr_dtype cols[] = {F32, F16, BF16, F8};
                for (int t = 0; t < 4; t++)
                    printf(" %-3s", qr_dev_supports(devs[i].d, (enum qr_op)o, cols[t]) ? "yes" : "-");
                printf("\n");
            }
        }
    }
    if (n_dev == 1)
        printf("no other backend loaded: running the CPU self-checks only\n");
    printf("%d case(s)%s\n", n_sel, perf ? ", with --perf" : "");

    int n_skip = 0;
    for (int k = 0; k < n_sel; k++) {
        const struct tcase *c = &k_cases[sel[k]];
        struct problem P;
        gen(&P, c, sel[k]);
        char label[300], err[512], msg[512];
        snprintf(label, sizeof label, "%-8s %-8s %s", qr_op_name(c->op), dt_label(c), P.desc);
        float *ref[MAXT] = {0}, *exp_[MAXT] = {0}, *got[MAXT] = {0};
        int reps = perf ? (c->perf ? 10 : 3) : 0;
        double us = 0;
        int cpu_reps = perf && (!only_be || !strcmp(only_be, "cpu")) ? 3 : 0;
        int rc = run_problem(&devs[0], &P, ref, NULL, err, sizeof err, cpu_reps, &us);
        if (rc) {
            printf("[cpu-self] %-70s FAIL %s\n", label, err);
            CHECKF(false, "cpu %s", label);
            problem_free(&P);
            free_outs(ref);
            continue;
        }
        /* CPU vs the naive loops (skipped for the big perf-only shapes) */
        if (P.values_defined && !c->perf) {
            for (int i = 0; i < P.nt; i++)
                if (P.t[i].out) {
                    exp_[i] = xcalloc(P.t[i].n, sizeof(float));
                    for (size_t e = 0; e < P.t[i].n; e++)
                        exp_[i][e] = get_f(&P.t[i], e);
                }
            naive(&P, exp_);
            bool ok = compare(&P, exp_, ref, tol_for(c, false), msg, sizeof msg);
            if (!ok || verbose)
                printf("[cpu-self] %-70s %s %s\n", label, ok ? "OK  " : "FAIL", msg);
            CHECKF(ok, "cpu-self %s", label);
            free_outs(exp_);
        } else {
            CHECK(true);   /* ran without out-of-bounds writes */
            if (verbose)
                printf("[cpu-self] %-70s OK   (no out-of-bounds writes; values not compared)\n", label);
        }
        if (cpu_reps)
            printf("[cpu]      %-70s %9.1f us %8.1f GB/s %7.3f TFLOP/s\n", label, us, P.bytes / us * 1e-3,
                   P.flops / us * 1e-6);
        for (int d = 1; d < n_dev; d++) {
            struct dev *D = &devs[d];
            if (!qr_dev_supports(D->d, c->op, c->dt)) {
                printf("[%s] %-70s SKIP (not supported)\n", D->name, label);
                n_skip++;
                continue;
            }
            if (D->d->dead) {
                printf("[%s] %-70s FAIL device is dead\n", D->name, label);
                CHECK(false);
                continue;
            }
            float *gout[MAXT] = {0};
            bool has_graph = D->d->svt->graph_exec != NULL;
            rc = run_problem(D, &P, got, has_graph ? gout : NULL, err, sizeof err, reps, &us);
            bool ok = rc == 0;
            if (ok && P.values_defined) {
                ok = compare(&P, ref, got, tol_dev(tol_for(c, true), D), msg, sizeof msg);
                if (ok && has_graph) {
                    char gmsg[512];
                    ok = compare(&P, ref, gout, tol_dev(tol_for(c, true), D), gmsg, sizeof gmsg);
                    appendf(msg, sizeof msg, "; graph replay %s", ok ? "OK" : gmsg);
                }
            } else if (ok) {
                snprintf(msg, sizeof msg, "no out-of-bounds writes%s (values not compared: bad indices)",
                         has_graph ? ", node and graph" : "");
            } else {
                snprintf(msg, sizeof msg, "%s", err);
            }
            free_outs(gout);
            printf("[%s] %-70s %s %s\n", D->name, label, ok ? "OK  " : "FAIL", msg);
            if (ok && reps)
                printf("[%s] %-70s %9.1f us %8.1f GB/s %7.3f TFLOP/s\n", D->name, label, us, P.bytes / us * 1e-3,
                       P.flops / us * 1e-6);
            CHECKF(ok, "[%s] %s", D->name, label);
            free_outs(got);
        }
        free_outs(ref);
        problem_free(&P);
    }
    if (n_skip)
        printf("%d SKIP(s): unsupported (op, dtype) pairs\n", n_skip);
    for (int i = 0; i < n_dev; i++) {
        qr_buf_free(devs[i].flush);
        qr_stream_destroy(devs[i].s);
        qr_device_close(devs[i].d);
    }
    qr_ini_free(ini);
    return qt_summary("test_backend_ops");
}
