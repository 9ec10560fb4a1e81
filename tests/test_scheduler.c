/* test_scheduler.c - the scheduler without a model: token budget, chunked
 * prefill, decodes first (and outside the budget with decode_budget), FCFS,
 * prefill first with its bounded decode pause (a fake clock),
 * preemption and resume, forced preemption,
 * rejection of requests that can never fit, prefix hits.
 *
 * A fake model checks the KV bookkeeping end to end: each computed position
 * writes a fingerprint of its context (hash of tokens[0..p]) into a fake KV
 * array at its slot; before a token is "sampled" every position of the
 * sequence must read back the right fingerprint through the block table (so a
 * wrong prefix hit, a shifted position or an overwritten shared block fails),
 * and the sampled token is a function of the context, so outputs must match a
 * run with a large pool, whatever the batching. */
#include "qrun/qr_sched.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#define MAXREQ 16

static uint64_t ctx_hash(const int32_t *t, int n)
{
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < n; i++)
        h = (h ^ (uint64_t)(uint32_t)t[i]) * 1099511628211ull;
    return h;
}

struct sim {
    struct qr_kv_pool *pool;
    struct qr_sched *s;
    uint64_t *kv;               /* fake KV: fingerprint per slot */
    int32_t out[MAXREQ][64];    /* generated tokens per request id */
    int n_out[MAXREQ];
    int bad_kv, bad_write, max_step_tokens, max_step_seqs, max_step_prompt;
    int chunk_count[MAXREQ];    /* prompt chunks seen (first admission) */
};

/* the fake clock of decode_pause_ms: sim_step advances it by g_tick seconds per step */
static int g_pause_ms;
static double g_now, g_tick;
static double fake_clock(void *user)
{
    (void)user;
    return g_now;
}

static void sim_init_d(struct sim *m, int nb, int bs, bool prefix, int budget, int max_seqs, int preempt_every,
                       int decode_budget)
{
    memset(m, 0, sizeof *m);
    struct qr_kv_pool_opts po = {.num_blocks = nb, .block_size = bs, .enable_prefix_caching = prefix};
    CHECK(qr_kv_pool_create(&po, &m->pool) == QR_OK);
    struct qr_sched_opts so = {.max_batched_tokens = budget, .max_seqs = max_seqs, .max_len = 256,
                               .debug_preempt_every = preempt_every, .decode_budget = decode_budget,
                               .decode_pause_ms = g_pause_ms, .clock_s = fake_clock};
    CHECK(qr_sched_create(&so, m->pool, &m->s) == QR_OK);
    m->kv = calloc((size_t)nb * bs, sizeof *m->kv);
}

static void sim_init(struct sim *m, int nb, int bs, bool prefix, int budget, int max_seqs, int preempt_every)
{
    sim_init_d(m, nb, bs, prefix, budget, max_seqs, preempt_every, 0);
}

static void sim_free(struct sim *m)
{
    qr_sched_destroy(m->s);
    CHECK(qr_kv_pool_num_free(m->pool) == qr_kv_pool_num_blocks(m->pool));
    CHECK(qr_kv_pool_check(m->pool) == QR_OK);
    qr_kv_pool_destroy(m->pool);
    free(m->kv);
}

