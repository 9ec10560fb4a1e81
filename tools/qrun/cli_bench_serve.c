/* cli_bench_serve.c - `qrun bench serve`: an HTTP load generator for an
 * OpenAI-compatible server (like `vllm bench serve`).
 *
 * Plain sockets and one thread per in-flight request.  Every request streams
 * (SSE) so that TTFT and inter-token latency are measured at the client; token
 * counts come from stream_options.include_usage.  Prompts are random token ids
 * of --input-len (sent as a token-id prompt to /v1/completions, with
 * ignore_eos so every request produces exactly --output-len tokens) or the
 * lines of a JSONL dataset.  Arrivals are Poisson at --request-rate, or all at
 * once; --max-concurrency bounds requests in flight.  --find-max-concurrency
 * searches the largest concurrency whose mean TTFT stays under --ttft-slo. */
#define _GNU_SOURCE
#include "cli.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

struct bs_opts {
    const char *host;
    int port;
    const char *model;          /* NULL: from /v1/models */
    const char *api_key;
    const char *dataset;
    const char *json_out;
    int num_prompts;
    int input_len, output_len;
    double request_rate;        /* <= 0: all at once */
    int max_concurrency;        /* 0: unbounded */
    bool find_max;
    double ttft_slo_ms;
    int max_search;
    uint64_t seed;
    double timeout_s;
    int vocab;                  /* random ids in [100, vocab) */
};

struct bs_item {
    char *body;                 /* JSON request body */
};

struct bs_result {
    bool ok;
    char err[160];
    double ttft, e2e;           /* seconds */
    int prompt_tokens, out_tokens;
    double *itl;                /* gaps between content chunks */
    int n_itl, cap_itl;
};

struct bs_run {
    const struct bs_opts *o;
    struct bs_item *items;
    int n;
    double *arrival;            /* offsets from start, seconds */
    struct bs_result *res;
    atomic_int next;
    double t0;
};

/* ---- a minimal HTTP/1.1 client ---- */

static int http_connect(const char *host, int port, double timeout_s)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    char p[16];
    snprintf(p, sizeof p, "%d", port);
    if (getaddrinfo(host, p, &hints, &ai) || !ai)
        return -1;
    int fd = -1;
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd < 0)
            continue;
        struct timeval tv = {.tv_sec = (time_t)timeout_s, .tv_usec = (suseconds_t)(fmod(timeout_s, 1.0) * 1e6)};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
            /* as HTTP clients do (aiohttp, curl): no Nagle delay on small writes, so a token's chunk and the
             * request itself are not held back for a delayed ACK (~40 ms on Linux) */
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            break;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int send_request(int fd, const struct bs_opts *o, const char *method, const char *path, const char *body)
{
    char head[1024];
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: qrun-bench\r\nAccept: */*\r\n"
                     "Connection: close\r\n%s%s%s",
                     method, path, o->host, o->port, o->api_key ? "Authorization: Bearer " : "",
                     o->api_key ? o->api_key : "", o->api_key ? "\r\n" : "");
    if (body)
        n += snprintf(head + n, sizeof head - (size_t)n, "Content-Type: application/json\r\nContent-Length: %zu\r\n",
                      strlen(body));
    n += snprintf(head + n, sizeof head - (size_t)n, "\r\n");
    if (n >= (int)sizeof head)
        return -1;
    /* one write: head and body in the same segments, as a client that measures latency must send them */
    size_t nb = body ? strlen(body) : 0;
    char *msg = malloc((size_t)n + nb);
    if (!msg)
        return -1;
    memcpy(msg, head, (size_t)n);
    if (nb)
        memcpy(msg + n, body, nb);
    int rc = send_all(fd, msg, (size_t)n + nb);
    free(msg);
    return rc;
}

/* incremental reader of one response: status, headers, then a (possibly
 * chunked) body delivered to on_body */
struct http_rd {
    int status;
    bool in_body, chunked;
    long long content_left;     /* -1: until close */
    long long chunk_left;       /* -1: reading a size line */
    bool chunk_crlf;            /* expecting CRLF after chunk data */
    bool done;
    char line[4096];
    size_t line_len;
    void (*on_body)(void *u, const char *p, size_t n);
    void *user;
};

