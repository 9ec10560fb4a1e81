/* test_sampler.c - qr_sampler: parameter checks, greedy, seeded sampling and
 * its distribution, top-k / top-p / min-p truncation, repetition (HF: over the
 * prompt and the output), presence and frequency (OpenAI: over the output)
 * penalties, logprobs, reset; sampling from a device top-k's candidates. */
#include "qrun/qr_sampler.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static struct qr_sampler_params defaults(void)
{
    return (struct qr_sampler_params){.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0,
                                      .repetition_penalty = 1.0f, .seed = 42};
}

static void test_params(void)
{
    struct qr_sampler_params p = defaults();
    CHECK(qr_sampler_params_check(&p, 10) == QR_OK);
    CHECK(qr_sampler_params_check(&p, 0) == QR_E_INVALID_ARG);
    p.temperature = NAN;
    CHECK(qr_sampler_params_check(&p, 10) == QR_E_INVALID_ARG);
    p.temperature = -0.5f;
    CHECK(qr_sampler_params_check(&p, 10) == QR_E_INVALID_ARG);
    p = defaults();
    p.temperature = 0;
    CHECK(qr_sampler_params_check(&p, 10) == QR_OK);
    p = defaults();
    p.top_p = 0;
    CHECK(qr_sampler_params_check(&p, 10) == QR_E_INVALID_ARG);
    p.top_p = 1.5f;
    CHECK(qr_sampler_params_check(&p, 10) == QR_E_INVALID_ARG);
    p.top_p = INFINITY;
    CHECK(qr_sampler_params_check(&p, 10) == QR_E_INVALID_ARG);
    p = defaults();
    p.top_k = -1;
    CHECK(qr_sampler_params_check(&p, 10) == QR_E_INVALID_ARG);
    p = defaults();
    p.min_p = -0.1f;
    CHECK(qr_sampler_params_check(&p, 10) == QR_E_INVALID_ARG);
    p.min_p = 1.1f;
    CHECK(qr_sampler_params_check(&p, 10) == QR_E_INVALID_ARG);
    p = defaults();
    p.repetition_penalty = 0;
    CHECK(qr_sampler_params_check(&p, 10) == QR_E_INVALID_ARG);
    p.repetition_penalty = NAN;
    CHECK(qr_sampler_params_check(&p, 10) == QR_E_INVALID_ARG);
    p = defaults();
    p.presence_penalty = 2.5f;
    CHECK(qr_sampler_params_check(&p, 10) == QR_E_INVALID_ARG);
    p = defaults();
    p.frequency_penalty = -3;
    CHECK(qr_sampler_params_check(&p, 10) == QR_E_INVALID_ARG);
    p.frequency_penalty = NAN;
    CHECK(qr_sampler_params_check(&p, 10) == QR_E_INVALID_ARG);
    struct qr_sampler *s = NULL;
    CHECK(qr_sampler_create(&p, 10, &s) == QR_E_INVALID_ARG && s == NULL);
}

static int32_t sample1(struct qr_sampler *s, const float *src, int n, float *lp)
{
    float buf[2048];
    memcpy(buf, src, sizeof(float) * (size_t)n);
    return qr_sampler_sample(s, buf, lp);
}

static void test_greedy(void)
{
    struct qr_sampler_params p = defaults();
    p.temperature = 0;
    struct qr_sampler *s;
    CHECK(qr_sampler_create(&p, 5, &s) == QR_OK);
    float x[5] = {0.1f, 3.0f, -1.0f, 3.0f, 2.9f};
    float lp = 0;
    CHECK(sample1(s, x, 5, &lp) == 1); /* lowest index on ties */
    double z = 0;
    for (int i = 0; i < 5; i++)
        z += exp(x[i]);
    CHECK(fabs(lp - (3.0 - log(z))) < 1e-5);
    float y[5] = {NAN, -INFINITY, 1.0f, NAN, 0.5f};
    CHECK(sample1(s, y, 5, NULL) == 2);
    qr_sampler_free(s);
}

