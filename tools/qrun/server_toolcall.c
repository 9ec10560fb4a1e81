#define _GNU_SOURCE
/* server_toolcall.c - Qwen (Hermes-style) tool calls in generated text:
 *     <tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call>
 * become OpenAI tool_calls.  Works on a stream: text that might be the start
 * of "<tool_call>" is held back until it is decided.  A call whose body is not
 * valid JSON with a string "name" is passed through as plain content. */
#include "server.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static const char OPEN[] = "<tool_call>";
static const char CLOSE[] = "</tool_call>";

void srv_tp_init(struct srv_toolparse *tp, bool enabled)
{
    memset(tp, 0, sizeof *tp);
    tp->enabled = enabled;
}

void srv_tp_start_inside(struct srv_toolparse *tp, const char *prefix)
{
    tp->inside = true;
    srv_buf_puts(&tp->hold, prefix);
}

static bool add_call(struct srv_toolparse *tp, const char *body, size_t n)
{
    /* body: the text between the tags */
    char *tmp = malloc(n + 1);
    if (!tmp)
        return false;
    memcpy(tmp, body, n);
    tmp[n] = 0;
    cJSON *j = cJSON_Parse(tmp);
    free(tmp);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(j, "name");
    if (!cJSON_IsObject(j) || !cJSON_IsString(name) || !name->valuestring[0]) {
        cJSON_Delete(j);
        return false;
    }
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(j, "arguments");
    if (!args)
        args = cJSON_GetObjectItemCaseSensitive(j, "parameters");
    char *astr;
    if (!args || cJSON_IsNull(args))
        astr = strdup("{}");
    else if (cJSON_IsString(args))
        astr = strdup(args->valuestring);
    else
        astr = cJSON_PrintUnformatted(args);
    if (tp->n_calls == tp->cap_calls) {
        int cap = tp->cap_calls ? tp->cap_calls * 2 : 4;
        struct srv_toolcall *c = realloc(tp->calls, sizeof *c * (size_t)cap);
        if (!c) {
            free(astr);
            cJSON_Delete(j);
            return false;
        }
        tp->calls = c;
        tp->cap_calls = cap;
    }
    tp->calls[tp->n_calls].name = strdup(name->valuestring);
    tp->calls[tp->n_calls].arguments = astr;
    tp->n_calls++;
    cJSON_Delete(j);
    return true;
}

/* longest suffix of s[0..n) that is a proper prefix of tag */
static size_t partial_suffix(const char *s, size_t n, const char *tag)
{
    size_t tl = strlen(tag);
    size_t best = 0;
    for (size_t k = 1; k < tl && k <= n; k++)
        if (!memcmp(s + n - k, tag, k))
            best = k;
    return best;
}

static bool all_space(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\n' && s[i] != '\r' && s[i] != '\t')
            return false;
    return true;
}

static void process(struct srv_toolparse *tp, struct srv_buf *content, int *n_new, bool final)
{
    for (;;) {
        char *h = tp->hold.p;
        size_t n = tp->hold.len;
        if (!n)
            return;
        if (!tp->inside) {
            char *o = memmem(h, n, OPEN, sizeof OPEN - 1);
            if (o) {
                size_t pre = (size_t)(o - h);
                /* whitespace between two calls is not content */
                if (!(tp->n_calls > 0 && all_space(h, pre)))
                    srv_buf_put(content, h, pre);
                srv_buf_consume(&tp->hold, pre + sizeof OPEN - 1);
                tp->inside = true;
                continue;
            }
            size_t keep = final ? 0 : partial_suffix(h, n, OPEN);
            if (tp->n_calls > 0 && all_space(h, n - keep)) {
                /* after a call: hold whitespace until we know whether another call follows */
                if (final)
                    srv_buf_consume(&tp->hold, n);
                return;
            }
            srv_buf_put(content, h, n - keep);
            srv_buf_consume(&tp->hold, n - keep);
            return;
        }
        char *c = memmem(h, n, CLOSE, sizeof CLOSE - 1);
        if (!c) {
            if (final) {
                /* unterminated: give the text back as content, tag included */
                srv_buf_puts(content, OPEN);
                srv_buf_put(content, h, n);
                srv_buf_consume(&tp->hold, n);
                tp->inside = false;
            }
            return;
        }
        size_t body = (size_t)(c - h);
        if (add_call(tp, h, body)) {
            (*n_new)++;
        } else {
            srv_buf_puts(content, OPEN);
            srv_buf_put(content, h, body + sizeof CLOSE - 1);
        }
        srv_buf_consume(&tp->hold, body + sizeof CLOSE - 1);
        tp->inside = false;
    }
}

void srv_tp_feed(struct srv_toolparse *tp, const char *s, size_t n, struct srv_buf *content, int *n_new)
{
    if (!tp->enabled) {
        srv_buf_put(content, s, n);
        return;
    }
    srv_buf_put(&tp->hold, s, n);
    process(tp, content, n_new, false);
}

void srv_tp_finish(struct srv_toolparse *tp, struct srv_buf *content, int *n_new)
{
    if (!tp->enabled)
        return;
    if (tp->inside && tp->hold.len == 0) {
        /* the prompt opened a call and nothing came */
        tp->inside = false;
        return;
    }
    process(tp, content, n_new, true);
}

void srv_tp_free(struct srv_toolparse *tp)
{
    for (int i = 0; i < tp->n_calls; i++) {
        free(tp->calls[i].name);
        free(tp->calls[i].arguments);
    }
    free(tp->calls);
    srv_buf_free(&tp->hold);
    memset(tp, 0, sizeof *tp);
}
