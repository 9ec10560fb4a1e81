/* test_engine.c - the serving engine on the CPU backend with a tiny random
 * model (qrun-mkmodel --preset qwen3-tiny --vocab 4096, the real tokenizer).
 *
 * Batch invariance: greedy output is token-for-token identical whether a
 * request runs alone or with 1, 7 or 63 others; with chunked prefill of 1, 16
 * and 512 tokens; with prefix caching on or off (and on a second, cache-hit
 * round); with preemption forced every few steps and with a pool so small that
 * preemption happens by itself; with decode steps padded to bucket sizes.
 * Also: seeded sampling is batch-invariant; cancellation (waiting and
 * running, from another thread and from the callback); stop strings spanning
 * tokens are never emitted; stop ids; logprobs; rejection of requests that
 * can never fit; a dead device fails requests and marks the engine unhealthy;
 * prefill first pauses decodes for prompts but not one whose output is still
 * unseen.
 * After every run the KV pool is back to all blocks free or cached-free. */
#include "qrun/qrun.h"
#include "qrun/qr_registry.h"
#include "testutil.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NREQ 64
#define NOUT 6
#define MAXP 64

static char g_model[512];
static int32_t g_prompt[NREQ][MAXP];
static int g_plen[NREQ];
static int32_t g_ref[NREQ][NOUT];

struct res {
    int32_t toks[256];
    int n;
    char text[8192];
    size_t tlen;
    enum qr_finish_reason fin;
    int n_final;
    float lp[256];
    int32_t top0[256];
    float top0_lp[256];
    int n_top;
    int cancel_after;            /* > 0: cancel from the callback after this many tokens */
    struct qr_engine *e;
    uint64_t id;
    int n_prompt_ev, n_cached_ev;
};

static void on_event(const struct qr_token_event *ev, void *user)
{
    struct res *r = user;
    if (ev->token >= 0 && r->n < 256) {
        r->lp[r->n] = ev->logprob;
        r->top0[r->n] = ev->n_top > 0 ? ev->top_ids[0] : -1;
        r->top0_lp[r->n] = ev->n_top > 0 ? ev->top_logprobs[0] : 0;
        r->n_top = ev->n_top;
        r->toks[r->n++] = ev->token;
    }
    if (ev->text_len && r->tlen + ev->text_len < sizeof r->text) {
        memcpy(r->text + r->tlen, ev->text, ev->text_len);
        r->tlen += ev->text_len;
        r->text[r->tlen] = 0;
    }
    if (ev->finish != QR_FINISH_NONE) {
        r->fin = ev->finish;
        r->n_final++;
        r->n_prompt_ev = ev->n_prompt_tokens;
        r->n_cached_ev = ev->n_cached_tokens;
    }
    if (r->cancel_after > 0 && r->n == r->cancel_after && ev->finish == QR_FINISH_NONE)
        CHECK(qr_engine_cancel(r->e, r->id) == QR_OK);
}

static int g_decode_budget;   /* qr_engine_opts.decode_budget of the next mk_engine (0: the default) */
static int g_decode_pause;    /* qr_engine_opts.decode_pause_ms of the next mk_engine (0: the default, prefill first) */
/* qr_engine_opts.block_size of the next mk_engine: these tests count their prompts and pools in 16-token blocks
 * (0: the engine's default, QR_DEFAULT_BLOCK_SIZE) */
static int g_block_size = 16;

static struct qr_engine *mk_engine(int budget, int max_seqs, bool prefix, int preempt_every, int num_blocks,
                                   int bucketing)
{
    struct qr_engine_opts o;
    qr_engine_opts_default(&o);
    o.model_dir = g_model;
    /* QRUN_TEST_BACKEND=cuda|vulkan runs the same checks on a GPU backend (the device sessions do) */
    const char *be = getenv("QRUN_TEST_BACKEND");
    o.backend = be && *be ? be : "cpu";
    o.config_path = qt_src_path("backends.ini");
    o.n_threads = 2;
    o.max_model_len = num_blocks > 0 ? 0 : 512;   /* a fixed pool caps the context length instead */
    o.max_num_batched_tokens = budget;
    o.max_num_seqs = max_seqs;
    o.enable_prefix_caching = prefix;
    o.debug_preempt_every = preempt_every;
    o.num_blocks = num_blocks;
    o.decode_bucketing = bucketing;
    o.decode_budget = g_decode_budget;
    o.decode_pause_ms = g_decode_pause;
    o.block_size = g_block_size;
    struct qr_engine *e = NULL;
    qr_status st = qr_engine_create(&o, &e);
    CHECKF(st == QR_OK, "engine create: %s", qr_last_error());
    return e;
}

static void greedy_params(struct qr_engine *e, struct qr_request_params *p, int max_tokens)
{
    qr_request_params_default(qr_engine_model(e), p);
    p->sampling.temperature = 0;
    p->sampling.top_k = 0;
    p->sampling.top_p = 1;
    p->max_tokens = max_tokens;
    p->ignore_eos = true;
}

/* pool back to all blocks free or cached-free, nothing waiting or running */
static void check_idle(struct qr_engine *e, const char *what)
{
    struct qr_engine_stats s;
    qr_engine_get_stats(e, &s);
    CHECKF(s.kv_blocks_used == 0 && s.n_running == 0 && s.n_waiting == 0,
           "%s: %d blocks used, %d running, %d waiting", what, s.kv_blocks_used, s.n_running, s.n_waiting);
}

