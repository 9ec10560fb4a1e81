/* engine.c - the serving engine behind qrun.h: continuous batching over the
 * paged KV cache (scheduler.c, kv_cache.c), one forward pass per step
 * (qr_rt_forward), per-request sampling, streaming detokenisation with stop
 * strings held back, finish reasons, a background engine thread with
 * thread-safe add/cancel, and stats.
 *
 * Threading: the scheduler, the pool and every request's state belong to the
 * engine thread (or to the caller of qr_engine_step).  Other threads touch
 * only the incoming queue, the cancel list, the live-id list and the stats,
 * under e->mu.  Callbacks run on the engine thread without the lock held. */
#include "qrun/qrun.h"
#include "qrun/qr_registry.h"
#include "qrun/qr_pool.h"
#include "qrun/qr_sched.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TEXT_CAP 1024   /* qr_tok_stream_push's documented bound for Qwen */

struct eng_req {
    uint64_t id;
    struct qr_request_params p;
    char *stop[QR_MAX_STOP];
    size_t stop_len[QR_MAX_STOP];
    int n_stop;
    struct qr_sampler *sampler;
    struct qr_tok_stream *ts;
    qr_token_cb cb;
    void *user;
    int32_t *prompt;              /* until handed to the scheduler */
    int n_prompt;
    struct qr_sched_req *sr;
    char *pend;                   /* decoded text not yet emitted (held back) */
    size_t pend_len, pend_cap;
    double t_arrival, t_first;
    int n_gen, n_cached;
    bool simple_greedy;           /* greedy, no penalties, no logprobs: argmax is enough */
    bool topk_ok;                 /* sampled from its row's best QR_TOPK_MAX alone (qr_sampler_topk_ok, no logprobs) */
    bool topk_raw;                /* with penalties: its candidates come unscaled, QR_TOPK_MAX of them */
    bool shown;                   /* some generated text has been emitted (the scheduler's awaiting_output) */
    bool done;
    struct eng_req *next;         /* incoming queue */
};

/* one sampled token with its logprobs */
struct eng_pick {
    int32_t tok;
    float lp;
    int n_top;
    int32_t top_ids[QR_MAX_TOP_LOGPROBS];
    float top_lp[QR_MAX_TOP_LOGPROBS];
};

struct qr_engine {
    struct qr_engine_opts o;
    char *model_dir, *backend, *config_path;
    struct qr_config_ini *ini;
    struct qr_device *dev;
    struct qr_model *model;
    struct qr_tokenizer *tok;
    enum qr_chat_variant chat;
    struct qr_runtime *rt;
    struct qr_kv_pool *pool;
    struct qr_sched *sched;
    int vocab, max_len, bs, nb, max_seqs, max_step_tokens;
    bool bucketing;
    int32_t eos[2 * QR_MAX_EOS];
    int n_eos;

    pthread_mutex_t mu;
    pthread_cond_t cv, idle_cv;
    struct eng_req *in_head, *in_tail;
    int n_incoming;
    uint64_t *cancels;
    int n_cancel, cap_cancel;
    uint64_t *live;
    int n_live, cap_live;
    uint64_t next_id;
    bool thread_on, stop, has_work, healthy;
    pthread_t th;
    struct qr_engine_stats st;

    /* step buffers (engine thread) */
    int32_t *b_tokens, *b_pos, *b_slots, *b_qstart, *b_seqlens, *b_outidx, *b_argmax, *b_bt;
    /* sampling on the device: each output row's best tk_k (ids, values) and the rows' 1 / temperature */
    bool dev_topk;                /* the backend has the top-k op (QRUN_DEVICE_TOPK=0: always whole rows) */
    int tk_k;                     /* this step's k (0: no top-k step) */
    uint64_t n_topk_steps, n_logits_steps, n_topk_rows_refetched;
    float *tk_row;                /* a whole row read back when a row's candidates could not decide */
    int32_t *tk_ids;
    float *tk_vals, *tk_inv_t;
    size_t bt_cap;
    int *out_item;
    float *logits;
    struct eng_req **fin;
    /* sampled rows of a step (filled in parallel on the pool, then emitted in order) */
    struct qr_pool *spool;
    struct eng_pick *pick;
    /* QRUN_STEP_TRACE=FILE: one line per step (timings, tokens, decodes) for diagnosing the scheduler */
    FILE *trace;
    double t_trace0;
    /* step-time split, engine thread only; copied into st by update_stats */
    uint64_t n_dec_steps, n_dec_tokens, n_prompt_steps, prompt_computed;
    double t_dec_steps, t_prompt_steps;
    char text[TEXT_CAP];
};

/* ---- small helpers ---- */

void qr_engine_opts_default(struct qr_engine_opts *o)
{
    memset(o, 0, sizeof *o);
    o->backend = "auto";
    o->device_index = -1;
    o->gpu_mem_util = 0.90;
    o->max_num_seqs = 256;
    o->max_num_batched_tokens = 8192;
    o->enable_prefix_caching = true;
    o->block_size = QR_DEFAULT_BLOCK_SIZE;
    o->kv_dtype = QR_DTYPE_COUNT;
}

const char *qr_finish_reason_str(enum qr_finish_reason r)
{
    switch (r) {
    case QR_FINISH_NONE: return "none";
    case QR_FINISH_STOP: return "stop";
    case QR_FINISH_LENGTH: return "length";
    case QR_FINISH_CANCELLED: return "cancelled";
    case QR_FINISH_ERROR: return "error";
    }
    return "unknown";
}

void qr_request_params_default(const struct qr_model *m, struct qr_request_params *p)
{
    memset(p, 0, sizeof *p);
    p->sampling.temperature = 1.0f;
    p->sampling.top_p = 1.0f;
    p->sampling.repetition_penalty = 1.0f;
    if (m) {
        const struct qr_gen_defaults *g = &m->gen;
        p->sampling.temperature = g->do_sample ? g->temperature : 0.0f;
        p->sampling.top_k = g->top_k;
        p->sampling.top_p = g->top_p > 0 ? g->top_p : 1.0f;
        p->sampling.min_p = g->min_p;
        p->sampling.repetition_penalty = g->repetition_penalty > 0 ? g->repetition_penalty : 1.0f;
        p->sampling.presence_penalty = g->presence_penalty;
        p->sampling.frequency_penalty = g->frequency_penalty;
    }
    p->max_tokens = 256;
    p->logprobs = -1;
    p->skip_special = true;
}

