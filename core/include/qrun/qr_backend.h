/* qr_backend.h - THE header for backend authors.
 *
 * A backend is a shared library (loaded with dlopen) that exports
 *     struct qr_backend_reg *qr_backend_init(void);
 *     int qr_backend_score(void);            (optional; 0 = unusable here)
 * The registry opens devices; a device allocates buffers and streams and
 * carries a table of typed ops.  Ops are enqueue-only on a stream.
 *
 * Conventions (API version 1):
 *  - Activations are F32, row-major.  Weights are F32, F16 or BF16, row-major
 *    [out, in] as in Hugging Face checkpoints (y = x . W^T).
 *  - The KV cache of one layer is two buffers (K and V), each laid out
 *    [num_blocks, n_kv_heads, block_size, head_dim] in the KV dtype
 *    (F32, F16 or BF16).  A slot is block_id * block_size + offset.
 *  - All counts are ints; "ld" values are row strides in elements.
 *  - Index inputs (token ids, positions, slots, block tables) live in device
 *    buffers so a recorded step (CUDA Graph / Vulkan command buffer) can be
 *    replayed with new values.  The core validates ids and block ids before
 *    writing them; backends still never read or write out of bounds.
 *
 * Reference for each op: the scalar code in backends/cpu/cpu_ref_ops.c, which
 * mirrors transformers' modeling_qwen3.py / modeling_qwen2.py.
 */
#ifndef QRUN_QR_BACKEND_H
#define QRUN_QR_BACKEND_H

#include "qr_types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define QR_BACKEND_API_VERSION 1

struct qr_device;
struct qr_stream;

/* ---- buffers ---- */
enum qr_buf_usage {
    QR_BUF_WEIGHTS = 1u << 0,
    QR_BUF_KV = 1u << 1,
    QR_BUF_SCRATCH = 1u << 2,
    QR_BUF_IO = 1u << 3,       /* small per-step inputs / outputs */
    /* with SCRATCH: what a graph's node writes here is read only by later nodes of the same graph, never by
     * the host; where no later node reads a value before it is overwritten, a backend that fuses the writer
     * into its reader may leave that value unwritten (the contents after a graph are then unspecified) */
    QR_BUF_TRANSIENT = 1u << 4,
};

struct qr_buf {
    struct qr_device *dev;
    size_t size;
    void *ptr;   /* host pointer (CPU) or device address (CUDA); NULL where none (Vulkan) */
    void *ctx;   /* backend-private */
};

/* A byte offset into a buffer.  buf == NULL means "absent" (e.g. no bias). */
struct qr_view {
    struct qr_buf *buf;
    size_t off;
};

/* ---- ops ---- */
enum qr_op {
    QR_OP_EMBED = 0,
    QR_OP_MATMUL,
    QR_OP_RMSNORM,
    QR_OP_QK_NORM,
    QR_OP_ROPE,
    QR_OP_KV_STORE,
    QR_OP_ATTN,
    QR_OP_SILU_MUL,
    QR_OP_ADD,
    QR_OP_LOGITS,
    QR_OP_ARGMAX,
    QR_OP_TOPK,
    QR_OP_COUNT
};
const char *qr_op_name(enum qr_op op);

/* out[t, :] = table[ids[t], :]   (ids clamped to [0, vocab) by backends) */
struct qr_embed_args {
    struct qr_view out;      /* f32 (n_tokens, dim) */
    struct qr_view table;    /* wtype (vocab, dim) */
    struct qr_view ids;      /* i32 (n_tokens) */
    enum qr_dtype wtype;
    int n_tokens, dim, vocab;
};

/* y[m, :] (+)= x[m, :] . W^T + bias      (torch.nn.functional.linear) */
struct qr_matmul_args {
    struct qr_view y;        /* f32 (M, N), row stride ldy */
    struct qr_view x;        /* f32 (M, K), row stride ldx */
    struct qr_view w;        /* wtype (N, K) contiguous */
    struct qr_view bias;     /* btype (N) or buf == NULL */
    enum qr_dtype wtype, btype;
    int M, N, K;
    int ldx, ldy;
    int accumulate;          /* 1: y += result (fused residual add) */
};