static void rd_line(struct http_rd *r)
{
    r->line[r->line_len] = 0;
    if (r->line_len && r->line[r->line_len - 1] == '\r')
        r->line[--r->line_len] = 0;
}

static int rd_feed(struct http_rd *r, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && !r->done) {
        if (!r->in_body || (r->chunked && (r->chunk_left < 0 || r->chunk_crlf))) {
            /* line mode */
            char c = p[i++];
            if (c != '\n') {
                if (r->line_len + 1 < sizeof r->line)
                    r->line[r->line_len++] = c;
                continue;
            }
            rd_line(r);
            if (!r->in_body) {
                if (r->status == 0) {
                    if (sscanf(r->line, "HTTP/%*d.%*d %d", &r->status) != 1)
                        return -1;
                } else if (r->line_len == 0) {
                    r->in_body = true;
                    if (!r->chunked && r->content_left == 0)
                        r->done = true;
                } else if (!strncasecmp(r->line, "transfer-encoding:", 18) && strcasestr(r->line, "chunked")) {
                    r->chunked = true;
                    r->chunk_left = -1;
                } else if (!strncasecmp(r->line, "content-length:", 15)) {
                    r->content_left = atoll(r->line + 15);
                }
            } else if (r->chunk_crlf) {
                r->chunk_crlf = false;
                r->chunk_left = -1;
            } else {
                long long sz = strtoll(r->line, NULL, 16);
                if (sz < 0)
                    return -1;
                if (sz == 0)
                    r->done = true;
                else
                    r->chunk_left = sz;
            }
            r->line_len = 0;
            continue;
        }
        size_t avail = n - i;
        if (r->chunked) {
            size_t take = avail < (size_t)r->chunk_left ? avail : (size_t)r->chunk_left;
            r->on_body(r->user, p + i, take);
            i += take;
            r->chunk_left -= (long long)take;
            if (r->chunk_left == 0)
                r->chunk_crlf = true;
        } else {
            size_t take = avail;
            if (r->content_left >= 0 && (long long)take > r->content_left)
                take = (size_t)r->content_left;
            r->on_body(r->user, p + i, take);
            i += take;
            if (r->content_left >= 0) {
                r->content_left -= (long long)take;
                if (r->content_left == 0)
                    r->done = true;
            }
        }
    }
    return 0;
}

/* ---- one streamed request ---- */

struct sse_state {
    struct bs_result *res;
    double t_start, t_last;
    bool got_first;
    char *buf;
    size_t len, cap;
    bool done;
    char *body_text;            /* non-2xx: the error body */
    size_t body_len;
};

static void itl_push(struct bs_result *r, double v)
{
    if (r->n_itl == r->cap_itl) {
        int cap = r->cap_itl ? r->cap_itl * 2 : 64;
        double *p = realloc(r->itl, sizeof(double) * (size_t)cap);
        if (!p)
            return;
        r->itl = p;
        r->cap_itl = cap;
    }
    r->itl[r->n_itl++] = v;
}

static void sse_event(struct sse_state *s, char *data)
{
    if (!strcmp(data, "[DONE]")) {
        s->done = true;
        return;
    }
    cJSON *j = cJSON_Parse(data);
    if (!j)
        return;
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
    if (err) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(err, "message");
        snprintf(s->res->err, sizeof s->res->err, "%s", cJSON_IsString(m) ? m->valuestring : "error event");
        s->res->ok = false;
        s->done = true;
    }
    const cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "choices"), 0);
    if (ch) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(ch, "text");
        if (!t)
            t = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ch, "delta"), "content");
        if (cJSON_IsString(t) && t->valuestring[0]) {
            double now = qr_time_s();
            if (!s->got_first) {
                s->got_first = true;
                s->res->ttft = now - s->t_start;
            } else {
                itl_push(s->res, now - s->t_last);
            }
            s->t_last = now;
        }
    }
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "usage");
    if (cJSON_IsObject(u)) {
        const cJSON *ct = cJSON_GetObjectItemCaseSensitive(u, "completion_tokens");
        const cJSON *pt = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens");
        if (cJSON_IsNumber(ct)) s->res->out_tokens = ct->valueint;
        if (cJSON_IsNumber(pt)) s->res->prompt_tokens = pt->valueint;
    }
    cJSON_Delete(j);
}