static char *dupstr(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static bool grow_ids(uint64_t **a, int *cap, int need)
{
    if (need <= *cap)
        return true;
    int c = *cap ? *cap * 2 : 64;
    while (c < need)
        c *= 2;
    uint64_t *n = realloc(*a, (size_t)c * sizeof *n);
    if (!n)
        return false;
    *a = n;
    *cap = c;
    return true;
}

static void live_remove(struct qr_engine *e, uint64_t id)
{
    for (int i = 0; i < e->n_live; i++)
        if (e->live[i] == id) {
            e->live[i] = e->live[--e->n_live];
            return;
        }
}

static void req_free(struct eng_req *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n_stop; i++)
        free(r->stop[i]);
    qr_sampler_free(r->sampler);
    qr_tok_stream_free(r->ts);
    free(r->prompt);
    free(r->pend);
    free(r);
}

static bool pend_append(struct eng_req *r, const char *s, size_t n)
{
    if (r->pend_len + n + 1 > r->pend_cap) {
        size_t c = r->pend_cap ? r->pend_cap : 256;
        while (c < r->pend_len + n + 1)
            c *= 2;
        char *np = realloc(r->pend, c);
        if (!np)
            return false;
        r->pend = np;
        r->pend_cap = c;
    }
    memcpy(r->pend + r->pend_len, s, n);
    r->pend_len += n;
    r->pend[r->pend_len] = 0;
    return true;
}

/* ---- events ---- */

static void emit(struct qr_engine *e, struct eng_req *r, int32_t token, const char *text, size_t text_len,
                 float logprob, const int32_t *top_ids, const float *top_lp, int n_top, enum qr_finish_reason fin,
                 const char *error)
{
    (void)e;
    struct qr_token_event ev;
    memset(&ev, 0, sizeof ev);
    ev.req_id = r->id;
    ev.token = token;
    ev.text = text ? text : "";
    ev.text_len = text ? text_len : 0;
    ev.logprob = logprob;
    ev.n_top = n_top;
    for (int i = 0; i < n_top; i++) {
        ev.top_ids[i] = top_ids[i];
        ev.top_logprobs[i] = top_lp[i];
    }
    ev.finish = fin;
    ev.error = error;
    ev.n_prompt_tokens = r->n_prompt;
    ev.n_cached_tokens = r->n_cached;
    ev.n_gen_tokens = r->n_gen;
    ev.t_arrival = r->t_arrival;
    ev.t_first_token = r->t_first;
    ev.t_now = qr_time_s();
    if (r->cb)
        r->cb(&ev, r->user);
}

/* ends a request that produced no token this step (cancel, error) */
static void end_request(struct qr_engine *e, struct eng_req *r, enum qr_finish_reason fin, const char *error)
{
    emit(e, r, -1, NULL, 0, 0.0f, NULL, NULL, 0, fin, error);
    r->done = true;
}

/* ---- creation ---- */

static qr_status alloc_step_buffers(struct qr_engine *e)
{
    size_t T = (size_t)e->max_step_tokens, S = (size_t)e->max_seqs;
    e->b_tokens = malloc(T * sizeof(int32_t));
    e->b_pos = malloc(T * sizeof(int32_t));
    e->b_slots = malloc(T * sizeof(int32_t));
    e->b_qstart = malloc((S + 1) * sizeof(int32_t));
    e->b_seqlens = malloc(S * sizeof(int32_t));
    e->b_outidx = malloc(S * sizeof(int32_t));
    e->b_argmax = malloc(S * sizeof(int32_t));
    e->out_item = malloc(S * sizeof(int));
    e->fin = malloc(S * sizeof(struct eng_req *));
    e->pick = malloc(S * sizeof(struct eng_pick));
    if (!e->b_tokens || !e->b_pos || !e->b_slots || !e->b_qstart || !e->b_seqlens || !e->b_outidx || !e->b_argmax ||
        !e->out_item || !e->fin || !e->pick)
        return qr_set_error(QR_E_OOM_HOST, "engine: out of host memory for step buffers");
    /* sampling a row of 151936 logits takes 0.2-1.5 ms on one core (temperature, top-k/top-p): the rows of a step
     * are sampled in parallel, each with its own request's sampler, so the tokens do not depend on the threads */
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    int nt = nc > 8 ? 8 : nc < 1 ? 1 : (int)nc;
    const char *env = getenv("QRUN_SAMPLER_THREADS");
    if (env && atoi(env) > 0)
        nt = atoi(env) > 64 ? 64 : atoi(env);
    return qr_pool_create(nt, "engine sampler", &e->spool);
}