/* runs the listed requests together (greedy, NOUT tokens) and compares with the reference */
static void run_and_compare(struct qr_engine *e, const int *ids, int n, const char *what, bool set_ref)
{
    struct res *rs = calloc((size_t)n, sizeof *rs);
    struct qr_request_params p;
    greedy_params(e, &p, NOUT);
    for (int i = 0; i < n; i++) {
        qr_status st = qr_engine_add(e, g_prompt[ids[i]], g_plen[ids[i]], &p, on_event, &rs[i], NULL);
        CHECKF(st == QR_OK, "%s: add: %s", what, qr_last_error());
    }
    CHECK(qr_engine_run_until_idle(e) == QR_OK);
    int bad = 0;
    for (int i = 0; i < n; i++) {
        if (rs[i].n != NOUT || rs[i].fin != QR_FINISH_LENGTH || rs[i].n_final != 1) {
            bad++;
            continue;
        }
        if (set_ref)
            memcpy(g_ref[ids[i]], rs[i].toks, sizeof g_ref[0]);
        else if (memcmp(g_ref[ids[i]], rs[i].toks, sizeof g_ref[0]) != 0)
            bad++;
    }
    CHECKF(bad == 0, "%s: %d of %d requests differ from the reference", what, bad, n);
    check_idle(e, what);
    free(rs);
}

static void make_prompts(void)
{
    uint64_t x = 12345;
    for (int i = 0; i < NREQ; i++) {
        g_plen[i] = 9 + (i * 13) % 50;
        for (int j = 0; j < g_plen[i]; j++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            g_prompt[i][j] = 1 + (int32_t)((x >> 33) % 4000);
        }
        if (i % 2 == 0 && g_plen[i] > 40)   /* a shared 32-token prefix (two blocks) for half the long prompts */
            for (int j = 0; j < 32; j++)
                g_prompt[i][j] = 100 + j;
    }
}

static void test_batch_invariance(void)
{
    int all[NREQ];
    for (int i = 0; i < NREQ; i++)
        all[i] = i;
    /* reference: all 64 together, 512-token chunks, no prefix caching */
    struct qr_engine *e = mk_engine(512, NREQ, false, 0, 0, -1);
    if (!e)
        return;
    run_and_compare(e, all, NREQ, "64 together (reference)", true);
    int one[1] = {5}, two[2] = {5, 40}, eight[8] = {5, 40, 2, 17, 63, 30, 8, 11};
    run_and_compare(e, one, 1, "alone", false);
    int one_b[1] = {40};
    run_and_compare(e, one_b, 1, "alone (2)", false);
    run_and_compare(e, two, 2, "with 1 other", false);
    run_and_compare(e, eight, 8, "with 7 others", false);
    qr_engine_destroy(e);

    /* chunked prefill of 1 and 16 tokens */
    e = mk_engine(1, 8, false, 0, 0, -1);
    int four[4] = {5, 12, 40, 63};
    if (e) {
        run_and_compare(e, four, 4, "chunk 1", false);
        qr_engine_destroy(e);
    }
    e = mk_engine(16, 16, false, 0, 0, -1);
    if (e) {
        run_and_compare(e, eight, 8, "chunk 16", false);
        qr_engine_destroy(e);
    }
    /* decodes spending the budget (no decode allowance, vLLM's rule) and an allowance of 3 */
    for (int db = -1; db <= 3; db += 4) {
        g_decode_budget = db;
        e = mk_engine(16, 16, false, 0, 0, -1);
        if (e) {
            run_and_compare(e, eight, 8, db < 0 ? "chunk 16, no decode budget" : "chunk 16, decode budget 3", false);
            qr_engine_destroy(e);
        }
    }
    g_decode_budget = 0;
    /* prefill first off (decodes in every step) and on (the default): the same tokens, paused steps only when on */
    for (int pz = -1; pz <= 0; pz++) {
        g_decode_pause = pz;
        e = mk_engine(16, 16, false, 0, 0, -1);
        if (e) {
            run_and_compare(e, eight, 8, pz < 0 ? "chunk 16, decodes in every step" : "chunk 16, prefill first",
                            false);
            struct qr_engine_stats s;
            qr_engine_get_stats(e, &s);
            CHECKF(pz < 0 ? s.paused_steps == 0 : s.paused_steps > 0, "decode pause %d: %llu paused steps", pz,
                   (unsigned long long)s.paused_steps);
            qr_engine_destroy(e);
        }
    }
    g_decode_pause = 0;
    /* prefix caching on: the second round hits the cache (shared prefixes and repeats) */
    e = mk_engine(64, 16, true, 0, 0, -1);
    int sixteen[16];
    for (int i = 0; i < 16; i++)
        sixteen[i] = i * 4 % NREQ;   /* even ids: several share the 32-token prefix */
    if (e) {
        run_and_compare(e, sixteen, 16, "prefix caching, round 1", false);
        run_and_compare(e, sixteen, 16, "prefix caching, round 2", false);
        struct qr_engine_stats s;
        qr_engine_get_stats(e, &s);
        CHECKF(s.prefix_hit_tokens_total > 0, "no prefix hits");
        CHECK(s.kv_blocks_cached_free > 0);
        qr_engine_destroy(e);
    }
    /* forced preemption every 3 steps (prefix on and off) */
    for (int pc = 0; pc < 2; pc++) {
        e = mk_engine(32, 16, pc == 1, 3, 0, -1);
        if (!e)
            continue;
        run_and_compare(e, eight, 8, pc ? "forced preemption, prefix on" : "forced preemption", false);
        struct qr_engine_stats s;
        qr_engine_get_stats(e, &s);
        CHECKF(s.n_preempted_total > 0, "no preemption happened");
        qr_engine_destroy(e);
    }
    /* a pool of 12 blocks (192 tokens) for 8 requests: preemption by itself */
    e = mk_engine(512, 16, true, 0, 12, -1);
    if (e) {
        run_and_compare(e, eight, 8, "tight pool", false);
        struct qr_engine_stats s;
        qr_engine_get_stats(e, &s);
        CHECKF(s.n_preempted_total > 0, "tight pool: no preemption happened");
        CHECK(s.kv_blocks_total == 12);
        /* the step split adds up, and the preempted requests' prompts ran again */
        CHECK(s.decode_only_steps + s.prompt_steps == s.steps);
        CHECK(s.decode_only_s >= 0 && s.prompt_steps_s > 0 && s.decode_only_tokens <= s.gen_tokens_total);
        CHECKF(s.prompt_tokens_computed > s.prompt_tokens_total - s.prefix_hit_tokens_total, "computed %llu of %llu",
               (unsigned long long)s.prompt_tokens_computed, (unsigned long long)s.prompt_tokens_total);
        qr_engine_destroy(e);
    }
    /* decode steps padded to bucket sizes (what graph replay uses) */
    e = mk_engine(512, 16, false, 0, 0, 1);
    int five[5] = {1, 2, 3, 4, 9};
    if (e) {
        run_and_compare(e, five, 5, "bucketed decode", false);
        qr_engine_destroy(e);
    }
}

