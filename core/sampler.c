/* sampler.c - token sampling over one row of logits.
 *
 * Order (transformers' generate): repetition penalty (HF/CTRL, over prompt +
 * output: positive logits divided, negative multiplied), presence/frequency
 * penalties (OpenAI, over output), then greedy argmax, or temperature, top-k,
 * top-p, min-p and a draw from the renormalised distribution.  The RNG is
 * xoshiro256** seeded through splitmix64: the same seed gives the same tokens.
 */
#define _GNU_SOURCE
#include "qrun/qr_sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct topk_cand {
    float v;
    int32_t id;
};

struct qr_sampler {
    struct qr_sampler_params p;
    int vocab;
    uint64_t rng[4];
    uint8_t *in_prompt;        /* (vocab) 1 if the token is in the prompt */
    int32_t *prompt_uniq;      /* unique prompt ids */
    int n_prompt_uniq;
    uint8_t *in_gen;           /* (vocab) 1 if generated */
    int32_t *gen;              /* generated ids in order */
    int n_gen, cap_gen;
    int32_t *gen_uniq;
    int n_gen_uniq, cap_gen_uniq;
    uint32_t *gen_count;       /* (vocab) occurrences in gen, with a frequency penalty only (qr_sampler_sample_topk) */
    /* candidates (lazily allocated to the needed size) */
    int32_t *cand_id;
    int cap_cand;
    float *cand_v;         /* the sorted candidates' values */
    int cap_cand_v;
    struct topk_cand *kc;      /* qr_sampler_sample_topk: the candidates, sorted */
    int cap_kc;
    float *raw;                /* (vocab) copy of the raw row, only when logprobs are asked for */
};

/* ---- RNG ---- */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(uint64_t *s)
{
    uint64_t r = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

/* uniform in [0, 1) */
static double rng_uniform(uint64_t *s) { return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0); }

/* ---- params ---- */
qr_status qr_sampler_params_check(const struct qr_sampler_params *p, int vocab)
{
    if (!p)
        return qr_set_error(QR_E_INVALID_ARG, "sampler: no parameters");
    if (vocab <= 0)
        return qr_set_error(QR_E_INVALID_ARG, "sampler: vocab size %d must be positive", vocab);
    if (!isfinite(p->temperature) || p->temperature < 0 || p->temperature > 100)
        return qr_set_error(QR_E_INVALID_ARG, "temperature %g must be in [0, 100]", (double)p->temperature);
    if (p->top_k < 0)
        return qr_set_error(QR_E_INVALID_ARG, "top_k %d must be >= 0 (0 = off)", p->top_k);
    if (!isfinite(p->top_p) || p->top_p <= 0 || p->top_p > 1)
        return qr_set_error(QR_E_INVALID_ARG, "top_p %g must be in (0, 1]", (double)p->top_p);
    if (!isfinite(p->min_p) || p->min_p < 0 || p->min_p > 1)
        return qr_set_error(QR_E_INVALID_ARG, "min_p %g must be in [0, 1]", (double)p->min_p);
    if (!isfinite(p->repetition_penalty) || p->repetition_penalty <= 0 || p->repetition_penalty > 100)
        return qr_set_error(QR_E_INVALID_ARG, "repetition_penalty %g must be in (0, 100]",
                            (double)p->repetition_penalty);
    if (!isfinite(p->presence_penalty) || p->presence_penalty < -2 || p->presence_penalty > 2)
        return qr_set_error(QR_E_INVALID_ARG, "presence_penalty %g must be in [-2, 2]", (double)p->presence_penalty);
    if (!isfinite(p->frequency_penalty) || p->frequency_penalty < -2 || p->frequency_penalty > 2)
        return qr_set_error(QR_E_INVALID_ARG, "frequency_penalty %g must be in [-2, 2]",
                            (double)p->frequency_penalty);
    return QR_OK;
}

