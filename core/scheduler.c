/* scheduler.c - continuous batching over the paged KV pool: token budget,
 * chunked prefill, FCFS admission with prefix-cache hits, preemption by
 * recompute (vLLM v1 scheduler.py concepts), prefill first with a bounded
 * decode pause.  See qr_sched.h. */
#include "qrun/qr_sched.h"

#include <stdlib.h>
#include <string.h>

struct qr_sched {
    struct qr_sched_opts o;
    struct qr_kv_pool *pool;
    struct qr_sched_req **waiting;   /* (n_waiting) front = next to admit */
    int n_waiting, cap_waiting;
    struct qr_sched_req **running;   /* (n_running) admission order; the last is preempted first */
    int n_running, cap_running;
    struct qr_sched_item *items;     /* (max_seqs) this step's plan */
    int n_items;
    int32_t *hit;                    /* (max_blocks_per_seq) prefix lookup scratch */
    int hit_cap;
    uint64_t steps, preemptions, paused_steps;
    bool pausing;                    /* in a run of steps with prompt work and decodes (decode_pause_ms) */
    double pause_t0;                 /* when that run began */
};

qr_status qr_sched_create(const struct qr_sched_opts *o, struct qr_kv_pool *pool, struct qr_sched **out)
{
    if (!o || !pool || !out || o->max_batched_tokens <= 0 || o->max_seqs <= 0 || o->max_len <= 0)
        return qr_set_error(QR_E_INVALID_ARG, "scheduler: need max_batched_tokens, max_seqs and max_len > 0");
    if (o->decode_budget < 0)
        return qr_set_error(QR_E_INVALID_ARG, "scheduler: decode_budget must be >= 0");
    if (o->decode_pause_ms < 0)
        return qr_set_error(QR_E_INVALID_ARG, "scheduler: decode_pause_ms must be >= 0");
    struct qr_sched *s = calloc(1, sizeof *s);
    if (!s)
        return qr_set_error(QR_E_OOM_HOST, "scheduler: out of host memory");
    s->o = *o;
    s->pool = pool;
    int bs = qr_kv_pool_block_size(pool);
    s->hit_cap = o->max_len / bs + 2;
    s->items = malloc((size_t)o->max_seqs * sizeof *s->items);
    s->hit = malloc((size_t)s->hit_cap * sizeof *s->hit);
    if (!s->items || !s->hit) {
        qr_sched_destroy(s);
        return qr_set_error(QR_E_OOM_HOST, "scheduler: out of host memory");
    }
    *out = s;
    return QR_OK;
}

static void req_free(struct qr_sched *s, struct qr_sched_req *r)
{
    qr_kv_seq_free(s->pool, &r->kv);
    qr_kv_seq_release(&r->kv);
    free(r->tokens);
    free(r);
}

void qr_sched_destroy(struct qr_sched *s)
{
    if (!s)
        return;
    for (int i = s->n_running - 1; i >= 0; i--)
        req_free(s, s->running[i]);
    for (int i = 0; i < s->n_waiting; i++)
        req_free(s, s->waiting[i]);
    free(s->waiting);
    free(s->running);
    free(s->items);
    free(s->hit);
    free(s);
}

qr_status qr_sched_check_fit(const struct qr_sched *s, int n_prompt, int max_tokens)
{
    if (n_prompt < 1)
        return qr_set_error(QR_E_INVALID_ARG, "the prompt is empty");
    if (max_tokens < 1)
        return qr_set_error(QR_E_INVALID_ARG, "max_tokens must be at least 1, got %d", max_tokens);
    if ((int64_t)n_prompt + max_tokens > s->o.max_len)
        return qr_set_error(QR_E_INVALID_ARG,
                            "this model's maximum context length is %d tokens; the request has %d prompt tokens "
                            "plus %d max_tokens (%lld)",
                            s->o.max_len, n_prompt, max_tokens, (long long)n_prompt + max_tokens);
    int bs = qr_kv_pool_block_size(s->pool), nb = qr_kv_pool_num_blocks(s->pool);
    /* the last generated token is never fed back, so its KV is never written */
    int64_t kv_tokens = (int64_t)n_prompt + max_tokens - 1;
    int64_t blocks = (kv_tokens + bs - 1) / bs;
    if (blocks > nb)
        return qr_set_error(QR_E_INVALID_ARG,
                            "the request needs %lld KV blocks (%d prompt + %d max_tokens tokens) but the KV pool "
                            "holds only %d blocks of %d tokens (%lld tokens)",
                            (long long)blocks, n_prompt, max_tokens, nb, bs, (long long)nb * bs);
    return QR_OK;
}