/* frequencies of n draws of a 4-token distribution */
static void draw(const struct qr_sampler_params *p, const float *x, int n, double *freq)
{
    struct qr_sampler *s;
    memset(freq, 0, sizeof(double) * 4);
    if (qr_sampler_create(p, 4, &s) != QR_OK) {
        CHECK(false);
        return;
    }
    for (int i = 0; i < n; i++) {
        int32_t t = sample1(s, x, 4, NULL);
        if (t >= 0 && t < 4)
            freq[t] += 1.0 / n;
        qr_sampler_reset(s);
    }
    qr_sampler_free(s);
}

static void test_distribution(void)
{
    float x[4] = {logf(0.1f), logf(0.2f), logf(0.3f), logf(0.4f)};
    double f[4];
    struct qr_sampler_params p = defaults();
    const int N = 40000;
    draw(&p, x, N, f);
    CHECKF(fabs(f[0] - 0.1) < 0.01 && fabs(f[1] - 0.2) < 0.01 && fabs(f[2] - 0.3) < 0.01 && fabs(f[3] - 0.4) < 0.01,
           "plain: %.3f %.3f %.3f %.3f", f[0], f[1], f[2], f[3]);
    /* temperature 0.5 squares the probabilities: 1,4,9,16 over 30 */
    p.temperature = 0.5f;
    draw(&p, x, N, f);
    CHECKF(fabs(f[0] - 1 / 30.0) < 0.01 && fabs(f[3] - 16 / 30.0) < 0.01, "temp 0.5: %.3f %.3f", f[0], f[3]);
    /* top-k 2: tokens 2 and 3 in ratio 3:4 */
    p = defaults();
    p.top_k = 2;
    draw(&p, x, N, f);
    CHECKF(f[0] == 0 && f[1] == 0 && fabs(f[2] - 3 / 7.0) < 0.01, "top-k: %.3f %.3f %.3f", f[0], f[1], f[2]);
    /* top-p 0.5: 0.4 + 0.3 reaches it -> {3, 2}; 0.35 -> {3} */
    p = defaults();
    p.top_p = 0.5f;
    draw(&p, x, N, f);
    CHECKF(f[0] == 0 && f[1] == 0 && fabs(f[3] - 4 / 7.0) < 0.01, "top-p 0.5: %.3f %.3f %.3f", f[0], f[1], f[3]);
    p.top_p = 0.35f;
    draw(&p, x, 1000, f);
    CHECKF(f[3] > 0.9999, "top-p 0.35: %.3f", f[3]);
    /* min-p 0.6: keeps p >= 0.24 -> {2, 3} */
    p = defaults();
    p.min_p = 0.6f;
    draw(&p, x, N, f);
    CHECKF(f[0] == 0 && f[1] == 0 && fabs(f[2] - 3 / 7.0) < 0.01, "min-p: %.3f %.3f %.3f", f[0], f[1], f[2]);
    /* top-k 3 then top-p 0.6 over the renormalised 3 (0.2/0.9, 0.3/0.9, 0.4/0.9): {3, 2} */
    p = defaults();
    p.top_k = 3;
    p.top_p = 0.6f;
    draw(&p, x, N, f);
    CHECKF(f[0] == 0 && f[1] == 0 && f[2] > 0.3, "top-k + top-p: %.3f %.3f %.3f", f[0], f[1], f[2]);
}