qr_status qr_sampler_create(const struct qr_sampler_params *p, int vocab, struct qr_sampler **out)
{
    qr_status st = qr_sampler_params_check(p, vocab);
    if (st != QR_OK)
        return st;
    struct qr_sampler *s = calloc(1, sizeof(*s));
    if (!s)
        return qr_set_error(QR_E_OOM_HOST, "sampler: out of memory");
    s->p = *p;
    s->vocab = vocab;
    uint64_t x = p->seed;
    for (int i = 0; i < 4; i++)
        s->rng[i] = splitmix64(&x);
    s->in_prompt = calloc((size_t)vocab, 1);
    s->in_gen = calloc((size_t)vocab, 1);
    if (p->frequency_penalty != 0)
        s->gen_count = calloc((size_t)vocab, sizeof *s->gen_count);
    if (!s->in_prompt || !s->in_gen || (p->frequency_penalty != 0 && !s->gen_count)) {
        qr_sampler_free(s);
        return qr_set_error(QR_E_OOM_HOST, "sampler: out of memory");
    }
    *out = s;
    return QR_OK;
}

void qr_sampler_free(struct qr_sampler *s)
{
    if (!s)
        return;
    free(s->in_prompt);
    free(s->prompt_uniq);
    free(s->in_gen);
    free(s->gen);
    free(s->gen_uniq);
    free(s->gen_count);
    free(s->cand_id);
    free(s->cand_v);
    free(s->kc);
    free(s->raw);
    free(s);
}

void qr_sampler_set_prompt(struct qr_sampler *s, const int32_t *ids, int n)
{
    for (int i = 0; i < s->n_prompt_uniq; i++)
        s->in_prompt[s->prompt_uniq[i]] = 0;
    s->n_prompt_uniq = 0;
    free(s->prompt_uniq);
    s->prompt_uniq = NULL;
    if (n <= 0 || !ids)
        return;
    s->prompt_uniq = malloc((size_t)n * sizeof(int32_t));
    if (!s->prompt_uniq)
        return; /* the penalty then ignores the prompt; logged */
    for (int i = 0; i < n; i++) {
        int32_t t = ids[i];
        if (t < 0 || t >= s->vocab || s->in_prompt[t])
            continue;
        s->in_prompt[t] = 1;
        s->prompt_uniq[s->n_prompt_uniq++] = t;
    }
}

void qr_sampler_reset(struct qr_sampler *s)
{
    for (int i = 0; i < s->n_gen_uniq; i++) {
        s->in_gen[s->gen_uniq[i]] = 0;
        if (s->gen_count)
            s->gen_count[s->gen_uniq[i]] = 0;
    }
    s->n_gen_uniq = 0;
    s->n_gen = 0;
}

