/* server_gen.c - POST /v1/chat/completions and /v1/completions.
 *
 * One HTTP request becomes a job with n_prompts * n choices, each one engine
 * request.  The engine thread calls srv_on_token, which copies the event into
 * the job's queue and signals (never blocks beyond a short mutex).  The
 * connection thread drains the queue: for a stream it writes SSE chunks from a
 * libmicrohttpd content-reader callback; otherwise it waits and answers with
 * one JSON body.  While waiting it polls the client socket every 50 ms, and a
 * client that went away has its engine requests cancelled. */
#ifdef QR_HAVE_MHD
#include "server.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct gen_event {
    struct gen_event *next;
    int choice;
    int32_t token;
    float logprob;
    int n_top;
    int32_t top_ids[QR_MAX_TOP_LOGPROBS];
    float top_lp[QR_MAX_TOP_LOGPROBS];
    enum qr_finish_reason finish;
    int n_prompt, n_cached, n_gen;
    double t_arrival, t_first, t_now;
    char *error;
    size_t text_len;
    char text[];
};

struct gen_choice {
    struct srv_job *job;
    int index;
    int prompt_idx;
    uint64_t req_id;
    bool added;             /* qr_engine_add succeeded */
    bool done;              /* final event received (engine side, under job->mu) */
    /* response side (connection thread only) */
    bool finished;
    bool role_sent;
    struct srv_toolparse tp;
    int calls_sent;
    struct srv_buf content;
    cJSON *lp;              /* chat: array of token entries; completions: object of arrays */
    size_t text_offset;
    enum qr_finish_reason finish;
    int n_prompt, n_cached, n_gen;
    char *error;
};

struct srv_job {
    struct srv *srv;
    struct srv_job *next, *prev;    /* srv->jobs, under srv->jobs_mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct gen_event *head, *tail;
    int refs;                       /* 1 (HTTP side) + unfinished engine requests */
    bool lost_event;                /* an event could not be stored (out of memory) */
    int n_choices, n_finished;
    struct gen_choice *ch;
    struct srv_request req;
    int prompt_tokens;
    char id[64];
    int hex_off;                    /* where the random part of id starts */
    long long created;
    struct MHD_Connection *conn;
    struct srv_buf out;             /* SSE bytes not yet handed to MHD */
    size_t out_off;
    bool done_sent;
    double t_gone_check;            /* when job_take last polled the socket */
};

/* ---- job lifetime ---- */