/* RMSNorm (Qwen3RMSNorm): for each token t and head j,
 *   r = x[t*ldx + j*n + i], out = w[i] * (r / sqrt(mean(r^2) + eps))
 * QR_OP_RMSNORM uses n_heads = 1; QR_OP_QK_NORM is the per-head q/k norm
 * (n = head_dim), same args, and may run in place (out == x). */
struct qr_rmsnorm_args {
    struct qr_view out;      /* f32, token t head j at out + (t*ldout + j*n) */
    struct qr_view x;        /* f32 */
    struct qr_view w;        /* wtype (n) */
    enum qr_dtype wtype;
    int n_tokens, n_heads, n;
    int ldx, ldout;
    float eps;
};

/* NeoX-style rotary embedding, in place (transformers apply_rotary_pos_emb):
 * dim i pairs with i + head_dim/2; angle = pos[t] * inv_freq[i];
 * cos and sin are multiplied by attn_factor (1 unless YaRN). */
struct qr_rope_args {
    struct qr_view x;        /* f32, token t head h at x + (t*ld + h*head_dim) */
    struct qr_view pos;      /* i32 (n_tokens) */
    struct qr_view inv_freq; /* f32 (head_dim/2) */
    int n_tokens, n_heads, head_dim, ld;
    float attn_factor;
};

/* Paged KV write: token t's k/v go to slot slots[t] (skip if < 0). */
struct qr_kv_store_args {
    struct qr_view k_cache, v_cache;   /* kv_dtype (num_blocks, n_kv_heads, block_size, head_dim) */
    struct qr_view k, v;               /* f32, token t head h at k + (t*ld + h*head_dim) */
    struct qr_view slots;              /* i32 (n_tokens) */
    enum qr_dtype kv_dtype;
    int n_tokens, n_kv_heads, head_dim, ld, block_size, num_blocks;
};

/* Paged causal attention over a varlen batch (prompt chunks and decodes mixed).
 * Sequence s owns query tokens q_start[s] .. q_start[s+1]-1; its context length
 * (cached + this step) is seq_lens[s]; query token i of s (0-based) sits at
 * position seq_lens[s] - qlen_s + i and attends to positions <= its own.
 * GQA: kv head = h / (n_heads / n_kv_heads).  softmax in f32. */
struct qr_attn_args {
    struct qr_view out;                /* f32, token t head h at out + (t*ldo + h*head_dim) */
    struct qr_view q;                  /* f32, token t head h at q + (t*ldq + h*head_dim) */
    struct qr_view k_cache, v_cache;   /* as in kv_store */
    struct qr_view block_tables;       /* i32 (n_seqs, max_blocks_per_seq) */
    struct qr_view seq_lens;           /* i32 (n_seqs) */
    struct qr_view q_start;            /* i32 (n_seqs + 1) */
    enum qr_dtype kv_dtype;
    int n_tokens, n_seqs, n_heads, n_kv_heads, head_dim;
    int block_size, max_blocks_per_seq, num_blocks;
    int ldq, ldo;
    int max_seq_len;                   /* host upper bound of seq_lens[] */
    int max_q_len;                     /* host upper bound of per-seq query count */
    float scale;                       /* 1/sqrt(head_dim) */
};

/* SwiGLU: out[t, i] = silu(gu[t, i]) * gu[t, n_ff + i] */
struct qr_silu_mul_args {
    struct qr_view out;                /* f32 (n_tokens, n_ff), stride ldout */
    struct qr_view gu;                 /* f32 (n_tokens, 2*n_ff), stride ldgu */
    int n_tokens, n_ff, ldgu, ldout;
};

/* y[i] += x[i], f32, n elements */
struct qr_add_args {
    struct qr_view y, x;
    int64_t n;
};

/* out[r, :] = x[idx[r], :] . W^T    (lm_head on selected rows) */
struct qr_logits_args {
    struct qr_view out;                /* f32 (n_out, vocab) */
    struct qr_view x;                  /* f32 rows of length dim, stride ldx */
    struct qr_view idx;                /* i32 (n_out) */
    struct qr_view w;                  /* wtype (vocab, dim) */
    enum qr_dtype wtype;
    int n_out, dim, vocab, ldx;
};

/* out[r] = argmax_j x[r, j] (lowest index on ties) */
struct qr_argmax_args {
    struct qr_view out;                /* i32 (n_rows) */
    struct qr_view x;                  /* f32 (n_rows, n) */
    int n_rows, n;
};

