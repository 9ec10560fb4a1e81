/* qrun.h - the engine/request API used by the CLI, the benchmarks and the
 * server.  One engine thread runs steps (continuous batching over the paged
 * KV cache); any thread may add or cancel requests. */
#ifndef QRUN_QRUN_H
#define QRUN_QRUN_H

#include "qr_types.h"
#include "qr_model.h"
#include "qr_sampler.h"
#include "qr_tokenizer.h"
#include "qr_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

struct qr_engine_opts {
    const char *model_dir;
    const char *backend;            /* "cpu", "cuda", "vulkan", "auto" */
    const char *config_path;        /* backends.ini; NULL: the lookup order */
    int device_index;               /* -1: from ini */
    int n_threads;                  /* CPU backend; 0: from ini / all cores */
    double gpu_mem_util;            /* 0: 0.90 */
    int max_model_len;              /* 0: the model's */
    int max_num_seqs;               /* 0: 256 */
    int max_num_batched_tokens;     /* tokens per step, 0: 8192; decodes out of decode_budget do not count */
    int decode_budget;              /* decode tokens per step outside max_num_batched_tokens: 0 = max_num_seqs
                                       (a prompt that fits the budget is never cut by decodes beside it),
                                       < 0 = none (every token spends the budget, as in vLLM) */
    int decode_pause_ms;            /* prefill first: the longest the running decodes wait while a burst of prompts is
                                       prefilled (steps with prompt work leave them out until then): 0 = the
                                       default (QR_DEFAULT_DECODE_PAUSE_MS), < 0 = never (decodes in every step) */
    bool enable_prefix_caching;
    int block_size;                 /* 0: QR_DEFAULT_BLOCK_SIZE (64) */
    enum qr_dtype kv_dtype;         /* QR_DTYPE_COUNT: backend default (F32 on cpu, BF16 on GPUs) */
    int debug_preempt_every;        /* >0: force a preemption every N steps (tests) */
    int num_blocks;                 /* 0: size the KV pool from memory; > 0: exactly this many blocks (tests) */
    int decode_bucketing;           /* pad decode-only steps to fixed batch sizes (graph replay):
                                       0 auto (when the device replays graphs), 1 always, -1 never */
    qr_progress_fn progress;        /* load progress (may be NULL) */
    void *progress_user;
};
void qr_engine_opts_default(struct qr_engine_opts *o);

enum qr_finish_reason {
    QR_FINISH_NONE = 0,             /* still running */
    QR_FINISH_STOP,                 /* EOS or stop string */
    QR_FINISH_LENGTH,               /* max_tokens or context full */
    QR_FINISH_CANCELLED,
    QR_FINISH_ERROR,
};
const char *qr_finish_reason_str(enum qr_finish_reason r);

#define QR_MAX_STOP 16
#define QR_MAX_TOP_LOGPROBS 20

struct qr_request_params {
    struct qr_sampler_params sampling;
    int max_tokens;                 /* > 0 */
    bool ignore_eos;
    const char *stop[QR_MAX_STOP];  /* stop strings (copied); never emitted */
    int n_stop;
    int32_t stop_ids[QR_MAX_STOP];  /* extra stop token ids */
    int n_stop_ids;
    int logprobs;                   /* -1 off; else number of top alternatives (0..20) */
    bool skip_special;              /* decode with skip_special_tokens (default true) */
};
/* defaults from the model's generation_config.json */
void qr_request_params_default(const struct qr_model *m, struct qr_request_params *p);

/* One streamed event per generated token (text may be empty while a stop
 * string or an incomplete UTF-8 sequence is held back), and a final event with
 * finish != QR_FINISH_NONE. Called on the engine thread: do not block. */
struct qr_token_event {
    uint64_t req_id;
    int32_t token;                  /* -1 on the final event if no token */
    const char *text;               /* newly released text (not NUL-terminated beyond text_len) */
    size_t text_len;
    float logprob;
    int n_top;
    int32_t top_ids[QR_MAX_TOP_LOGPROBS];
    float top_logprobs[QR_MAX_TOP_LOGPROBS];
    enum qr_finish_reason finish;
    const char *error;              /* when finish == QR_FINISH_ERROR */
    int n_prompt_tokens, n_cached_tokens, n_gen_tokens;
    double t_arrival, t_first_token, t_now;   /* qr_time_s() clock */
};
typedef void (*qr_token_cb)(const struct qr_token_event *ev, void *user);

struct qr_engine;

/* Opens the backend, loads the model and tokenizer, sizes the KV pool. */
qr_status qr_engine_create(const struct qr_engine_opts *o, struct qr_engine **out);
void qr_engine_destroy(struct qr_engine *e);

/* Start / stop the background engine thread.  Without it, call qr_engine_step. */
qr_status qr_engine_start(struct qr_engine *e);
void qr_engine_stop(struct qr_engine *e);

/* Adds a request.  A request that can never fit (prompt + max_tokens over
 * max_model_len, empty prompt, ids out of range) is rejected with
 * QR_E_INVALID_ARG and a reason in qr_last_error(). */
qr_status qr_engine_add(struct qr_engine *e, const int32_t *prompt, int n_prompt,
                        const struct qr_request_params *p, qr_token_cb cb, void *user, uint64_t *req_id);
qr_status qr_engine_cancel(struct qr_engine *e, uint64_t req_id);

/* Run one scheduler step in the calling thread (when the thread is not started).
 * *n_unfinished = requests still waiting or running. */
qr_status qr_engine_step(struct qr_engine *e, int *n_unfinished);
/* Run steps until every request has finished. */
qr_status qr_engine_run_until_idle(struct qr_engine *e);

struct qr_engine_stats {
    int n_waiting, n_running, n_preempted_total;
    int kv_blocks_total, kv_blocks_used, kv_blocks_cached_free;
    uint64_t steps, paused_steps, prompt_tokens_total, gen_tokens_total, prefix_hit_tokens_total;
    uint64_t requests_finished;
    /* where the steps' time went (wall time of a step: schedule, forward, sampling): steps that only decoded, and
     * steps with prompt tokens, whose prompt tokens run through the model (recomputed ones after a preemption
     * included, prefix-cache hits not) */
    uint64_t decode_only_steps, decode_only_tokens, prompt_steps, prompt_tokens_computed;
    double decode_only_s, prompt_steps_s;
    /* steps sampled from each row's best k computed on the device (no logits rows read back), and steps that read
     * whole logits rows back for sampling on the host */
    uint64_t topk_steps, logits_steps;
    uint64_t topk_rows_refetched;   /* rows with penalties whose candidates could not decide: read back whole */
    double last_step_time;          /* qr_time_s() of the last finished step */
    bool healthy;                   /* false once the device is dead */
};
void qr_engine_get_stats(struct qr_engine *e, struct qr_engine_stats *s);

const struct qr_model *qr_engine_model(const struct qr_engine *e);
const struct qr_tokenizer *qr_engine_tokenizer(const struct qr_engine *e);
enum qr_chat_variant qr_engine_chat_variant(const struct qr_engine *e);
struct qr_runtime *qr_engine_runtime(struct qr_engine *e);
int qr_engine_max_model_len(const struct qr_engine *e);

#ifdef __cplusplus
}
#endif
#endif