static void test_seed(void)
{
    enum { V = 1000, N = 64 };
    float *x = malloc(sizeof(float) * V);
    uint32_t r = 7;
    for (int i = 0; i < V; i++) {
        r = r * 1664525u + 1013904223u;
        x[i] = (float)(r >> 8) / (float)(1u << 24) * 6.0f;
    }
    int32_t a[N], b[N], c[N];
    struct qr_sampler_params p = defaults();
    p.top_k = 50;
    p.top_p = 0.9f;
    for (int run = 0; run < 3; run++) {
        p.seed = run == 2 ? 43 : 42;
        struct qr_sampler *s;
        CHECK(qr_sampler_create(&p, V, &s) == QR_OK);
        int32_t *o = run == 0 ? a : run == 1 ? b : c;
        for (int i = 0; i < N; i++)
            o[i] = sample1(s, x, V, NULL);
        qr_sampler_free(s);
    }
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(memcmp(a, c, sizeof a) != 0);
    /* the nucleus over a large vocabulary (top-p alone): every draw lies in it */
    p = defaults();
    p.top_p = 0.3f;
    struct qr_sampler *s;
    CHECK(qr_sampler_create(&p, V, &s) == QR_OK);
    /* brute force nucleus */
    int *ord = malloc(sizeof(int) * V);
    for (int i = 0; i < V; i++)
        ord[i] = i;
    for (int i = 0; i < V; i++)
        for (int j = i + 1; j < V; j++)
            if (x[ord[j]] > x[ord[i]]) {
                int t = ord[i];
                ord[i] = ord[j];
                ord[j] = t;
            }
    double z = 0, cum = 0;
    for (int i = 0; i < V; i++)
        z += exp(x[i]);
    char *in = calloc(V, 1);
    for (int i = 0; i < V; i++) {
        in[ord[i]] = 1;
        cum += exp(x[ord[i]]) / z;
        if (cum >= 0.3)
            break;
    }
    int outside = 0, distinct = 0;
    char *seen = calloc(V, 1);
    for (int i = 0; i < 2000; i++) {
        int32_t t = sample1(s, x, V, NULL);
        if (t < 0 || t >= V || !in[t])
            outside++;
        else if (!seen[t]) {
            seen[t] = 1;
            distinct++;
        }
    }
    CHECKF(outside == 0 && distinct > 1, "top-p over 1000: %d outside, %d distinct", outside, distinct);
    qr_sampler_free(s);
    free(seen);
    free(in);
    free(ord);
    free(x);
}

static void test_penalties(void)
{
    struct qr_sampler_params p = defaults();
    p.temperature = 0;
    p.repetition_penalty = 2.0f;
    struct qr_sampler *s;
    CHECK(qr_sampler_create(&p, 4, &s) == QR_OK);
    int32_t prompt[3] = {0, 1, 0};
    qr_sampler_set_prompt(s, prompt, 3);
    /* prompt tokens: positive logits halved, negative doubled (once, not per occurrence) */
    float x[4] = {2.0f, -1.0f, 1.5f, -3.0f};
    CHECK(qr_sampler_sample(s, x, NULL) == 2);
    CHECK(x[0] == 1.0f && x[1] == -2.0f && x[2] == 1.5f && x[3] == -3.0f);
    /* the output counts too: token 2 is now penalised */
    float y[4] = {1.6f, -1.0f, 1.5f, 0.9f};
    CHECK(qr_sampler_sample(s, y, NULL) == 3);
    CHECK(y[2] == 0.75f);
    qr_sampler_free(s);

    /* frequency: each occurrence subtracts; presence: once per distinct token */
    p = defaults();
    p.temperature = 0;
    p.frequency_penalty = 0.2f;
    CHECK(qr_sampler_create(&p, 2, &s) == QR_OK);
    const float base[2] = {1.0f, 0.7f};
    int32_t seq[6];
    for (int i = 0; i < 6; i++)
        seq[i] = sample1(s, base, 2, NULL);
    /* counts (c0, c1): 1.0-0.2c0 vs 0.7-0.2c1 -> 0 0 1 0 1 0 */
    CHECKF(seq[0] == 0 && seq[1] == 0 && seq[2] == 1 && seq[3] == 0 && seq[4] == 1 && seq[5] == 0,
           "frequency: %d %d %d %d %d %d", seq[0], seq[1], seq[2], seq[3], seq[4], seq[5]);
    qr_sampler_reset(s);
    CHECK(sample1(s, base, 2, NULL) == 0);
    CHECK(sample1(s, base, 2, NULL) == 0); /* reset forgot the earlier counts */
    qr_sampler_free(s);

    p = defaults();
    p.temperature = 0;
    p.presence_penalty = 0.5f;
    CHECK(qr_sampler_create(&p, 3, &s) == QR_OK);
    int32_t pr[1] = {1};
    qr_sampler_set_prompt(s, pr, 1); /* the prompt does not count for presence */
    const float b3[3] = {1.0f, 0.8f, 0.3f};
    CHECK(sample1(s, b3, 3, NULL) == 0);
    CHECK(sample1(s, b3, 3, NULL) == 1);
    CHECK(sample1(s, b3, 3, NULL) == 0); /* 0.5 vs 0.3 vs 0.3: presence does not grow */
    qr_sampler_free(s);
}