static void job_free(struct srv_job *j)
{
    struct srv *s = j->srv;
    pthread_mutex_lock(&s->jobs_mu);
    if (j->prev) j->prev->next = j->next;
    else if (s->jobs == j) s->jobs = j->next;
    if (j->next) j->next->prev = j->prev;
    pthread_mutex_unlock(&s->jobs_mu);
    for (struct gen_event *e = j->head; e;) {
        struct gen_event *n = e->next;
        free(e->error);
        free(e);
        e = n;
    }
    for (int i = 0; i < j->n_choices; i++) {
        srv_tp_free(&j->ch[i].tp);
        srv_buf_free(&j->ch[i].content);
        cJSON_Delete(j->ch[i].lp);
        free(j->ch[i].error);
    }
    free(j->ch);
    srv_request_free(&j->req);
    srv_buf_free(&j->out);
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

static void job_unref(struct srv_job *j)
{
    pthread_mutex_lock(&j->mu);
    int r = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (r == 0)
        job_free(j);
}

/* engine thread */
static void srv_on_token(const struct qr_token_event *ev, void *user)
{
    struct gen_choice *c = user;
    struct srv_job *j = c->job;
    struct gen_event *e = malloc(sizeof *e + ev->text_len + 1);
    if (e) {
        memset(e, 0, sizeof *e);
        e->choice = c->index;
        e->token = ev->token;
        e->logprob = ev->logprob;
        e->n_top = ev->n_top < 0 ? 0 : ev->n_top > QR_MAX_TOP_LOGPROBS ? QR_MAX_TOP_LOGPROBS : ev->n_top;
        memcpy(e->top_ids, ev->top_ids, sizeof(int32_t) * (size_t)e->n_top);
        memcpy(e->top_lp, ev->top_logprobs, sizeof(float) * (size_t)e->n_top);
        e->finish = ev->finish;
        e->n_prompt = ev->n_prompt_tokens;
        e->n_cached = ev->n_cached_tokens;
        e->n_gen = ev->n_gen_tokens;
        e->t_arrival = ev->t_arrival;
        e->t_first = ev->t_first_token;
        e->t_now = ev->t_now;
        e->error = ev->error ? strdup(ev->error) : NULL;
        e->text_len = ev->text ? ev->text_len : 0;
        if (e->text_len)
            memcpy(e->text, ev->text, e->text_len);
        e->text[e->text_len] = 0;
    }
    if (ev->finish != QR_FINISH_NONE) {
        /* metrics here, so that requests whose client left are counted too */
        double ttft = ev->t_first_token > 0 && ev->t_arrival > 0 ? ev->t_first_token - ev->t_arrival : -1;
        double tpot = ev->n_gen_tokens > 1 && ev->t_first_token > 0 ?
                      (ev->t_now - ev->t_first_token) / (ev->n_gen_tokens - 1) : -1;
        double e2e = ev->t_arrival > 0 ? ev->t_now - ev->t_arrival : -1;
        srv_metrics_request_done(&j->srv->metrics, ev->finish, c->index % j->req.n == 0 ? ev->n_prompt_tokens : 0,
                                 ev->n_gen_tokens, ttft, tpot, e2e);
    }
    pthread_mutex_lock(&j->mu);
    if (e) {
        if (j->tail) j->tail->next = e;
        else j->head = e;
        j->tail = e;
    } else {
        j->lost_event = true;
    }
    int r = j->refs;
    if (ev->finish != QR_FINISH_NONE && !c->done) {
        c->done = true;
        r = --j->refs;
        if (!e) {
            /* keep the finish visible even without memory for the event */
            c->finish = QR_FINISH_ERROR;
        }
    }
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    if (r == 0)
        job_free(j);
}

/* cancel every engine request of the job that has not finished; never under j->mu */
static void job_cancel(struct srv_job *j)
{
    uint64_t ids[SRV_MAX_N * SRV_MAX_PROMPTS];
    int n = 0;
    pthread_mutex_lock(&j->mu);
    for (int i = 0; i < j->n_choices; i++)
        if (j->ch[i].added && !j->ch[i].done)
            ids[n++] = j->ch[i].req_id;
    pthread_mutex_unlock(&j->mu);
    for (int i = 0; i < n; i++)
        qr_engine_cancel(j->srv->engine, ids[i]);
}

void srv_cancel_all(struct srv *s)
{
    /* collect ids under the locks, cancel outside them (cancel may call back) */
    size_t cap = 64, n = 0;
    uint64_t *ids = malloc(sizeof *ids * cap);
    pthread_mutex_lock(&s->jobs_mu);
    for (struct srv_job *j = s->jobs; j && ids; j = j->next) {
        pthread_mutex_lock(&j->mu);
        for (int i = 0; i < j->n_choices; i++) {
            if (j->ch[i].added && !j->ch[i].done) {
                if (n == cap) {
                    uint64_t *t = realloc(ids, sizeof *ids * cap * 2);
                    if (!t) break;
                    ids = t;
                    cap *= 2;
                }
                ids[n++] = j->ch[i].req_id;
            }
        }
        pthread_mutex_unlock(&j->mu);
    }
    pthread_mutex_unlock(&s->jobs_mu);
    for (size_t i = 0; i < n; i++)
        qr_engine_cancel(s->engine, ids[i]);
    free(ids);
}

void srv_engine_ready(struct srv *s, struct qr_engine *e)
{
    s->engine = e;
    const struct qr_model *m = qr_engine_model(e);
    const struct qr_tokenizer *t = qr_engine_tokenizer(e);
    int vocab = qr_tok_vocab_size(t);
    if (m && m->cfg.vocab_size > 0 && m->cfg.vocab_size < vocab)
        vocab = m->cfg.vocab_size;
    s->vocab_size = vocab;
    s->lim.vocab_size = vocab;
    s->lim.max_model_len = qr_engine_max_model_len(e);
    s->chat_variant = qr_engine_chat_variant(e);
    qr_request_params_default(m, &s->defaults);
    atomic_store(&s->state, SRV_READY);
}

/* ---- waiting ---- */

/* Takes the queued events (NULL if none arrived within ~50 ms).  *gone set when
 * the client hung up or the server is stopping: checked whenever nothing came, and
 * every 20 ms while events keep coming (a busy non-streaming request must still
 * notice its client leaving within a step or two, not at its end). */
static struct gen_event *job_take(struct srv_job *j, bool *gone, bool *lost)
{
    struct gen_event *list = NULL;
    pthread_mutex_lock(&j->mu);
    if (!j->head) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&j->cv, &j->mu, &ts);
    }
    list = j->head;
    j->head = j->tail = NULL;
    *lost = j->lost_event;
    pthread_mutex_unlock(&j->mu);
    double now = qr_time_s();
    if (!list || now - j->t_gone_check >= 0.02) {
        j->t_gone_check = now;
        if (srv_conn_gone(j->conn) || atomic_load(&j->srv->state) == SRV_STOPPING)
            *gone = true;
    }
    return list;
}

/* ---- JSON pieces ---- */