/* The k best of each row for sampling: v[r, j] = isnan(x[r, j]) ? -inf : x[r, j] * inv_t[r] (one f32 multiply),
 * ranked by v descending, then index ascending; ids[r, i] / vals[r, i] (i < k) are the i-th best's index and v, in
 * that order.  1 <= k <= QR_TOPK_MAX, k <= n. */
#define QR_TOPK_MAX 256
struct qr_topk_args {
    struct qr_view ids;                /* i32 (n_rows, k) */
    struct qr_view vals;               /* f32 (n_rows, k) */
    struct qr_view x;                  /* f32 (n_rows, n) */
    struct qr_view inv_t;              /* f32 (n_rows) */
    int n_rows, n, k;
};

typedef qr_status (*qr_op_embed_fn)(struct qr_stream *, const struct qr_embed_args *);
typedef qr_status (*qr_op_matmul_fn)(struct qr_stream *, const struct qr_matmul_args *);
typedef qr_status (*qr_op_rmsnorm_fn)(struct qr_stream *, const struct qr_rmsnorm_args *);
typedef qr_status (*qr_op_rope_fn)(struct qr_stream *, const struct qr_rope_args *);
typedef qr_status (*qr_op_kv_store_fn)(struct qr_stream *, const struct qr_kv_store_args *);
typedef qr_status (*qr_op_attn_fn)(struct qr_stream *, const struct qr_attn_args *);
typedef qr_status (*qr_op_silu_mul_fn)(struct qr_stream *, const struct qr_silu_mul_args *);
typedef qr_status (*qr_op_add_fn)(struct qr_stream *, const struct qr_add_args *);
typedef qr_status (*qr_op_logits_fn)(struct qr_stream *, const struct qr_logits_args *);
typedef qr_status (*qr_op_argmax_fn)(struct qr_stream *, const struct qr_argmax_args *);
typedef qr_status (*qr_op_topk_fn)(struct qr_stream *, const struct qr_topk_args *);

struct qr_ops {
    qr_op_embed_fn embed;
    qr_op_matmul_fn matmul;
    qr_op_rmsnorm_fn rmsnorm;
    qr_op_rmsnorm_fn qk_norm;
    qr_op_rope_fn rope;
    qr_op_kv_store_fn kv_store;
    qr_op_attn_fn attn;
    qr_op_silu_mul_fn silu_mul;
    qr_op_add_fn add;
    qr_op_logits_fn logits;
    qr_op_argmax_fn argmax;    /* optional: NULL -> core reads logits back */
    qr_op_topk_fn topk;        /* optional: NULL -> core reads logits back and samples from whole rows */
};

/* ---- a step as a graph: the op sequence of one forward pass ---- */
struct qr_node {
    enum qr_op op;
    union {
        struct qr_embed_args embed;
        struct qr_matmul_args matmul;
        struct qr_rmsnorm_args rmsnorm;   /* QR_OP_RMSNORM and QR_OP_QK_NORM */
        struct qr_rope_args rope;
        struct qr_kv_store_args kv_store;
        struct qr_attn_args attn;
        struct qr_silu_mul_args silu_mul;
        struct qr_add_args add;
        struct qr_logits_args logits;
        struct qr_argmax_args argmax;
        struct qr_topk_args topk;
    } a;
};

/* the views node n reads (w[i] false) and writes (w[i] true), at most QR_NODE_MAX_VIEWS; returns their count.  An
 * unknown op gives one NULL view (a read of nothing known: callers treat it as reading everything) */
#define QR_NODE_MAX_VIEWS 8
int qr_node_views(const struct qr_node *n, const struct qr_view **v, bool *w);

/* key != 0 promises: every graph executed with this key has exactly the same
 * nodes and args (only the contents of index/input buffers change), so the
 * backend may record it once and replay it.  key == 0: never cache. */
struct qr_graph {
    const struct qr_node *nodes;
    int n_nodes;
    uint64_t key;
};