qr_status qr_engine_create(const struct qr_engine_opts *opts, struct qr_engine **out)
{
    if (!opts || !out)
        return qr_set_error(QR_E_INVALID_ARG, "qr_engine_create: NULL argument");
    if (!opts->model_dir)
        return qr_set_error(QR_E_INVALID_ARG, "qr_engine_create: no model directory given");
    struct qr_engine *e = calloc(1, sizeof *e);
    if (!e)
        return qr_set_error(QR_E_OOM_HOST, "engine: out of host memory");
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    pthread_cond_init(&e->idle_cv, NULL);
    e->o = *opts;
    e->healthy = true;
    e->next_id = 1;
    struct qr_engine_opts *o = &e->o;
    if (o->max_num_seqs <= 0) o->max_num_seqs = 256;
    if (o->max_num_batched_tokens <= 0) o->max_num_batched_tokens = 8192;
    if (o->block_size <= 0) o->block_size = QR_DEFAULT_BLOCK_SIZE;
    if (o->gpu_mem_util <= 0) o->gpu_mem_util = 0.90;
    e->model_dir = dupstr(opts->model_dir);
    e->backend = dupstr(opts->backend ? opts->backend : "auto");
    e->config_path = dupstr(opts->config_path);
    o->model_dir = e->model_dir;
    o->backend = e->backend;
    o->config_path = e->config_path;
    o->progress = NULL;
    qr_status st;
    if (!e->model_dir || !e->backend || (opts->config_path && !e->config_path)) {
        st = qr_set_error(QR_E_OOM_HOST, "engine: out of host memory");
        goto fail;
    }
    if ((st = qr_ini_load(e->config_path, &e->ini)) != QR_OK)
        goto fail;
    struct qr_backend_opts bo;
    memset(&bo, 0, sizeof bo);
    bo.device_index = o->device_index;
    bo.mem_fraction = opts->gpu_mem_util > 0 ? opts->gpu_mem_util : 0;
    bo.n_threads = o->n_threads;
    if ((st = qr_backend_open(e->ini, e->backend, &bo, &e->dev)) != QR_OK)
        goto fail;
    if ((st = qr_model_open(e->model_dir, &e->model)) != QR_OK)
        goto fail;
    if ((st = qr_tok_load_dir(e->model_dir, &e->tok)) != QR_OK)
        goto fail;
    if (qr_chat_detect(e->model_dir, &e->chat) != QR_OK)
        e->chat = QR_CHAT_UNKNOWN;   /* raw prompts still work; the chat front ends report it */
    struct qr_device_props props;
    if ((st = qr_dev_props(e->dev, &props)) != QR_OK)
        goto fail;
    enum qr_dtype kvt = o->kv_dtype;   /* the runtime rejects what the device cannot hold */
    if (kvt == QR_DTYPE_COUNT)
        kvt = (props.caps & QR_CAP_HOST_MEMORY) ? QR_DTYPE_F32
              : (qr_dev_supports(e->dev, QR_OP_ATTN, QR_DTYPE_BF16) && qr_dev_supports(e->dev, QR_OP_KV_STORE, QR_DTYPE_BF16))
                  ? QR_DTYPE_BF16
                  : QR_DTYPE_F16;   /* no BF16 (Turing): F16 KV */
    e->max_seqs = o->max_num_seqs;
    /* the step holds the budget plus the decode allowance (one token per running request by default): a request's
     * decode never cuts a prompt that fits the budget into a second step (mean TTFT of a burst of long prompts) */
    int dbudget = o->decode_budget == 0 ? o->max_num_seqs : o->decode_budget < 0 ? 0 : o->decode_budget;
    if (dbudget > o->max_num_seqs)
        dbudget = o->max_num_seqs;
    e->max_step_tokens = o->max_num_batched_tokens + dbudget;
    e->bucketing = o->decode_bucketing > 0 || (o->decode_bucketing == 0 && (props.caps & QR_CAP_GRAPH_REPLAY));
    struct qr_runtime_opts ro = {
        .kv_dtype = kvt,
        .block_size = o->block_size,
        .num_blocks = o->num_blocks,
        .mem_fraction = o->gpu_mem_util,
        .max_model_len = o->max_model_len,
        .max_batch_tokens = e->max_step_tokens,
        .max_seqs = e->max_seqs,
        .max_out = e->max_seqs,
    };
    if ((st = qr_rt_create(e->model, e->dev, &ro, opts->progress, opts->progress_user, &e->rt)) != QR_OK)
        goto fail;
    e->vocab = e->model->cfg.vocab_size;
    {
        const char *tk = getenv("QRUN_DEVICE_TOPK");
        e->dev_topk = qr_rt_has_topk(e->rt) && !(tk && !strcmp(tk, "0"));
    }
    e->nb = qr_rt_num_blocks(e->rt);
    e->bs = qr_rt_block_size(e->rt);
    e->max_len = qr_rt_max_model_len(e->rt);
    qr_log(QR_LOG_INFO, "KV cache: %d blocks x %d tokens = %lld tokens (%s), max model len %d", e->nb, e->bs,
           (long long)e->nb * e->bs, qr_dtype_name(kvt), e->max_len);
    struct qr_kv_pool_opts po = {.num_blocks = e->nb, .block_size = e->bs,
                                 .enable_prefix_caching = o->enable_prefix_caching};
    if ((st = qr_kv_pool_create(&po, &e->pool)) != QR_OK)
        goto fail;
    struct qr_sched_opts so = {.max_batched_tokens = o->max_num_batched_tokens, .max_seqs = e->max_seqs,
                               .max_len = e->max_len, .debug_preempt_every = o->debug_preempt_every,
                               .decode_budget = e->max_step_tokens - o->max_num_batched_tokens,
                               .decode_pause_ms = o->decode_pause_ms == 0   ? QR_DEFAULT_DECODE_PAUSE_MS
                                                  : o->decode_pause_ms < 0 ? 0
                                                                           : o->decode_pause_ms};
    if ((st = qr_sched_create(&so, e->pool, &e->sched)) != QR_OK)
        goto fail;
    /* EOS: generation_config's ids, else config.json's */
    const struct qr_model *m = e->model;
    for (int i = 0; i < m->gen.n_eos && e->n_eos < 2 * QR_MAX_EOS; i++)
        e->eos[e->n_eos++] = m->gen.eos_token_ids[i];
    if (e->n_eos == 0)
        for (int i = 0; i < m->cfg.n_eos && e->n_eos < 2 * QR_MAX_EOS; i++)
            e->eos[e->n_eos++] = m->cfg.eos_token_ids[i];
    if ((st = alloc_step_buffers(e)) != QR_OK)
        goto fail;
    const char *tr = getenv("QRUN_STEP_TRACE");
    if (tr && *tr) {
        if (!(e->trace = fopen(tr, "w")))
            qr_log(QR_LOG_WARN, "engine: cannot open QRUN_STEP_TRACE file %s; no step trace", tr);
        else
            fprintf(e->trace, "# t_ms sched_ms forward_ms emit_ms items tokens decodes prompt_tokens waiting running "
                              "max_blocks preempted paused_decodes kv_tokens\n");
        e->t_trace0 = qr_time_s();
    }
    e->st.kv_blocks_total = e->nb;
    e->st.healthy = true;
    *out = e;
    return QR_OK;
fail:
    qr_engine_destroy(e);
    return st;
}

/* ---- add / cancel (any thread) ---- */

