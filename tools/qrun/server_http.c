/* server_http.c - the libmicrohttpd daemon: routing, auth, CORS, body and
 * header limits, /health, /metrics, /v1/models, /tokenize, /detokenize and the
 * web page.  Generation routes are handed to server_gen.c. */
#ifdef QR_HAVE_MHD
#define _GNU_SOURCE
#include "server.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qr_web_index.h"   /* generated from web/index.html: qr_web_index_html[], qr_web_index_html_len */

struct conn_ctx {
    struct srv_buf body;
    bool too_big;
    bool answered;          /* a response was queued before the body ended */
    bool deferred;          /* an error is decided; answer it once the body is drained */
    struct srv_error err;   /* that error */
    unsigned long long deferred_bytes;
};

/* A POST rejected before its body arrives is still drained (discarded) before the error goes out, up to this
 * many bytes: answering and closing while the client is still writing makes it see EPIPE/ECONNRESET instead of
 * the error. Bigger declared bodies are refused at once and the connection is closed. */
#define QR_SRV_DRAIN_MAX (64ull << 20)

/* ---- response helpers ---- */

static bool origin_allowed(const struct srv *s, const char *origin)
{
    const char *list = s->cfg.cors_origins;
    if (!list || !origin)
        return false;
    if (!strcmp(list, "*"))
        return true;
    size_t ol = strlen(origin);
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        while (l && *p == ' ') { p++; l--; }
        while (l && p[l - 1] == ' ') l--;
        if (l == ol && !memcmp(p, origin, l))
            return true;
        if (!e)
            break;
        p = e + 1;
    }
    return false;
}

void srv_add_common_headers(struct srv *s, struct MHD_Connection *conn, void *response)
{
    struct MHD_Response *r = response;
    const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    if (origin_allowed(s, origin)) {
        if (!strcmp(s->cfg.cors_origins, "*")) {
            MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
        } else {
            MHD_add_response_header(r, "Access-Control-Allow-Origin", origin);
            MHD_add_response_header(r, "Vary", "Origin");
        }
    }
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
}

static int send_buf(struct srv *s, struct MHD_Connection *conn, int status, const char *ctype, const char *data,
                    size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", ctype);
    srv_add_common_headers(s, conn, r);
    int ret = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    srv_metrics_http(&s->metrics, status);
    return ret;
}

int srv_send_json(struct srv *s, struct MHD_Connection *conn, int status, const char *json)
{
    return send_buf(s, conn, status, "application/json", json, strlen(json));
}

int srv_send_error(struct srv *s, struct MHD_Connection *conn, const struct srv_error *e)
{
    char *j = srv_error_json(e);
    if (s->cfg.verbose)
        fprintf(stderr, "qrun serve: %d %s\n", e->http, e->message);
    int ret = srv_send_json(s, conn, e->http, j ? j : "{\"error\":{\"message\":\"error\"}}");
    free(j);
    return ret;
}

static int send_cjson(struct srv *s, struct MHD_Connection *conn, int status, cJSON *j)
{
    char *txt = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!txt) {
        struct srv_error e;
        srv_err(&e, 500, NULL, "out of memory");
        return srv_send_error(s, conn, &e);
    }
    int ret = srv_send_json(s, conn, status, txt);
    free(txt);
    return ret;
}

bool srv_conn_gone(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return true;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLIN | POLLRDHUP};
    int rc = poll(&p, 1, 0);
    if (rc <= 0)
        return false;
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))
        return true;
    if (p.revents & POLLIN) {
        char c;
        ssize_t n = recv(ci->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n == 0)
            return true;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return true;
    }
    return false;
}

/* ---- simple routes ---- */