static bool grow(void *pp, int *cap, int need, size_t elem)
{
    if (need <= *cap)
        return true;
    int c = *cap ? *cap : 16;
    while (c < need)
        c *= 2;
    void *n = realloc(*(void **)pp, (size_t)c * elem);
    if (!n)
        return false;
    *(void **)pp = n;
    *cap = c;
    return true;
}

qr_status qr_sched_add(struct qr_sched *s, uint64_t id, const int32_t *prompt, int n_prompt, int max_tokens,
                       void *user, struct qr_sched_req **out)
{
    qr_status st = qr_sched_check_fit(s, n_prompt, max_tokens);
    if (st != QR_OK)
        return st;
    if (!grow(&s->waiting, &s->cap_waiting, s->n_waiting + 1, sizeof *s->waiting))
        return qr_set_error(QR_E_OOM_HOST, "scheduler: out of host memory");
    struct qr_sched_req *r = calloc(1, sizeof *r);
    int cap = n_prompt + (max_tokens < 64 ? max_tokens : 64);
    int32_t *toks = r ? malloc((size_t)cap * sizeof *toks) : NULL;
    if (!r || !toks) {
        free(r);
        free(toks);
        return qr_set_error(QR_E_OOM_HOST, "scheduler: out of host memory");
    }
    memcpy(toks, prompt, (size_t)n_prompt * sizeof *toks);
    r->id = id;
    r->tokens = toks;
    r->cap = cap;
    r->n_tokens = r->n_prompt = n_prompt;
    r->max_tokens = max_tokens;
    r->state = QR_REQ_WAITING;
    r->user = user;
    r->item = -1;
    qr_kv_seq_init(&r->kv);
    s->waiting[s->n_waiting++] = r;
    if (out)
        *out = r;
    return QR_OK;
}

/* drop item k of this step's plan, keeping the order */
static void item_remove(struct qr_sched *s, int k)
{
    s->items[k].req->item = -1;
    memmove(&s->items[k], &s->items[k + 1], (size_t)(s->n_items - k - 1) * sizeof *s->items);
    s->n_items--;
    for (int i = k; i < s->n_items; i++)
        s->items[i].req->item = i;
}

static void remove_from(struct qr_sched_req **arr, int *n, struct qr_sched_req *r)
{
    for (int i = 0; i < *n; i++) {
        if (arr[i] == r) {
            memmove(&arr[i], &arr[i + 1], (size_t)(*n - i - 1) * sizeof *arr);
            (*n)--;
            return;
        }
    }
}

void qr_sched_preempt(struct qr_sched *s, struct qr_sched_req *r)
{
    if (r->state != QR_REQ_RUNNING)
        return;
    /* the waiting queue always has room: grow before unlinking */
    if (!grow(&s->waiting, &s->cap_waiting, s->n_waiting + 1, sizeof *s->waiting)) {
        /* cannot requeue: leave it running (the caller sees no progress, never a lost request) */
        return;
    }
    if (r->item >= 0)
        item_remove(s, r->item);
    remove_from(s->running, &s->n_running, r);
    qr_kv_seq_free(s->pool, &r->kv);
    r->n_computed = 0;
    r->n_cached = 0;
    r->n_preempted++;
    r->state = QR_REQ_WAITING;
    memmove(&s->waiting[1], &s->waiting[0], (size_t)s->n_waiting * sizeof *s->waiting);
    s->waiting[0] = r;
    s->n_waiting++;
    s->preemptions++;
    qr_log(QR_LOG_DEBUG, "scheduler: request %llu preempted (recompute); %d blocks free",
           (unsigned long long)r->id, qr_kv_pool_num_free(s->pool));
}

static void item_add(struct qr_sched *s, struct qr_sched_req *r, int n_new)
{
    struct qr_sched_item *it = &s->items[s->n_items];
    it->req = r;
    it->start = r->n_computed;
    it->n_new = n_new;
    it->needs_logits = r->n_computed + n_new == r->n_tokens;
    it->from_decode_budget = false;
    r->item = s->n_items++;
}

/* a running request's one token left is a decode once it has generated (a prompt's last token is prompt work) */
static bool is_decode(const struct qr_sched_req *r)
{
    return r->n_tokens - r->n_computed == 1 && r->n_tokens > r->n_prompt;
}

/* a decode prefill first may pause: its request has shown the client output already */
static bool pausable(const struct qr_sched_req *r)
{
    return is_decode(r) && !r->awaiting_output;
}

/* the front waiting request's admission with a budget: its prefix-cache hit (nh blocks, in s->hit), the tokens it
 * would compute now (*n_new) and whether the free blocks hold them */