static char *token_str(const struct srv *s, int32_t id, cJSON **bytes)
{
    size_t n = 0;
    const char *b = qr_tok_bytes(qr_engine_tokenizer(s->engine), id, &n);
    if (bytes) {
        *bytes = cJSON_CreateArray();
        for (size_t i = 0; b && i < n; i++)
            cJSON_AddItemToArray(*bytes, cJSON_CreateNumber((unsigned char)b[i]));
    }
    return srv_utf8_sanitize(b ? b : "", b ? n : 0);
}

/* the logprob entry of one token, appended to c->lp (creates it) and, for a
 * stream, to `chunk_lp` (the chunk's own list) */
static void add_logprobs(struct srv_job *j, struct gen_choice *c, const struct gen_event *e, const char *text,
                         size_t text_len, cJSON *chunk_lp)
{
    const struct srv *s = j->srv;
    if (j->req.kind == SRV_CHAT) {
        cJSON *ent = cJSON_CreateObject();
        cJSON *bytes = NULL;
        char *ts = token_str(s, e->token, &bytes);
        cJSON_AddStringToObject(ent, "token", ts ? ts : "");
        free(ts);
        cJSON_AddNumberToObject(ent, "logprob", e->logprob);
        cJSON_AddItemToObject(ent, "bytes", bytes);
        cJSON *tops = cJSON_AddArrayToObject(ent, "top_logprobs");
        int ntop = j->req.logprobs < e->n_top ? j->req.logprobs : e->n_top;
        for (int k = 0; k < ntop; k++) {
            cJSON *t = cJSON_CreateObject();
            cJSON *tb = NULL;
            char *tt = token_str(s, e->top_ids[k], &tb);
            cJSON_AddStringToObject(t, "token", tt ? tt : "");
            free(tt);
            cJSON_AddNumberToObject(t, "logprob", e->top_lp[k]);
            cJSON_AddItemToObject(t, "bytes", tb);
            cJSON_AddItemToArray(tops, t);
        }
        if (chunk_lp)
            cJSON_AddItemToArray(chunk_lp, cJSON_Duplicate(ent, 1));
        if (!c->lp)
            c->lp = cJSON_CreateArray();
        cJSON_AddItemToArray(c->lp, ent);
        return;
    }
    /* completions: {"tokens":[], "token_logprobs":[], "top_logprobs":[{}], "text_offset":[]} */
    cJSON *targets[2] = {NULL, chunk_lp};
    if (!c->lp) {
        c->lp = cJSON_CreateObject();
        cJSON_AddArrayToObject(c->lp, "tokens");
        cJSON_AddArrayToObject(c->lp, "token_logprobs");
        cJSON_AddArrayToObject(c->lp, "top_logprobs");
        cJSON_AddArrayToObject(c->lp, "text_offset");
    }
    targets[0] = c->lp;
    char *ts = token_str(s, e->token, NULL);
    for (int t = 0; t < 2; t++) {
        cJSON *o = targets[t];
        if (!o)
            continue;
        cJSON_AddItemToArray(cJSON_GetObjectItem(o, "tokens"), cJSON_CreateString(ts ? ts : ""));
        cJSON_AddItemToArray(cJSON_GetObjectItem(o, "token_logprobs"), cJSON_CreateNumber(e->logprob));
        cJSON *tops = cJSON_CreateObject();
        int ntop = j->req.logprobs < e->n_top ? j->req.logprobs : e->n_top;
        for (int k = 0; k < ntop; k++) {
            char *tt = token_str(s, e->top_ids[k], NULL);
            if (tt && !cJSON_GetObjectItemCaseSensitive(tops, tt))
                cJSON_AddNumberToObject(tops, tt, e->top_lp[k]);
            free(tt);
        }
        cJSON_AddItemToArray(cJSON_GetObjectItem(o, "top_logprobs"), tops);
        cJSON_AddItemToArray(cJSON_GetObjectItem(o, "text_offset"), cJSON_CreateNumber((double)c->text_offset));
    }
    free(ts);
    (void)text;
    c->text_offset += text_len;
}

static const char *finish_str(const struct gen_choice *c)
{
    switch (c->finish) {
    case QR_FINISH_STOP: return c->tp.n_calls > 0 ? "tool_calls" : "stop";
    case QR_FINISH_LENGTH: return "length";
    case QR_FINISH_CANCELLED: return "abort";
    case QR_FINISH_ERROR: return "error";
    default: return "stop";
    }
}

static cJSON *chunk_new(struct srv_job *j, cJSON **choice)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", j->id);
    cJSON_AddStringToObject(o, "object", j->req.kind == SRV_CHAT ? "chat.completion.chunk" : "text_completion");
    cJSON_AddNumberToObject(o, "created", (double)j->created);
    cJSON_AddStringToObject(o, "model", j->srv->model_name);
    cJSON *arr = cJSON_AddArrayToObject(o, "choices");
    if (choice) {
        *choice = cJSON_CreateObject();
        cJSON_AddItemToArray(arr, *choice);
    }
    if (j->req.include_usage)
        cJSON_AddNullToObject(o, "usage");
    return o;
}