static int handle_health(struct srv *s, struct MHD_Connection *conn)
{
    int st = atomic_load(&s->state);
    struct qr_engine_stats es;
    bool have = (st == SRV_READY || st == SRV_DRAINING) && s->engine;
    if (have)
        qr_engine_get_stats(s->engine, &es);
    const char *why = srv_health_reason(st, have ? &es : NULL, atomic_load(&s->last_add_time), qr_time_s(),
                                        s->cfg.stall_s);
    if (why) {
        char b[256];
        snprintf(b, sizeof b, "{\"status\":\"unavailable\",\"error\":{\"message\":\"%s\",\"type\":"
                              "\"unavailable_error\",\"code\":503}}", why);
        return srv_send_json(s, conn, 503, b);
    }
    return srv_send_json(s, conn, 200, "{\"status\":\"ok\"}");
}

static int handle_metrics(struct srv *s, struct MHD_Connection *conn)
{
    struct srv_buf b = {0};
    struct qr_engine_stats es;
    bool have = atomic_load(&s->state) >= SRV_READY && s->engine;
    if (have)
        qr_engine_get_stats(s->engine, &es);
    srv_metrics_render(&s->metrics, have ? &es : NULL, s->model_name, atomic_load(&s->active_jobs),
                       atomic_load(&s->connections), &b);
    int ret = send_buf(s, conn, 200, "text/plain; version=0.0.4; charset=utf-8", b.p ? b.p : "", b.len);
    srv_buf_free(&b);
    return ret;
}

static int handle_models(struct srv *s, struct MHD_Connection *conn)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(root, "data");
    cJSON *m = cJSON_CreateObject();
    cJSON_AddItemToArray(data, m);
    cJSON_AddStringToObject(m, "id", s->model_name);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", (double)s->created);
    cJSON_AddStringToObject(m, "owned_by", "qrun");
    const struct qr_model *mod = qr_engine_model(s->engine);
    char *root_dir = mod && mod->dir ? srv_utf8_sanitize(mod->dir, strlen(mod->dir)) : NULL;
    cJSON_AddStringToObject(m, "root", root_dir ? root_dir : s->model_name);
    free(root_dir);
    cJSON_AddNumberToObject(m, "max_model_len", s->lim.max_model_len);
    cJSON_AddNumberToObject(m, "vocab_size", s->vocab_size);
    return send_cjson(s, conn, 200, root);
}

static int handle_tokenize(struct srv *s, struct MHD_Connection *conn, const char *body, size_t len)
{
    struct srv_error e;
    cJSON *root = NULL;
    if (srv_parse_body(body, len, &root, &e))
        return srv_send_error(s, conn, &e);
    const struct qr_tokenizer *tok = qr_engine_tokenizer(s->engine);
    const cJSON *pr = cJSON_GetObjectItemCaseSensitive(root, "prompt");
    if (!pr)
        pr = cJSON_GetObjectItemCaseSensitive(root, "content");
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
    char *rendered = NULL;
    const char *text = NULL;
    if (cJSON_IsString(pr)) {
        text = pr->valuestring;
    } else if (msgs) {
        /* reuse the chat parser for the messages' validation */
        struct srv_request r;
        char *mbody = cJSON_PrintUnformatted(root);
        int rc = mbody ? srv_parse_request(SRV_CHAT, mbody, strlen(mbody), &s->lim, &s->defaults, &r, &e)
                       : srv_err(&e, 500, NULL, "out of memory");
        free(mbody);
        if (rc) {
            cJSON_Delete(root);
            return srv_send_error(s, conn, &e);
        }
        bool agp = true;
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "add_generation_prompt");
        if (cJSON_IsBool(a))
            agp = cJSON_IsTrue(a);
        struct qr_chat_opts co = {.add_generation_prompt = agp, .enable_thinking = r.enable_thinking};
        qr_status st = qr_chat_render(s->chat_variant, r.messages, r.tools, &co, &rendered);
        srv_request_free(&r);
        if (st != QR_OK) {
            srv_err(&e, 400, "messages", "cannot render the chat template: %s", qr_last_error());
            cJSON_Delete(root);
            return srv_send_error(s, conn, &e);
        }
        text = rendered;
    } else {
        cJSON_Delete(root);
        srv_err(&e, 400, "prompt", "'prompt' (a string) or 'messages' is required");
        return srv_send_error(s, conn, &e);
    }
    int32_t *ids = NULL;
    int n = 0;
    qr_status st = qr_tok_encode(tok, text, strlen(text), true, &ids, &n);
    free(rendered);
    cJSON_Delete(root);
    if (st != QR_OK) {
        srv_err(&e, 400, "prompt", "cannot tokenize: %s", qr_last_error());
        return srv_send_error(s, conn, &e);
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddNumberToObject(out, "count", n);
    cJSON_AddNumberToObject(out, "max_model_len", s->lim.max_model_len);
    cJSON *arr = cJSON_AddArrayToObject(out, "tokens");
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateNumber(ids[i]));
    free(ids);
    return send_cjson(s, conn, 200, out);
}