/* one step; returns the number of unfinished requests */
static int sim_step(struct sim *m)
{
    struct qr_sched_out o;
    CHECK(qr_sched_schedule(m->s, &o) == QR_OK);
    g_now += g_tick;
    if (o.n_tokens > m->max_step_tokens)
        m->max_step_tokens = o.n_tokens;
    if (o.n_items > m->max_step_seqs)
        m->max_step_seqs = o.n_items;
    int from_budget = 0;   /* tokens spent from max_batched_tokens (the rest came out of decode_budget) */
    for (int i = 0; i < o.n_items; i++)
        from_budget += o.items[i].from_decode_budget ? 0 : o.items[i].n_new;
    if (from_budget > m->max_step_prompt)
        m->max_step_prompt = from_budget;
    bool seen_prefill = false;
    for (int i = 0; i < o.n_items; i++) {
        const struct qr_sched_item *it = &o.items[i];
        struct qr_sched_req *r = it->req;
        bool is_decode = it->n_new == 1 && it->needs_logits && it->start >= r->n_prompt;
        if (is_decode && seen_prefill)
            m->bad_write++;                /* decodes must come first */
        if (!is_decode)
            seen_prefill = true;
        CHECK(it->n_new >= 1 && it->start == r->n_computed && it->start + it->n_new <= r->n_tokens);
        for (int p = it->start; p < it->start + it->n_new; p++) {
            int32_t slot = qr_kv_seq_slot(m->pool, &r->kv, p);
            int32_t blk = r->kv.blocks[p / qr_kv_pool_block_size(m->pool)];
            if (slot < 0 || qr_kv_block_ref_cnt(m->pool, blk) != 1)
                m->bad_write++;            /* writes only into blocks this sequence owns alone */
            else
                m->kv[slot] = ctx_hash(r->tokens, p + 1);
        }
    }
    qr_sched_update(m->s, &o);
    struct qr_sched_req *done[64];
    int n_done = 0;
    for (int i = 0; i < o.n_items; i++) {
        struct qr_sched_req *r = o.items[i].req;
        if (o.items[i].start < r->n_prompt && r->n_preempted == 0)
            m->chunk_count[r->id]++;
        if (!o.items[i].needs_logits)
            continue;
        for (int p = 0; p < r->n_tokens; p++)
            if (m->kv[qr_kv_seq_slot(m->pool, &r->kv, p)] != ctx_hash(r->tokens, p + 1))
                m->bad_kv++;
        int32_t tok = (int32_t)(ctx_hash(r->tokens, r->n_tokens) % 1000);
        m->out[r->id][m->n_out[r->id]++] = tok;
        CHECK(qr_sched_append(m->s, r, tok) == QR_OK);
        if (m->n_out[r->id] == r->max_tokens)
            done[n_done++] = r;
    }
    for (int i = 0; i < n_done; i++)
        qr_sched_finish(m->s, done[i]);
    CHECK(qr_kv_pool_check(m->pool) == QR_OK);
    return qr_sched_num_waiting(m->s) + qr_sched_num_running(m->s);
}

static int sim_run(struct sim *m)
{
    int steps = 0;
    while (sim_step(m) > 0 && steps < 10000)
        steps++;
    return steps;
}

/* prompts: n requests, lengths vary; shared leading tokens when share > 0 */
static void add_reqs(struct sim *m, int n, int max_tokens, int share)
{
    for (int r = 0; r < n; r++) {
        int32_t t[64];
        int len = 5 + (r * 7) % 23;
        for (int i = 0; i < len; i++)
            t[i] = i < share ? 500 + i : 1000 * (r + 1) + i;
        CHECK(qr_sched_add(m->s, (uint64_t)r, t, len, max_tokens, NULL, NULL) == QR_OK);
    }
}