static void sse_emit(struct srv_job *j, cJSON *o)
{
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!txt) {
        j->out.oom = true;
        return;
    }
    srv_buf_puts(&j->out, "data: ");
    srv_buf_puts(&j->out, txt);
    srv_buf_puts(&j->out, "\n\n");
    free(txt);
}

static void usage_obj(struct srv_job *j, cJSON *parent)
{
    int gen = 0, cached = 0;
    for (int i = 0; i < j->n_choices; i++) {
        gen += j->ch[i].n_gen;
        if (i % j->req.n == 0)
            cached += j->ch[i].n_cached;
    }
    cJSON *u = cJSON_AddObjectToObject(parent, "usage");
    cJSON_AddNumberToObject(u, "prompt_tokens", j->prompt_tokens);
    cJSON_AddNumberToObject(u, "completion_tokens", gen);
    cJSON_AddNumberToObject(u, "total_tokens", j->prompt_tokens + gen);
    cJSON *d = cJSON_AddObjectToObject(u, "prompt_tokens_details");
    cJSON_AddNumberToObject(d, "cached_tokens", cached);
}

static void stream_tool_calls(struct srv_job *j, struct gen_choice *c)
{
    for (; c->calls_sent < c->tp.n_calls; c->calls_sent++) {
        const struct srv_toolcall *tc = &c->tp.calls[c->calls_sent];
        for (int part = 0; part < 2; part++) {
            cJSON *ch;
            cJSON *o = chunk_new(j, &ch);
            cJSON_AddNumberToObject(ch, "index", c->index);
            cJSON *delta = cJSON_AddObjectToObject(ch, "delta");
            cJSON *arr = cJSON_AddArrayToObject(delta, "tool_calls");
            cJSON *t = cJSON_CreateObject();
            cJSON_AddItemToArray(arr, t);
            cJSON_AddNumberToObject(t, "index", c->calls_sent);
            cJSON *fn;
            if (part == 0) {
                char id[96];
                snprintf(id, sizeof id, "call_%s_%d_%d", j->id + j->hex_off, c->index, c->calls_sent);
                cJSON_AddStringToObject(t, "id", id);
                cJSON_AddStringToObject(t, "type", "function");
                fn = cJSON_AddObjectToObject(t, "function");
                char *nm = srv_utf8_sanitize(tc->name, strlen(tc->name));
                cJSON_AddStringToObject(fn, "name", nm ? nm : "");
                free(nm);
                cJSON_AddStringToObject(fn, "arguments", "");
            } else {
                fn = cJSON_AddObjectToObject(t, "function");
                char *a = srv_utf8_sanitize(tc->arguments, strlen(tc->arguments));
                cJSON_AddStringToObject(fn, "arguments", a ? a : "");
                free(a);
            }
            cJSON_AddNullToObject(ch, "logprobs");
            cJSON_AddNullToObject(ch, "finish_reason");
            sse_emit(j, o);
        }
    }
}

/* one content/text chunk for choice c (text may be empty when logprobs ride alone) */
static void stream_text(struct srv_job *j, struct gen_choice *c, const char *text, size_t n, cJSON *lp)
{
    cJSON *ch;
    cJSON *o = chunk_new(j, &ch);
    cJSON_AddNumberToObject(ch, "index", c->index);
    char *clean = srv_utf8_sanitize(text, n);
    if (j->req.kind == SRV_CHAT) {
        cJSON *delta = cJSON_AddObjectToObject(ch, "delta");
        if (!c->role_sent) {
            cJSON_AddStringToObject(delta, "role", "assistant");
            c->role_sent = true;
        }
        cJSON_AddStringToObject(delta, "content", clean ? clean : "");
        if (lp) {
            cJSON *l = cJSON_AddObjectToObject(ch, "logprobs");
            cJSON_AddItemToObject(l, "content", lp);
        } else {
            cJSON_AddNullToObject(ch, "logprobs");
        }
    } else {
        cJSON_AddStringToObject(ch, "text", clean ? clean : "");
        if (lp) cJSON_AddItemToObject(ch, "logprobs", lp);
        else cJSON_AddNullToObject(ch, "logprobs");
    }
    free(clean);
    cJSON_AddNullToObject(ch, "finish_reason");
    sse_emit(j, o);
}