/* ---- device ---- */
enum qr_cap {
    QR_CAP_BF16 = 1u << 0,          /* native bf16 math */
    QR_CAP_F16 = 1u << 1,
    QR_CAP_GRAPH_REPLAY = 1u << 2,  /* graph_exec caches by key */
    QR_CAP_HOST_MEMORY = 1u << 3,   /* buffers are plain host memory (CPU) */
    QR_CAP_COOPMAT = 1u << 4,       /* tensor cores / cooperative matrices */
    QR_CAP_SOFTWARE = 1u << 5,      /* a device emulated on the host CPU (Mesa's lavapipe): "auto" prefers a later
                                     * backend (the CPU reference is faster there) and takes it only as a fallback */
};

struct qr_device_props {
    char name[128];
    char description[256];   /* driver, compute capability, features */
    size_t mem_total;
    size_t mem_free;
    size_t max_alloc;        /* largest single buffer */
    size_t alignment;        /* buffer offset alignment the ops need */
    unsigned caps;           /* enum qr_cap bits */
};

struct qr_device_vt {
    void (*close)(struct qr_device *d);
    qr_status (*get_props)(struct qr_device *d, struct qr_device_props *p);
    qr_status (*buf_alloc)(struct qr_device *d, size_t size, unsigned usage, struct qr_buf **out);
    void (*buf_free)(struct qr_buf *b);
    /* optional: wrap host memory without copying (CPU); NULL -> alloc + write */
    qr_status (*buf_from_host)(struct qr_device *d, void *ptr, size_t size, struct qr_buf **out);
    qr_status (*stream_create)(struct qr_device *d, struct qr_stream **out);
    void (*stream_destroy)(struct qr_stream *s);
    /* whether op runs with this weight dtype (QR_DTYPE_COUNT: any) */
    bool (*supports)(struct qr_device *d, enum qr_op op, enum qr_dtype wtype);
};

struct qr_stream_vt {
    /* enqueue a host -> device copy; src may be reused when this returns */
    qr_status (*write)(struct qr_stream *s, struct qr_buf *dst, size_t off, const void *src, size_t n);
    /* device -> host copy; completes (all earlier work too) before returning */
    qr_status (*read)(struct qr_stream *s, struct qr_buf *src, size_t off, void *dst, size_t n);
    qr_status (*copy)(struct qr_stream *s, struct qr_buf *dst, size_t doff, struct qr_buf *src, size_t soff, size_t n);
    qr_status (*memset0)(struct qr_stream *s, struct qr_buf *dst, size_t off, size_t n);
    qr_status (*synchronize)(struct qr_stream *s);
    /* optional: run (record / replay) a whole step; NULL -> the core calls the ops in order */
    qr_status (*graph_exec)(struct qr_stream *s, const struct qr_graph *g);
};

struct qr_device {
    const struct qr_device_vt *vt;
    const struct qr_stream_vt *svt;
    const struct qr_ops *ops;
    const struct qr_backend_reg *reg;
    void *ctx;         /* backend-private */
    bool dead;         /* set after a sticky error (device lost); every call then fails */
};

struct qr_stream {
    struct qr_device *dev;
    void *ctx;
};

/* ---- backend options (from backends.ini [backend.NAME] and the CLI) ---- */
struct qr_backend_opts {
    int device_index;         /* -1: default */
    const char *device_name;  /* substring match, or NULL */
    double mem_fraction;      /* fraction of device memory qrun may use (0..1] */
    int n_threads;            /* CPU: worker threads; 0 = all cores */
    /* any other key of the backend's ini section; NULL if absent */
    const char *(*get)(const struct qr_backend_opts *o, const char *key);
    const void *ini;          /* private to the core's getter */
    const char *section;
};

/* ---- registry: one per library ---- */
struct qr_backend_reg {
    int api_version;              /* QR_BACKEND_API_VERSION */
    const char *name;             /* "cpu", "cuda", "vulkan" */
    int (*device_count)(void);
    /* fills props for `qrun backends` without opening a full device */
    qr_status (*device_describe)(int idx, struct qr_device_props *p);
    qr_status (*device_open)(int idx, const struct qr_backend_opts *opts, struct qr_device **out);
    /* why there is no device here (no driver, driver too old, ...); NULL if fine */
    const char *(*unavailable_reason)(void);
    void *(*get_proc)(const char *name);   /* optional extensions */
    void (*shutdown)(void);
};

typedef struct qr_backend_reg *(*qr_backend_init_fn)(void);
typedef int (*qr_backend_score_fn)(void);

#ifdef __cplusplus
}
#endif
#endif
