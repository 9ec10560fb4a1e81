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
/* forget generated tokens (preemption/recompute keeps the same RNG stream) */
void qr_sampler_reset(struct qr_sampler *s);

#ifdef __cplusplus
}
#endif
#endif