static void stream_finish(struct srv_job *j, struct gen_choice *c)
{
    if (c->finish == QR_FINISH_ERROR || c->finish == QR_FINISH_CANCELLED) {
        struct srv_error e;
        if (c->finish == QR_FINISH_ERROR)
            srv_err(&e, 500, NULL, "generation failed: %s", c->error ? c->error : "engine error");
        else
            srv_err(&e, 503, NULL, "request cancelled: the server is shutting down");
        char *ej = srv_error_json(&e);
        if (ej) {
            srv_buf_puts(&j->out, "data: ");
            srv_buf_puts(&j->out, ej);
            srv_buf_puts(&j->out, "\n\n");
            free(ej);
        }
        return;
    }
    cJSON *ch;
    cJSON *o = chunk_new(j, &ch);
    cJSON_AddNumberToObject(ch, "index", c->index);
    if (j->req.kind == SRV_CHAT) {
        cJSON *delta = cJSON_AddObjectToObject(ch, "delta");
        if (!c->role_sent) {
            cJSON_AddStringToObject(delta, "role", "assistant");
            cJSON_AddStringToObject(delta, "content", "");
            c->role_sent = true;
        }
    } else {
        cJSON_AddStringToObject(ch, "text", "");
    }
    cJSON_AddNullToObject(ch, "logprobs");
    cJSON_AddStringToObject(ch, "finish_reason", finish_str(c));
    sse_emit(j, o);
}

/* applies one event to its choice; for a stream, appends SSE chunks to j->out */
static void job_apply(struct srv_job *j, struct gen_event *e)
{
    if (e->choice < 0 || e->choice >= j->n_choices)
        return;
    struct gen_choice *c = &j->ch[e->choice];
    if (c->finished)
        return;
    bool stream = j->req.stream;
    size_t before = c->content.len;
    int n_new = 0;
    if (e->text_len)
        srv_tp_feed(&c->tp, e->text, e->text_len, &c->content, &n_new);
    cJSON *chunk_lp = NULL;
    if (e->token >= 0 && j->req.logprobs >= 0) {
        chunk_lp = stream ? (j->req.kind == SRV_CHAT ? cJSON_CreateArray() : NULL) : NULL;
        if (stream && j->req.kind == SRV_COMPLETION) {
            chunk_lp = cJSON_CreateObject();
            cJSON_AddArrayToObject(chunk_lp, "tokens");
            cJSON_AddArrayToObject(chunk_lp, "token_logprobs");
            cJSON_AddArrayToObject(chunk_lp, "top_logprobs");
            cJSON_AddArrayToObject(chunk_lp, "text_offset");
        }
        add_logprobs(j, c, e, e->text, e->text_len, chunk_lp);
    }
    if (e->finish != QR_FINISH_NONE)
        srv_tp_finish(&c->tp, &c->content, &n_new);
    if (stream) {
        size_t added = c->content.len - before;
        if (added || chunk_lp)
            stream_text(j, c, c->content.p ? c->content.p + before : "", added, chunk_lp);
        if (n_new)
            stream_tool_calls(j, c);
        /* a stream does not need the text again */
        if (c->content.len > 4096)
            srv_buf_consume(&c->content, c->content.len);
    } else {
        cJSON_Delete(chunk_lp);
    }
    if (e->finish != QR_FINISH_NONE) {
        c->finished = true;
        c->finish = e->finish;
        c->n_prompt = e->n_prompt;
        c->n_cached = e->n_cached;
        c->n_gen = e->n_gen;
        if (e->error && !c->error)
            c->error = strdup(e->error);
        j->n_finished++;
        if (stream)
            stream_finish(j, c);
    }
}

static void events_apply(struct srv_job *j, struct gen_event *list)
{
    while (list) {
        struct gen_event *n = list->next;
        job_apply(j, list);
        free(list->error);
        free(list);
        list = n;
    }
}

/* ---- streaming response ---- */

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct srv_job *j = cls;
    for (;;) {
        if (j->out_off < j->out.len) {
            size_t n = j->out.len - j->out_off;
            if (n > max)
                n = max;
            memcpy(buf, j->out.p + j->out_off, n);
            j->out_off += n;
            if (j->out_off == j->out.len) {
                j->out.len = 0;
                j->out_off = 0;
            }
            return (ssize_t)n;
        }
        if (j->done_sent)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (j->out.oom)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        bool gone = false, lost = false;
        struct gen_event *list = job_take(j, &gone, &lost);
        if (gone)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (lost)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        events_apply(j, list);
        if (j->n_finished == j->n_choices) {
            if (j->req.include_usage) {
                cJSON *o = chunk_new(j, NULL);
                cJSON_DeleteItemFromObject(o, "usage");
                usage_obj(j, o);
                sse_emit(j, o);
            }
            srv_buf_puts(&j->out, "data: [DONE]\n\n");
            j->done_sent = true;
        }
    }
}

static void stream_free(void *cls)
{
    struct srv_job *j = cls;
    if (!j->done_sent) {
        pthread_mutex_lock(&j->srv->metrics.mu);
        j->srv->metrics.disconnects++;
        pthread_mutex_unlock(&j->srv->metrics.mu);
    }
    job_cancel(j);
    atomic_fetch_sub(&j->srv->active_jobs, 1);
    job_unref(j);
}

/* ---- non-streaming response ---- */