/* the rows of a step are sampled on the engine's thread pool: 1 thread or 4, the same tokens and logprobs */
static void test_sampler_threads(void)
{
    struct res r[2][8];
    memset(r, 0, sizeof r);
    for (int v = 0; v < 2; v++) {
        setenv("QRUN_SAMPLER_THREADS", v ? "4" : "1", 1);
        struct qr_engine *e = mk_engine(512, 16, false, 0, 0, -1);
        unsetenv("QRUN_SAMPLER_THREADS");
        if (!e)
            return;
        struct qr_request_params p;
        qr_request_params_default(qr_engine_model(e), &p);
        p.max_tokens = 12;
        p.ignore_eos = true;
        p.logprobs = 2;
        for (int i = 0; i < 8; i++) {
            struct qr_request_params q = p;
            q.sampling.temperature = i % 3 == 0 ? 1.0f : 0.8f;
            q.sampling.top_p = i % 3 == 1 ? 0.9f : 1.0f;
            q.sampling.top_k = i % 3 == 2 ? 40 : 0;
            q.sampling.seed = 1000 + (uint64_t)i;
            CHECK(qr_engine_add(e, g_prompt[i], g_plen[i], &q, on_event, &r[v][i], NULL) == QR_OK);
        }
        CHECK(qr_engine_run_until_idle(e) == QR_OK);
        qr_engine_destroy(e);
    }
    for (int i = 0; i < 8; i++)
        CHECKF(r[0][i].n == 12 && r[1][i].n == 12 && !memcmp(r[0][i].toks, r[1][i].toks, sizeof r[0][i].toks) &&
                   !memcmp(r[0][i].lp, r[1][i].lp, sizeof r[0][i].lp) &&
                   !memcmp(r[0][i].top0, r[1][i].top0, sizeof r[0][i].top0),
               "request %d: 1 vs 4 sampler threads give different tokens or logprobs", i);
}

/* runs n requests (default params, then mk(i, q)) once with the device top-k and once with whole rows
 * (QRUN_DEVICE_TOPK=0), each generating gen tokens; with pause_at >= 0, the first pause_at + 1 requests decode four
 * steps before the rest are added.  false if an engine could not be made. */
typedef void (*topk_req_fn)(int i, struct qr_request_params *q);
static bool topk_ab(int n, int gen, int pause_at, topk_req_fn mk, const char *what, struct res r[2][8],
                    struct qr_engine_stats st[2])
{
    memset(r, 0, 2 * 8 * sizeof r[0][0]);
    for (int v = 0; v < 2; v++) {
        setenv("QRUN_DEVICE_TOPK", v ? "0" : "1", 1);
        struct qr_engine *e = mk_engine(512, 16, false, 0, 0, -1);
        unsetenv("QRUN_DEVICE_TOPK");
        if (!e)
            return false;
        struct qr_request_params p;
        qr_request_params_default(qr_engine_model(e), &p);
        p.max_tokens = gen;
        p.ignore_eos = true;
        for (int i = 0; i < n; i++) {
            struct qr_request_params q = p;
            mk(i, &q);
            CHECK(qr_engine_add(e, g_prompt[i], g_plen[i], &q, on_event, &r[v][i], NULL) == QR_OK);
            if (i == pause_at)
                for (int k = 0; k < 4; k++) {
                    int u;
                    CHECK(qr_engine_step(e, &u) == QR_OK);
                }
        }
        CHECK(qr_engine_run_until_idle(e) == QR_OK);
        qr_engine_get_stats(e, &st[v]);
        check_idle(e, what);
        qr_engine_destroy(e);
    }
    for (int i = 0; i < n; i++)
        CHECKF(r[0][i].n == gen && r[1][i].n == gen && !memcmp(r[0][i].toks, r[1][i].toks, sizeof r[0][i].toks),
               "%s, request %d: device top-k and whole rows sample different tokens", what, i);
    return true;
}

