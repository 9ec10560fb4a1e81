/* qr_sched.h - the continuous-batching scheduler (vLLM v1 style), pure data:
 * no model, no device.  The engine owns one and drives it from its thread.
 *
 * There is no prefill or decode phase: every request has n_tokens (prompt +
 * generated) and n_computed (tokens whose KV is written); each step spends a
 * token budget (max_batched_tokens) over at most max_seqs running requests:
 *   1. running decodes (one token each), oldest first, out of decode_budget
 *      first where one is set;
 *   2. running partial prefills (prompt chunks: chunked prefill), oldest first;
 *   3. waiting requests, first come first served, while the budget, the
 *      sequence cap and the free blocks allow (a prefix-cache hit skips the
 *      cached tokens, but never the last one).
 * Prefill first (decode_pause_ms > 0): a step that has prompt work to do (a
 * running partial prefill, or a waiting request that can be admitted now)
 * leaves the running decodes out (but those still awaiting their first visible
 * output), as SGLang's and vLLM v0's schedulers do, so
 * a burst of prompts reaches its first tokens sooner (mean TTFT); once the
 * decodes have waited decode_pause_ms in one run of such steps they ride along
 * again until a step has no prompt work.
 * When a running request needs a block and none is free, the latest running
 * request is preempted: its blocks are freed, n_computed is reset to 0 and it
 * goes back to the front of the queue, to be recomputed.  No waiting request
 * is admitted in a step that preempted.  A request whose prompt + max_tokens
 * could never fit in the pool (or max_len) is refused by qr_sched_add. */
#ifndef QRUN_QR_SCHED_H
#define QRUN_QR_SCHED_H

#include "qr_kv.h"

#ifdef __cplusplus
extern "C" {
#endif

enum qr_sched_state { QR_REQ_WAITING = 0, QR_REQ_RUNNING, QR_REQ_FINISHED };

struct qr_sched_req {
    uint64_t id;
    int32_t *tokens;        /* (n_tokens) prompt then generated tokens; owned */
    int n_tokens, cap;
    int n_prompt;
    int max_tokens;         /* generated tokens allowed */
    int n_computed;         /* tokens with KV written */
    int n_cached;           /* prefix-hit tokens at the latest admission */
    int n_preempted;
    enum qr_sched_state state;
    struct qr_kv_seq kv;
    void *user;             /* the engine's per-request state */
    int item;               /* index into this step's items, -1 if not scheduled (internal) */
    bool awaiting_output;   /* set by the engine while the generated tokens have shown the client nothing (an
                             * incomplete UTF-8 character, a held-back stop-string prefix, an id without text):
                             * its first visible output is still TTFT, so prefill first never pauses its decode */
};

struct qr_sched_opts {
    int max_batched_tokens; /* token budget per step (> 0) */
    int max_seqs;           /* sequences per step (> 0) */
    int max_len;            /* prompt + max_tokens cap (max_model_len) */
    int debug_preempt_every;/* > 0: preempt the latest running request every N steps (needs >= 2 running) */
    int decode_budget;      /* decode tokens per step outside max_batched_tokens (0: decodes spend the budget,
                             * as in vLLM); with it >= max_seqs a prompt no longer than max_batched_tokens is
                             * prefilled in one step however many requests decode beside it */
    int decode_pause_ms;    /* prefill first: the longest the running decodes wait while prompts are prefilled
                             * (> 0; 0: decodes run in every step) */
    double (*clock_s)(void *user);   /* seconds for decode_pause_ms (NULL: qr_time_s); tests pass a fake */
    void *clock_user;
};

/* one scheduled piece of work: tokens [start, start + n_new) of req */
struct qr_sched_item {
    struct qr_sched_req *req;
    int start;              /* n_computed before the step (first position) */
    int n_new;
    bool needs_logits;      /* the chunk reaches the end of the known tokens: sample a new one */
    bool from_decode_budget;/* its token came out of decode_budget (internal) */
};

struct qr_sched_out {
    struct qr_sched_item *items;   /* decodes first, then prompt chunks (points into the scheduler) */
    int n_items;
    int n_tokens;                  /* sum of n_new */
    int n_decode;                  /* items with n_new == 1 and needs_logits */
    int n_preempted;               /* preemptions in this step */
    int max_blocks;                /* longest block table among the items */
    int n_paused;                  /* running decodes left out of this step (prefill first) */
};

struct qr_sched;

qr_status qr_sched_create(const struct qr_sched_opts *o, struct qr_kv_pool *pool, struct qr_sched **out);
/* frees the scheduler and every request still in it (their blocks go back to the pool) */
void qr_sched_destroy(struct qr_sched *s);

/* Whether a request can ever run: n_prompt >= 1, max_tokens >= 1, prompt +
 * max_tokens within max_len and within the pool.  QR_E_INVALID_ARG with a
 * reason in qr_last_error() otherwise.  Reads only constants (any thread). */
qr_status qr_sched_check_fit(const struct qr_sched *s, int n_prompt, int max_tokens);

/* Adds a waiting request (tokens copied); *out stays owned by the scheduler
 * until qr_sched_finish. */
qr_status qr_sched_add(struct qr_sched *s, uint64_t id, const int32_t *prompt, int n_prompt, int max_tokens,
                       void *user, struct qr_sched_req **out);

/* Plans one step.  out->items stay valid until the next schedule call. */
qr_status qr_sched_schedule(struct qr_sched *s, struct qr_sched_out *out);
/* After the step's forward pass succeeded: advances n_computed of each item
 * and registers newly full blocks in the prefix cache. */
void qr_sched_update(struct qr_sched *s, const struct qr_sched_out *out);
/* Appends a sampled token to a request (after update). */
qr_status qr_sched_append(struct qr_sched *s, struct qr_sched_req *r, int32_t token);
/* Removes a request (finished, cancelled or failed) and frees its blocks and
 * storage; r is invalid afterwards, and so is any qr_sched_out naming it:
 * finish requests after you are done with the step's items. */
void qr_sched_finish(struct qr_sched *s, struct qr_sched_req *r);
/* Preempts r now (frees blocks, back to the front of the queue). */
void qr_sched_preempt(struct qr_sched *s, struct qr_sched_req *r);

int qr_sched_num_waiting(const struct qr_sched *s);
int qr_sched_num_running(const struct qr_sched *s);
uint64_t qr_sched_num_preemptions(const struct qr_sched *s);
uint64_t qr_sched_num_steps(const struct qr_sched *s);
/* steps that left running decodes out (prefill first) */
uint64_t qr_sched_num_paused_steps(const struct qr_sched *s);
/* the i-th waiting / running request (in queue / admission order) */
struct qr_sched_req *qr_sched_waiting(const struct qr_sched *s, int i);
struct qr_sched_req *qr_sched_running(const struct qr_sched *s, int i);
struct qr_kv_pool *qr_sched_pool(const struct qr_sched *s);

#ifdef __cplusplus
}
#endif
#endif