static int respond_whole(struct srv *s, struct MHD_Connection *conn, struct srv_job *j)
{
    for (int i = 0; i < j->n_choices; i++) {
        struct gen_choice *c = &j->ch[i];
        if (c->finish == QR_FINISH_ERROR || c->finish == QR_FINISH_CANCELLED) {
            struct srv_error e;
            if (c->finish == QR_FINISH_ERROR)
                srv_err(&e, 500, NULL, "generation failed: %s", c->error ? c->error : "engine error");
            else
                srv_err(&e, 503, NULL, "request cancelled: the server is shutting down");
            return srv_send_error(s, conn, &e);
        }
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", j->id);
    cJSON_AddStringToObject(o, "object", j->req.kind == SRV_CHAT ? "chat.completion" : "text_completion");
    cJSON_AddNumberToObject(o, "created", (double)j->created);
    cJSON_AddStringToObject(o, "model", s->model_name);
    cJSON *arr = cJSON_AddArrayToObject(o, "choices");
    for (int i = 0; i < j->n_choices; i++) {
        struct gen_choice *c = &j->ch[i];
        cJSON *ch = cJSON_CreateObject();
        cJSON_AddItemToArray(arr, ch);
        cJSON_AddNumberToObject(ch, "index", i);
        char *text = srv_utf8_sanitize(c->content.p ? c->content.p : "", c->content.len);
        if (j->req.kind == SRV_CHAT) {
            cJSON *m = cJSON_AddObjectToObject(ch, "message");
            cJSON_AddStringToObject(m, "role", "assistant");
            if (c->tp.n_calls > 0 && (!text || !text[0]))
                cJSON_AddNullToObject(m, "content");
            else
                cJSON_AddStringToObject(m, "content", text ? text : "");
            if (c->tp.n_calls > 0) {
                cJSON *tcs = cJSON_AddArrayToObject(m, "tool_calls");
                for (int k = 0; k < c->tp.n_calls; k++) {
                    cJSON *t = cJSON_CreateObject();
                    char id[96];
                    snprintf(id, sizeof id, "call_%s_%d_%d", j->id + j->hex_off, i, k);
                    cJSON_AddStringToObject(t, "id", id);
                    cJSON_AddStringToObject(t, "type", "function");
                    cJSON *fn = cJSON_AddObjectToObject(t, "function");
                    char *nm = srv_utf8_sanitize(c->tp.calls[k].name, strlen(c->tp.calls[k].name));
                    char *ar = srv_utf8_sanitize(c->tp.calls[k].arguments, strlen(c->tp.calls[k].arguments));
                    cJSON_AddStringToObject(fn, "name", nm ? nm : "");
                    cJSON_AddStringToObject(fn, "arguments", ar ? ar : "{}");
                    free(nm);
                    free(ar);
                    cJSON_AddItemToArray(tcs, t);
                }
            }
            if (c->lp) {
                cJSON *l = cJSON_AddObjectToObject(ch, "logprobs");
                cJSON_AddItemToObject(l, "content", c->lp);
                c->lp = NULL;
            } else {
                cJSON_AddNullToObject(ch, "logprobs");
            }
        } else {
            cJSON_AddStringToObject(ch, "text", text ? text : "");
            if (c->lp) {
                cJSON_AddItemToObject(ch, "logprobs", c->lp);
                c->lp = NULL;
            } else {
                cJSON_AddNullToObject(ch, "logprobs");
            }
        }
        free(text);
        cJSON_AddStringToObject(ch, "finish_reason", finish_str(c));
    }
    usage_obj(j, o);
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!txt) {
        struct srv_error e;
        srv_err(&e, 500, NULL, "out of memory building the response");
        return srv_send_error(s, conn, &e);
    }
    int ret = srv_send_json(s, conn, 200, txt);
    free(txt);
    return ret;
}

/* ---- building the job ---- */

static uint64_t random_seed(void)
{
    uint64_t v = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (f) {
        if (fread(&v, sizeof v, 1, f) != 1)
            v = 0;
        fclose(f);
    }
    if (!v) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        v = (uint64_t)ts.tv_nsec * 6364136223846793005ULL + (uint64_t)ts.tv_sec;
    }
    return v;
}

static int context_error(struct srv *s, struct srv_error *e, int n_prompt, int max_tokens)
{
    int ml = s->lim.max_model_len;
    if (max_tokens > 0)
        srv_err(e, 400, "messages", "This model's maximum context length is %d tokens. However, you requested %d "
                "tokens (%d in the messages, %d in the completion). Please reduce the length of the messages or "
                "completion.", ml, n_prompt + max_tokens, n_prompt, max_tokens);
    else
        srv_err(e, 400, "messages", "This model's maximum context length is %d tokens. However, your messages "
                "resulted in %d tokens. Please reduce the length of the messages.", ml, n_prompt);
    snprintf(e->code, sizeof e->code, "context_length_exceeded");
    return -1;
}