static void topk_plain_req(int i, struct qr_request_params *q)
{
    q->sampling.temperature = i == 5 ? 0.0f : i % 2 ? 0.7f : 1.3f;
    q->sampling.top_k = i == 3 ? 64 : i == 4 ? 200 : 20;
    q->sampling.top_p = i % 3 == 0 ? 0.8f : 1.0f;
    q->sampling.min_p = i == 6 ? 0.05f : 0.0f;
    q->sampling.seed = 500 + (uint64_t)i;
    if (i == 7)
        q->logprobs = 0;   /* whole rows while it runs */
}

/* sampling from each row's best k computed by the backend (QR_OP_TOPK) gives the tokens sampling from whole rows on
 * the host gives: qualifying rows (top_k 20 / 64 / 200, temperatures, top-p, min-p), greedy rows beside them, and a
 * row that needs its whole row (logprobs) turning a step back to whole rows (the first seven decode alone first) */
static void test_device_topk(void)
{
    struct res r[2][8];
    struct qr_engine_stats st[2];
    if (!topk_ab(8, 10, 6, topk_plain_req, "device top-k", r, st))
        return;
    const char *be = getenv("QRUN_TEST_BACKEND");
    printf("  device top-k on %s: %llu top-k steps, %llu whole-row steps (whole rows only: %llu)\n",
           be && *be ? be : "cpu", (unsigned long long)st[0].topk_steps, (unsigned long long)st[0].logits_steps,
           (unsigned long long)st[1].logits_steps);
    CHECKF(st[0].topk_steps > 0 && st[0].logits_steps > 0, "top-k steps %llu, whole-row steps %llu",
           (unsigned long long)st[0].topk_steps, (unsigned long long)st[0].logits_steps);
    CHECK(st[1].topk_steps == 0 && st[1].logits_steps > 0);
}

static void topk_penalty_req(int i, struct qr_request_params *q)
{
    q->sampling.temperature = i == 4 ? 0.0f : 0.8f;
    q->sampling.top_k = i == 2 ? 256 : i == 1 ? 40 : 20;
    q->sampling.top_p = i == 0 ? 0.8f : 1.0f;
    q->sampling.repetition_penalty = i == 0 ? 1.05f : i == 2 ? 3.0f : 1.0f;
    q->sampling.presence_penalty = i == 1 ? 0.5f : i == 2 ? 2.0f : 0.0f;
    q->sampling.frequency_penalty = i == 5 ? 0.8f : 0.0f;
    q->sampling.seed = 900 + (uint64_t)i;
}

/* the same with penalties that only lower logits (repetition >= 1, presence, frequency >= 0): the rows' raw best
 * 256 come back and the penalties are applied to them; a row they cannot decide is read back whole */
static void test_device_topk_penalties(void)
{
    struct res r[2][8];
    struct qr_engine_stats st[2];
    if (!topk_ab(6, 12, -1, topk_penalty_req, "device top-k with penalties", r, st))
        return;
    printf("  device top-k with penalties: %llu top-k steps, %llu whole-row steps, %llu rows read back whole\n",
           (unsigned long long)st[0].topk_steps, (unsigned long long)st[0].logits_steps,
           (unsigned long long)st[0].topk_rows_refetched);
    CHECK(st[0].topk_steps > 0 && st[0].logits_steps == 0 && st[1].topk_steps == 0);
    CHECK(st[0].topk_rows_refetched > 0);   /* request 2 (repetition 3, presence 2): its candidates cannot decide */
}

/* a step of more than eight top-k rows draws them on the sampler pool: 16 requests (plain, greedy and penalised rows,
 * some turning steps back to whole rows) give the same tokens with 1 sampler thread and with 4, and the same as
 * whole rows */
static void test_device_topk_pool(void)
{
    enum { N = 16, GEN = 10 };
    static struct res r[3][N];
    memset(r, 0, sizeof r);
    struct qr_engine_stats st[3];
    for (int v = 0; v < 3; v++) {
        setenv("QRUN_SAMPLER_THREADS", v == 1 ? "1" : "4", 1);
        setenv("QRUN_DEVICE_TOPK", v == 2 ? "0" : "1", 1);
        struct qr_engine *e = mk_engine(512, 16, false, 0, 0, -1);
        unsetenv("QRUN_SAMPLER_THREADS");
        unsetenv("QRUN_DEVICE_TOPK");
        if (!e)
            return;
        struct qr_request_params p;
        qr_request_params_default(qr_engine_model(e), &p);
        p.max_tokens = GEN;
        p.ignore_eos = true;
        for (int i = 0; i < N; i++) {
            struct qr_request_params q = p;
            if (i % 2)
                topk_penalty_req(i / 2 % 6, &q);
            else
                topk_plain_req(i / 2 % 7, &q);   /* not 7: its logprobs would make every step whole rows */
            q.sampling.seed += 31 * (uint64_t)i;
            CHECK(qr_engine_add(e, g_prompt[i], g_plen[i], &q, on_event, &r[v][i], NULL) == QR_OK);
        }
        CHECK(qr_engine_run_until_idle(e) == QR_OK);
        qr_engine_get_stats(e, &st[v]);
        check_idle(e, "device top-k on the pool");
        qr_engine_destroy(e);
    }
    CHECKF(st[0].topk_steps > 0 && st[1].topk_steps > 0 && st[2].topk_steps == 0, "top-k steps %llu / %llu / %llu",
           (unsigned long long)st[0].topk_steps, (unsigned long long)st[1].topk_steps,
           (unsigned long long)st[2].topk_steps);
    for (int i = 0; i < N; i++)
        CHECKF(r[0][i].n == GEN && r[1][i].n == GEN && r[2][i].n == GEN &&
                   !memcmp(r[0][i].toks, r[1][i].toks, sizeof r[0][i].toks) &&
                   !memcmp(r[0][i].toks, r[2][i].toks, sizeof r[0][i].toks),
               "request %d: 4 sampler threads, 1 and whole rows sample different tokens", i);
}