static bool front_fits(struct qr_sched *s, int budget, int *nh, int *n_new)
{
    struct qr_sched_req *r = s->waiting[0];
    int bs = qr_kv_pool_block_size(s->pool);
    *nh = qr_kv_prefix_lookup(s->pool, r->tokens, r->n_tokens, s->hit, s->hit_cap);
    int computed = *nh * bs;
    *n_new = r->n_tokens - computed < budget ? r->n_tokens - computed : budget;
    int need = (computed + *n_new + bs - 1) / bs - *nh;
    int avail = qr_kv_pool_num_free(s->pool) - qr_kv_count_free_among(s->pool, s->hit, *nh);
    return need <= avail;
}

/* one pass over the running requests: those with one token left (pass 0; without the decodes in a paused step) or
 * their partial prefills (pass 1), oldest first; a request that needs a block and finds none preempts the latest
 * running one (perhaps itself) */
static qr_status schedule_running(struct qr_sched *s, int pass, bool pause, int *budget, int *dbudget)
{
    for (int i = 0; i < s->n_running && (*budget > 0 || (pass == 0 && *dbudget > 0)); i++) {
        struct qr_sched_req *r = s->running[i];
        if (r->item >= 0)
            continue;
        int remaining = r->n_tokens - r->n_computed;
        if (remaining <= 0 || (pass == 0) != (remaining == 1) || (pause && pausable(r)))
            continue;
        bool from_d = pass == 0 && *dbudget > 0;
        int n_new = from_d ? 1 : remaining < *budget ? remaining : *budget;
        bool scheduled = false;
        for (;;) {
            qr_status st;
            if (qr_kv_seq_alloc(s->pool, &r->kv, r->n_computed + n_new, &st)) {
                scheduled = true;
                break;
            }
            if (st != QR_OK)
                return st;
            struct qr_sched_req *victim = s->running[s->n_running - 1];
            if (victim->item >= 0) {
                if (s->items[victim->item].from_decode_budget)
                    *dbudget += s->items[victim->item].n_new;
                else
                    *budget += s->items[victim->item].n_new;
            }
            uint64_t before = s->preemptions;
            qr_sched_preempt(s, victim);
            if (s->preemptions == before)
                return qr_set_error(QR_E_OOM_HOST, "scheduler: out of host memory while preempting");
            if (victim == r)
                break;
        }
        if (scheduled) {
            item_add(s, r, n_new);
            if (from_d) {
                s->items[r->item].from_decode_budget = true;
                *dbudget -= n_new;
            } else {
                *budget -= n_new;
            }
        }
    }
    return QR_OK;
}

static int count_pausable(const struct qr_sched *s)
{
    int n = 0;
    for (int i = 0; i < s->n_running; i++)
        n += pausable(s->running[i]);
    return n;
}

/* whether this step has prompt work: a running request with prompt tokens left (a chunk, a recompute), or a front
 * waiting request that the sequence cap and the free blocks admit now (the admission loop's test, whole budget) */
static bool prompt_work_pending(struct qr_sched *s)
{
    for (int i = 0; i < s->n_running; i++)
        if (s->running[i]->n_tokens - s->running[i]->n_computed >= 1 && !is_decode(s->running[i]))
            return true;
    int nh, n_new;
    return s->n_waiting > 0 && s->n_running < s->o.max_seqs && front_fits(s, s->o.max_batched_tokens, &nh, &n_new);
}

/* prefill first: whether this step leaves the running decodes out (and keeps the pause clock) */
static bool decide_pause(struct qr_sched *s)
{
    if (s->o.decode_pause_ms <= 0 || count_pausable(s) == 0 || !prompt_work_pending(s)) {
        s->pausing = false;
        return false;
    }
    double now = s->o.clock_s ? s->o.clock_s(s->o.clock_user) : qr_time_s();
    if (!s->pausing) {
        s->pausing = true;
        s->pause_t0 = now;
    }
    return (now - s->pause_t0) * 1000.0 < (double)s->o.decode_pause_ms;
}