static int grow(void **p, int *cap, int need, size_t elem)
{
    if (need <= *cap)
        return 0;
    int nc = *cap ? *cap : 64;
    while (nc < need)
        nc *= 2;
    void *q = realloc(*p, (size_t)nc * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = nc;
    return 0;
}

static void record(struct qr_sampler *s, int32_t t)
{
    if (t < 0 || t >= s->vocab)
        return;
    if (grow((void **)&s->gen, &s->cap_gen, s->n_gen + 1, sizeof(int32_t)) == 0) {
        s->gen[s->n_gen++] = t;
        if (s->gen_count)
            s->gen_count[t]++;
    }
    if (!s->in_gen[t] && grow((void **)&s->gen_uniq, &s->cap_gen_uniq, s->n_gen_uniq + 1, sizeof(int32_t)) == 0) {
        s->in_gen[t] = 1;
        s->gen_uniq[s->n_gen_uniq++] = t;
    }
}

static void apply_penalties(struct qr_sampler *s, float *x)
{
    float rp = s->p.repetition_penalty;
    if (rp != 1.0f) {
        for (int i = 0; i < s->n_prompt_uniq; i++) {
            float *l = &x[s->prompt_uniq[i]];
            *l = *l > 0 ? *l / rp : *l * rp;
        }
        for (int i = 0; i < s->n_gen_uniq; i++) {
            int32_t t = s->gen_uniq[i];
            if (s->in_prompt[t])
                continue;
            x[t] = x[t] > 0 ? x[t] / rp : x[t] * rp;
        }
    }
    if (s->p.presence_penalty != 0)
        for (int i = 0; i < s->n_gen_uniq; i++)
            x[s->gen_uniq[i]] -= s->p.presence_penalty;
    if (s->p.frequency_penalty != 0)
        for (int i = 0; i < s->n_gen; i++)
            x[s->gen[i]] -= s->p.frequency_penalty;
}

static int32_t argmax_row(const float *x, int n)
{
    int32_t best = 0;
    float bv = -INFINITY;
    for (int i = 0; i < n; i++)
        if (x[i] > bv) {
            bv = x[i];
            best = i;
        }
    return best;
}

/* descending by value, ascending id on ties */
static int cand_cmp(const void *a, const void *b, void *vals)
{
    const float *v = vals;
    int32_t ia = *(const int32_t *)a, ib = *(const int32_t *)b;
    if (v[ia] > v[ib])
        return -1;
    if (v[ia] < v[ib])
        return 1;
    return ia < ib ? -1 : ia > ib;
}

/* keep the k largest of x (ids into cand_id), sorted descending: a min-heap of size k */
static void heap_sift(int32_t *h, int n, int i, const float *x)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        /* "smaller" = lower value, or equal value and higher id (worse) */
        if (l < n && (x[h[l]] < x[h[m]] || (x[h[l]] == x[h[m]] && h[l] > h[m])))
            m = l;
        if (r < n && (x[h[r]] < x[h[m]] || (x[h[r]] == x[h[m]] && h[r] > h[m])))
            m = r;
        if (m == i)
            return;
        int32_t t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

/* top-p, min-p and the draw over n candidates sorted by (value desc, id asc); v are temperature-scaled logits and
 * mx the row's largest (v[0]) */
static int32_t finish_cands(struct qr_sampler *s, const int32_t *id, const float *v, int n, float mx)
{
    float top_p = s->p.top_p, min_p = s->p.min_p;
    /* softmax over candidates, then top-p, then min-p */
    double z = 0;
    for (int i = 0; i < n; i++)
        z += exp((double)(v[i] - mx));
    if (top_p < 1.0f) {
        double cum = 0;
        int keep = n;
        for (int i = 0; i < n; i++) {
            cum += exp((double)(v[i] - mx)) / z;
            if (cum >= top_p) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
    }
    float top = v[0];
    if (min_p > 0) {
        float thr = top + logf(min_p);
        int keep = 1;
        while (keep < n && v[keep] >= thr)
            keep++;
        n = keep;
    }
    double tot = 0;
    for (int i = 0; i < n; i++)
        tot += exp((double)(v[i] - mx));
    double u = rng_uniform(s->rng) * tot, cum = 0;
    for (int i = 0; i < n; i++) {
        cum += exp((double)(v[i] - mx));
        if (u < cum)
            return id[i];
    }
    return id[n - 1];
}

static int32_t sample_row(struct qr_sampler *s, float *x)
{
    int V = s->vocab;
    float inv_t = 1.0f / s->p.temperature;
    float mx = -INFINITY;
    for (int i = 0; i < V; i++) {
        float v = x[i];
        v = isnan(v) ? -INFINITY : v * inv_t;
        x[i] = v;
        if (v > mx)
            mx = v;
    }
    if (mx == -INFINITY)
        return 0;
    int k = s->p.top_k > 0 && s->p.top_k < V ? s->p.top_k : 0;
    float top_p = s->p.top_p, min_p = s->p.min_p;
    int n = 0;
    if (k > 0) {
        if (grow((void **)&s->cand_id, &s->cap_cand, k, sizeof(int32_t)))
            return argmax_row(x, V);
        int32_t *h = s->cand_id;
        for (int i = 0; i < V; i++) {
            if (n < k) {
                h[n++] = i;
                if (n == k)
                    for (int j = k / 2 - 1; j >= 0; j--)
                        heap_sift(h, k, j, x);
            } else if (x[i] > x[h[0]]) {
                h[0] = i;
                heap_sift(h, k, 0, x);
            }
        }
    } else if (top_p < 1.0f) {
        /* tokens with p < (1 - top_p) / V carry less than 1 - top_p together,
         * so the nucleus lies among the others: sort only those */
        double z = 0;
        for (int i = 0; i < V; i++)
            z += exp((double)(x[i] - mx));
        float cut = (float)(mx + log((1.0 - top_p) / V * z));
        if (grow((void **)&s->cand_id, &s->cap_cand, V, sizeof(int32_t)))
            return argmax_row(x, V);
        for (int i = 0; i < V; i++)
            if (x[i] >= cut)
                s->cand_id[n++] = i;
    }
    if (n > 0) {
        qsort_r(s->cand_id, (size_t)n, sizeof(int32_t), cand_cmp, x);
        if (grow((void **)&s->cand_v, &s->cap_cand_v, n, sizeof(float)))
            return s->cand_id[0];
        for (int i = 0; i < n; i++)
            s->cand_v[i] = x[s->cand_id[i]];
        return finish_cands(s, s->cand_id, s->cand_v, n, mx);
    }
    /* whole vocabulary (min-p alone is a threshold on the logit) */
    float thr = min_p > 0 ? mx + logf(min_p) : -INFINITY;
    double tot = 0;
    for (int i = 0; i < V; i++)
        if (x[i] >= thr)
            tot += exp((double)(x[i] - mx));
    double u = rng_uniform(s->rng) * tot, cum = 0;
    int32_t last = 0;
    for (int i = 0; i < V; i++) {
        if (x[i] < thr || x[i] == -INFINITY)
            continue;
        cum += exp((double)(x[i] - mx));
        last = i;
        if (u < cum)
            return i;
    }
    return last;
}

int32_t qr_sampler_sample(struct qr_sampler *s, float *logits, float *logprob)
{
    int V = s->vocab;
    float raw_mx = -INFINITY;
    double raw_z = 0;
    if (logprob) {
        *logprob = NAN;
        if (!s->raw && !(s->raw = malloc((size_t)V * sizeof(float))))
            logprob = NULL;
    }
    if (logprob) {
        memcpy(s->raw, logits, (size_t)V * sizeof(float));
        for (int i = 0; i < V; i++)
            if (logits[i] > raw_mx)
                raw_mx = logits[i];
        for (int i = 0; i < V; i++)
            if (!isnan(logits[i]))
                raw_z += exp((double)(logits[i] - raw_mx));
    }
    apply_penalties(s, logits);
    int32_t t = s->p.temperature == 0 ? argmax_row(logits, V) : sample_row(s, logits);
    record(s, t);
    if (logprob && raw_z > 0)
        *logprob = (float)((double)(s->raw[t] - raw_mx) - log(raw_z));
    return t;
}

bool qr_sampler_topk_ok(const struct qr_sampler_params *p, int vocab, int kmax)
{
    /* 1 / temperature must be finite: the device op refuses other scales (a denormal temperature overflows it).
     * Penalties that can only lower a logit (repetition >= 1, presence and frequency >= 0) are applied to the
     * candidates here; a raising one could lift a token from outside the candidates */
    return p->temperature > 0 && isfinite(1.0f / p->temperature) && p->top_k >= 1 && p->top_k <= kmax &&
           p->top_k < vocab && p->repetition_penalty >= 1.0f && p->presence_penalty >= 0 &&
           p->frequency_penalty >= 0;
}

bool qr_sampler_topk_raw(const struct qr_sampler_params *p)
{
    return p->repetition_penalty != 1.0f || p->presence_penalty != 0 || p->frequency_penalty != 0;
}

/* descending by value, ascending id on ties (cand_cmp's order) */
static int kc_cmp(const void *a, const void *b)
{
    const struct topk_cand *x = a, *y = b;
    if (x->v > y->v)
        return -1;
    if (x->v < y->v)
        return 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* candidate t's logit with apply_penalties' float operations, in its order (repetition once for a prompt or
 * generated token, presence once for a generated one, frequency once per occurrence), then sample_row's scale */
static float penalised(const struct qr_sampler *s, int32_t t, float x, float inv_t)
{
    const float rp = s->p.repetition_penalty, pp = s->p.presence_penalty, fp = s->p.frequency_penalty;
    if (rp != 1.0f && (s->in_prompt[t] || s->in_gen[t]))
        x = x > 0 ? x / rp : x * rp;
    if (pp != 0 && s->in_gen[t])
        x -= pp;
    if (fp != 0)
        for (uint32_t c = 0; c < s->gen_count[t]; c++)
            x -= fp;
    return isnan(x) ? -INFINITY : x * inv_t;
}

/* c into the k best so far (kc[0 .. *m - 1], kc_cmp's order), keeping at most k */
static void kbest_insert(struct topk_cand *kc, int *m, int k, struct topk_cand c)
{
    if (*m == k && kc_cmp(&c, &kc[k - 1]) >= 0)
        return;
    int j = *m < k ? (*m)++ : k - 1;
    while (j > 0 && kc_cmp(&c, &kc[j - 1]) < 0) {
        kc[j] = kc[j - 1];
        j--;
    }
    kc[j] = c;
}

int32_t qr_sampler_sample_topk(struct qr_sampler *s, const int32_t *ids, const float *vals, int n)
{
    if (!s || !ids || !vals || n < 1 || !qr_sampler_topk_ok(&s->p, s->vocab, n))
        return -1;
    if (grow((void **)&s->kc, &s->cap_kc, n, sizeof *s->kc) ||
        grow((void **)&s->cand_id, &s->cap_cand, n, sizeof(int32_t)) ||
        grow((void **)&s->cand_v, &s->cap_cand_v, n, sizeof(float)))
        return -1;
    const int k = s->p.top_k;
    /* ids in range, the smallest value, and whether the candidates come ranked (value descending, NaN as -inf,
     * id ascending on ties), as every backend's top-k op writes them: then the k best are found without a sort */
    bool ranked = true;
    float xmin = INFINITY, prev = INFINITY;
    for (int i = 0; i < n; i++) {
        const int32_t t = ids[i];
        if (t < 0 || t >= s->vocab)
            return -1;
        const float x = isnan(vals[i]) ? -INFINITY : vals[i];
        if (x < xmin)
            xmin = x;
        if (i > 0 && !(x < prev || (x == prev && t > ids[i - 1])))
            ranked = false;
        prev = x;
    }
    if (qr_sampler_topk_raw(&s->p)) {
        /* raw candidates (scale 1): the penalties, then the scale.  Ranked, a candidate whose raw scaled value is
         * below the k-th best so far ends the walk: penalties only lower a logit and the scale keeps order, so
         * neither it nor any after it can reach the k best (most rows touch ~k candidates, not all n) */
        const float inv_t = 1.0f / s->p.temperature;
        int m = 0;
        if (ranked) {
            for (int i = 0; i < n; i++) {
                const float x = isnan(vals[i]) ? -INFINITY : vals[i];
                if (m == k && x * inv_t < s->kc[k - 1].v)
                    break;
                kbest_insert(s->kc, &m, k, (struct topk_cand){penalised(s, ids[i], x, inv_t), ids[i]});
            }
        } else {
            for (int i = 0; i < n; i++)
                s->kc[i] = (struct topk_cand){penalised(s, ids[i], isnan(vals[i]) ? -INFINITY : vals[i], inv_t),
                                              ids[i]};
            qsort(s->kc, (size_t)n, sizeof *s->kc, kc_cmp);
        }
        /* every token outside the candidates had a logit <= xmin and the penalties only lower it: the k-th
         * candidate must rank strictly above xmin's scale, or one of them could be among the k best */
        if (n < s->vocab && !(s->kc[k - 1].v > xmin * inv_t))
            return QR_SAMPLER_NEED_ROW;
    } else {
        const int m = ranked ? k : n;
        for (int i = 0; i < m; i++)
            s->kc[i] = (struct topk_cand){isnan(vals[i]) ? -INFINITY : vals[i], ids[i]};
        if (!ranked)
            qsort(s->kc, (size_t)n, sizeof *s->kc, kc_cmp);
    }
    for (int i = 0; i < k; i++) {
        s->cand_id[i] = s->kc[i].id;
        s->cand_v[i] = s->kc[i].v;
    }
    /* sample_row: a row of -inf (or NaN) gives token 0 without a draw */
    int32_t t = s->cand_v[0] == -INFINITY ? 0 : finish_cands(s, s->cand_id, s->cand_v, k, s->cand_v[0]);
    record(s, t);
    return t;
}
