/* server.h - `qrun serve`: the OpenAI-compatible HTTP server.
 *
 * Layers (one file each):
 *   server_util.c     growable buffers, UTF-8 checks, OpenAI error bodies, constant-time compare
 *   server_openai.c   request JSON -> native srv_request (validation; no engine needed)
 *   server_toolcall.c Qwen/Hermes <tool_call> output -> OpenAI tool_calls (streaming parser)
 *   server_metrics.c  Prometheus counters and histograms
 *   server_gen.c      one HTTP request -> n engine requests, event queue, SSE / JSON responses
 *   server_http.c     libmicrohttpd daemon, routing, auth, CORS, limits, /health, /tokenize ...
 *   cli_serve.c       flags, model loading, SIGTERM drain
 *
 * Threading: libmicrohttpd runs one thread per connection.  That thread parses
 * the JSON, renders the chat template, tokenizes and calls qr_engine_add with
 * srv_on_token as callback; the engine thread pushes events into the request's
 * queue (never blocking), and the connection thread turns them into the
 * response.  A client that hangs up is noticed within ~50 ms (socket poll) and
 * its engine requests are cancelled. */
#ifndef QRUN_SERVER_H
#define QRUN_SERVER_H

#include "qrun/qrun.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;

/* ---- server_util.c ---- */
struct srv_buf {
    char *p;
    size_t len, cap;
    bool oom;                       /* sticky: an append failed */
};
void srv_buf_put(struct srv_buf *b, const void *s, size_t n);
void srv_buf_puts(struct srv_buf *b, const char *s);
void srv_buf_printf(struct srv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void srv_buf_consume(struct srv_buf *b, size_t n);   /* drop the first n bytes */
void srv_buf_free(struct srv_buf *b);

bool srv_utf8_valid(const char *s, size_t n);
/* copy with invalid sequences replaced by U+FFFD; NUL-terminated, malloc'd */
char *srv_utf8_sanitize(const char *s, size_t n);
/* length-hiding equality: time depends only on the lengths of a and b */
bool srv_consteq(const char *a, size_t an, const char *b, size_t bn);

/* An OpenAI-shaped error: {"error":{"message","type","param","code"}} */
struct srv_error {
    int http;                       /* 400, 401, 404, 413, ... */
    const char *type;               /* "invalid_request_error", ... */
    char param[64];                 /* "" -> null */
    char code[48];                  /* "" -> null */
    char message[768];
};
int srv_err(struct srv_error *e, int http, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));     /* fills e, returns -1 */
char *srv_error_json(const struct srv_error *e);   /* malloc'd */
const char *srv_error_type_for(int http);

/* ---- server_openai.c ---- */
enum srv_kind { SRV_CHAT = 0, SRV_COMPLETION };
enum srv_tool_choice { SRV_TC_NONE = 0, SRV_TC_AUTO, SRV_TC_REQUIRED, SRV_TC_NAMED };

#define SRV_MAX_N 16                /* choices per prompt */
#define SRV_MAX_PROMPTS 16          /* prompts per /v1/completions request */
#define SRV_MAX_STOP_LEN 256

struct srv_prompt {
    char *text;                     /* a text prompt, or NULL */
    int32_t *ids;                   /* a token-id prompt (when text is NULL) */
    int n_ids;
};

/* What the parser needs to know about the served model. */
struct srv_limits {
    const char *const *model_names; /* accepted "model" values */
    int n_model_names;
    int vocab_size;                 /* token ids must be < this */
    int max_model_len;
};

struct srv_request {
    enum srv_kind kind;
    bool stream, include_usage;
    int n;
    int max_tokens;                 /* 0: not given (fill to the context) */
    bool has_seed;
    uint64_t seed;
    struct qr_request_params params;    /* defaults + request fields; stop points into stop_store */
    char *stop_store[QR_MAX_STOP];
    int logprobs;                   /* -1 off; else top alternatives (chat: top_logprobs) */
    /* chat */
    struct cJSON *messages;         /* owned copy; content parts flattened to strings */
    struct cJSON *tools;            /* owned copy or NULL */
    enum srv_tool_choice tool_choice;
    char *tool_name;                /* SRV_TC_NAMED */
    int enable_thinking;            /* -1 default, 0/1 from chat_template_kwargs */
    /* completions */
    struct srv_prompt *prompts;
    int n_prompts;
};

/* Parses and validates a request body.  `defaults` are the model's sampling
 * defaults (qr_request_params_default).  Returns 0, or -1 with *err set (4xx). */
int srv_parse_request(enum srv_kind kind, const char *body, size_t len, const struct srv_limits *lim,
                      const struct qr_request_params *defaults, struct srv_request *out, struct srv_error *err);
void srv_request_free(struct srv_request *r);

/* The object root of a body (valid UTF-8, parses, is an object); -1 with *err. */
int srv_parse_body(const char *body, size_t len, struct cJSON **root, struct srv_error *err);