static void sse_body(void *u, const char *p, size_t n)
{
    struct sse_state *s = u;
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + n + 1)
            cap *= 2;
        char *b = realloc(s->buf, cap);
        if (!b)
            return;
        s->buf = b;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    s->buf[s->len] = 0;
    /* events end with a blank line */
    char *start = s->buf;
    char *e;
    while ((e = strstr(start, "\n\n"))) {
        *e = 0;
        for (char *line = start; line && *line;) {
            char *nl = strchr(line, '\n');
            if (nl)
                *nl = 0;
            if (!strncmp(line, "data:", 5)) {
                char *d = line + 5;
                while (*d == ' ')
                    d++;
                sse_event(s, d);
            }
            line = nl ? nl + 1 : NULL;
        }
        start = e + 2;
    }
    size_t rest = s->len - (size_t)(start - s->buf);
    memmove(s->buf, start, rest);
    s->len = rest;
    s->buf[rest] = 0;
}

static void run_one(const struct bs_opts *o, const char *path, const char *body, struct bs_result *res)
{
    memset(res, 0, sizeof *res);
    struct sse_state s = {.res = res};
    s.t_start = qr_time_s();
    res->ok = true;
    int fd = http_connect(o->host, o->port, o->timeout_s);
    if (fd < 0) {
        res->ok = false;
        snprintf(res->err, sizeof res->err, "cannot connect to %s:%d", o->host, o->port);
        return;
    }
    struct http_rd rd = {.content_left = -1, .chunk_left = -1, .on_body = sse_body, .user = &s};
    if (send_request(fd, o, "POST", path, body)) {
        res->ok = false;
        snprintf(res->err, sizeof res->err, "send failed: %s", strerror(errno));
        close(fd);
        return;
    }
    char buf[16384];
    while (!rd.done && !s.done) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n < 0) {
                res->ok = false;
                snprintf(res->err, sizeof res->err, "receive failed: %s", strerror(errno));
            }
            break;
        }
        if (rd_feed(&rd, buf, (size_t)n)) {
            res->ok = false;
            snprintf(res->err, sizeof res->err, "bad HTTP response");
            break;
        }
        if (rd.status && rd.status != 200 && rd.in_body) {
            res->ok = false;
            snprintf(res->err, sizeof res->err, "HTTP %d", rd.status);
        }
    }
    close(fd);
    res->e2e = qr_time_s() - s.t_start;
    if (res->ok && rd.status != 200) {
        res->ok = false;
        snprintf(res->err, sizeof res->err, "HTTP %d", rd.status);
    }
    if (res->ok && !s.done) {
        res->ok = false;
        snprintf(res->err, sizeof res->err, "stream ended without [DONE]");
    }
    if (res->ok && !s.got_first && res->out_tokens > 0) {
        res->ok = false;
        snprintf(res->err, sizeof res->err, "no content chunk");
    }
    if (res->ok && res->out_tokens == 0)
        res->out_tokens = res->n_itl + (s.got_first ? 1 : 0);
    free(s.buf);
}

/* GET path -> body (malloc'd) or NULL */
static char *http_get(const struct bs_opts *o, const char *path, int *status)
{
    int fd = http_connect(o->host, o->port, 10.0);
    if (fd < 0)
        return NULL;
    if (send_request(fd, o, "GET", path, NULL)) {
        close(fd);
        return NULL;
    }
    char buf[8192];
    char *body = NULL;
    size_t blen = 0;
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            break;
        char *nb = realloc(body, blen + (size_t)n + 1);
        if (!nb)
            break;
        body = nb;
        memcpy(body + blen, buf, (size_t)n);
        blen += (size_t)n;
        body[blen] = 0;
    }
    close(fd);
    if (!body)
        return NULL;
    if (sscanf(body, "HTTP/%*d.%*d %d", status) != 1)
        *status = 0;
    char *b = strstr(body, "\r\n\r\n");
    char *out = strdup(b ? b + 4 : "");
    free(body);
    return out;
}

/* ---- the load ---- */