static void test_budget_and_chunks(void)
{
    struct sim m;
    sim_init(&m, 64, 4, false, 16, 8, 0);
    int32_t t[10];
    for (int i = 0; i < 10; i++)
        t[i] = i + 1;
    for (int r = 0; r < 3; r++)
        CHECK(qr_sched_add(m.s, (uint64_t)r, t, 10, 3, NULL, NULL) == QR_OK);
    struct qr_sched_out o;
    CHECK(qr_sched_schedule(m.s, &o) == QR_OK);
    /* r0 whole prompt, r1 a 6-token chunk, r2 waits (budget spent) */
    CHECK(o.n_tokens == 16 && o.n_items == 2);
    CHECK(o.items[0].req->id == 0 && o.items[0].n_new == 10 && o.items[0].needs_logits);
    CHECK(o.items[1].req->id == 1 && o.items[1].n_new == 6 && !o.items[1].needs_logits);
    CHECK(qr_sched_num_waiting(m.s) == 1 && qr_sched_num_running(m.s) == 2);
    qr_sched_update(m.s, &o);
    CHECK(qr_sched_append(m.s, o.items[0].req, 77) == QR_OK);
    CHECK(qr_sched_schedule(m.s, &o) == QR_OK);
    /* decode of r0 first, then r1's last 4 prompt tokens, then r2 with the rest (11) */
    CHECK(o.n_items == 3 && o.n_tokens == 15);
    CHECK(o.items[0].req->id == 0 && o.items[0].n_new == 1 && o.items[0].start == 10);
    CHECK(o.items[1].req->id == 1 && o.items[1].n_new == 4 && o.items[1].start == 6 && o.items[1].needs_logits);
    CHECK(o.items[2].req->id == 2 && o.items[2].n_new == 10);
    CHECK(o.n_decode == 1);
    qr_sched_update(m.s, &o);
    sim_free(&m);

    /* chunked prefill of 1 token per step: a 10-token prompt takes 10 steps */
    sim_init(&m, 64, 4, false, 1, 8, 0);
    CHECK(qr_sched_add(m.s, 0, t, 10, 2, NULL, NULL) == QR_OK);
    int steps = sim_run(&m) + 1;
    CHECK(steps == 11);
    CHECK(m.chunk_count[0] == 10 && m.max_step_tokens == 1);
    CHECK(m.bad_kv == 0 && m.bad_write == 0);
    sim_free(&m);
}

/* decode_budget: decodes come out of their own allowance, so a prompt that fits the budget is never cut in two
 * by the requests decoding beside it; past the allowance decodes spend the budget again */
static void test_decode_budget(void)
{
    int32_t t[10];
    for (int i = 0; i < 10; i++)
        t[i] = i + 1;
    struct sim m;
    sim_init_d(&m, 64, 4, false, 10, 8, 0, 8);
    for (int r = 0; r < 4; r++)
        CHECK(qr_sched_add(m.s, (uint64_t)r, t, 10, 5, NULL, NULL) == QR_OK);
    for (int step = 0; step < 4; step++) {
        struct qr_sched_out o;
        CHECK(qr_sched_schedule(m.s, &o) == QR_OK);
        /* step k: k decodes, then request k's whole prompt */
        CHECKF(o.n_items == step + 1 && o.n_decode == step && o.n_tokens == 10 + step, "step %d: %d items, %d tokens",
               step, o.n_items, o.n_tokens);
        CHECK(o.items[step].req->id == (uint64_t)step && o.items[step].n_new == 10 && o.items[step].needs_logits);
        qr_sched_update(m.s, &o);
        for (int i = 0; i < o.n_items; i++)
            CHECK(qr_sched_append(m.s, o.items[i].req, 100 + step) == QR_OK);
    }
    for (int r = 0; r < 4; r++)
        qr_sched_finish(m.s, qr_sched_running(m.s, 0));
    sim_free(&m);

    /* an allowance of 1: the second decode spends the budget, the prompt gets the rest */
    sim_init_d(&m, 64, 4, false, 10, 8, 0, 1);
    for (int r = 0; r < 3; r++)
        CHECK(qr_sched_add(m.s, (uint64_t)r, t, r < 2 ? 5 : 10, 5, NULL, NULL) == QR_OK);
    struct qr_sched_out o;
    CHECK(qr_sched_schedule(m.s, &o) == QR_OK);
    CHECK(o.n_items == 2 && o.n_tokens == 10);   /* r0 5, r1 5: budget spent; r2 waits */
    qr_sched_update(m.s, &o);
    for (int i = 0; i < o.n_items; i++)
        CHECK(qr_sched_append(m.s, o.items[i].req, 7) == QR_OK);
    CHECK(qr_sched_schedule(m.s, &o) == QR_OK);
    CHECK(o.n_items == 3 && o.n_decode == 2 && o.n_tokens == 11 && o.items[2].n_new == 9);
    qr_sched_update(m.s, &o);
    sim_free(&m);

    CHECK(qr_sched_create(&(struct qr_sched_opts){.max_batched_tokens = 4, .max_seqs = 2, .max_len = 8,
                                                  .decode_budget = -1},
                          m.pool, &m.s) == QR_E_INVALID_ARG);
}