static int handle_detokenize(struct srv *s, struct MHD_Connection *conn, const char *body, size_t len)
{
    struct srv_error e;
    cJSON *root = NULL;
    if (srv_parse_body(body, len, &root, &e))
        return srv_send_error(s, conn, &e);
    const cJSON *toks = cJSON_GetObjectItemCaseSensitive(root, "tokens");
    if (!cJSON_IsArray(toks)) {
        cJSON_Delete(root);
        srv_err(&e, 400, "tokens", "'tokens' must be an array of token ids");
        return srv_send_error(s, conn, &e);
    }
    int n = cJSON_GetArraySize(toks);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
    int i = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, toks) {
        double d = cJSON_IsNumber(v) ? v->valuedouble : -1.0;
        if (!cJSON_IsNumber(v) || d != (double)(long long)d || d < 0 || d >= (double)s->vocab_size) {
            free(ids);
            cJSON_Delete(root);
            srv_err(&e, 400, "tokens", "token ids must be integers in [0, %d)", s->vocab_size);
            return srv_send_error(s, conn, &e);
        }
        ids[i++] = (int32_t)d;
    }
    cJSON_Delete(root);
    char *text = NULL;
    size_t tl = 0;
    qr_status st = qr_tok_decode(qr_engine_tokenizer(s->engine), ids, n, false, &text, &tl);
    free(ids);
    if (st != QR_OK) {
        srv_err(&e, 400, "tokens", "cannot detokenize: %s", qr_last_error());
        return srv_send_error(s, conn, &e);
    }
    char *clean = srv_utf8_sanitize(text, tl);
    free(text);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "prompt", clean ? clean : "");
    free(clean);
    return send_cjson(s, conn, 200, out);
}

static int handle_index(struct srv *s, struct MHD_Connection *conn)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(qr_web_index_html_len, (void *)qr_web_index_html,
                                                             MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/html; charset=utf-8");
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                            "img-src 'self' data:");
    srv_add_common_headers(s, conn, r);
    int ret = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    srv_metrics_http(&s->metrics, 200);
    return ret;
}

/* ---- routing ---- */

enum route {
    R_NONE = 0, R_INDEX, R_HEALTH, R_METRICS, R_MODELS, R_CHAT, R_COMPLETIONS, R_TOKENIZE, R_DETOKENIZE
};

static enum route route_of(const char *url, bool *post, bool *needs_key)
{
    static const struct { const char *path; enum route r; bool post, key; } table[] = {
        {"/", R_INDEX, false, false},
        {"/index.html", R_INDEX, false, false},
        {"/health", R_HEALTH, false, false},
        {"/v1/health", R_HEALTH, false, false},
        {"/metrics", R_METRICS, false, false},
        {"/v1/models", R_MODELS, false, true},
        {"/v1/chat/completions", R_CHAT, true, true},
        {"/v1/completions", R_COMPLETIONS, true, true},
        {"/tokenize", R_TOKENIZE, true, true},
        {"/detokenize", R_DETOKENIZE, true, true},
        {"/v1/tokenize", R_TOKENIZE, true, true},
        {"/v1/detokenize", R_DETOKENIZE, true, true},
    };
    for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
        if (!strcmp(url, table[i].path)) {
            *post = table[i].post;
            *needs_key = table[i].key;
            return table[i].r;
        }
    }
    *needs_key = !strncmp(url, "/v1/", 4);
    return R_NONE;
}