/* seeded sampling gives the same text alone and in a batch */
static void test_seeded_sampling(void)
{
    struct qr_engine *e = mk_engine(512, 16, true, 0, 0, -1);
    if (!e)
        return;
    struct qr_request_params p;
    qr_request_params_default(qr_engine_model(e), &p);
    p.sampling.temperature = 0.9f;
    p.sampling.top_k = 50;
    p.sampling.top_p = 0.95f;
    p.sampling.seed = 7;
    p.max_tokens = 8;
    p.ignore_eos = true;
    struct res alone, batch[4];
    memset(&alone, 0, sizeof alone);
    memset(batch, 0, sizeof batch);
    CHECK(qr_engine_add(e, g_prompt[3], g_plen[3], &p, on_event, &alone, NULL) == QR_OK);
    CHECK(qr_engine_run_until_idle(e) == QR_OK);
    for (int i = 0; i < 4; i++) {
        struct qr_request_params q = p;
        q.sampling.seed = i == 2 ? 7 : 100 + (uint64_t)i;
        int id = i == 2 ? 3 : 10 + i;
        CHECK(qr_engine_add(e, g_prompt[id], g_plen[id], &q, on_event, &batch[i], NULL) == QR_OK);
    }
    CHECK(qr_engine_run_until_idle(e) == QR_OK);
    CHECK(alone.n == 8 && batch[2].n == 8);
    /* The CPU reference computes every row the same way whatever the batch, so a seeded request samples the same
     * tokens alone and in a batch, bit for bit.  GPU backends do not promise that: at one row the decode matmuls
     * run as GEMV kernels on F32 activations, at several rows through cuBLAS on BF16-rounded activations, so the
     * logits differ by ~1e-3 relative and a draw that lands that close to a CDF boundary picks the neighbour.
     * There the rule is determinism: the same requests in the same batch sample the same tokens, run after run. */
    const char *be = getenv("QRUN_TEST_BACKEND");
    bool cpu = !be || !*be || strcmp(be, "cpu") == 0;
    if (cpu) {
        CHECKF(memcmp(alone.toks, batch[2].toks, sizeof(int32_t) * 8) == 0,
               "seeded request alone vs in a batch: first tokens %d/%d", alone.toks[0], batch[2].toks[0]);
    } else {
        struct res again, batch2[4];
        memset(&again, 0, sizeof again);
        memset(batch2, 0, sizeof batch2);
        CHECK(qr_engine_add(e, g_prompt[3], g_plen[3], &p, on_event, &again, NULL) == QR_OK);
        CHECK(qr_engine_run_until_idle(e) == QR_OK);
        CHECK(again.n == 8 && memcmp(alone.toks, again.toks, sizeof(int32_t) * 8) == 0);
        for (int i = 0; i < 4; i++) {
            struct qr_request_params q = p;
            q.sampling.seed = i == 2 ? 7 : 100 + (uint64_t)i;
            int id = i == 2 ? 3 : 10 + i;
            CHECK(qr_engine_add(e, g_prompt[id], g_plen[id], &q, on_event, &batch2[i], NULL) == QR_OK);
        }
        CHECK(qr_engine_run_until_idle(e) == QR_OK);
        for (int i = 0; i < 4; i++)
            CHECKF(batch2[i].n == 8 && memcmp(batch[i].toks, batch2[i].toks, sizeof(int32_t) * 8) == 0,
                   "seeded batch run twice: request %d differs", i);
        int same = 0;
        while (same < 8 && alone.toks[same] == batch[2].toks[same])
            same++;
        printf("  seeded sampling on %s: alone and in a batch agree on the first %d of 8 tokens\n", be, same);
    }
    check_idle(e, "seeded sampling");
    qr_engine_destroy(e);
}

/* prefill first: a running request's decode waits while prompts are prefilled, unless its tokens have shown the
 * client nothing yet (here: its first token's text held back as the start of a stop string) */