static void test_logprob(void)
{
    struct qr_sampler_params p = defaults();
    p.temperature = 0.7f;
    p.repetition_penalty = 1.3f;
    struct qr_sampler *s;
    CHECK(qr_sampler_create(&p, 3, &s) == QR_OK);
    const float x[3] = {0.5f, 1.5f, -0.5f};
    float lp = 0;
    int32_t t = sample1(s, x, 3, &lp);
    double z = exp(0.5) + exp(1.5) + exp(-0.5);
    CHECKF(t >= 0 && t < 3 && fabs(lp - (x[t] - log(z))) < 1e-5, "logprob %g of token %d", lp, t);
    qr_sampler_free(s);
}

/* the n best of row x by (x / T desc, id asc), NaN as -inf: ranked, as every backend's top-k op writes them
 * (qr_sampler_sample_topk's walk without a sort), or scrambled (its sort; the API takes any order) */
static int ref_topk(const float *x, int V, float temp, int n, int32_t *ids, float *vals, unsigned *rng, bool scramble)
{
    float inv_t = 1.0f / temp;
    bool *used = calloc((size_t)V, 1);
    for (int c = 0; c < n; c++) {
        int b = -1;
        float bv = 0;
        for (int i = 0; i < V; i++) {
            if (used[i])
                continue;
            float v = isnan(x[i]) ? -INFINITY : x[i] * inv_t;
            if (b < 0 || v > bv) {
                b = i;
                bv = v;
            }
        }
        used[b] = true;
        ids[c] = b;
        vals[c] = bv;
    }
    free(used);
    for (int c = n - 1; scramble && c > 0; c--) {
        *rng = *rng * 1103515245u + 12345u;
        int j = (int)((*rng >> 8) % (unsigned)(c + 1));
        int32_t ti = ids[c];
        float tv = vals[c];
        ids[c] = ids[j];
        vals[c] = vals[j];
        ids[j] = ti;
        vals[j] = tv;
    }
    return n;
}

/* qr_sampler_sample_topk over a row's 64 best gives qr_sampler_sample's tokens, draw for draw (ties, NaN, -inf
 * rows, top-p / min-p on the candidates), and refuses what it cannot stand in for */
