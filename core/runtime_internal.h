/* runtime_internal.h - the state of a qr_runtime, shared by runtime.c (weights,
 * KV pool, scratch) and runtime_graph.c (the forward step). */
#ifndef QRUN_RUNTIME_INTERNAL_H
#define QRUN_RUNTIME_INTERNAL_H

#include "qrun/qr_registry.h"
#include "qrun/qr_runtime.h"

/* a weight on the device: one buffer, the dtype it has there */
struct rt_weight {
    struct qr_buf *buf;      /* NULL when absent */
    enum qr_dtype dtype;
};

struct rt_layer {
    struct rt_weight ln1, ln2;          /* (dim) */
    struct rt_weight qkv;               /* concat: (q_dim + 2*kv_dim, dim) */
    struct rt_weight q, k, v;           /* separate (no concat): (q_dim, dim), (kv_dim, dim) x2 */
    struct rt_weight qkv_bias;          /* concat: (q_dim + 2*kv_dim) */
    struct rt_weight q_bias, k_bias, v_bias;
    struct rt_weight q_norm, k_norm;    /* (head_dim) qwen3 */
    struct rt_weight o;                 /* (dim, q_dim) */
    struct rt_weight gate_up;           /* concat: (2*ffn, dim) */
    struct rt_weight gate, up;          /* separate: (ffn, dim) x2 */
    struct rt_weight down;              /* (dim, ffn) */
    struct qr_buf *k_cache, *v_cache;   /* (num_blocks, n_kv, block_size, head_dim) */
};

/* byte offsets of the per-step inputs in the IO buffer */
struct rt_io_layout {
    size_t ids, pos, slots, q_start, seq_lens, block_tables, out_idx, argmax, inv_t, topk_ids, topk_vals, size;
};

/* activations (f32), one buffer each so none meets the device's largest-buffer limit */
struct rt_scratch {
    struct qr_buf *x;        /* (T, dim) residual stream */
    struct qr_buf *h;        /* (T, dim) normed */
    struct qr_buf *qkv;      /* (T, q_dim + 2*kv_dim) */
    struct qr_buf *att;      /* (T, q_dim) */
    struct qr_buf *gu;       /* (T, 2*ffn) */
    struct qr_buf *act;      /* (T, ffn) */
    struct qr_buf *logits;   /* (max_out, vocab) */
};
#define RT_N_SCRATCH 7

struct qr_runtime {
    const struct qr_model *m;
    struct qr_model_config cfg;
    struct qr_device *dev;
    bool warned_bf16_to_f16;   /* the BF16 -> F16 load warning was logged */
    struct qr_stream *st;
    struct qr_device_props props;
    struct qr_runtime_opts o;         /* resolved */
    bool concat;                      /* qkv and gate_up are single matmuls */
    int q_dim, kv_dim, qkv_dim;

    struct rt_weight embed, final_norm, lm_head;
    struct rt_layer *layers;
    struct qr_buf *rope;              /* f32 (head_dim/2) inv_freq */
    float attn_factor;

    int num_blocks, block_size, max_model_len, max_blocks_per_seq;
    size_t kv_bytes, weight_bytes, scratch_bytes, io_bytes;
    size_t mem_free_after;

    struct rt_scratch sb;
    size_t sb_size[RT_N_SCRATCH];     /* bytes of each, in struct order */
    struct qr_buf *io;
    struct rt_io_layout il;
    int32_t *bt_stage;                /* host staging for block tables (max_seqs x max_blocks_per_seq) */
    struct qr_node *nodes;
    int max_nodes;
    float *host_logits;               /* argmax fallback (max_out x vocab) when logits == NULL */
    int last_n_out;                   /* output rows of the last step (qr_rt_read_logits), 0 after a failed one */
};

/* runtime_graph.c */
qr_status qr_rt_graph_init(struct qr_runtime *rt);

#endif