qr_status qr_engine_add(struct qr_engine *e, const int32_t *prompt, int n_prompt, const struct qr_request_params *pp,
                        qr_token_cb cb, void *user, uint64_t *req_id)
{
    if (!e)
        return qr_set_error(QR_E_INVALID_ARG, "qr_engine_add: NULL engine");
    struct qr_request_params defp;
    if (!pp) {
        qr_request_params_default(e->model, &defp);
        pp = &defp;
    }
    if (!prompt || n_prompt < 1)
        return qr_set_error(QR_E_INVALID_ARG, "the prompt is empty");
    for (int i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= e->vocab)
            return qr_set_error(QR_E_INVALID_ARG, "prompt token %d has id %d, outside the vocabulary [0, %d)", i,
                                prompt[i], e->vocab);
    if (pp->logprobs < -1 || pp->logprobs > QR_MAX_TOP_LOGPROBS)
        return qr_set_error(QR_E_INVALID_ARG, "logprobs must be -1 (off) or 0..%d, got %d", QR_MAX_TOP_LOGPROBS,
                            pp->logprobs);
    if (pp->n_stop < 0 || pp->n_stop > QR_MAX_STOP || pp->n_stop_ids < 0 || pp->n_stop_ids > QR_MAX_STOP)
        return qr_set_error(QR_E_INVALID_ARG, "at most %d stop strings and %d stop ids", QR_MAX_STOP, QR_MAX_STOP);
    for (int i = 0; i < pp->n_stop; i++)
        if (!pp->stop[i] || !pp->stop[i][0])
            return qr_set_error(QR_E_INVALID_ARG, "stop string %d is empty", i);
    qr_status st = qr_sampler_params_check(&pp->sampling, e->vocab);
    if (st != QR_OK)
        return st;
    if ((st = qr_sched_check_fit(e->sched, n_prompt, pp->max_tokens)) != QR_OK)
        return st;
    struct eng_req *r = calloc(1, sizeof *r);
    if (!r)
        return qr_set_error(QR_E_OOM_HOST, "engine: out of host memory");
    r->p = *pp;
    for (int i = 0; i < QR_MAX_STOP; i++)
        r->p.stop[i] = NULL;
    for (int i = 0; i < pp->n_stop; i++) {
        if (!(r->stop[i] = dupstr(pp->stop[i]))) {
            req_free(r);
            return qr_set_error(QR_E_OOM_HOST, "engine: out of host memory");
        }
        r->stop_len[i] = strlen(r->stop[i]);
        r->n_stop++;
    }
    r->cb = cb;
    r->user = user;
    r->n_prompt = n_prompt;
    r->prompt = malloc((size_t)n_prompt * sizeof *r->prompt);
    if (!r->prompt) {
        req_free(r);
        return qr_set_error(QR_E_OOM_HOST, "engine: out of host memory");
    }
    memcpy(r->prompt, prompt, (size_t)n_prompt * sizeof *prompt);
    const struct qr_sampler_params *sp = &pp->sampling;
    r->simple_greedy = sp->temperature == 0 && sp->repetition_penalty == 1.0f && sp->presence_penalty == 0 &&
                       sp->frequency_penalty == 0 && pp->logprobs < 0;
    r->topk_ok = qr_sampler_topk_ok(sp, e->vocab, QR_TOPK_MAX) && pp->logprobs < 0;
    r->topk_raw = qr_sampler_topk_raw(sp);
    if ((st = qr_sampler_create(sp, e->vocab, &r->sampler)) != QR_OK ||
        (st = qr_tok_stream_create(e->tok, pp->skip_special, &r->ts)) != QR_OK) {
        req_free(r);
        return st;
    }
    qr_sampler_set_prompt(r->sampler, prompt, n_prompt);
    r->t_arrival = qr_time_s();

    pthread_mutex_lock(&e->mu);
    if (!e->healthy) {
        pthread_mutex_unlock(&e->mu);
        req_free(r);
        return qr_set_error(QR_E_DEVICE_LOST, "the engine is unhealthy (device lost); no new requests");
    }
    if (!grow_ids(&e->live, &e->cap_live, e->n_live + 1)) {
        pthread_mutex_unlock(&e->mu);
        req_free(r);
        return qr_set_error(QR_E_OOM_HOST, "engine: out of host memory");
    }
    r->id = e->next_id++;
    e->live[e->n_live++] = r->id;
    if (e->in_tail)
        e->in_tail->next = r;
    else
        e->in_head = r;
    e->in_tail = r;
    e->n_incoming++;
    e->st.n_waiting++;
    if (req_id)
        *req_id = r->id;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    return QR_OK;
}

qr_status qr_engine_cancel(struct qr_engine *e, uint64_t req_id)
{
    if (!e)
        return qr_set_error(QR_E_INVALID_ARG, "qr_engine_cancel: NULL engine");
    qr_status st = QR_OK;
    pthread_mutex_lock(&e->mu);
    bool live = false;
    for (int i = 0; i < e->n_live && !live; i++)
        live = e->live[i] == req_id;
    if (!live)
        st = qr_set_error(QR_E_NOT_FOUND, "request %llu is not running", (unsigned long long)req_id);
    else if (!grow_ids(&e->cancels, &e->cap_cancel, e->n_cancel + 1))
        st = qr_set_error(QR_E_OOM_HOST, "engine: out of host memory");
    else {
        e->cancels[e->n_cancel++] = req_id;
        pthread_cond_signal(&e->cv);
    }
    pthread_mutex_unlock(&e->mu);
    return st;
}

/* ---- one step (engine thread) ---- */

static struct eng_req *find_req(struct qr_engine *e, uint64_t id)
{
    for (int i = 0;; i++) {
        struct qr_sched_req *s = qr_sched_running(e->sched, i);
        if (!s)
            break;
        if (s->id == id)
            return s->user;
    }
    for (int i = 0;; i++) {
        struct qr_sched_req *s = qr_sched_waiting(e->sched, i);
        if (!s)
            break;
        if (s->id == id)
            return s->user;
    }
    return NULL;
}

/* removes a finished request from the scheduler and frees it */
static void retire(struct qr_engine *e, struct eng_req *r)
{
    if (r->sr)
        qr_sched_finish(e->sched, r->sr);
    r->sr = NULL;
    pthread_mutex_lock(&e->mu);
    live_remove(e, r->id);
    e->st.requests_finished++;
    e->st.gen_tokens_total += (uint64_t)r->n_gen;
    e->st.prefix_hit_tokens_total += (uint64_t)r->n_cached;
    pthread_mutex_unlock(&e->mu);
    req_free(r);
}

/* ends every request in the scheduler, running ones first: QR_FINISH_ERROR with msg (device lost) or
 * QR_FINISH_CANCELLED (engine destroyed) */
static void end_all(struct qr_engine *e, enum qr_finish_reason fin, const char *msg)
{
    for (;;) {
        struct qr_sched_req *s = qr_sched_running(e->sched, 0);
        if (!s)
            s = qr_sched_waiting(e->sched, 0);
        if (!s)
            break;
        struct eng_req *r = s->user;
        end_request(e, r, fin, msg);
        retire(e, r);
    }
}