static void *worker(void *arg)
{
    struct bs_run *r = arg;
    for (;;) {
        int i = atomic_fetch_add(&r->next, 1);
        if (i >= r->n)
            return NULL;
        double wait = r->t0 + r->arrival[i] - qr_time_s();
        if (wait > 0) {
            struct timespec ts = {(time_t)wait, (long)(fmod(wait, 1.0) * 1e9)};
            nanosleep(&ts, NULL);
        }
        run_one(r->o, "/v1/completions", r->items[i].body, &r->res[i]);
    }
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

struct stat3 { double mean, median, p99; };

static struct stat3 stats_of(double *v, int n)
{
    struct stat3 s = {0, 0, 0};
    if (n <= 0)
        return s;
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += v[i];
    s.mean = sum / n;
    s.median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    double pos = 0.99 * (n - 1);
    int lo = (int)floor(pos);
    int hi = lo + 1 < n ? lo + 1 : lo;
    s.p99 = v[lo] + (v[hi] - v[lo]) * (pos - lo);
    return s;
}

struct bs_summary {
    int completed, failed;
    double duration;
    long long in_tokens, out_tokens;
    struct stat3 ttft, tpot, itl, e2e;  /* ms */
    char first_err[160];
};

static uint64_t rng_next(uint64_t *s)
{
    *s += 0x9E3779B97F4A7C15ULL;
    uint64_t z = *s;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static int run_load(const struct bs_opts *o, struct bs_item *items, int n, int concurrency, double rate,
                    struct bs_summary *sum)
{
    struct bs_run r = {.o = o, .items = items, .n = n};
    if (n < 1)
        return -1;
    r.arrival = calloc((size_t)n, sizeof(double));
    r.res = calloc((size_t)n, sizeof *r.res);
    if (!r.arrival || !r.res) {
        free(r.arrival);
        free(r.res);
        return -1;
    }
    uint64_t st = o->seed ^ 0x5eedULL;
    double t = 0;
    for (int i = 0; i < n; i++) {
        if (rate > 0) {
            double u = ((double)(rng_next(&st) >> 11) + 0.5) / 9007199254740992.0;
            t += -log(u) / rate;
        }
        r.arrival[i] = t;
    }
    int nt = concurrency > 0 ? concurrency : n;
    if (nt > n)
        nt = n;
    if (nt > 4096)
        nt = 4096;
    if (nt < 1)
        nt = 1;
    pthread_t *th = calloc((size_t)nt, sizeof *th);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    r.t0 = qr_time_s();
    int started = 0;
    for (int i = 0; th && i < nt; i++)
        if (!pthread_create(&th[i], &attr, worker, &r))
            started++;
        else
            break;
    pthread_attr_destroy(&attr);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    free(th);
    memset(sum, 0, sizeof *sum);
    sum->duration = qr_time_s() - r.t0;
    double *ttft = calloc((size_t)n + 1, sizeof(double)), *tpot = calloc((size_t)n + 1, sizeof(double));
    double *e2e = calloc((size_t)n + 1, sizeof(double));
    int n_itl = 0, n_tpot = 0;
    for (int i = 0; i < n; i++)
        n_itl += r.res[i].n_itl;
    double *itl = calloc((size_t)n_itl + 1, sizeof(double));
    n_itl = 0;
    for (int i = 0; i < n; i++) {
        struct bs_result *x = &r.res[i];
        if (!x->ok) {
            sum->failed++;
            if (!sum->first_err[0])
                snprintf(sum->first_err, sizeof sum->first_err, "%s", x->err);
            free(x->itl);
            continue;
        }
        ttft[sum->completed] = x->ttft * 1e3;
        e2e[sum->completed] = x->e2e * 1e3;
        if (x->out_tokens > 1)
            tpot[n_tpot++] = (x->e2e - x->ttft) * 1e3 / (x->out_tokens - 1);
        for (int k = 0; k < x->n_itl; k++)
            itl[n_itl++] = x->itl[k] * 1e3;
        sum->completed++;
        sum->in_tokens += x->prompt_tokens;
        sum->out_tokens += x->out_tokens;
        free(x->itl);
    }
    sum->ttft = stats_of(ttft, sum->completed);
    sum->e2e = stats_of(e2e, sum->completed);
    sum->tpot = stats_of(tpot, n_tpot);
    sum->itl = stats_of(itl, n_itl);
    free(ttft);
    free(tpot);
    free(e2e);
    free(itl);
    free(r.arrival);
    free(r.res);
    return 0;
}

static void print_summary(const char *title, const struct bs_summary *s)
{
    printf("============ %s ============\n", title);
    printf("%-36s %d\n", "Successful requests:", s->completed);
    printf("%-36s %d\n", "Failed requests:", s->failed);
    if (s->first_err[0])
        printf("%-36s %s\n", "First error:", s->first_err);
    printf("%-36s %.2f\n", "Benchmark duration (s):", s->duration);
    printf("%-36s %lld\n", "Total input tokens:", s->in_tokens);
    printf("%-36s %lld\n", "Total generated tokens:", s->out_tokens);
    double d = s->duration > 0 ? s->duration : 1e-9;
    printf("%-36s %.2f\n", "Request throughput (req/s):", s->completed / d);
    printf("%-36s %.2f\n", "Output token throughput (tok/s):", s->out_tokens / d);
    printf("%-36s %.2f\n", "Total token throughput (tok/s):", (s->in_tokens + s->out_tokens) / d);
    const struct { const char *name; const struct stat3 *v; } rows[] = {
        {"TTFT", &s->ttft}, {"TPOT", &s->tpot}, {"ITL", &s->itl}, {"E2E latency", &s->e2e}};
    for (size_t i = 0; i < 4; i++)
        printf("%-12s mean %9.2f ms   median %9.2f ms   p99 %9.2f ms\n", rows[i].name, rows[i].v->mean,
               rows[i].v->median, rows[i].v->p99);
    fflush(stdout);
}

static void summary_json(cJSON *o, const struct bs_summary *s)
{
    double d = s->duration > 0 ? s->duration : 1e-9;
    cJSON_AddNumberToObject(o, "completed", s->completed);
    cJSON_AddNumberToObject(o, "failed", s->failed);
    cJSON_AddNumberToObject(o, "duration_s", s->duration);
    cJSON_AddNumberToObject(o, "total_input_tokens", (double)s->in_tokens);
    cJSON_AddNumberToObject(o, "total_output_tokens", (double)s->out_tokens);
    cJSON_AddNumberToObject(o, "request_throughput", s->completed / d);
    cJSON_AddNumberToObject(o, "output_throughput", s->out_tokens / d);
    cJSON_AddNumberToObject(o, "total_token_throughput", (s->in_tokens + s->out_tokens) / d);
    const struct { const char *name; const struct stat3 *v; } rows[] = {
        {"ttft", &s->ttft}, {"tpot", &s->tpot}, {"itl", &s->itl}, {"e2el", &s->e2e}};
    char k[48];
    for (size_t i = 0; i < 4; i++) {
        snprintf(k, sizeof k, "mean_%s_ms", rows[i].name);
        cJSON_AddNumberToObject(o, k, rows[i].v->mean);
        snprintf(k, sizeof k, "median_%s_ms", rows[i].name);
        cJSON_AddNumberToObject(o, k, rows[i].v->median);
        snprintf(k, sizeof k, "p99_%s_ms", rows[i].name);
        cJSON_AddNumberToObject(o, k, rows[i].v->p99);
    }
    if (s->first_err[0])
        cJSON_AddStringToObject(o, "first_error", s->first_err);
}

/* request bodies: random token ids, or the dataset's lines */
static struct bs_item *make_items(const struct bs_opts *o, int n, uint64_t seed)
{
    struct bs_item *items = calloc((size_t)n, sizeof *items);
    if (!items)
        return NULL;
    char **lines = NULL;
    int n_lines = 0;
    char *data = NULL;
    if (o->dataset) {
        data = qr_cli_read_file(o->dataset, NULL);
        if (!data) {
            free(items);
            return NULL;
        }
        for (char *p = strtok(data, "\n"); p; p = strtok(NULL, "\n")) {
            if (!*p || *p == '\r')
                continue;
            char **nl = realloc(lines, sizeof *lines * (size_t)(n_lines + 1));
            if (!nl)
                break;
            lines = nl;
            lines[n_lines++] = p;
        }
        if (!n_lines) {
            fprintf(stderr, "qrun bench serve: %s has no lines\n", o->dataset);
            free(lines);
            free(data);
            free(items);
            return NULL;
        }
    }
    uint64_t st = seed;
    for (int i = 0; i < n; i++) {
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "model", o->model);
        int out_len = o->output_len;
        if (lines) {
            cJSON *l = cJSON_Parse(lines[i % n_lines]);
            const cJSON *pr = cJSON_GetObjectItemCaseSensitive(l, "prompt");
            const cJSON *ol = cJSON_GetObjectItemCaseSensitive(l, "output_len");
            if (!ol)
                ol = cJSON_GetObjectItemCaseSensitive(l, "max_tokens");
            if (cJSON_IsNumber(ol) && ol->valueint > 0)
                out_len = ol->valueint;
            if (!pr || !(cJSON_IsString(pr) || cJSON_IsArray(pr))) {
                fprintf(stderr, "qrun bench serve: %s line %d: needs \"prompt\" (a string or token ids)\n",
                        o->dataset, i % n_lines + 1);
                cJSON_Delete(l);
                cJSON_Delete(b);
                for (int k = 0; k < i; k++)
                    free(items[k].body);
                free(items);
                free(lines);
                free(data);
                return NULL;
            }
            cJSON_AddItemToObject(b, "prompt", cJSON_Duplicate(pr, 1));
            cJSON_Delete(l);
        } else {
            cJSON *ids = cJSON_AddArrayToObject(b, "prompt");
            int span = o->vocab > 1100 ? o->vocab - 100 : 1000;
            for (int k = 0; k < o->input_len; k++)
                cJSON_AddItemToArray(ids, cJSON_CreateNumber(100 + (double)(rng_next(&st) % (uint64_t)span)));
        }
        cJSON_AddNumberToObject(b, "max_tokens", out_len);
        cJSON_AddBoolToObject(b, "ignore_eos", true);
        cJSON_AddNumberToObject(b, "temperature", 0);
        cJSON_AddBoolToObject(b, "stream", true);
        cJSON *so = cJSON_AddObjectToObject(b, "stream_options");
        cJSON_AddBoolToObject(so, "include_usage", true);
        items[i].body = cJSON_PrintUnformatted(b);
        cJSON_Delete(b);
    }
    free(lines);
    free(data);
    return items;
}

static void free_items(struct bs_item *items, int n)
{
    for (int i = 0; items && i < n; i++)
        free(items[i].body);
    free(items);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qrun bench serve [--host 127.0.0.1] [--port 8000] [--num-prompts N]\n"
            "         [--input-len I --output-len O | --dataset F.jsonl] [--request-rate R | --max-concurrency C]\n"
            "         [--find-max-concurrency [--ttft-slo MS] [--max-search C]] [--json-out F]\n"
            "  --host H, --port P        the server (default 127.0.0.1:8000)\n"
            "  --model NAME              model id to send (default: the server's, from /v1/models)\n"
            "  --api-key KEY             Bearer key (default $QRUN_API_KEY)\n"
            "  --num-prompts N           requests to send (default 100)\n"
            "  --input-len I             random prompt length in tokens (default 1024)\n"
            "  --output-len O            tokens to generate per request, EOS ignored (default 128)\n"
            "  --dataset F.jsonl         one {\"prompt\": text or ids, \"output_len\": n} per line instead\n"
            "  --request-rate R          Poisson arrivals at R requests/s (default: all at once)\n"
            "  --max-concurrency C       at most C requests in flight\n"
            "  --find-max-concurrency    largest C (all C requests at once) with mean TTFT < --ttft-slo\n"
            "  --ttft-slo MS             TTFT bound for the search (default 1000)\n"
            "  --max-search C            upper end of the search (default 256)\n"
            "  --seed S                  prompt RNG seed (default 0)\n"
            "  --timeout S               per-request socket timeout (default 600)\n"
            "  --json-out F              write the results as JSON\n");
}