static void test_topk_candidates(void)
{
    enum { V = 300, KMAX = 64, DRAWS = 40 };
    float x[V], row[V], vals[KMAX];
    int32_t ids[KMAX];
    unsigned rng = 7;
    const struct {
        float t, p, mp;
        int k;
    } cfg[] = {{1.0f, 1.0f, 0, 1}, {0.7f, 0.8f, 0, 20}, {1.3f, 1.0f, 0.05f, 64}, {0.5f, 0.95f, 0.1f, 5},
               {2.0f, 0.3f, 0, 64}};
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
        struct qr_sampler_params p = defaults();
        p.temperature = cfg[c].t;
        p.top_p = cfg[c].p;
        p.min_p = cfg[c].mp;
        p.top_k = cfg[c].k;
        p.seed = 1000 + c;
        CHECK(qr_sampler_topk_ok(&p, V, KMAX));
        struct qr_sampler *a, *b, *r;
        CHECK(qr_sampler_create(&p, V, &a) == QR_OK);
        CHECK(qr_sampler_create(&p, V, &b) == QR_OK);
        CHECK(qr_sampler_create(&p, V, &r) == QR_OK);
        int same = 0;
        for (int d = 0; d < DRAWS; d++) {
            for (int i = 0; i < V; i++) {   /* coarse values: many ties; a few NaN and -inf */
                rng = rng * 1103515245u + 12345u;
                x[i] = (float)((rng >> 16) % 40) * 0.25f - 5.0f;
                if ((rng >> 8) % 97 == 0)
                    x[i] = NAN;
                else if ((rng >> 8) % 89 == 0)
                    x[i] = -INFINITY;
            }
            if (d == 7)   /* a row with nothing finite: token 0, no draw */
                for (int i = 0; i < V; i++)
                    x[i] = i % 2 ? NAN : -INFINITY;
            memcpy(row, x, sizeof row);
            int32_t ta = qr_sampler_sample(a, row, NULL);
            ref_topk(x, V, p.temperature, KMAX, ids, vals, &rng, true);
            int32_t tb = qr_sampler_sample_topk(b, ids, vals, KMAX);
            ref_topk(x, V, p.temperature, KMAX, ids, vals, &rng, false);
            int32_t tr = qr_sampler_sample_topk(r, ids, vals, KMAX);
            same += ta == tb && ta == tr;
            if (ta != tb || ta != tr)
                CHECKF(0, "config %zu draw %d: full row %d, candidates %d, ranked %d", c, d, ta, tb, tr);
        }
        CHECKF(same == DRAWS, "config %zu: %d of %d draws agree", c, same, DRAWS);
        qr_sampler_free(a);
        qr_sampler_free(b);
        qr_sampler_free(r);
    }
    struct qr_sampler_params p = defaults();
    p.top_k = 20;
    CHECK(qr_sampler_topk_ok(&p, V, KMAX));
    CHECK(!qr_sampler_topk_ok(&p, V, 16));   /* k above the candidates */
    CHECK(!qr_sampler_topk_ok(&p, 20, KMAX));   /* k >= vocab: sample_row's whole-vocabulary path */
    p.temperature = 1e-39f;   /* 1 / T overflows: whole rows */
    CHECK(!qr_sampler_topk_ok(&p, V, KMAX));
    p.temperature = 0;
    CHECK(!qr_sampler_topk_ok(&p, V, KMAX));
    p = defaults();
    CHECK(!qr_sampler_topk_ok(&p, V, KMAX));   /* no top-k */
    p.top_k = 20;
    p.presence_penalty = 0.5f;   /* lowering penalties: applied to the candidates */
    p.repetition_penalty = 1.1f;
    CHECK(qr_sampler_topk_ok(&p, V, KMAX) && qr_sampler_topk_raw(&p));
    p.presence_penalty = -0.5f;   /* a raising one could lift a token from outside */
    CHECK(!qr_sampler_topk_ok(&p, V, KMAX));
    p.presence_penalty = 0;
    p.repetition_penalty = 0.9f;
    CHECK(!qr_sampler_topk_ok(&p, V, KMAX));
    p.repetition_penalty = 1.0f;
    p.frequency_penalty = 0.5f;
    CHECK(qr_sampler_topk_ok(&p, V, KMAX) && qr_sampler_topk_raw(&p));
    p.frequency_penalty = -0.5f;   /* raising */
    CHECK(!qr_sampler_topk_ok(&p, V, KMAX));
    struct qr_sampler *s;
    CHECK(qr_sampler_create(&p, V, &s) == QR_OK);
    CHECK(qr_sampler_sample_topk(s, ids, vals, KMAX) == -1);   /* refused */
    qr_sampler_free(s);
    p.frequency_penalty = 0;
    CHECK(!qr_sampler_topk_raw(&p));
    CHECK(qr_sampler_create(&p, V, &s) == QR_OK);
    CHECK(qr_sampler_sample_topk(s, ids, vals, 10) == -1);   /* fewer candidates than top_k */
    CHECK(qr_sampler_sample_topk(s, NULL, vals, KMAX) == -1);
    qr_sampler_free(s);
}

/* with lowering penalties (repetition, presence, frequency) the candidates are the raw row's best 256 (scale 1): the draws equal whole-row sampling,
 * and where the candidates cannot decide (many penalized tokens at the top) the caller samples the whole row */