static void top_logprobs(const float *row, int V, int n, int32_t *ids, float *lps)
{
    float mx = -INFINITY;
    for (int i = 0; i < V; i++)
        if (row[i] > mx)
            mx = row[i];
    double z = 0;
    for (int i = 0; i < V; i++)
        z += exp((double)(row[i] - mx));
    double lz = log(z) + mx;
    int k = 0;
    for (int i = 0; i < V && n > 0; i++) {
        float v = row[i];
        if (k == n && v <= row[ids[k - 1]])
            continue;
        int j = k < n ? k++ : n - 1;
        while (j > 0 && row[ids[j - 1]] < v) {
            ids[j] = ids[j - 1];
            j--;
        }
        ids[j] = i;
    }
    for (int i = 0; i < k; i++)
        lps[i] = (float)((double)row[ids[i]] - lz);
}

/* longest suffix of s (len n) that is a proper prefix of a stop string */
static size_t stop_holdback(const struct eng_req *r, const char *s, size_t n)
{
    size_t best = 0;
    for (int i = 0; i < r->n_stop; i++) {
        size_t L = r->stop_len[i];
        for (size_t k = (L - 1 < n ? L - 1 : n); k > best; k--)
            if (memcmp(s + n - k, r->stop[i], k) == 0) {
                best = k;
                break;
            }
    }
    return best;
}

/* earliest occurrence of any stop string in s; -1 if none */
static long stop_find(const struct eng_req *r, const char *s, size_t n)
{
    long best = -1;
    for (int i = 0; i < r->n_stop; i++) {
        size_t L = r->stop_len[i];
        for (size_t k = 0; k + L <= n; k++) {
            if (best >= 0 && (long)k >= best)
                break;
            if (memcmp(s + k, r->stop[i], L) == 0) {
                best = (long)k;
                break;
            }
        }
    }
    return best;
}

static bool is_eos(const struct qr_engine *e, const struct eng_req *r, int32_t t)
{
    for (int i = 0; i < r->p.n_stop_ids; i++)
        if (r->p.stop_ids[i] == t)
            return true;
    if (r->p.ignore_eos)
        return false;
    for (int i = 0; i < e->n_eos; i++)
        if (e->eos[i] == t)
            return true;
    return false;
}

/* a new token for r: stop checks, detokenisation, the event; true when r finished */
static bool on_token(struct qr_engine *e, struct eng_req *r, int32_t tok, float lp, const int32_t *top_ids,
                     const float *top_lp, int n_top)
{
    qr_status st = qr_sched_append(e->sched, r->sr, tok);
    if (st != QR_OK) {
        end_request(e, r, QR_FINISH_ERROR, qr_last_error());
        return true;
    }
    r->n_gen++;
    if (r->n_gen == 1) {
        r->t_first = qr_time_s();
        r->n_cached = r->sr->n_cached;
    }
    enum qr_finish_reason fin = QR_FINISH_NONE;
    size_t emit_n;
    size_t n = 0;
    if (is_eos(e, r, tok)) {
        fin = QR_FINISH_STOP;
    } else {
        st = qr_tok_stream_push(r->ts, tok, e->text, sizeof e->text, &n);
        if (st != QR_OK || !pend_append(r, e->text, n)) {
            end_request(e, r, QR_FINISH_ERROR, st != QR_OK ? qr_last_error() : "out of host memory");
            return true;
        }
        long at = r->n_stop ? stop_find(r, r->pend, r->pend_len) : -1;
        if (at >= 0) {
            r->pend_len = (size_t)at;   /* cut exactly before the stop string; never emitted */
            fin = QR_FINISH_STOP;
        }
    }
    if (fin == QR_FINISH_NONE && (r->n_gen >= r->p.max_tokens || r->sr->n_tokens >= e->max_len))
        fin = QR_FINISH_LENGTH;
    if (fin == QR_FINISH_LENGTH || (fin == QR_FINISH_STOP && is_eos(e, r, tok))) {
        /* the generation really ended: held-back bytes are output */
        if (qr_tok_stream_flush(r->ts, e->text, sizeof e->text, &n) == QR_OK)
            pend_append(r, e->text, n);
    }
    emit_n = fin != QR_FINISH_NONE ? r->pend_len : r->pend_len - stop_holdback(r, r->pend, r->pend_len);
    emit(e, r, tok, r->pend, emit_n, lp, top_ids, top_lp, n_top, fin, NULL);
    /* until the client sees text its next token is still its first output: prefill first does not pause it */
    r->shown = r->shown || emit_n > 0;
    r->sr->awaiting_output = !r->shown;
    if (r->pend_len > emit_n)
        memmove(r->pend, r->pend + emit_n, r->pend_len - emit_n);
    r->pend_len -= emit_n;
    if (fin != QR_FINISH_NONE)
        r->done = true;
    return fin != QR_FINISH_NONE;
}

static int bucket_seqs(int n, int limit)
{
    int b = n <= 1 ? 1 : n <= 2 ? 2 : n <= 4 ? 4 : (n + 7) / 8 * 8;
    return b > limit ? (n > limit ? n : limit) : b;
}

