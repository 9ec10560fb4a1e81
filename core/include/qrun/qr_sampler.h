/* qr_sampler.h - token sampling over one row of logits. */
#ifndef QRUN_QR_SAMPLER_H
#define QRUN_QR_SAMPLER_H

#include "qr_types.h"

#ifdef __cplusplus
extern "C" {
#endif

struct qr_sampler_params {
    float temperature;         /* 0 = greedy */
    int top_k;                 /* 0 = off */
    float top_p;               /* 1 = off */
    float min_p;               /* 0 = off */
    float repetition_penalty;  /* 1 = off; over prompt + output (HF/CTRL) */
    float presence_penalty;    /* 0 = off; over output (OpenAI) */
    float frequency_penalty;   /* 0 = off; over output (OpenAI) */
    uint64_t seed;
};

/* validates ranges (NaN, negative temperature, top_p outside (0,1], ...) */
qr_status qr_sampler_params_check(const struct qr_sampler_params *p, int vocab);

struct qr_sampler;
qr_status qr_sampler_create(const struct qr_sampler_params *p, int vocab, struct qr_sampler **out);
void qr_sampler_free(struct qr_sampler *s);
/* tokens that count for the repetition penalty (the prompt) */
void qr_sampler_set_prompt(struct qr_sampler *s, const int32_t *ids, int n);
/* sample from logits (modified in place); records the token as generated.
 * logprob: log-softmax of the chosen token under the raw logits (may be NULL). */
int32_t qr_sampler_sample(struct qr_sampler *s, float *logits, float *logprob);
/* The same draw from a row's best candidates, for a sampler that qr_sampler_topk_ok accepts with kmax <= n: ids and
 * vals of the n best by (value descending, id ascending), in any order, as a device top-k returns them, where the
 * values are the logits times 1 / temperature in float (NaN as -inf) -- or the raw logits (scale 1) for a sampler
 * with penalties (qr_sampler_topk_raw), which are then applied here.  Gives the token qr_sampler_sample gives on the
 * full row and advances the RNG alike (records the token).  -1 if the sampler does not qualify or n < 1;
 * QR_SAMPLER_NEED_ROW (nothing drawn or recorded) if with penalties the candidates cannot decide it: sample the
 * whole row with qr_sampler_sample instead. */
#define QR_SAMPLER_NEED_ROW (-2)
int32_t qr_sampler_sample_topk(struct qr_sampler *s, const int32_t *ids, const float *vals, int n);
/* whether qr_sampler_sample_topk can stand in for qr_sampler_sample with kmax candidates: temperature > 0 with a
 * finite inverse, 1 <= top_k <= kmax, top_k < vocab, penalties that only lower logits (repetition >= 1, presence
 * and frequency >= 0) */
bool qr_sampler_topk_ok(const struct qr_sampler_params *p, int vocab, int kmax);
/* whether its candidates must come unscaled (penalties to apply first) */
bool qr_sampler_topk_raw(const struct qr_sampler_params *p);
/* forget generated tokens (preemption/recompute keeps the same RNG stream) */
void qr_sampler_reset(struct qr_sampler *s);

#ifdef __cplusplus
}
#endif
#endif
