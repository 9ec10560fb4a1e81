/* qr_planner.h - capacity planning without a GPU: weight bytes, KV bytes per
 * token, the longest context and the most concurrent requests that fit on a
 * card, and the decode tok/s its memory bandwidth allows.  The card table is
 * built in (vendor datasheet figures, cited per card). */
#ifndef QRUN_QR_PLANNER_H
#define QRUN_QR_PLANNER_H

#include "qr_model.h"

#ifdef __cplusplus
extern "C" {
#endif

struct qr_gpu_card {
    const char *name;          /* "RTX 4090D" */
    const char *vendor;        /* NVIDIA, AMD, Intel */
    const char *api;           /* "cuda" or "vulkan": the qrun backend that would drive it */
    double vram_gib;           /* memory as marketed ("24 GB" GDDR/HBM = 24 GiB) */
    double bandwidth_gbs;      /* peak memory bandwidth, GB/s (1e9 B/s) */
    double fp16_tflops;        /* dense FP16/BF16 tensor TFLOP/s with FP32 accumulate */
    const char *source;        /* where the figures come from */
};

/* the built-in table; *n receives its length */
const struct qr_gpu_card *qr_plan_cards(int *n);
/* case-insensitive, ignoring spaces, '-' and '_' ("rtx4090d", "RTX 4090D",
 * "h100-sxm"); NULL when unknown */
const struct qr_gpu_card *qr_plan_find_card(const char *name);

struct qr_plan_opts {
    enum qr_dtype weight_dtype;   /* BF16/F16 (2 B) or F32 */
    enum qr_dtype kv_dtype;       /* BF16/F16 (2 B) or F32 */
    double mem_fraction;          /* share of VRAM the engine may use (default 0.90) */
    double overhead_bytes;        /* runtime context, scratch, activations, logits (default 1 GiB) */
    int block_size;               /* KV block tokens (default QR_DEFAULT_BLOCK_SIZE); capacity rounds down to blocks */
    int prompt_len, output_len;   /* request shape for concurrency and speed (default 8192 / 512) */
    double efficiency;            /* achieved share of peak bandwidth in decode (default 0.60) */
};

struct qr_plan {
    double weight_bytes;          /* every parameter at weight_dtype (tied lm_head counted once) */
    double params;                /* parameter count */
    double kv_bytes_per_token;    /* layers x 2 x kv_heads x head_dim x kv dtype size */
    double usable_bytes;          /* vram x mem_fraction */
    double kv_budget_bytes;       /* usable - weights - overhead (may be < 0: does not fit) */
    bool weights_fit;
    long long kv_tokens;          /* tokens the KV pool holds (whole blocks) */
    long long max_context;        /* min(kv_tokens, max_position_embeddings) */
    int max_concurrency;          /* sequences of prompt+output tokens held at once */
    double decode_tok_s;          /* batch 1 at context prompt + output/2 */
    double decode_ms;             /* per token */
    double prefill_tok_s;         /* compute bound: fp16 TFLOP/s x 0.5 / (2 x params) (indicative) */
};

void qr_plan_opts_default(struct qr_plan_opts *o);
/* Plans cfg on a card with vram_gib of memory and bandwidth_gbs (0: no speed
 * estimate) and fp16 TFLOP/s (0: no prefill estimate). */
qr_status qr_plan_compute(const struct qr_model_config *cfg, const struct qr_plan_opts *o, double vram_gib,
                          double bandwidth_gbs, double fp16_tflops, struct qr_plan *out);
/* parameter count of a config (embedding counted once when tied) */
double qr_plan_params(const struct qr_model_config *cfg);
/* Qwen3-4B-Instruct-2507's config.json values (REFERENCE.md 1.1), for planning without a model dir */
void qr_plan_qwen3_4b_config(struct qr_model_config *cfg);

#ifdef __cplusplus
}
#endif
#endif
