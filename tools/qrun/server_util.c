/* server_util.c - growable buffers, UTF-8 validation, OpenAI error bodies,
 * constant-time comparison. */
#include "server.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool buf_reserve(struct srv_buf *b, size_t extra)
{
    if (b->oom)
        return false;
    if (b->len + extra + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) {
        if (cap > ((size_t)1 << 40)) {
            b->oom = true;
            return false;
        }
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void srv_buf_put(struct srv_buf *b, const void *s, size_t n)
{
    if (!buf_reserve(b, n))
        return;
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

void srv_buf_puts(struct srv_buf *b, const char *s)
{
    srv_buf_put(b, s, strlen(s));
}

void srv_buf_printf(struct srv_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[512];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        srv_buf_put(b, tmp, (size_t)n);
        return;
    }
    if (!buf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void srv_buf_consume(struct srv_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        if (b->p)
            b->p[0] = 0;
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
    b->p[b->len] = 0;
}

void srv_buf_free(struct srv_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* length of the valid UTF-8 sequence at s (1..4), or 0 if invalid */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned min;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; min = 0x10000; }
    else return 0;
    if (n < len)
        return 0;
    unsigned cp = c & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

bool srv_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t l = utf8_seq(p + i, n - i);
        if (!l)
            return false;
        i += l;
    }
    return true;
}

char *srv_utf8_sanitize(const char *s, size_t n)
{
    struct srv_buf b = {0};
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    srv_buf_put(&b, "", 0);
    while (i < n) {
        size_t l = utf8_seq(p + i, n - i);
        if (l && !(l == 1 && p[i] == 0)) {
            srv_buf_put(&b, p + i, l);
            i += l;
        } else {
            srv_buf_put(&b, "\xEF\xBF\xBD", 3);
            i++;
        }
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

bool srv_consteq(const char *a, size_t an, const char *b, size_t bn)
{
    /* compare over b's length (the secret's), reading a cyclically, so the time
     * does not depend on where the first difference is */
    volatile unsigned char acc = (unsigned char)(an != bn);
    for (size_t i = 0; i < bn; i++) {
        unsigned char ca = an ? (unsigned char)a[i % an] : 0;
        acc |= (unsigned char)(ca ^ (unsigned char)b[i]);
    }
    return acc == 0;
}

const char *srv_error_type_for(int http)
{
    switch (http) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 405: return "invalid_request_error";
    case 408: return "timeout_error";
    case 413: return "invalid_request_error";
    case 429: return "rate_limit_error";
    case 431: return "invalid_request_error";
    case 503: return "unavailable_error";
    default: return http >= 500 ? "server_error" : "invalid_request_error";
    }
}

int srv_err(struct srv_error *e, int http, const char *param, const char *fmt, ...)
{
    e->http = http;
    e->type = srv_error_type_for(http);
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    e->code[0] = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}

char *srv_error_json(const struct srv_error *e)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *er = cJSON_AddObjectToObject(root, "error");
    char *msg = srv_utf8_sanitize(e->message, strlen(e->message));
    cJSON_AddStringToObject(er, "message", msg ? msg : "error");
    free(msg);
    cJSON_AddStringToObject(er, "type", e->type ? e->type : srv_error_type_for(e->http));
    if (e->param[0])
        cJSON_AddStringToObject(er, "param", e->param);
    else
        cJSON_AddNullToObject(er, "param");
    if (e->code[0])
        cJSON_AddStringToObject(er, "code", e->code);
    else
        cJSON_AddNumberToObject(er, "code", e->http);
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}