static bool key_ok(struct srv *s, struct MHD_Connection *conn)
{
    const char *key = s->cfg.api_key;
    if (!key)
        return true;
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    const char *given = NULL;
    if (h && !strncasecmp(h, "Bearer ", 7)) {
        given = h + 7;
        while (*given == ' ')
            given++;
    }
    if (!given)
        given = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Api-Key");
    if (!given)
        return false;
    return srv_consteq(given, strlen(given), key, strlen(key));
}

static int dispatch_post(struct srv *s, struct MHD_Connection *conn, enum route r, const char *body, size_t len)
{
    switch (r) {
    case R_CHAT: return srv_handle_generate(s, conn, SRV_CHAT, body, len);
    case R_COMPLETIONS: return srv_handle_generate(s, conn, SRV_COMPLETION, body, len);
    case R_TOKENIZE: return handle_tokenize(s, conn, body, len);
    case R_DETOKENIZE: return handle_detokenize(s, conn, body, len);
    default: break;
    }
    struct srv_error e;
    srv_err(&e, 404, NULL, "not found");
    return srv_send_error(s, conn, &e);
}

/* ---- header limits ----
 * libmicrohttpd keeps the whole request head (the bytes, plus a ~56-byte record per field) in one per-connection
 * memory pool and, when that overflows, answers its own HTML 431 before on_request ever runs. So the pool is made
 * larger than our limits (see mhd_pool_size) and on_request enforces the limits itself on its first call, with an
 * OpenAI-shaped JSON 431, then closes the connection. Only a head too big even for the pool gets MHD's page. */

static size_t header_count_limit(const struct srv_config *c)
{
    return c->max_header_count > 0 ? (size_t)c->max_header_count : SRV_DEFAULT_MAX_HEADER_COUNT;
}

/* Bytes of MHD's per-connection pool: room for a head of 4x --max-header-bytes (at least the limit plus the field
 * records at the count limit plus 32 KiB for the reply), and never under 128 KiB. Defaults: 64 KiB -> 256 KiB per
 * connection, x 512 connections = 128 MiB at most (mmap'd: pages count once touched). */
static size_t mhd_pool_size(const struct srv_config *c)
{
    const size_t cap = (size_t)1 << 30;
    size_t h = c->max_header < cap ? c->max_header : cap;
    size_t need = h + header_count_limit(c) * 64 + ((size_t)32 << 10);
    size_t p = 4 * h > need ? 4 * h : need;
    return p < ((size_t)128 << 10) ? ((size_t)128 << 10) : p;
}

struct head_tally {
    size_t bytes;
    size_t fields;
};

static enum MHD_Result tally_value(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                                   const char *value, size_t value_size)
{
    struct head_tally *t = cls;
    (void)key;
    if (kind == MHD_HEADER_KIND) {
        t->bytes += key_size + 2 + value_size + 2;      /* "Key: value\r\n" */
        t->fields++;
    } else {
        t->bytes += key_size + (value ? 1 + value_size : 0) + 1;   /* "key=value&" of the query string */
    }
    return MHD_YES;
}

/* true (and *e filled) when the request line + headers are over --max-header-bytes or the field-count limit */
static bool head_too_large(const struct srv *s, struct MHD_Connection *conn, const char *method, const char *url,
                           const char *version, struct srv_error *e)
{
    struct head_tally t = {strlen(method) + 1 + strlen(url) + 1 + strlen(version) + 2 + 2, 0};
    MHD_get_connection_values_n(conn, MHD_HEADER_KIND | MHD_GET_ARGUMENT_KIND, tally_value, &t);
    size_t max_fields = header_count_limit(&s->cfg);
    if (t.bytes <= s->cfg.max_header && t.fields <= max_fields)
        return false;
    srv_err(e, 431, NULL,
            "request headers too large: %zu bytes in %zu header fields (limit %zu bytes and %zu fields)", t.bytes,
            t.fields, s->cfg.max_header, max_fields);
    e->type = "invalid_request_error";
    snprintf(e->code, sizeof e->code, "request_header_too_large");
    return true;
}