static void test_prefill_first_awaiting(void)
{
    for (int hold = 0; hold < 2; hold++) {
        struct qr_engine *e = mk_engine(16, 8, false, 0, 0, -1);   /* 16-token chunks: a prompt takes steps */
        if (!e)
            return;
        struct qr_request_params p, q;
        greedy_params(e, &p, 8);
        q = p;
        char st[96];
        if (hold) {
            /* the first token's text, then a stop string it begins: nothing is emitted after that token */
            struct res probe;
            memset(&probe, 0, sizeof probe);
            struct qr_request_params one = p;
            one.max_tokens = 1;
            CHECK(qr_engine_add(e, g_prompt[1], g_plen[1], &one, on_event, &probe, NULL) == QR_OK);
            CHECK(qr_engine_run_until_idle(e) == QR_OK);
            CHECK(probe.tlen > 0 && probe.tlen < 64);
            snprintf(st, sizeof st, "%.*s\x01\x02never", (int)probe.tlen, probe.text);
            q.stop[0] = st;
            q.n_stop = 1;
        }
        struct res a, b, c;
        memset(&a, 0, sizeof a);
        memset(&b, 0, sizeof b);
        memset(&c, 0, sizeof c);
        CHECK(qr_engine_add(e, g_prompt[1], g_plen[1], &q, on_event, &a, NULL) == QR_OK);
        int left = 0;
        for (int k = 0; k < 8 && a.n == 0; k++)
            CHECK(qr_engine_step(e, &left) == QR_OK);
        CHECKF(a.n == 1 && (hold ? a.tlen == 0 : a.tlen > 0), "hold %d: %d tokens, %zu bytes shown", hold, a.n,
               a.tlen);
        CHECK(qr_engine_add(e, g_prompt[3], g_plen[3], &p, on_event, &b, NULL) == QR_OK);
        CHECK(qr_engine_add(e, g_prompt[7], g_plen[7], &p, on_event, &c, NULL) == QR_OK);
        CHECK(qr_engine_step(e, &left) == QR_OK);
        CHECK(qr_engine_step(e, &left) == QR_OK);
        /* two steps of request b's prompt: a waits, unless nothing of it has been shown (then its second token
         * shows the held text, and it waits from then on) */
        CHECKF(b.n == 0 && a.n == (hold ? 2 : 1), "hold %d: a has %d tokens, b %d", hold, a.n, b.n);
        CHECK(qr_engine_run_until_idle(e) == QR_OK);
        CHECK(b.n == 8 && c.n == 8 && a.fin != QR_FINISH_NONE);
        check_idle(e, "prefill first, awaiting output");
        qr_engine_destroy(e);
    }
}

static void test_cancel(void)
{
    struct qr_engine *e = mk_engine(64, 8, true, 0, 0, -1);
    if (!e)
        return;
    CHECK(qr_engine_start(e) == QR_OK);
    struct qr_request_params p;
    greedy_params(e, &p, 400);
    struct res r[4];
    memset(r, 0, sizeof r);
    uint64_t ids[4];
    for (int i = 0; i < 4; i++) {
        r[i].e = e;
        if (i == 1)
            r[i].cancel_after = 3;   /* cancelled from its own callback */
        if (i == 3)
            p.max_tokens = 5;
        CHECK(qr_engine_add(e, g_prompt[i], g_plen[i], &p, on_event, &r[i], &ids[i]) == QR_OK);
        r[i].id = ids[i];
    }
    /* cancel request 0 from this thread right away (waiting or just started), 2 after a while */
    CHECK(qr_engine_cancel(e, ids[0]) == QR_OK);
    for (int t = 0; t < 2000 && r[2].n < 4; t++)
        usleep(1000);
    CHECK(qr_engine_cancel(e, ids[2]) == QR_OK);
    CHECK(qr_engine_run_until_idle(e) == QR_OK);
    qr_engine_stop(e);
    CHECK(r[0].fin == QR_FINISH_CANCELLED && r[0].n_final == 1);
    CHECK(r[1].fin == QR_FINISH_CANCELLED && r[1].n >= 3 && r[1].n < 400 && r[1].n_final == 1);
    CHECK(r[2].fin == QR_FINISH_CANCELLED && r[2].n >= 4 && r[2].n < 400 && r[2].n_final == 1);
    CHECK(r[3].fin == QR_FINISH_LENGTH && r[3].n == 5);
    CHECK(qr_engine_cancel(e, ids[3]) == QR_E_NOT_FOUND);   /* already finished */
    check_idle(e, "cancel");
    /* destroying with requests in flight ends them (cancelled) and frees everything */
    struct res late;
    memset(&late, 0, sizeof late);
    CHECK(qr_engine_add(e, g_prompt[5], g_plen[5], &p, on_event, &late, NULL) == QR_OK);
    qr_engine_destroy(e);
    CHECK(late.fin == QR_FINISH_CANCELLED && late.n_final == 1);
}

