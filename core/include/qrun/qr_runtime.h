/* qr_runtime.h - a model placed on a device: weights uploaded, the KV block
 * pool allocated, scratch sized for a step; and the forward pass of one step
 * (a varlen batch of prompt chunks and decodes) built as a qr_graph. */
#ifndef QRUN_QR_RUNTIME_H
#define QRUN_QR_RUNTIME_H

#include "qr_backend.h"
#include "qr_model.h"

#ifdef __cplusplus
extern "C" {
#endif

struct qr_runtime_opts {
    enum qr_dtype kv_dtype;        /* F32, F16 or BF16 */
    int block_size;                /* tokens per KV block (default QR_DEFAULT_BLOCK_SIZE) */
    int num_blocks;                /* 0: size the pool from memory */
    double mem_fraction;           /* --gpu-memory-utilization (default 0.90) */
    int max_model_len;             /* 0: the model's max_position_embeddings */
    int max_batch_tokens;          /* largest step (tokens); scratch is sized for it */
    int max_seqs;                  /* largest number of sequences in a step */
    int max_out;                   /* largest number of logits rows per step (default max_seqs) */
    int concat_weights;            /* 0: auto (fuse q/k/v and gate/up unless the device wraps host
                                    * memory, where separate matmuls keep the weights zero-copy);
                                    * 1: always fuse; -1: never */
    int warmup;                    /* 0: auto (one small prompt step and one decode step at create on device
                                    * backends, so shader/pipeline compilation and library start-up are not paid
                                    * by the first request; $QRUN_NO_WARMUP=1 turns it off); 1: always; -1: never */
};

struct qr_mem_report {
    size_t weights, kv, activations, overhead, device_total, device_free_after;
};

struct qr_runtime;

/* Uploads the weights (progress through cb), then allocates scratch and the
 * KV pool.  Fails before any work with a message naming bytes needed and free
 * (and a suggested --max-model-len) when weights + a minimal pool do not fit. */
qr_status qr_rt_create(const struct qr_model *m, struct qr_device *dev, const struct qr_runtime_opts *o,
                       qr_progress_fn cb, void *cb_user, struct qr_runtime **out);
void qr_rt_destroy(struct qr_runtime *rt);

int qr_rt_num_blocks(const struct qr_runtime *rt);
int qr_rt_block_size(const struct qr_runtime *rt);
int qr_rt_max_model_len(const struct qr_runtime *rt);      /* after capping by the pool */
const struct qr_model_config *qr_rt_config(const struct qr_runtime *rt);
void qr_rt_mem(const struct qr_runtime *rt, struct qr_mem_report *r);
struct qr_device *qr_rt_device(const struct qr_runtime *rt);

/* One step.  Token t belongs to the sequence s with q_start[s] <= t < q_start[s+1]. */
struct qr_batch {
    int n_tokens;
    const int32_t *tokens;         /* (n_tokens) */
    const int32_t *positions;      /* (n_tokens) absolute positions */
    const int32_t *slots;          /* (n_tokens) KV slot of each token */
    int n_seqs;
    const int32_t *q_start;        /* (n_seqs + 1) */
    const int32_t *seq_lens;       /* (n_seqs) context length after this step */
    const int32_t *block_tables;   /* (n_seqs, max_blocks_per_seq) */
    int max_blocks_per_seq;
    int n_out;                     /* rows that need logits */
    const int32_t *out_idx;        /* (n_out) token indices into this batch */
};

/* Runs the step.  logits (n_out x vocab, may be NULL) and/or argmax (n_out,
 * may be NULL) are filled on return.  Inputs are validated (ids, slots,
 * block ids, lengths) before anything is written to the device. */
qr_status qr_rt_forward(struct qr_runtime *rt, const struct qr_batch *b, float *logits, int32_t *argmax);
/* Runs the step and returns each output row's k best (1 <= k <= QR_TOPK_MAX) by v = logit * inv_t[row] (NaN as
 * -inf), ranked by v descending then index ascending: ids and vals, n_out x k, in that order -- what
 * qr_sampler_sample_topk samples from, without reading whole logits rows back.  QR_E_UNSUPPORTED where the
 * backend lacks the op (qr_rt_has_topk). */
bool qr_rt_has_topk(const struct qr_runtime *rt);
qr_status qr_rt_forward_topk(struct qr_runtime *rt, const struct qr_batch *b, const float *inv_t, int k, int32_t *ids,
                             float *vals);
/* One whole logits row (vocab floats) of the last step, which is still on the device until the next one: for a
 * sampled row its top-k could not decide (QR_SAMPLER_NEED_ROW). */
qr_status qr_rt_read_logits(struct qr_runtime *rt, int row, float *out);

/* Convenience for tests and the CLI: rope inverse frequencies of the config
 * (head_dim/2 values) and the YaRN attention factor. */
void qr_rope_inv_freq(const struct qr_model_config *cfg, float *inv_freq, float *attn_factor);

#ifdef __cplusplus
}
#endif
#endif