static qr_status build_and_run(struct qr_engine *e, const struct qr_sched_out *so, int *n_out, bool *have_logits)
{
    int ns = so->n_items, t = 0, width = so->max_blocks > 0 ? so->max_blocks : 1;
    bool decode_only = so->n_decode == ns;
    int limit = e->max_seqs < e->max_step_tokens ? e->max_seqs : e->max_step_tokens;
    int ns_pad = e->bucketing && decode_only ? bucket_seqs(ns, limit) : ns;
    size_t need_bt = (size_t)ns_pad * (size_t)width;
    if (need_bt > e->bt_cap) {
        int32_t *nb = realloc(e->b_bt, need_bt * sizeof *nb);
        if (!nb)
            return qr_set_error(QR_E_OOM_HOST, "engine: out of host memory for block tables");
        e->b_bt = nb;
        e->bt_cap = need_bt;
    }
    memset(e->b_bt, 0, need_bt * sizeof *e->b_bt);
    bool need_logits = false;
    int no = 0, max_k = 0;
    for (int i = 0; i < ns; i++) {
        const struct qr_sched_item *it = &so->items[i];
        const struct qr_sched_req *sr = it->req;
        e->b_qstart[i] = t;
        for (int p = it->start; p < it->start + it->n_new; p++, t++) {
            e->b_tokens[t] = sr->tokens[p];
            e->b_pos[t] = p;
            e->b_slots[t] = qr_kv_seq_slot(e->pool, &sr->kv, p);
        }
        e->b_seqlens[i] = it->start + it->n_new;
        memcpy(e->b_bt + (size_t)i * width, sr->kv.blocks, (size_t)sr->kv.n_blocks * sizeof(int32_t));
        if (it->needs_logits) {
            const struct eng_req *er = sr->user;
            e->out_item[no] = i;
            e->b_outidx[no++] = t - 1;
            if (er->topk_ok && e->dev_topk) {
                int want = er->topk_raw ? QR_TOPK_MAX : er->p.sampling.top_k;
                if (want > max_k)
                    max_k = want;
            } else if (!er->simple_greedy) {
                need_logits = true;
            }
        }
    }
    /* padding sequences (decode-only steps): one dummy token each, KV write skipped */
    for (int i = ns; i < ns_pad; i++, t++) {
        e->b_qstart[i] = t;
        e->b_tokens[t] = 0;
        e->b_pos[t] = 0;
        e->b_slots[t] = -1;
        e->b_seqlens[i] = 1;
        e->out_item[no] = -1;
        e->b_outidx[no++] = t;
    }
    e->b_qstart[ns_pad] = t;
    /* a step whose sampled rows all qualify reads back only each row's best k (greedy rows: the first; it differs
     * from the argmax op only on a row with no finite logit, NaN and -inf alone, where it is index 0) */
    e->tk_k = 0;
    if (max_k > 0 && !need_logits) {
        e->tk_k = max_k <= 64 ? 64 : QR_TOPK_MAX;
        if (e->tk_k > e->vocab)
            e->tk_k = e->vocab;
        if (!e->tk_ids) {
            e->tk_ids = malloc((size_t)e->max_seqs * QR_TOPK_MAX * sizeof(int32_t));
            e->tk_vals = malloc((size_t)e->max_seqs * QR_TOPK_MAX * sizeof(float));
            e->tk_inv_t = malloc((size_t)e->max_seqs * sizeof(float));
            if (!e->tk_ids || !e->tk_vals || !e->tk_inv_t)
                return qr_set_error(QR_E_OOM_HOST, "engine: out of host memory for top-k rows");
        }
        for (int k = 0; k < no; k++) {
            int i = e->out_item[k];
            const struct eng_req *er = i >= 0 ? so->items[i].req->user : NULL;
            /* the sampler's own scale (1.0f / temperature in float); greedy rows, padding and rows with penalties
             * (applied on the host to raw candidates): 1 */
            e->tk_inv_t[k] = er && !er->simple_greedy && !er->topk_raw ? 1.0f / er->p.sampling.temperature : 1.0f;
        }
    } else if (max_k > 0) {
        need_logits = true;   /* some row needs its whole row: every row is sampled on the host */
    }
    if (need_logits && !e->logits) {
        e->logits = malloc((size_t)e->max_seqs * (size_t)e->vocab * sizeof(float));
        if (!e->logits)
            return qr_set_error(QR_E_OOM_HOST, "engine: out of host memory for logits");
    }
    struct qr_batch b = {
        .n_tokens = t, .tokens = e->b_tokens, .positions = e->b_pos, .slots = e->b_slots,
        .n_seqs = ns_pad, .q_start = e->b_qstart, .seq_lens = e->b_seqlens, .block_tables = e->b_bt,
        .max_blocks_per_seq = width, .n_out = no, .out_idx = e->b_outidx,
    };
    *n_out = no;
    *have_logits = need_logits;
    if (no == 0)
        return qr_rt_forward(e->rt, &b, NULL, NULL);
    if (e->tk_k > 0)
        return qr_rt_forward_topk(e->rt, &b, e->tk_inv_t, e->tk_k, e->tk_ids, e->tk_vals);
    return qr_rt_forward(e->rt, &b, need_logits ? e->logits : NULL, need_logits ? NULL : e->b_argmax);
}

static void update_stats(struct qr_engine *e)
{
    pthread_mutex_lock(&e->mu);
    e->st.n_waiting = qr_sched_num_waiting(e->sched) + e->n_incoming;
    e->st.n_running = qr_sched_num_running(e->sched);
    e->st.n_preempted_total = (int)qr_sched_num_preemptions(e->sched);
    e->st.kv_blocks_used = qr_kv_pool_num_used(e->pool);
    e->st.kv_blocks_cached_free = qr_kv_pool_num_cached_free(e->pool);
    e->st.steps = qr_sched_num_steps(e->sched);
    e->st.paused_steps = qr_sched_num_paused_steps(e->sched);
    e->st.topk_steps = e->n_topk_steps;
    e->st.logits_steps = e->n_logits_steps;
    e->st.topk_rows_refetched = e->n_topk_rows_refetched;
    e->st.decode_only_steps = e->n_dec_steps;
    e->st.decode_only_tokens = e->n_dec_tokens;
    e->st.prompt_steps = e->n_prompt_steps;
    e->st.prompt_tokens_computed = e->prompt_computed;
    e->st.decode_only_s = e->t_dec_steps;
    e->st.prompt_steps_s = e->t_prompt_steps;
    e->st.last_step_time = qr_time_s();
    e->st.healthy = e->healthy;
    pthread_mutex_unlock(&e->mu);
}

/* rows [b, e) of a step's logits: top logprobs on the raw row, then the request's sampler (on the pool) */
struct pick_job {
    struct qr_engine *e;
    const struct qr_sched_out *so;
};

/* the rows of a step, drawn on the pool, each with its own request's sampler (the tokens do not depend on the
 * threads): from whole rows (with top logprobs where asked), or from each row's best k when e->tk_k > 0 (at 256 rows
 * a step's draws took ~1-4 ms on one core); QR_SAMPLER_NEED_ROW and refusals are settled after, in order, on the
 * engine thread */
static void pick_task(void *ctx, int64_t b, int64_t end, int tid)
{
    (void)tid;
    struct pick_job *j = ctx;
    struct qr_engine *e = j->e;
    for (int64_t k = b; k < end; k++) {
        int i = e->out_item[k];
        if (i < 0)
            continue;
        struct eng_req *r = j->so->items[i].req->user;
        struct eng_pick *pk = &e->pick[k];
        if (e->tk_k > 0) {
            const size_t o = (size_t)k * (size_t)e->tk_k;
            pk->tok = r->simple_greedy ? e->tk_ids[o]
                                       : qr_sampler_sample_topk(r->sampler, e->tk_ids + o, e->tk_vals + o, e->tk_k);
            continue;
        }
        float *row = e->logits + (size_t)k * (size_t)e->vocab;
        pk->lp = 0.0f;
        pk->n_top = 0;
        if (r->p.logprobs > 0) {
            pk->n_top = r->p.logprobs;
            top_logprobs(row, e->vocab, pk->n_top, pk->top_ids, pk->top_lp);
        }
        pk->tok = qr_sampler_sample(r->sampler, row, r->p.logprobs >= 0 ? &pk->lp : NULL);
    }
}