static void test_stops_and_logprobs(void)
{
    struct qr_engine *e = mk_engine(512, 16, true, 0, 0, -1);
    if (!e)
        return;
    const struct qr_tokenizer *tok = qr_engine_tokenizer(e);
    struct qr_request_params p;
    greedy_params(e, &p, 16);
    int pid = 7;
    struct res ref;
    memset(&ref, 0, sizeof ref);
    CHECK(qr_engine_add(e, g_prompt[pid], g_plen[pid], &p, on_event, &ref, NULL) == QR_OK);
    CHECK(qr_engine_run_until_idle(e) == QR_OK);
    CHECK(ref.n == 16 && ref.fin == QR_FINISH_LENGTH);
    /* the streamed text equals a one-shot decode of the tokens */
    char *full = NULL;
    size_t full_len = 0;
    CHECK(qr_tok_decode(tok, ref.toks, ref.n, true, &full, &full_len) == QR_OK);
    CHECK(full && full_len == ref.tlen && memcmp(full, ref.text, full_len) == 0);
    /* token boundaries (byte offsets of each token's end) */
    size_t ends[16];
    for (int i = 0; i < 16; i++) {
        char *t = NULL;
        size_t l = 0;
        CHECK(qr_tok_decode(tok, ref.toks, i + 1, true, &t, &l) == QR_OK);
        ends[i] = l;
        free(t);
    }
    /* a stop string that starts inside token 4 and ends inside a later token */
    int k = 3;
    while (k < 14 && (ends[k + 1] - ends[k] < 2 || ends[k] - ends[k - 1] < 2))
        k++;
    size_t s0 = ends[k] - 1, s1 = ends[k] + 1;   /* last byte of token k, first of token k+1 */
    char stop[16];
    memcpy(stop, full + s0, s1 - s0 + 1 > 15 ? 15 : s1 - s0 + 1);
    stop[s1 - s0 + 1 > 15 ? 15 : s1 - s0 + 1] = 0;
    const char *first = strstr(full, stop);
    CHECK(first != NULL);
    if (first) {
        struct qr_request_params q = p;
        q.stop[0] = "\x01never";
        q.stop[1] = stop;
        q.n_stop = 2;
        struct res r;
        memset(&r, 0, sizeof r);
        CHECK(qr_engine_add(e, g_prompt[pid], g_plen[pid], &q, on_event, &r, NULL) == QR_OK);
        CHECK(qr_engine_run_until_idle(e) == QR_OK);
        size_t want = (size_t)(first - full);
        CHECKF(r.fin == QR_FINISH_STOP && r.tlen == want && memcmp(r.text, full, want) == 0,
               "stop '%s': finish %s, %zu bytes, want %zu", stop, qr_finish_reason_str(r.fin), r.tlen, want);
        CHECK(strstr(r.text, stop) == NULL);
    }
    /* a stop string whose prefix ends the output: held back, then released at length */
    {
        struct qr_request_params q = p;
        char tail_stop[32];
        size_t tl = full_len >= 2 ? 2 : full_len;
        memcpy(tail_stop, full + full_len - tl, tl);
        memcpy(tail_stop + tl, "\x02zz", 4);
        q.stop[0] = tail_stop;
        q.n_stop = 1;
        struct res r;
        memset(&r, 0, sizeof r);
        CHECK(qr_engine_add(e, g_prompt[pid], g_plen[pid], &q, on_event, &r, NULL) == QR_OK);
        CHECK(qr_engine_run_until_idle(e) == QR_OK);
        CHECK(r.fin == QR_FINISH_LENGTH && r.tlen == full_len && memcmp(r.text, full, full_len) == 0);
    }
    /* a stop id: finish "stop" on that token, its text not emitted */
    {
        struct qr_request_params q = p;
        q.stop_ids[0] = ref.toks[4];
        q.n_stop_ids = 1;
        int first_at = 0;
        while (ref.toks[first_at] != ref.toks[4])
            first_at++;
        struct res r;
        memset(&r, 0, sizeof r);
        CHECK(qr_engine_add(e, g_prompt[pid], g_plen[pid], &q, on_event, &r, NULL) == QR_OK);
        CHECK(qr_engine_run_until_idle(e) == QR_OK);
        CHECK(r.fin == QR_FINISH_STOP && r.n == first_at + 1);
        CHECK(r.tlen == (first_at ? ends[first_at - 1] : 0));
    }
    /* logprobs: top-5 of the raw distribution; greedy picks the top one */
    {
        struct qr_request_params q = p;
        q.logprobs = 5;
        q.max_tokens = 4;
        struct res r;
        memset(&r, 0, sizeof r);
        CHECK(qr_engine_add(e, g_prompt[pid], g_plen[pid], &q, on_event, &r, NULL) == QR_OK);
        CHECK(qr_engine_run_until_idle(e) == QR_OK);
        CHECK(r.n == 4 && r.n_top == 5);
        for (int i = 0; i < r.n; i++) {
            CHECK(r.toks[i] == ref.toks[i]);
            CHECK(r.top0[i] == r.toks[i]);
            CHECKF(fabsf(r.lp[i] - r.top0_lp[i]) < 1e-4f && r.lp[i] <= 0, "logprob %g vs top %g", r.lp[i],
                   r.top0_lp[i]);
        }
    }
    free(full);
    /* rejections: never-fitting, empty, out-of-vocabulary, bad logprobs */
    {
        struct qr_request_params q = p;
        q.max_tokens = 512 - g_plen[0] + 1;
        CHECK(qr_engine_add(e, g_prompt[0], g_plen[0], &q, on_event, NULL, NULL) == QR_E_INVALID_ARG);
        CHECK(strstr(qr_last_error(), "maximum context length") != NULL);
        CHECK(qr_engine_add(e, g_prompt[0], 0, &p, on_event, NULL, NULL) == QR_E_INVALID_ARG);
        int32_t badid[2] = {1, 4096};
        CHECK(qr_engine_add(e, badid, 2, &p, on_event, NULL, NULL) == QR_E_INVALID_ARG);
        badid[1] = -1;
        CHECK(qr_engine_add(e, badid, 2, &p, on_event, NULL, NULL) == QR_E_INVALID_ARG);
        q = p;
        q.logprobs = 21;
        CHECK(qr_engine_add(e, g_prompt[0], g_plen[0], &q, on_event, NULL, NULL) == QR_E_INVALID_ARG);
        q = p;
        q.max_tokens = 0;
        CHECK(qr_engine_add(e, g_prompt[0], g_plen[0], &q, on_event, NULL, NULL) == QR_E_INVALID_ARG);
    }
    check_idle(e, "stops");
    qr_engine_destroy(e);
}