/* the error, then the connection is closed (the client may still be sending) */
static int send_error_close(struct srv *s, struct MHD_Connection *conn, const struct srv_error *e)
{
    char *j = srv_error_json(e);
    const char *txt = j ? j : "{\"error\":{\"message\":\"error\"}}";
    if (s->cfg.verbose)
        fprintf(stderr, "qrun serve: %d %s\n", e->http, e->message);
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(txt), (void *)txt, MHD_RESPMEM_MUST_COPY);
    free(j);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Connection", "close");
    srv_add_common_headers(s, conn, r);
    int ret = MHD_queue_response(conn, (unsigned)e->http, r);
    MHD_destroy_response(r);
    srv_metrics_http(&s->metrics, e->http);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    struct srv *s = cls;
    struct conn_ctx *cc = *con_cls;
    struct srv_error e;
    bool post = false, needs_key = false;
    enum route r = route_of(url, &post, &needs_key);
    if (!cc) {
        cc = calloc(1, sizeof *cc);
        if (!cc)
            return MHD_NO;
        *con_cls = cc;
        if (head_too_large(s, conn, method, url, version, &e)) {
            cc->answered = true;
            return (enum MHD_Result)send_error_close(s, conn, &e);
        }
        if (!strcmp(method, "OPTIONS")) {
            /* CORS preflight */
            struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
            srv_add_common_headers(s, conn, resp);
            if (origin_allowed(s, MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin"))) {
                MHD_add_response_header(resp, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
                MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                                        "Authorization, Content-Type, X-Api-Key");
                MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
            }
            MHD_add_response_header(resp, "Allow", "GET, POST, OPTIONS");
            int ret = MHD_queue_response(conn, 204, resp);
            MHD_destroy_response(resp);
            srv_metrics_http(&s->metrics, 204);
            cc->answered = true;
            return ret;
        }
        int early = 0;
        if (needs_key && !key_ok(s, conn)) {
            srv_err(&e, 401, NULL, "Invalid or missing API key: send 'Authorization: Bearer <key>'");
            snprintf(e.code, sizeof e.code, "invalid_api_key");
            early = 1;
        } else if (r == R_NONE) {
            srv_err(&e, 404, NULL, "no route for %s %s", method, url);
            early = 1;
        } else if ((post && strcmp(method, "POST")) || (!post && strcmp(method, "GET") && strcmp(method, "HEAD"))) {
            srv_err(&e, 405, NULL, "method %s not allowed on %s (use %s)", method, url, post ? "POST" : "GET");
            early = 1;
        } else if (r != R_INDEX && r != R_HEALTH && r != R_METRICS && atomic_load(&s->state) != SRV_READY) {
            int st = atomic_load(&s->state);
            srv_err(&e, 503, NULL, "%s", st == SRV_LOADING ? "the model is still loading" : "the server is shutting down");
            early = 1;
        } else if (post) {
            const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
            if (cl) {
                char *end = NULL;
                unsigned long long v = strtoull(cl, &end, 10);
                if (!*cl || *end || v > s->cfg.max_body) {
                    srv_err(&e, 413, NULL, "request body too large (limit %zu bytes)", s->cfg.max_body);
                    early = 1;
                }
            }
        }
        if (early) {
            const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
            const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding");
            char *end = NULL;
            unsigned long long v = cl ? strtoull(cl, &end, 10) : 0;
            bool drain = (cl && *cl && !*end && v > 0 && v <= QR_SRV_DRAIN_MAX) || (!cl && te);
            if (drain) {
                cc->deferred = true;
                cc->err = e;
                return MHD_YES;
            }
            cc->answered = true;
            return (enum MHD_Result)srv_send_error(s, conn, &e);
        }
        if (!post) {
            cc->answered = true;
            switch (r) {
            case R_INDEX: return (enum MHD_Result)handle_index(s, conn);
            case R_HEALTH: return (enum MHD_Result)handle_health(s, conn);
            case R_METRICS: return (enum MHD_Result)handle_metrics(s, conn);
            case R_MODELS: return (enum MHD_Result)handle_models(s, conn);
            default: break;
            }
            srv_err(&e, 404, NULL, "not found");
            return (enum MHD_Result)srv_send_error(s, conn, &e);
        }
        return MHD_YES;     /* wait for the body */
    }
    if (cc->answered) {
        *upload_size = 0;   /* discard the rest */
        return MHD_YES;
    }
    if (cc->deferred) {
        if (*upload_size) {
            cc->deferred_bytes += *upload_size;
            *upload_size = 0;
            if (cc->deferred_bytes <= QR_SRV_DRAIN_MAX)
                return MHD_YES;
        }
        cc->answered = true;
        return (enum MHD_Result)srv_send_error(s, conn, &cc->err);
    }
    if (*upload_size) {
        if (cc->too_big || cc->body.len + *upload_size > s->cfg.max_body) {
            cc->too_big = true;
            srv_buf_free(&cc->body);
        } else {
            srv_buf_put(&cc->body, upload, *upload_size);
        }
        *upload_size = 0;
        return MHD_YES;
    }
    cc->answered = true;
    if (cc->too_big) {
        srv_err(&e, 413, NULL, "request body too large (limit %zu bytes)", s->cfg.max_body);
        return (enum MHD_Result)srv_send_error(s, conn, &e);
    }
    if (cc->body.oom) {
        srv_err(&e, 413, NULL, "request body too large for memory");
        return (enum MHD_Result)srv_send_error(s, conn, &e);
    }
    return (enum MHD_Result)dispatch_post(s, conn, r, cc->body.p, cc->body.len);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode tc)
{
    (void)cls;
    (void)conn;
    (void)tc;
    struct conn_ctx *cc = *con_cls;
    if (cc) {
        srv_buf_free(&cc->body);
        free(cc);
        *con_cls = NULL;
    }
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)conn;
    (void)socket_ctx;
    struct srv *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED)
        atomic_fetch_add(&s->connections, 1);
    else
        atomic_fetch_sub(&s->connections, 1);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct srv *s = cls;
    if (!s->cfg.verbose)
        return;
    fprintf(stderr, "qrun serve (http): ");
    vfprintf(stderr, fmt, ap);
}