static qr_status engine_step(struct qr_engine *e, int *n_unfinished)
{
    /* take the incoming requests and cancels */
    pthread_mutex_lock(&e->mu);
    struct eng_req *in = e->in_head;
    e->in_head = e->in_tail = NULL;
    e->n_incoming = 0;
    int n_cancel = e->n_cancel;
    uint64_t cancels[64];
    if (n_cancel > 64)
        n_cancel = 64;
    if (n_cancel > 0) {
        memcpy(cancels, e->cancels, (size_t)n_cancel * sizeof *cancels);
        memmove(e->cancels, e->cancels + n_cancel, (size_t)(e->n_cancel - n_cancel) * sizeof *cancels);
        e->n_cancel -= n_cancel;
    }
    bool healthy = e->healthy;
    pthread_mutex_unlock(&e->mu);

    while (in) {
        struct eng_req *r = in;
        in = in->next;
        r->next = NULL;
        qr_status st = healthy ? qr_sched_add(e->sched, r->id, r->prompt, r->n_prompt, r->p.max_tokens, r, &r->sr)
                               : QR_E_DEVICE_LOST;
        free(r->prompt);
        r->prompt = NULL;
        if (st != QR_OK) {
            end_request(e, r, QR_FINISH_ERROR, healthy ? qr_last_error() : "device lost");
            retire(e, r);
            continue;
        }
        pthread_mutex_lock(&e->mu);
        e->st.prompt_tokens_total += (uint64_t)r->n_prompt;
        pthread_mutex_unlock(&e->mu);
    }
    for (int i = 0; i < n_cancel; i++) {
        struct eng_req *r = find_req(e, cancels[i]);
        if (r) {
            end_request(e, r, QR_FINISH_CANCELLED, NULL);
            retire(e, r);
        }
    }

    qr_status result = QR_OK;
    struct qr_sched_out so;
    double t0 = qr_time_s(), t1 = t0, t2 = t0;
    qr_status st = qr_sched_schedule(e->sched, &so);
    if (e->trace)
        t1 = t2 = qr_time_s();
    if (st != QR_OK) {
        result = st;
        end_all(e, QR_FINISH_ERROR, qr_last_error());
    } else if (so.n_items > 0) {
        int n_out = 0;
        bool have_logits = false;
        st = build_and_run(e, &so, &n_out, &have_logits);
        e->n_topk_steps += e->tk_k > 0;
        e->n_logits_steps += have_logits;
        if (e->trace)
            t2 = qr_time_s();
        if (st != QR_OK) {
            const char *msg = qr_last_error();
            result = st;
            if (st == QR_E_DEVICE_LOST || e->dev->dead) {
                qr_log(QR_LOG_ERROR, "engine: device lost (%s); failing every request", msg);
                pthread_mutex_lock(&e->mu);
                e->healthy = false;
                pthread_mutex_unlock(&e->mu);
                end_all(e, QR_FINISH_ERROR, msg);
            } else {
                /* fail the step's requests; the others go on */
                int nf = 0;
                for (int i = 0; i < so.n_items; i++)
                    e->fin[nf++] = so.items[i].req->user;
                for (int i = 0; i < nf; i++) {
                    end_request(e, e->fin[i], QR_FINISH_ERROR, msg);
                    retire(e, e->fin[i]);
                }
            }
        } else {
            qr_sched_update(e->sched, &so);
            int nf = 0;
            struct pick_job pj = {.e = e, .so = &so};
            if (have_logits || e->tk_k > 0)   /* a top-k draw is ~2-15 us: eight rows at least a chunk */
                qr_pool_run(e->spool, pick_task, &pj, n_out, have_logits ? 1 : 8);
            for (int k = 0; k < n_out; k++) {
                int i = e->out_item[k];
                if (i < 0)
                    continue;
                struct eng_req *r = so.items[i].req->user;
                struct eng_pick *pk = &e->pick[k];
                if (e->tk_k > 0) {
                    const size_t o = (size_t)k * (size_t)e->tk_k;
                    int32_t tok = pk->tok;   /* pick_task's draw */
                    if (tok == QR_SAMPLER_NEED_ROW) {   /* penalties: the candidates could not decide */
                        if (!e->tk_row && !(e->tk_row = malloc((size_t)e->vocab * sizeof(float)))) {
                            tok = -1;
                        } else if (qr_rt_read_logits(e->rt, k, e->tk_row) == QR_OK) {
                            tok = qr_sampler_sample(r->sampler, e->tk_row, NULL);
                            e->n_topk_rows_refetched++;
                        } else {
                            tok = -1;
                        }
                    }
                    if (tok < 0) {   /* out of host memory, a failed read: the row's best candidate */
                        qr_log(QR_LOG_ERROR, "engine: top-k sampling refused a row; taking its best token");
                        tok = e->tk_ids[o];
                    }
                    *pk = (struct eng_pick){.tok = tok};
                } else if (!have_logits) {
                    *pk = (struct eng_pick){.tok = e->b_argmax[k]};
                }
                if (on_token(e, r, pk->tok, pk->lp, pk->top_ids, pk->top_lp, pk->n_top))
                    e->fin[nf++] = r;
            }
            for (int i = 0; i < nf; i++)
                retire(e, e->fin[i]);
        }
    }
    if (st == QR_OK && so.n_items > 0) {
        const double dt = qr_time_s() - t0;
        if (so.n_tokens > so.n_decode) {
            e->n_prompt_steps++;
            e->t_prompt_steps += dt;
            e->prompt_computed += (uint64_t)(so.n_tokens - so.n_decode);
        } else {
            e->n_dec_steps++;
            e->n_dec_tokens += (uint64_t)so.n_decode;
            e->t_dec_steps += dt;
        }
    }
    if (e->trace && so.n_items > 0) {
        double t3 = qr_time_s();
        long long kv = 0;   /* the positions the step's attention reads: each item's context up to its last token */
        for (int i = 0; i < so.n_items; i++)
            kv += so.items[i].start + so.items[i].n_new;
        fprintf(e->trace, "%.3f %.3f %.3f %.3f %d %d %d %d %d %d %d %d %d %lld\n", (t0 - e->t_trace0) * 1e3,
                (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3, so.n_items, so.n_tokens, so.n_decode,
                so.n_tokens - so.n_decode, qr_sched_num_waiting(e->sched), qr_sched_num_running(e->sched),
                so.max_blocks, so.n_preempted, so.n_paused, kv);
        fflush(e->trace);
    }
    update_stats(e);
    if (n_unfinished) {
        pthread_mutex_lock(&e->mu);
        *n_unfinished = qr_sched_num_waiting(e->sched) + qr_sched_num_running(e->sched) + e->n_incoming;
        pthread_mutex_unlock(&e->mu);
    }
    return result;
}

/* ---- driving ---- */

static void *engine_main(void *arg)
{
    struct qr_engine *e = arg;
    pthread_mutex_lock(&e->mu);
    while (!e->stop) {
        if (!e->in_head && e->n_cancel == 0 && !e->has_work) {
            pthread_cond_broadcast(&e->idle_cv);
            pthread_cond_wait(&e->cv, &e->mu);
            continue;
        }
        pthread_mutex_unlock(&e->mu);
        int n = 0;
        engine_step(e, &n);
        pthread_mutex_lock(&e->mu);
        e->has_work = qr_sched_num_waiting(e->sched) + qr_sched_num_running(e->sched) > 0;
    }
    pthread_cond_broadcast(&e->idle_cv);
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

qr_status qr_engine_start(struct qr_engine *e)
{
    if (!e)
        return qr_set_error(QR_E_INVALID_ARG, "qr_engine_start: NULL engine");
    pthread_mutex_lock(&e->mu);
    if (e->thread_on) {
        pthread_mutex_unlock(&e->mu);
        return QR_OK;
    }
    e->stop = false;
    e->has_work = qr_sched_num_waiting(e->sched) + qr_sched_num_running(e->sched) > 0;
    int rc = pthread_create(&e->th, NULL, engine_main, e);
    if (rc == 0)
        e->thread_on = true;
    pthread_mutex_unlock(&e->mu);
    return rc == 0 ? QR_OK : qr_set_error(QR_E_INTERNAL, "engine: cannot start the engine thread");
}

void qr_engine_stop(struct qr_engine *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->mu);
    if (!e->thread_on) {
        pthread_mutex_unlock(&e->mu);
        return;
    }
    e->stop = true;
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    pthread_join(e->th, NULL);
    pthread_mutex_lock(&e->mu);
    e->thread_on = false;
    pthread_mutex_unlock(&e->mu);
}

qr_status qr_engine_step(struct qr_engine *e, int *n_unfinished)
{
    if (!e)
        return qr_set_error(QR_E_INVALID_ARG, "qr_engine_step: NULL engine");
    pthread_mutex_lock(&e->mu);
    bool on = e->thread_on;
    pthread_mutex_unlock(&e->mu);
    if (on)
        return qr_set_error(QR_E_INVALID_ARG, "qr_engine_step: the engine thread is running");
    return engine_step(e, n_unfinished);
}

qr_status qr_engine_run_until_idle(struct qr_engine *e)
{
    if (!e)
        return qr_set_error(QR_E_INVALID_ARG, "qr_engine_run_until_idle: NULL engine");
    pthread_mutex_lock(&e->mu);
    if (e->thread_on) {
        while (e->thread_on && !e->stop && (e->in_head || e->n_cancel > 0 || e->has_work))
            pthread_cond_wait(&e->idle_cv, &e->mu);
        pthread_mutex_unlock(&e->mu);
        return QR_OK;
    }
    pthread_mutex_unlock(&e->mu);
    qr_status first = QR_OK;
    for (;;) {
        int n = 0;
        qr_status st = engine_step(e, &n);
        if (st != QR_OK && first == QR_OK)
            first = st;
        pthread_mutex_lock(&e->mu);
        bool more = n > 0 || e->in_head || e->n_cancel > 0;
        pthread_mutex_unlock(&e->mu);
        if (!more)
            break;
    }
    return first;
}

void qr_engine_destroy(struct qr_engine *e)
{
    if (!e)
        return;
    qr_engine_stop(e);
    /* requests still in flight get a final event so nobody waits forever */
    struct eng_req *in = e->in_head;
    while (in) {
        struct eng_req *n = in->next;
        end_request(e, in, QR_FINISH_CANCELLED, NULL);
        req_free(in);
        in = n;
    }
    e->in_head = e->in_tail = NULL;
    if (e->sched)
        end_all(e, QR_FINISH_CANCELLED, NULL);
    qr_sched_destroy(e->sched);
    qr_kv_pool_destroy(e->pool);
    qr_rt_destroy(e->rt);
    qr_tok_free(e->tok);
    qr_model_close(e->model);
    qr_device_close(e->dev);
    qr_ini_free(e->ini);
    free(e->b_tokens);
    free(e->b_pos);
    free(e->b_slots);
    free(e->b_qstart);
    free(e->b_seqlens);
    free(e->b_outidx);
    free(e->b_argmax);
    free(e->b_bt);
    free(e->out_item);
    free(e->pick);
    qr_pool_destroy(e->spool);
    if (e->trace)
        fclose(e->trace);
    free(e->fin);
    free(e->logits);
    free(e->tk_ids);
    free(e->tk_vals);
    free(e->tk_inv_t);
    free(e->tk_row);
    free(e->cancels);
    free(e->live);
    free(e->model_dir);
    free(e->backend);
    free(e->config_path);
    pthread_cond_destroy(&e->cv);
    pthread_cond_destroy(&e->idle_cv);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

/* ---- accessors ---- */

void qr_engine_get_stats(struct qr_engine *e, struct qr_engine_stats *s)
{
    pthread_mutex_lock(&e->mu);
    *s = e->st;
    pthread_mutex_unlock(&e->mu);
}

const struct qr_model *qr_engine_model(const struct qr_engine *e) { return e->model; }
const struct qr_tokenizer *qr_engine_tokenizer(const struct qr_engine *e) { return e->tok; }
enum qr_chat_variant qr_engine_chat_variant(const struct qr_engine *e) { return e->chat; }
struct qr_runtime *qr_engine_runtime(struct qr_engine *e) { return e->rt; }
int qr_engine_max_model_len(const struct qr_engine *e) { return e->max_len; }