int qr_cli_bench_serve(int argc, char **argv)
{
    struct bs_opts o = {.host = "127.0.0.1", .port = 8000, .num_prompts = 100, .input_len = 1024,
                        .output_len = 128, .ttft_slo_ms = 1000, .max_search = 256, .timeout_s = 600,
                        .vocab = 32000};
    o.api_key = getenv("QRUN_API_KEY");
    if (o.api_key && !*o.api_key)
        o.api_key = NULL;
    long long n;
    double d;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--find-max-concurrency")) {
            o.find_max = true;
            continue;
        }
        if (!v) {
            fprintf(stderr, "qrun bench serve: unknown option or missing value: %s\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--host")) o.host = v;
        else if (!strcmp(a, "--port")) { if (qr_cli_parse_int(a, v, 1, 65535, &n)) return 2; o.port = (int)n; }
        else if (!strcmp(a, "--model")) o.model = v;
        else if (!strcmp(a, "--api-key")) o.api_key = v;
        else if (!strcmp(a, "--dataset")) o.dataset = v;
        else if (!strcmp(a, "--json-out")) o.json_out = v;
        else if (!strcmp(a, "--num-prompts")) { if (qr_cli_parse_int(a, v, 1, 1000000, &n)) return 2; o.num_prompts = (int)n; }
        else if (!strcmp(a, "--input-len")) { if (qr_cli_parse_int(a, v, 1, 1 << 22, &n)) return 2; o.input_len = (int)n; }
        else if (!strcmp(a, "--output-len")) { if (qr_cli_parse_int(a, v, 1, 1 << 22, &n)) return 2; o.output_len = (int)n; }
        else if (!strcmp(a, "--request-rate")) {
            if (!strcmp(v, "inf")) o.request_rate = 0;
            else { if (qr_cli_parse_float(a, v, 1e-6, 1e9, &d)) return 2; o.request_rate = d; }
        }
        else if (!strcmp(a, "--max-concurrency")) { if (qr_cli_parse_int(a, v, 1, 100000, &n)) return 2; o.max_concurrency = (int)n; }
        else if (!strcmp(a, "--ttft-slo")) { if (qr_cli_parse_float(a, v, 0.001, 1e9, &d)) return 2; o.ttft_slo_ms = d; }
        else if (!strcmp(a, "--max-search")) { if (qr_cli_parse_int(a, v, 1, 4096, &n)) return 2; o.max_search = (int)n; }
        else if (!strcmp(a, "--seed")) { if (qr_cli_parse_int(a, v, 0, (1LL << 62), &n)) return 2; o.seed = (uint64_t)n; }
        else if (!strcmp(a, "--timeout")) { if (qr_cli_parse_float(a, v, 0.1, 1e6, &d)) return 2; o.timeout_s = d; }
        else {
            fprintf(stderr, "qrun bench serve: unknown option: %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    /* the served model, its vocabulary and context */
    int status = 0;
    char *models = http_get(&o, "/v1/models", &status);
    if (!models || status != 200) {
        fprintf(stderr, "qrun bench serve: GET http://%s:%d/v1/models failed (%s)\n", o.host, o.port,
                models ? "HTTP error; is --api-key right?" : "cannot connect");
        free(models);
        return 1;
    }
    cJSON *mj = cJSON_Parse(models);
    free(models);
    const cJSON *m0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(mj, "data"), 0);
    const cJSON *mid = cJSON_GetObjectItemCaseSensitive(m0, "id");
    const cJSON *voc = cJSON_GetObjectItemCaseSensitive(m0, "vocab_size");
    const cJSON *mml = cJSON_GetObjectItemCaseSensitive(m0, "max_model_len");
    char model_buf[256] = "";
    if (!o.model && cJSON_IsString(mid)) {
        snprintf(model_buf, sizeof model_buf, "%s", mid->valuestring);
        o.model = model_buf;
    }
    if (cJSON_IsNumber(voc) && voc->valueint > 1100)
        o.vocab = voc->valueint < 1000000 ? voc->valueint : 1000000;
    int max_len = cJSON_IsNumber(mml) ? mml->valueint : 0;
    cJSON_Delete(mj);
    if (!o.model) {
        fprintf(stderr, "qrun bench serve: the server lists no model; pass --model\n");
        return 1;
    }
    if (!o.dataset && max_len > 0 && o.input_len + o.output_len > max_len) {
        fprintf(stderr, "qrun bench serve: --input-len %d + --output-len %d exceeds the server's max_model_len %d\n",
                o.input_len, o.output_len, max_len);
        return 2;
    }
    printf("qrun bench serve: %s at http://%s:%d, %s\n", o.model, o.host, o.port,
           o.dataset ? o.dataset : "random token prompts");
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "model", o.model);
    cJSON_AddStringToObject(out, "endpoint", "/v1/completions");
    if (!o.dataset) {
        cJSON_AddNumberToObject(out, "input_len", o.input_len);
        cJSON_AddNumberToObject(out, "output_len", o.output_len);
    } else {
        cJSON_AddStringToObject(out, "dataset", o.dataset);
    }
    {
        /* one warm-up request of the measured prompt length, not measured (as vLLM's bench serve sends its first
         * prompt as a test run): the first prompt of a size pays one-time costs (library kernels loaded on first
         * use, algorithm choice) that would otherwise land in the first trial's TTFT */
        struct bs_opts w = o;
        w.input_len = o.dataset ? 16 : o.input_len;
        w.output_len = 2;
        w.dataset = NULL;
        struct bs_item *wi = make_items(&w, 1, o.seed + 999);
        struct bs_result wr;
        if (wi) {
            run_one(&o, "/v1/completions", wi[0].body, &wr);
            free(wr.itl);
            if (!wr.ok)
                fprintf(stderr, "qrun bench serve: warm-up request failed: %s\n", wr.err);
        }
        free_items(wi, 1);
    }
    int rc = 0;
    if (!o.find_max) {
        struct bs_item *items = make_items(&o, o.num_prompts, o.seed);
        if (!items)
            return 1;
        struct bs_summary s;
        printf("%d requests, %s, max concurrency %s\n", o.num_prompts,
               o.request_rate > 0 ? "Poisson arrivals" : "all at once", o.max_concurrency ? "bounded" : "unbounded");
        if (run_load(&o, items, o.num_prompts, o.max_concurrency, o.request_rate, &s)) {
            free_items(items, o.num_prompts);
            return 1;
        }
        free_items(items, o.num_prompts);
        print_summary("Serving Benchmark Result", &s);
        cJSON_AddNumberToObject(out, "num_prompts", o.num_prompts);
        cJSON_AddNumberToObject(out, "request_rate", o.request_rate > 0 ? o.request_rate : -1);
        cJSON_AddNumberToObject(out, "max_concurrency", o.max_concurrency);
        summary_json(out, &s);
        rc = s.failed ? 1 : 0;
    } else {
        /* concurrency C: C requests sent at once; double until mean TTFT breaks the SLO, then bisect */
        cJSON *trials = cJSON_AddArrayToObject(out, "trials");
        int good = 0, bad = 0;
        int c = 1;
        struct bs_summary best = {0};
        for (;;) {
            struct bs_item *items = make_items(&o, c, o.seed + (uint64_t)c);
            if (!items)
                return 1;
            struct bs_summary s;
            run_load(&o, items, c, c, 0, &s);
            free_items(items, c);
            bool ok = s.failed == 0 && s.ttft.mean < o.ttft_slo_ms;
            printf("concurrency %4d: mean TTFT %9.1f ms, p99 %9.1f ms, TPOT %7.2f ms, failed %d -> %s\n", c,
                   s.ttft.mean, s.ttft.p99, s.tpot.mean, s.failed, ok ? "ok" : "over the SLO");
            fflush(stdout);
            cJSON *t = cJSON_CreateObject();
            cJSON_AddNumberToObject(t, "concurrency", c);
            summary_json(t, &s);
            cJSON_AddItemToArray(trials, t);
            if (ok) {
                good = c;
                best = s;
            } else {
                bad = c;
            }
            if (!bad) {
                if (c >= o.max_search)
                    break;
                c = c * 2 > o.max_search ? o.max_search : c * 2;
            } else {
                if (bad - good <= 1)
                    break;
                c = (good + bad) / 2;
            }
        }
        printf("max concurrency with mean TTFT < %.0f ms: %d%s\n", o.ttft_slo_ms, good,
               !bad ? " (search limit reached)" : "");
        cJSON_AddNumberToObject(out, "ttft_slo_ms", o.ttft_slo_ms);
        cJSON_AddNumberToObject(out, "max_concurrency_under_slo", good);
        if (good)
            print_summary("At the max concurrency", &best);
        rc = good ? 0 : 1;
    }
    if (o.json_out) {
        char *txt = cJSON_Print(out);
        FILE *f = fopen(o.json_out, "w");
        if (!f || !txt || fputs(txt, f) < 0) {
            fprintf(stderr, "qrun bench serve: cannot write %s: %s\n", o.json_out, strerror(errno));
            rc = 1;
        }
        if (f)
            fclose(f);
        free(txt);
    }
    cJSON_Delete(out);
    return rc;
}