/* one step's plan: n items, n decodes, n paused, and the id and length of item k (k < 0: no check) */
static void expect_step(struct sim *m, int n_items, int n_decode, int n_paused, int k, int id, int n_new)
{
    struct qr_sched_out o;
    CHECK(qr_sched_schedule(m->s, &o) == QR_OK);
    g_now += g_tick;
    CHECKF(o.n_items == n_items && o.n_decode == n_decode && o.n_paused == n_paused,
           "step: %d items (want %d), %d decodes (%d), %d paused (%d)", o.n_items, n_items, o.n_decode, n_decode,
           o.n_paused, n_paused);
    if (k >= 0 && k < o.n_items)
        CHECKF(o.items[k].req->id == (uint64_t)id && o.items[k].n_new == n_new, "item %d: request %llu, %d tokens",
               k, (unsigned long long)o.items[k].req->id, o.items[k].n_new);
    qr_sched_update(m->s, &o);
    for (int i = 0; i < o.n_items; i++)
        if (o.items[i].needs_logits)
            CHECK(qr_sched_append(m->s, o.items[i].req, 100) == QR_OK);
}

/* prefill first: while prompts can be admitted the running decodes wait, up to decode_pause_ms in one run of such
 * steps; a step without prompt work (the sequence cap, no free blocks) runs them */
/* a fresh scheduler (budget, sequence cap, decode allowance 8, 64 blocks of 4) holding n 10-token requests with ids
 * 0..n-1, the fake clock at 0 and advancing tick seconds per step */
static void burst(struct sim *m, int budget, int max_seqs, int n, double tick)
{
    int32_t t[10];
    for (int i = 0; i < 10; i++)
        t[i] = i + 1;
    g_now = 0;
    g_tick = tick;
    sim_init_d(m, 64, 4, false, budget, max_seqs, 0, 8);
    for (int r = 0; r < n; r++)
        CHECK(qr_sched_add(m->s, (uint64_t)r, t, 10, 5, NULL, NULL) == QR_OK);
}

/* finishes the n oldest running requests */
static void finish_running(struct sim *m, int n)
{
    for (int r = 0; r < n; r++)
        qr_sched_finish(m->s, qr_sched_running(m->s, 0));
}