/* ---- server_toolcall.c ---- */
struct srv_toolcall {
    char *name;
    char *arguments;                /* JSON text */
};
struct srv_toolparse {
    bool enabled;
    bool inside;                    /* between <tool_call> and </tool_call> */
    struct srv_buf hold;            /* text not yet classified */
    struct srv_toolcall *calls;     /* every call parsed so far */
    int n_calls, cap_calls;
};
void srv_tp_init(struct srv_toolparse *tp, bool enabled);
/* starts inside a call whose opening text `prefix` was put into the prompt */
void srv_tp_start_inside(struct srv_toolparse *tp, const char *prefix);
/* feeds generated text; appends plain content to `content`; adds the calls this text completes to *n_new */
void srv_tp_feed(struct srv_toolparse *tp, const char *s, size_t n, struct srv_buf *content, int *n_new);
/* end of generation: releases held text (an unterminated call stays content); adds completed calls to *n_new */
void srv_tp_finish(struct srv_toolparse *tp, struct srv_buf *content, int *n_new);
void srv_tp_free(struct srv_toolparse *tp);

/* server states (struct srv.state) */
enum { SRV_LOADING = 0, SRV_READY, SRV_FAILED, SRV_DRAINING, SRV_STOPPING };

/* ---- server_metrics.c ---- */
#define SRV_HIST_MAX 24
struct srv_hist {
    int n_bounds;
    double bounds[SRV_HIST_MAX];
    uint64_t counts[SRV_HIST_MAX + 1];  /* non-cumulative; last = +Inf */
    double sum;
    uint64_t count;
};
struct srv_metrics {
    pthread_mutex_t mu;
    uint64_t http_2xx, http_4xx, http_5xx;
    uint64_t req_finished[5];       /* by qr_finish_reason */
    uint64_t prompt_tokens, gen_tokens;
    uint64_t disconnects;
    struct srv_hist ttft, tpot, e2e;
};
void srv_metrics_init(struct srv_metrics *m);
void srv_metrics_destroy(struct srv_metrics *m);
void srv_metrics_http(struct srv_metrics *m, int status);
void srv_metrics_request_done(struct srv_metrics *m, enum qr_finish_reason r, int n_prompt, int n_gen,
                              double ttft, double tpot, double e2e);
void srv_hist_observe(struct srv_hist *h, double v);
/* why /health must say 503 (NULL: healthy).  state: SRV_*; st NULL when no engine;
 * last_add: qr_time_s() of the latest qr_engine_add */
const char *srv_health_reason(int state, const struct qr_engine_stats *st, double last_add, double now,
                              double stall_s);
/* Prometheus text; stats may be NULL (engine not loaded) */
void srv_metrics_render(struct srv_metrics *m, const struct qr_engine_stats *st, const char *model_name,
                        int active_requests, int connections, struct srv_buf *out);

/* ---- the server object (server_http.c, server_gen.c) ---- */
#define SRV_DEFAULT_MAX_HEADER_COUNT 256
struct srv_config {
    const char *host;
    int port;
    const char *served_model_name;  /* NULL: the model directory's basename */
    const char *api_key;            /* NULL: no auth */
    const char *cors_origins;       /* NULL: no CORS headers; "*" or a comma list */
    size_t max_body;                /* bytes */
    size_t max_header;              /* bytes of request line + headers */
    int max_header_count;           /* request header fields; 0: SRV_DEFAULT_MAX_HEADER_COUNT */
    int max_connections;
    int timeout_s;                  /* idle connection timeout */
    double stall_s;                 /* /health: engine busy without a step for this long -> 503 */
    double shutdown_timeout_s;
    bool verbose;
};

struct srv_job;

struct srv {
    struct srv_config cfg;
    struct MHD_Daemon *mhd;
    struct qr_engine *engine;       /* set once loaded */
    atomic_int state;               /* SRV_LOADING, SRV_READY, SRV_FAILED, SRV_DRAINING, SRV_STOPPING */
    char model_name[256];
    struct srv_limits lim;
    const char *names[2];
    struct qr_request_params defaults;
    enum qr_chat_variant chat_variant;
    int vocab_size;
    struct srv_metrics metrics;
    atomic_int active_jobs;
    atomic_int connections;
    _Atomic double last_add_time;
    pthread_mutex_t jobs_mu;        /* guards the job list */
    struct srv_job *jobs;
    long long created;              /* unix time at start */
    atomic_ullong next_id;
};

int srv_start_http(struct srv *s);       /* 0 or -1 with a message on stderr */
void srv_quiesce(struct srv *s);         /* stop accepting new connections */
void srv_stop_http(struct srv *s);
/* called once the engine is loaded */
void srv_engine_ready(struct srv *s, struct qr_engine *e);
/* cancel every in-flight request (shutdown timeout) */
void srv_cancel_all(struct srv *s);

/* server_gen.c: handles POST /v1/chat/completions and /v1/completions.  Queues
 * the response on `conn`; returns the MHD result. */
struct MHD_Connection;
int srv_handle_generate(struct srv *s, struct MHD_Connection *conn, enum srv_kind kind, const char *body,
                        size_t len);
/* shared response helpers (server_http.c) */
int srv_send_json(struct srv *s, struct MHD_Connection *conn, int status, const char *json);
int srv_send_error(struct srv *s, struct MHD_Connection *conn, const struct srv_error *e);
void srv_add_common_headers(struct srv *s, struct MHD_Connection *conn, void *response);
/* the client's socket has hung up (or errored) */
bool srv_conn_gone(struct MHD_Connection *conn);

#endif