/* tokenized prompts of the request; ids[p] malloc'd */
static int build_prompts(struct srv *s, struct srv_request *r, int32_t **ids, int *n_ids, char **tool_prefix,
                         struct srv_error *e)
{
    const struct qr_tokenizer *tok = qr_engine_tokenizer(s->engine);
    if (r->kind == SRV_CHAT) {
        struct qr_chat_opts co = {.add_generation_prompt = true, .enable_thinking = r->enable_thinking};
        char *text = NULL;
        const cJSON *tools = r->tool_choice != SRV_TC_NONE ? r->tools : NULL;
        if (qr_chat_render(s->chat_variant, r->messages, tools, &co, &text) != QR_OK)
            return srv_err(e, 400, "messages", "cannot apply the chat template: %s", qr_last_error());
        if (r->tool_choice == SRV_TC_NAMED || r->tool_choice == SRV_TC_REQUIRED) {
            /* force the call: open it in the prompt, the parser starts inside it */
            struct srv_buf pre = {0};
            srv_buf_puts(&pre, "\n");
            if (r->tool_choice == SRV_TC_NAMED) {
                cJSON *nm = cJSON_CreateString(r->tool_name);
                char *q = cJSON_PrintUnformatted(nm);
                cJSON_Delete(nm);
                srv_buf_printf(&pre, "{\"name\": %s, \"arguments\": ", q ? q : "\"\"");
                free(q);
            }
            struct srv_buf full = {0};
            srv_buf_puts(&full, text);
            srv_buf_puts(&full, "<tool_call>");
            srv_buf_puts(&full, pre.p);
            free(text);
            text = full.p;
            *tool_prefix = pre.p;
        }
        qr_status st = qr_tok_encode(tok, text, strlen(text), true, &ids[0], &n_ids[0]);
        free(text);
        if (st != QR_OK)
            return srv_err(e, 400, "messages", "cannot tokenize the prompt: %s", qr_last_error());
        return 0;
    }
    for (int p = 0; p < r->n_prompts; p++) {
        struct srv_prompt *sp = &r->prompts[p];
        if (sp->text) {
            if (qr_tok_encode(tok, sp->text, strlen(sp->text), true, &ids[p], &n_ids[p]) != QR_OK)
                return srv_err(e, 400, "prompt", "cannot tokenize prompt %d: %s", p, qr_last_error());
        } else {
            ids[p] = malloc(sizeof(int32_t) * (size_t)sp->n_ids);
            if (!ids[p])
                return srv_err(e, 413, "prompt", "prompt too large");
            memcpy(ids[p], sp->ids, sizeof(int32_t) * (size_t)sp->n_ids);
            n_ids[p] = sp->n_ids;
        }
    }
    return 0;
}