/* block size 0 takes the default: a pool of 2 blocks holds 2 x QR_DEFAULT_BLOCK_SIZE tokens */
static void test_default_block_size(void)
{
    g_block_size = 0;
    struct qr_engine *e = mk_engine(512, 4, false, 0, 2, -1);
    g_block_size = 16;
    if (!e)
        return;
    CHECK(qr_engine_max_model_len(e) == 2 * QR_DEFAULT_BLOCK_SIZE);
    qr_engine_destroy(e);
    /* the same requests give the same tokens with the default blocks as with the 16-token ones of the reference */
    g_block_size = 0;
    e = mk_engine(128, 8, true, 0, 24, -1);
    g_block_size = 16;
    if (!e)
        return;
    const int eight[8] = {0, 3, 5, 7, 11, 13, 17, 19};
    run_and_compare(e, eight, 8, "default block size", false);
    qr_engine_destroy(e);
}

/* a pool that cannot hold prompt + max_tokens rejects at admission */
static void test_never_fits(void)
{
    struct qr_engine *e = mk_engine(512, 4, false, 0, 4, -1);   /* 4 blocks = 64 tokens */
    if (!e)
        return;
    struct qr_request_params p;
    greedy_params(e, &p, 30);
    CHECK(qr_engine_max_model_len(e) == 64);
    CHECK(qr_engine_add(e, g_prompt[20], 40, &p, on_event, NULL, NULL) == QR_E_INVALID_ARG);
    CHECK(strstr(qr_last_error(), "maximum context length is 64") != NULL);
    struct res r;
    memset(&r, 0, sizeof r);
    p.max_tokens = 24;   /* 40 + 24 = 64 = the context length: fits exactly */
    CHECK(qr_engine_add(e, g_prompt[20], 40, &p, on_event, &r, NULL) == QR_OK);
    CHECK(qr_engine_run_until_idle(e) == QR_OK);
    CHECK(r.n == 24 && r.fin == QR_FINISH_LENGTH);
    check_idle(e, "never fits");
    qr_engine_destroy(e);
}

/* a dead device: in-flight requests fail with "error", the engine turns unhealthy */
static void test_dead_device(void)
{
    struct qr_engine *e = mk_engine(512, 4, false, 0, 0, -1);
    if (!e)
        return;
    struct qr_request_params p;
    greedy_params(e, &p, 50);
    struct res r[2];
    memset(r, 0, sizeof r);
    CHECK(qr_engine_add(e, g_prompt[1], g_plen[1], &p, on_event, &r[0], NULL) == QR_OK);
    CHECK(qr_engine_add(e, g_prompt[2], g_plen[2], &p, on_event, &r[1], NULL) == QR_OK);
    int n = 0;
    CHECK(qr_engine_step(e, &n) == QR_OK && n == 2);
    qr_rt_device(qr_engine_runtime(e))->dead = true;
    CHECK(qr_engine_step(e, &n) != QR_OK);
    CHECK(n == 0);
    CHECK(r[0].fin == QR_FINISH_ERROR && r[1].fin == QR_FINISH_ERROR && r[0].n_final == 1);
    struct qr_engine_stats s;
    qr_engine_get_stats(e, &s);
    CHECK(!s.healthy && s.kv_blocks_used == 0);
    CHECK(qr_engine_add(e, g_prompt[1], g_plen[1], &p, on_event, NULL, NULL) == QR_E_DEVICE_LOST);
    qr_engine_destroy(e);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(g_model, sizeof g_model, "%s/qrun_test_engine_%d", tmp, (int)getpid());
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' --preset qwen3-tiny --vocab 4096 --seed 3 --out '%s' >/dev/null",
             qt_build_path("bin/qrun-mkmodel"), g_model);
    int rc = system(cmd);
    CHECKF(rc == 0, "cannot build the tiny model with %s", cmd);
    if (rc != 0)
        return qt_summary("test_engine");
    qr_log_set_level(QR_LOG_WARN);
    make_prompts();
    double t0 = qr_time_s();
    test_batch_invariance();
    double t1 = qr_time_s();
    test_seeded_sampling();
    test_sampler_threads();
    test_device_topk();
    test_device_topk_penalties();
    test_device_topk_pool();
    test_prefill_first_awaiting();
    test_cancel();
    double t2 = qr_time_s();
    test_stops_and_logprobs();
    test_default_block_size();
    test_never_fits();
    test_dead_device();
    fprintf(stderr, "times: invariance %.1f s, sampling+cancel %.1f s, rest %.1f s\n", t1 - t0, t2 - t1,
            qr_time_s() - t2);
    qt_rm_rf(g_model);
    return qt_summary("test_engine");
}