static void test_prefill_first(void)
{
    int32_t t[10];
    for (int i = 0; i < 10; i++)
        t[i] = i + 1;
    struct sim m;
    /* a burst of 4 prompts, one per step (budget 10), the clock far from the bound: prompts only, then 4 decodes */
    g_pause_ms = 1000;
    burst(&m, 10, 8, 4, 0.1);
    expect_step(&m, 1, 0, 0, 0, 0, 10);   /* nothing decodes yet: no pause */
    expect_step(&m, 1, 0, 1, 0, 1, 10);
    expect_step(&m, 1, 0, 2, 0, 2, 10);
    expect_step(&m, 1, 0, 3, 0, 3, 10);
    expect_step(&m, 4, 4, 0, 0, 0, 1);
    CHECK(qr_sched_num_paused_steps(m.s) == 3);
    finish_running(&m, 4);
    sim_free(&m);

    /* the bound: 600 ms per step against 1000 ms: two paused steps, then the decodes ride along with the prompt */
    burst(&m, 10, 8, 5, 0.6);
    expect_step(&m, 1, 0, 0, 0, 0, 10);   /* t = 0 */
    expect_step(&m, 1, 0, 1, 0, 1, 10);   /* t = 0.6: the pause begins */
    expect_step(&m, 1, 0, 2, 0, 2, 10);   /* 0.6 s paused */
    expect_step(&m, 4, 3, 0, 3, 3, 10);   /* 1.2 s: over the bound, decodes first, then request 3 */
    expect_step(&m, 5, 4, 0, 4, 4, 10);   /* still the same run of prompt steps: no new pause */
    expect_step(&m, 5, 5, 0, 0, 0, 1);    /* no prompt work: the run ends */
    for (int r = 0; r < 5; r++)
        CHECK(qr_sched_add(m.s, (uint64_t)(10 + r), t, 10, 5, NULL, NULL) == QR_OK);
    g_tick = 0.1;
    finish_running(&m, 5);
    expect_step(&m, 1, 0, 0, 0, 10, 10);
    expect_step(&m, 1, 0, 1, 0, 11, 10);  /* a new run: the clock starts again */
    finish_running(&m, 2);
    sim_free(&m);

    /* a request whose tokens have shown the client nothing yet (awaiting_output) keeps decoding in paused steps,
     * and an awaiting decode alone is no prompt work */
    burst(&m, 10, 8, 3, 0.1);
    expect_step(&m, 1, 0, 0, 0, 0, 10);
    qr_sched_running(m.s, 0)->awaiting_output = true;
    expect_step(&m, 2, 1, 0, 1, 1, 10);   /* request 0's decode, then request 1's prompt */
    qr_sched_running(m.s, 0)->awaiting_output = false;
    expect_step(&m, 1, 0, 2, 0, 2, 10);   /* both paused now */
    qr_sched_running(m.s, 1)->awaiting_output = true;
    expect_step(&m, 3, 3, 0, 0, 0, 1);    /* no prompt work: everyone decodes */
    CHECK(qr_sched_num_paused_steps(m.s) == 1);
    finish_running(&m, 3);
    sim_free(&m);

    /* the sequence cap (2) leaves the third prompt waiting: that step decodes */
    burst(&m, 10, 2, 3, 0.1);
    expect_step(&m, 1, 0, 0, 0, 0, 10);
    expect_step(&m, 1, 0, 1, 0, 1, 10);
    expect_step(&m, 2, 2, 0, 0, 0, 1);
    sim_free(&m);

    /* a partial prefill is prompt work: request 1's second chunk runs without request 0's decode */
    burst(&m, 16, 8, 2, 0.1);
    expect_step(&m, 2, 0, 0, 1, 1, 6);
    expect_step(&m, 1, 0, 1, 0, 1, 4);
    expect_step(&m, 2, 2, 0, 0, 0, 1);
    sim_free(&m);

    /* too few free blocks for the next prompt (6 blocks needed, 5 free): the decode goes on, nothing pauses */
    sim_init_d(&m, 8, 4, false, 32, 8, 0, 8);
    CHECK(qr_sched_add(m.s, 0, t, 10, 5, NULL, NULL) == QR_OK);
    expect_step(&m, 1, 0, 0, 0, 0, 10);
    int32_t u[24];
    for (int i = 0; i < 24; i++)
        u[i] = 50 + i;
    CHECK(qr_sched_add(m.s, 1, u, 24, 2, NULL, NULL) == QR_OK);
    expect_step(&m, 1, 1, 0, 0, 0, 1);
    CHECK(qr_sched_num_waiting(m.s) == 1 && qr_sched_num_paused_steps(m.s) == 0);
    sim_free(&m);
    g_pause_ms = 0;
    g_tick = 0;

    struct qr_sched *bad = NULL;
    struct qr_kv_pool *pool = NULL;
    struct qr_kv_pool_opts po = {.num_blocks = 4, .block_size = 4};
    CHECK(qr_kv_pool_create(&po, &pool) == QR_OK);
    CHECK(qr_sched_create(&(struct qr_sched_opts){.max_batched_tokens = 4, .max_seqs = 2, .max_len = 8,
                                                  .decode_pause_ms = -1},
                          pool, &bad) == QR_E_INVALID_ARG);
    qr_kv_pool_destroy(pool);
}