int srv_start_http(struct srv *s)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", s->cfg.port);
    int rc = getaddrinfo(s->cfg.host, port, &hints, &ai);
    if (rc || !ai) {
        fprintf(stderr, "qrun serve: cannot resolve --host '%s': %s\n", s->cfg.host, gai_strerror(rc));
        return -1;
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    size_t mem = mhd_pool_size(&s->cfg);
    s->mhd = MHD_start_daemon(flags, (uint16_t)s->cfg.port, NULL, NULL, on_request, s,
                              MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->cfg.max_connections,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->cfg.timeout_s,
                              MHD_OPTION_CONNECTION_MEMORY_LIMIT, mem,
                              MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                              MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                              MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
                              MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!s->mhd) {
        fprintf(stderr, "qrun serve: cannot listen on %s:%d (%s)\n", s->cfg.host, s->cfg.port,
                errno ? strerror(errno) : "libmicrohttpd failed to start");
        return -1;
    }
    return 0;
}

void srv_quiesce(struct srv *s)
{
    if (!s->mhd)
        return;
    MHD_socket fd = MHD_quiesce_daemon(s->mhd);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
}

void srv_stop_http(struct srv *s)
{
    if (s->mhd)
        MHD_stop_daemon(s->mhd);
    s->mhd = NULL;
}

#endif /* QR_HAVE_MHD */