int srv_handle_generate(struct srv *s, struct MHD_Connection *conn, enum srv_kind kind, const char *body, size_t len)
{
    struct srv_error e;
    struct srv_request req;
    if (srv_parse_request(kind, body, len, &s->lim, &s->defaults, &req, &e))
        return srv_send_error(s, conn, &e);
    int n_prompts = kind == SRV_CHAT ? 1 : req.n_prompts;
    int32_t *ids[SRV_MAX_PROMPTS] = {0};
    int n_ids[SRV_MAX_PROMPTS] = {0};
    char *tool_prefix = NULL;
    struct srv_job *j = NULL;
    int ret;
    if (build_prompts(s, &req, ids, n_ids, &tool_prefix, &e))
        goto fail_req;
    int prompt_tokens = 0;
    for (int p = 0; p < n_prompts; p++) {
        if (n_ids[p] <= 0) {
            srv_err(&e, 400, kind == SRV_CHAT ? "messages" : "prompt", "the prompt is empty");
            goto fail_req;
        }
        int mt = req.max_tokens;
        if (n_ids[p] >= s->lim.max_model_len || (mt > 0 && n_ids[p] + mt > s->lim.max_model_len)) {
            context_error(s, &e, n_ids[p], mt);
            goto fail_req;
        }
        prompt_tokens += n_ids[p];
    }
    if (atomic_load(&s->state) != SRV_READY) {
        srv_err(&e, 503, NULL, "the server is shutting down");
        goto fail_req;
    }

    j = calloc(1, sizeof *j);
    if (!j) {
        srv_err(&e, 503, NULL, "out of memory");
        goto fail_req;
    }
    j->srv = s;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->req = req;
    memset(&req, 0, sizeof req);
    j->n_choices = n_prompts * j->req.n;
    j->ch = calloc((size_t)j->n_choices, sizeof *j->ch);
    j->refs = 1;
    j->conn = conn;
    j->created = (long long)time(NULL);
    j->prompt_tokens = prompt_tokens;
    j->hex_off = kind == SRV_CHAT ? 9 : 5;
    snprintf(j->id, sizeof j->id, "%s%016llx%04llx", kind == SRV_CHAT ? "chatcmpl-" : "cmpl-",
             (unsigned long long)random_seed(), (unsigned long long)(atomic_fetch_add(&s->next_id, 1) & 0xffff));
    if (!j->ch) {
        free(j);
        j = NULL;
        srv_err(&e, 503, NULL, "out of memory");
        goto fail_req;
    }
    pthread_mutex_lock(&s->jobs_mu);
    j->next = s->jobs;
    if (s->jobs)
        s->jobs->prev = j;
    s->jobs = j;
    pthread_mutex_unlock(&s->jobs_mu);
    atomic_fetch_add(&s->active_jobs, 1);

    bool tools_on = j->req.kind == SRV_CHAT && j->req.tool_choice != SRV_TC_NONE;
    for (int i = 0; i < j->n_choices; i++) {
        struct gen_choice *c = &j->ch[i];
        c->job = j;
        c->index = i;
        c->prompt_idx = i / j->req.n;
        srv_tp_init(&c->tp, tools_on);
        if (tool_prefix)
            srv_tp_start_inside(&c->tp, tool_prefix);
    }
    uint64_t base_seed = j->req.has_seed ? j->req.seed : random_seed();
    for (int i = 0; i < j->n_choices; i++) {
        struct gen_choice *c = &j->ch[i];
        struct qr_request_params p = j->req.params;
        int np = n_ids[c->prompt_idx];
        p.max_tokens = j->req.max_tokens > 0 ? j->req.max_tokens : s->lim.max_model_len - np;
        p.sampling.seed = base_seed + (uint64_t)i;
        pthread_mutex_lock(&j->mu);
        j->refs++;
        pthread_mutex_unlock(&j->mu);
        uint64_t rid = 0;
        atomic_store(&s->last_add_time, qr_time_s());
        qr_status st = qr_engine_add(s->engine, ids[c->prompt_idx], np, &p, srv_on_token, c, &rid);
        if (st != QR_OK) {
            pthread_mutex_lock(&j->mu);
            j->refs--;
            pthread_mutex_unlock(&j->mu);
            if (st == QR_E_INVALID_ARG)
                srv_err(&e, 400, NULL, "%s", qr_last_error());
            else
                srv_err(&e, 503, NULL, "the engine cannot take the request: %s", qr_last_error());
            job_cancel(j);
            atomic_fetch_sub(&s->active_jobs, 1);
            for (int p2 = 0; p2 < n_prompts; p2++)
                free(ids[p2]);
            free(tool_prefix);
            ret = srv_send_error(s, conn, &e);
            job_unref(j);
            return ret;
        }
        pthread_mutex_lock(&j->mu);
        c->req_id = rid;
        c->added = true;
        pthread_mutex_unlock(&j->mu);
    }
    for (int p = 0; p < n_prompts; p++)
        free(ids[p]);
    free(tool_prefix);

    if (j->req.stream) {
        struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_reader, j,
                                                                   stream_free);
        if (!r) {
            stream_free(j);
            return MHD_NO;
        }
        MHD_add_response_header(r, "Content-Type", "text/event-stream; charset=utf-8");
        MHD_add_response_header(r, "Cache-Control", "no-cache");
        MHD_add_response_header(r, "X-Accel-Buffering", "no");
        srv_add_common_headers(s, conn, r);
        ret = MHD_queue_response(conn, 200, r);
        MHD_destroy_response(r);
        srv_metrics_http(&s->metrics, 200);
        return ret;
    }
    /* non-streaming: wait here (this is the connection's own thread) */
    while (j->n_finished < j->n_choices) {
        bool gone = false, lost = false;
        struct gen_event *list = job_take(j, &gone, &lost);
        events_apply(j, list);
        if (lost) {
            job_cancel(j);
            atomic_fetch_sub(&s->active_jobs, 1);
            job_unref(j);
            srv_err(&e, 503, NULL, "out of memory while generating");
            return srv_send_error(s, conn, &e);
        }
        if (gone && j->n_finished < j->n_choices) {
            pthread_mutex_lock(&s->metrics.mu);
            s->metrics.disconnects++;
            pthread_mutex_unlock(&s->metrics.mu);
            job_cancel(j);
            atomic_fetch_sub(&s->active_jobs, 1);
            job_unref(j);
            return MHD_NO;
        }
    }
    ret = respond_whole(s, conn, j);
    atomic_fetch_sub(&s->active_jobs, 1);
    job_unref(j);
    return ret;

fail_req:
    for (int p = 0; p < SRV_MAX_PROMPTS; p++)
        free(ids[p]);
    free(tool_prefix);
    srv_request_free(&req);
    return srv_send_error(s, conn, &e);
}

#endif /* QR_HAVE_MHD */