/* the same outputs under any budget, pool size, prefix caching and forced preemption */
static void test_invariance(void)
{
    struct sim ref;
    sim_init(&ref, 512, 4, false, 4096, 16, 0);
    add_reqs(&ref, 9, 12, 0);
    sim_run(&ref);
    CHECK(ref.bad_kv == 0 && ref.bad_write == 0);
    struct cfg { int nb, budget, max_seqs, preempt; bool prefix; int share, dbudget, pause; } cfgs[] = {
        {512, 1, 16, 0, false, 0, 0, 0}, {512, 16, 16, 0, true, 0, 0, 0}, {512, 7, 3, 0, false, 0, 0, 0},
        {20, 64, 16, 0, false, 0, 0, 0},  /* tight pool: preemption by recompute */
        {20, 64, 16, 0, true, 0, 0, 0},   /* tight pool with prefix hits on resume */
        {512, 16, 16, 3, true, 0, 0, 0}, {512, 16, 16, 2, false, 0, 0, 0}, {24, 5, 4, 4, true, 0, 0, 0},
        {512, 16, 16, 0, true, 9, 0, 0},  /* shared prompt prefix */
        {16, 32, 16, 0, true, 9, 0, 0},
        {512, 7, 3, 0, false, 0, 3, 0}, {20, 16, 16, 0, false, 0, 16, 0},   /* decodes outside the budget */
        {24, 5, 4, 4, true, 0, 2, 0}, {16, 32, 16, 0, true, 9, 16, 0},
        /* prefill first (the clock never reaches the bound), then with a bound that expires mid-burst */
        {512, 16, 16, 0, false, 0, 16, 1000000}, {20, 16, 16, 0, true, 0, 16, 1000000},
        {24, 5, 4, 4, true, 0, 2, 1000000}, {512, 7, 3, 0, false, 0, 3, 1000000}, {512, 16, 16, 0, true, 9, 16, 250},
        {16, 32, 16, 0, true, 9, 16, 250},
    };
    for (size_t c = 0; c < sizeof cfgs / sizeof cfgs[0]; c++) {
        struct sim m;
        g_pause_ms = cfgs[c].pause;
        g_now = 0;
        g_tick = 0.1;
        sim_init_d(&m, cfgs[c].nb, 4, cfgs[c].prefix, cfgs[c].budget, cfgs[c].max_seqs, cfgs[c].preempt,
                   cfgs[c].dbudget);
        g_pause_ms = 0;
        add_reqs(&m, 9, 12, cfgs[c].share);
        struct sim *r = &ref, shared;
        if (cfgs[c].share) {   /* reference for shared prompts */
            sim_init(&shared, 512, 4, false, 4096, 16, 0);
            add_reqs(&shared, 9, 12, cfgs[c].share);
            sim_run(&shared);
            r = &shared;
        }
        int steps = sim_run(&m);
        CHECKF(steps < 10000, "config %zu did not finish", c);
        CHECKF(m.bad_kv == 0 && m.bad_write == 0, "config %zu: bad kv %d, bad writes %d", c, m.bad_kv, m.bad_write);
        CHECKF(m.max_step_tokens <= cfgs[c].budget + cfgs[c].dbudget && m.max_step_prompt <= cfgs[c].budget &&
                   m.max_step_seqs <= cfgs[c].max_seqs,
               "config %zu limits", c);
        for (int q = 0; q < 9; q++)
            CHECKF(m.n_out[q] == 12 && memcmp(m.out[q], r->out[q], sizeof m.out[q]) == 0,
                   "config %zu request %d differs", c, q);
        uint64_t pre = qr_sched_num_preemptions(m.s);
        if (cfgs[c].preempt || cfgs[c].nb <= 24)
            CHECKF(pre > 0, "config %zu: expected preemptions", c);
        else
            CHECK(pre == 0);
        if (cfgs[c].prefix && cfgs[c].share)
            CHECK(qr_kv_pool_num_cached(m.pool) > 0);
        CHECKF((qr_sched_num_paused_steps(m.s) > 0) == (cfgs[c].pause > 0), "config %zu: %llu paused steps", c,
               (unsigned long long)qr_sched_num_paused_steps(m.s));
        sim_free(&m);
        if (cfgs[c].share)
            sim_free(&shared);
    }
    sim_free(&ref);
}