qr_status qr_sched_schedule(struct qr_sched *s, struct qr_sched_out *out)
{
    memset(out, 0, sizeof *out);
    s->steps++;
    s->n_items = 0;
    for (int i = 0; i < s->n_running; i++)
        s->running[i]->item = -1;
    int budget = s->o.max_batched_tokens, dbudget = s->o.decode_budget;
    int preempted = 0;
    uint64_t pre0 = s->preemptions;
    if (s->o.debug_preempt_every > 0 && s->steps % (uint64_t)s->o.debug_preempt_every == 0 && s->n_running >= 2)
        qr_sched_preempt(s, s->running[s->n_running - 1]);

    /* running requests: one token left (pass 0; no decodes in a paused step), then partial prefills (pass 1) */
    bool pause = decide_pause(s);
    for (int pass = 0; pass < 2; pass++) {
        qr_status st = schedule_running(s, pass, pause, &budget, &dbudget);
        if (st != QR_OK)
            return st;
    }
    preempted = (int)(s->preemptions - pre0);

    /* waiting requests, first come first served; none in a step that preempted */
    int bs = qr_kv_pool_block_size(s->pool);
    while (!preempted && s->n_waiting > 0 && s->n_running < s->o.max_seqs && budget > 0) {
        struct qr_sched_req *r = s->waiting[0];
        int nh, n_new;
        if (!front_fits(s, budget, &nh, &n_new))
            break;
        int computed = nh * bs;
        if (!grow(&s->running, &s->cap_running, s->n_running + 1, sizeof *s->running))
            return qr_set_error(QR_E_OOM_HOST, "scheduler: out of host memory");
        qr_status st = qr_kv_seq_take_prefix(s->pool, &r->kv, r->tokens, s->hit, nh);
        if (st != QR_OK)
            return st;
        if (!qr_kv_seq_alloc(s->pool, &r->kv, computed + n_new, &st)) {
            qr_kv_seq_free(s->pool, &r->kv);
            return st != QR_OK ? st : qr_set_error(QR_E_INTERNAL, "scheduler: block accounting is off");
        }
        memmove(&s->waiting[0], &s->waiting[1], (size_t)(s->n_waiting - 1) * sizeof *s->waiting);
        s->n_waiting--;
        r->state = QR_REQ_RUNNING;
        r->n_computed = computed;
        r->n_cached = computed;
        s->running[s->n_running++] = r;
        item_add(s, r, n_new);
        budget -= n_new;
    }
    /* a paused step that found no prompt work after all (a prefix hit's blocks went, a preemption) runs the decodes */
    if (pause && s->n_items == 0) {
        pause = false;
        qr_status st = schedule_running(s, 0, false, &budget, &dbudget);
        if (st != QR_OK)
            return st;
        preempted = (int)(s->preemptions - pre0);
    }
    if (pause) {
        for (int i = 0; i < s->n_running; i++)
            out->n_paused += s->running[i]->item < 0 && pausable(s->running[i]);
        s->paused_steps++;
    }

    out->items = s->items;
    out->n_items = s->n_items;
    out->n_preempted = preempted;
    for (int i = 0; i < s->n_items; i++) {
        const struct qr_sched_item *it = &s->items[i];
        out->n_tokens += it->n_new;
        out->n_decode += it->n_new == 1 && it->needs_logits && it->start >= it->req->n_prompt;
        if (it->req->kv.n_blocks > out->max_blocks)
            out->max_blocks = it->req->kv.n_blocks;
    }
    return QR_OK;
}

void qr_sched_update(struct qr_sched *s, const struct qr_sched_out *out)
{
    for (int i = 0; i < out->n_items; i++) {
        struct qr_sched_req *r = out->items[i].req;
        r->n_computed += out->items[i].n_new;
        qr_kv_seq_commit(s->pool, &r->kv, r->tokens, r->n_computed);
    }
}

qr_status qr_sched_append(struct qr_sched *s, struct qr_sched_req *r, int32_t token)
{
    (void)s;
    if (!grow(&r->tokens, &r->cap, r->n_tokens + 1, sizeof *r->tokens))
        return qr_set_error(QR_E_OOM_HOST, "scheduler: out of host memory");
    r->tokens[r->n_tokens++] = token;
    return QR_OK;
}

void qr_sched_finish(struct qr_sched *s, struct qr_sched_req *r)
{
    if (!r)
        return;
    if (r->state == QR_REQ_RUNNING)
        remove_from(s->running, &s->n_running, r);
    else if (r->state == QR_REQ_WAITING)
        remove_from(s->waiting, &s->n_waiting, r);
    r->state = QR_REQ_FINISHED;
    req_free(s, r);
}

int qr_sched_num_waiting(const struct qr_sched *s) { return s->n_waiting; }
int qr_sched_num_running(const struct qr_sched *s) { return s->n_running; }
uint64_t qr_sched_num_preemptions(const struct qr_sched *s) { return s->preemptions; }
uint64_t qr_sched_num_steps(const struct qr_sched *s) { return s->steps; }
uint64_t qr_sched_num_paused_steps(const struct qr_sched *s) { return s->paused_steps; }
struct qr_sched_req *qr_sched_waiting(const struct qr_sched *s, int i)
{
    return i >= 0 && i < s->n_waiting ? s->waiting[i] : NULL;
}
struct qr_sched_req *qr_sched_running(const struct qr_sched *s, int i)
{
    return i >= 0 && i < s->n_running ? s->running[i] : NULL;
}
struct qr_kv_pool *qr_sched_pool(const struct qr_sched *s) { return s->pool; }