static void test_topk_penalties(void)
{
    enum { V = 2000, KMAX = 256, DRAWS = 60 };
    static float x[V], row[V], vals[KMAX];
    static int32_t ids[KMAX], prompt[300];
    unsigned rng = 99;
    const struct {
        float t, rp, pp, fp, p;
        int k, spread;
    } cfg[] = {{0.7f, 1.05f, 0, 0, 0.8f, 20, 40},   {1.0f, 1.3f, 0.5f, 0, 1.0f, 64, 40},
               {0.9f, 3.0f, 1.5f, 0, 0.95f, 256, 4}, {0.5f, 1.0f, 2.0f, 0, 1.0f, 50, 40},
               {0.8f, 1.0f, 0, 0.7f, 1.0f, 30, 40},  {1.2f, 1.1f, 0.3f, 0.25f, 0.9f, 100, 40}};
    int need_rows = 0, need_ranked = 0;
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
        struct qr_sampler_params p = defaults();
        p.temperature = cfg[c].t;
        p.repetition_penalty = cfg[c].rp;
        p.presence_penalty = cfg[c].pp;
        p.frequency_penalty = cfg[c].fp;
        p.top_p = cfg[c].p;
        p.top_k = cfg[c].k;
        p.seed = 77 + c;
        CHECK(qr_sampler_topk_ok(&p, V, KMAX) && qr_sampler_topk_raw(&p));
        for (int i = 0; i < 300; i++) {   /* prompt tokens among the likely ones */
            rng = rng * 1103515245u + 12345u;
            prompt[i] = (int32_t)((rng >> 8) % 600);
        }
        struct qr_sampler *a, *b, *r;
        CHECK(qr_sampler_create(&p, V, &a) == QR_OK);
        CHECK(qr_sampler_create(&p, V, &b) == QR_OK);
        CHECK(qr_sampler_create(&p, V, &r) == QR_OK);
        qr_sampler_set_prompt(a, prompt, 300);
        qr_sampler_set_prompt(b, prompt, 300);
        qr_sampler_set_prompt(r, prompt, 300);
        int same = 0;
        for (int d = 0; d < DRAWS; d++) {
            for (int i = 0; i < V; i++) {   /* the first 600 ids high (ties when spread is small) */
                rng = rng * 1103515245u + 12345u;
                x[i] = (float)((rng >> 16) % (unsigned)cfg[c].spread) * (8.0f / cfg[c].spread) + (i < 600 ? 4.0f : -4.0f);
                if ((rng >> 8) % 101 == 0)
                    x[i] = NAN;
            }
            if (d == DRAWS / 2) {   /* a preemption forgets the generated tokens (and their counts) */
                qr_sampler_reset(a);
                qr_sampler_reset(b);
                qr_sampler_reset(r);
            }
            memcpy(row, x, sizeof row);
            int32_t ta = qr_sampler_sample(a, row, NULL);
            int32_t t2[2];
            for (int v = 0; v < 2; v++) {   /* scrambled candidates (b), ranked (r) */
                struct qr_sampler *sv = v ? r : b;
                ref_topk(x, V, 1.0f, KMAX, ids, vals, &rng, v == 0);
                t2[v] = qr_sampler_sample_topk(sv, ids, vals, KMAX);
                if (t2[v] == QR_SAMPLER_NEED_ROW) {   /* the caller samples the whole row */
                    *(v ? &need_ranked : &need_rows) += 1;
                    memcpy(row, x, sizeof row);
                    t2[v] = qr_sampler_sample(sv, row, NULL);
                }
            }
            same += ta == t2[0] && ta == t2[1];
        }
        CHECKF(same == DRAWS, "penalty config %zu: %d of %d draws agree", c, same, DRAWS);
        qr_sampler_free(a);
        qr_sampler_free(b);
        qr_sampler_free(r);
    }
    printf("  penalties on candidates: %d of %d draws needed the whole row\n", need_rows,
           (int)(DRAWS * (sizeof cfg / sizeof cfg[0])));
    CHECKF(need_rows > 0 && need_rows < DRAWS * 3, "whole-row fallbacks %d (the strong-penalty config needs some)",
           need_rows);
    CHECKF(need_ranked == need_rows, "whole-row fallbacks: %d from ranked candidates, %d from scrambled", need_ranked,
           need_rows);
}

/* ranked candidates with penalties: a later candidate whose raw value equals the k-th best's penalised value still
 * ranks above it on a lower id, so the walk may stop only strictly below the k-th (repetition 2: 8 / 2 == 4) */
static void test_topk_penalty_tie(void)
{
    struct qr_sampler_params p = defaults();
    p.temperature = 1.0f;
    p.top_k = 1;
    p.repetition_penalty = 2.0f;
    const int32_t prompt[1] = {50}, ids[3] = {50, 10, 7};
    const float vals[3] = {8.0f, 4.0f, 1.0f};
    struct qr_sampler *s;
    CHECK(qr_sampler_create(&p, 100, &s) == QR_OK);
    qr_sampler_set_prompt(s, prompt, 1);
    int32_t t = qr_sampler_sample_topk(s, ids, vals, 3);
    CHECKF(t == 10, "token %d (want 10: 4.0 at id 10 before 8.0 / 2 at id 50)", t);
    qr_sampler_free(s);
}

int main(void)
{
    test_params();
    test_greedy();
    test_distribution();
    test_seed();
    test_penalties();
    test_logprob();
    test_topk_candidates();
    test_topk_penalties();
    test_topk_penalty_tie();
    return qt_summary("test_sampler");
}