static void test_preempt_resume(void)
{
    /* 6 blocks of 4: each request alone needs 5 (8 + 12 - 1 tokens); two cannot both finish */
    struct sim m;
    sim_init(&m, 6, 4, false, 64, 8, 0);
    int32_t t[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    CHECK(qr_sched_add(m.s, 0, t, 8, 12, NULL, NULL) == QR_OK);
    t[0] = 9;
    CHECK(qr_sched_add(m.s, 1, t, 8, 12, NULL, NULL) == QR_OK);
    struct qr_sched_req *r1 = qr_sched_waiting(m.s, 1);
    int saw_preempt_step = 0;
    for (int step = 0; step < 200 && qr_sched_num_waiting(m.s) + qr_sched_num_running(m.s) > 0; step++) {
        uint64_t before = qr_sched_num_preemptions(m.s);
        int n_running_before = qr_sched_num_running(m.s);
        int n_left = sim_step(&m);
        if (qr_sched_num_preemptions(m.s) > before && !saw_preempt_step && n_left == 2) {
            saw_preempt_step = 1;
            /* the latest request (1) was preempted: blocks freed, back at the queue front */
            CHECK(n_running_before == 2);
            CHECK(qr_sched_num_running(m.s) == 1 && qr_sched_waiting(m.s, 0) == r1);
            CHECK(r1->n_computed == 0 && r1->kv.n_blocks == 0 && r1->n_tokens > 8);
        }
    }
    CHECK(saw_preempt_step);
    CHECK(m.n_out[0] == 12 && m.n_out[1] == 12);
    CHECK(m.bad_kv == 0 && m.bad_write == 0);
    sim_free(&m);
}

static void test_reject(void)
{
    struct sim m;
    sim_init(&m, 8, 4, false, 64, 8, 0);   /* 32 tokens, max_len 256 */
    int32_t t[40] = {0};
    CHECK(qr_sched_add(m.s, 0, t, 0, 4, NULL, NULL) == QR_E_INVALID_ARG);
    CHECK(qr_sched_add(m.s, 0, t, 4, 0, NULL, NULL) == QR_E_INVALID_ARG);
    CHECK(qr_sched_add(m.s, 0, t, 30, 4, NULL, NULL) == QR_E_INVALID_ARG);   /* 33 KV tokens > 32 */
    CHECK(strstr(qr_last_error(), "KV pool") != NULL);
    CHECK(qr_sched_add(m.s, 0, t, 29, 4, NULL, NULL) == QR_OK);              /* exactly 32 */
    CHECK(qr_sched_check_fit(m.s, 200, 57) == QR_E_INVALID_ARG);             /* over max_len */
    CHECK(strstr(qr_last_error(), "maximum context length is 256") != NULL);
    CHECK(qr_sched_num_waiting(m.s) == 1);
    sim_run(&m);
    CHECK(m.n_out[0] == 4);
    sim_free(&m);
}

static void test_max_seqs_and_cancel(void)
{
    struct sim m;
    sim_init(&m, 64, 4, true, 1000, 2, 0);
    add_reqs(&m, 5, 3, 0);
    struct qr_sched_out o;
    CHECK(qr_sched_schedule(m.s, &o) == QR_OK);
    CHECK(o.n_items == 2 && qr_sched_num_running(m.s) == 2 && qr_sched_num_waiting(m.s) == 3);
    qr_sched_update(m.s, &o);
    /* cancel a running and a waiting request: blocks come back */
    qr_sched_finish(m.s, qr_sched_running(m.s, 0));
    qr_sched_finish(m.s, qr_sched_waiting(m.s, 2));
    CHECK(qr_sched_num_running(m.s) == 1 && qr_sched_num_waiting(m.s) == 2);
    qr_sched_finish(m.s, qr_sched_running(m.s, 0));
    CHECK(qr_kv_pool_num_used(m.pool) == 0);
    sim_free(&m);   /* destroy frees the remaining waiting ones */
}

int main(void)
{
    test_budget_and_chunks();
    test_decode_budget();
    test_prefill_first();
    test_invariance();
    test_preempt_resume();
    test_reject();
    test_max_seqs_and_cancel();
    return qt_summary("test_scheduler");
}
