/* chat_template.c - Qwen ChatML chat templates rendered natively in C, byte for
 * byte as HF apply_chat_template renders the Jinja templates (kept in
 * tests/data/tok/templates/; each render_* function below follows its template
 * statement by statement), plus detection of the variant from
 * tokenizer_config.json.
 *
 * Jinja semantics mirrored: `x is string`, truthiness of strings/lists,
 * Python str methods (strip/lstrip/rstrip('\n'), split(...)[0]/[-1]), `tojson`
 * = json.dumps(ensure_ascii=False) with ", " / ": " separators, `{{ v }}` of
 * None/bools/numbers as Python prints them.  Where a template would raise
 * (string + None, `in` on None), qrun returns QR_E_INVALID_ARG, except the
 * hybrid template's assistant content None, which renders as '' (OpenAI clients
 * send content: null with tool_calls).
 * Known limit: cJSON keeps no integer/float distinction, so a JSON number such
 * as 3.0 inside tool arguments prints as 3 (Python would print 3.0), and
 * integers beyond 2^53 lose precision. */
#include "qrun/qr_tokenizer.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------ string builder ---- */

struct sb {
    char *p;
    size_t n, cap;
    bool oom;
};

static void sb_putn(struct sb *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 1024;
        while (nc < b->n + n + 1)
            nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_puts(struct sb *b, const char *s) { sb_putn(b, s, strlen(s)); }

/* ------------------------------------------------------- Python values ---- */

/* repr() of a Python float: shortest round-tripping digits; exponent form
 * when exp < -4 or exp >= 16 */
static void py_float(struct sb *b, double v)
{
    char buf[64], digits[32];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec - 1, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    /* buf = [-]d.ddde[+-]xx */
    const char *s = buf;
    bool neg = *s == '-';
    if (neg)
        s++;
    int nd = 0;
    for (; *s && *s != 'e'; s++)
        if (*s != '.')
            digits[nd++] = *s;
    digits[nd] = 0;
    int exp = atoi(s + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        digits[--nd] = 0;
    char out[96];
    size_t o = 0;
    if (neg)
        out[o++] = '-';
    if (exp < -4 || exp >= 16) {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            memcpy(out + o, digits + 1, (size_t)nd - 1);
            o += (size_t)nd - 1;
        }
        o += (size_t)snprintf(out + o, sizeof out - o, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    } else if (exp < 0) {
        out[o++] = '0';
        out[o++] = '.';
        for (int i = 0; i < -exp - 1; i++)
            out[o++] = '0';
        memcpy(out + o, digits, (size_t)nd);
        o += (size_t)nd;
    } else {
        for (int i = 0; i <= exp; i++)
            out[o++] = i < nd ? digits[i] : '0';
        out[o++] = '.';
        if (nd > exp + 1) {
            memcpy(out + o, digits + exp + 1, (size_t)(nd - exp - 1));
            o += (size_t)(nd - exp - 1);
        } else
            out[o++] = '0';
    }
    sb_putn(b, out, o);
}

static void py_number(struct sb *b, double v)
{
    if (v == floor(v) && fabs(v) < 1e17) {   /* cJSON cannot tell 3 from 3.0: print as an int */
        char buf[32];
        snprintf(buf, sizeof buf, "%.0f", v);
        sb_puts(b, buf);
    } else
        py_float(b, v);
}

static void json_str(struct sb *b, const char *s)
{
    sb_putn(b, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        const char *esc = NULL;
        char ubuf[8];
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default:
            if (c < 0x20) {
                snprintf(ubuf, sizeof ubuf, "\\u%04x", c);
                esc = ubuf;
            }
        }
        if (esc) {
            sb_putn(b, run, (size_t)(s - run));
            sb_puts(b, esc);
            run = s + 1;
        }
    }
    sb_putn(b, run, (size_t)(s - run));
    sb_putn(b, "\"", 1);
}

/* Python json.dumps(v, ensure_ascii=False) */
static void tojson(struct sb *b, const cJSON *v)
{
    if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
        bool obj = cJSON_IsObject(v);
        sb_putn(b, obj ? "{" : "[", 1);
        const cJSON *e;
        bool first = true;
        cJSON_ArrayForEach(e, v) {
            if (!first)
                sb_putn(b, ", ", 2);
            first = false;
            if (obj) {
                json_str(b, e->string ? e->string : "");
                sb_putn(b, ": ", 2);
            }
            tojson(b, e);
        }
        sb_putn(b, obj ? "}" : "]", 1);
    } else if (cJSON_IsString(v))
        json_str(b, v->valuestring);
    else if (cJSON_IsNumber(v))
        py_number(b, v->valuedouble);
    else if (cJSON_IsTrue(v))
        sb_puts(b, "true");
    else if (cJSON_IsFalse(v))
        sb_puts(b, "false");
    else
        sb_puts(b, "null");
}

/* {{ v }}: how Jinja prints a scalar (str()); containers are not supported */
static qr_status py_print(struct sb *b, const cJSON *v, const char *what)
{
    if (!v)
        return QR_OK;   /* undefined prints as '' */
    if (cJSON_IsString(v))
        sb_puts(b, v->valuestring);
    else if (cJSON_IsNull(v))
        sb_puts(b, "None");
    else if (cJSON_IsTrue(v))
        sb_puts(b, "True");
    else if (cJSON_IsFalse(v))
        sb_puts(b, "False");
    else if (cJSON_IsNumber(v))
        py_number(b, v->valuedouble);
    else
        return qr_set_error(QR_E_INVALID_ARG, "chat template: %s must be a string, not a JSON %s", what,
                            cJSON_IsArray(v) ? "array" : "object");
    return QR_OK;
}

/* ----------------------------------------------------- message helpers ---- */

static const cJSON *item(const cJSON *o, const char *k) { return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL; }

static const char *role_of(const cJSON *m)
{
    const cJSON *r = item(m, "role");
    return cJSON_IsString(r) ? r->valuestring : "";
}

static bool role_is(const cJSON *m, const char *r) { return !strcmp(role_of(m), r); }

/* `x + content` where content must be a string (Jinja raises otherwise) */
static qr_status need_str(const cJSON *m, const char *key, int idx, const char **out)
{
    const cJSON *c = item(m, key);
    if (!cJSON_IsString(c))
        return qr_set_error(QR_E_INVALID_ARG, "chat template: messages[%d].%s must be a string", idx, key);
    *out = c->valuestring;
    return QR_OK;
}

static bool truthy(const cJSON *v)
{
    if (!v || cJSON_IsNull(v) || cJSON_IsFalse(v))
        return false;
    if (cJSON_IsString(v))
        return v->valuestring[0] != 0;
    if (cJSON_IsArray(v) || cJSON_IsObject(v))
        return v->child != NULL;
    if (cJSON_IsNumber(v))
        return v->valuedouble != 0;
    return true;
}

static const char k_tools_head[] =
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>";
static const char k_tools_tail[] =
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
    "<args-json-object>}\n</tool_call><|im_end|>\n";
static const char k_qwen25_default_system[] = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";
static const char k_qwen15_default_system[] = "You are a helpful assistant.";

static void tools_list(struct sb *b, const cJSON *tools)
{
    const cJSON *t;
    cJSON_ArrayForEach(t, tools) {
        sb_putn(b, "\n", 1);
        tojson(b, t);
    }
    sb_puts(b, k_tools_tail);
}

/* the Qwen3 templates' opening: tools block or the first system message */
static qr_status qwen3_header(struct sb *b, const cJSON *msgs, const cJSON *tools)
{
    const cJSON *m0 = cJSON_GetArrayItem(msgs, 0);
    const char *c;
    qr_status st;
    if (truthy(tools)) {
        sb_puts(b, "<|im_start|>system\n");
        if (role_is(m0, "system")) {
            if ((st = need_str(m0, "content", 0, &c)) != QR_OK)
                return st;
            sb_puts(b, c);
            sb_puts(b, "\n\n");
        }
        sb_puts(b, k_tools_head);
        tools_list(b, tools);
    } else if (role_is(m0, "system")) {
        if ((st = need_str(m0, "content", 0, &c)) != QR_OK)
            return st;
        sb_puts(b, "<|im_start|>system\n");
        sb_puts(b, c);
        sb_puts(b, "<|im_end|>\n");
    }
    return QR_OK;
}

/* assistant tool calls, Qwen3 style (content: the text already emitted) */
static qr_status qwen3_tool_calls(struct sb *b, const cJSON *m, const char *content, int idx)
{
    const cJSON *tcs = item(m, "tool_calls");
    if (!truthy(tcs))
        return QR_OK;
    if (!cJSON_IsArray(tcs))
        return qr_set_error(QR_E_INVALID_ARG, "chat template: messages[%d].tool_calls must be an array", idx);
    const cJSON *tc;
    bool first = true;
    cJSON_ArrayForEach(tc, tcs) {
        if ((first && content[0]) || !first)
            sb_putn(b, "\n", 1);
        first = false;
        const cJSON *fn = item(tc, "function");
        const cJSON *call = truthy(fn) ? fn : tc;
        sb_puts(b, "<tool_call>\n{\"name\": \"");
        qr_status st = py_print(b, item(call, "name"), "tool call name");
        if (st != QR_OK)
            return st;
        sb_puts(b, "\", \"arguments\": ");
        const cJSON *args = item(call, "arguments");
        if (!args)
            return qr_set_error(QR_E_INVALID_ARG, "chat template: messages[%d] has a tool call without arguments", idx);
        if (cJSON_IsString(args))
            sb_puts(b, args->valuestring);
        else
            tojson(b, args);
        sb_puts(b, "}\n</tool_call>");
    }
    return QR_OK;
}

/* consecutive tool messages share one user block */
static qr_status tool_message(struct sb *b, const cJSON *msgs, int i, int n, const cJSON *content_val,
                              const char *content_str)
{
    if (i == 0 || !role_is(cJSON_GetArrayItem(msgs, i - 1), "tool"))
        sb_puts(b, "<|im_start|>user");
    sb_puts(b, "\n<tool_response>\n");
    if (content_str)
        sb_puts(b, content_str);
    else {
        qr_status st = py_print(b, content_val, "tool message content");
        if (st != QR_OK)
            return st;
    }
    sb_puts(b, "\n</tool_response>");
    if (i == n - 1 || !role_is(cJSON_GetArrayItem(msgs, i + 1), "tool"))
        sb_puts(b, "<|im_end|>\n");
    return QR_OK;
}

static void turn(struct sb *b, const char *role, const char *content)
{
    sb_puts(b, "<|im_start|>");
    sb_puts(b, role);
    sb_putn(b, "\n", 1);
    sb_puts(b, content);
    sb_puts(b, "<|im_end|>\n");
}

/* ------------------------------------------------------ Python strings ---- */

/* a malloc'd copy of s[0..n) */
static char *dupn(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

static const char *last_strstr(const char *s, const char *needle)
{
    const char *last = NULL, *p = s;
    while ((p = strstr(p, needle)) != NULL)
        last = p++;
    return last;
}

static const char *lstrip_nl(const char *s)
{
    while (*s == '\n')
        s++;
    return s;
}

static size_t rstrip_nl_len(const char *s, size_t n)
{
    while (n > 0 && s[n - 1] == '\n')
        n--;
    return n;
}

/* content.split('</think>')[-1].lstrip('\n') and
 * content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') */
static bool split_think(const char *content, char **out_content, char **out_reasoning)
{
    const char *last = last_strstr(content, "</think>");
    const char *first = strstr(content, "</think>");
    *out_content = strdup(lstrip_nl(last + 8));
    size_t n0 = rstrip_nl_len(content, (size_t)(first - content));
    char *head = dupn(content, n0);
    if (!head || !*out_content) {
        free(head);
        free(*out_content);
        return false;
    }
    const char *th = last_strstr(head, "<think>");
    const char *r = th ? th + 7 : head;
    *out_reasoning = strdup(lstrip_nl(r));
    free(head);
    if (!*out_reasoning) {
        free(*out_content);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------ variants ---- */

static qr_status render_instruct_2507(struct sb *b, const cJSON *msgs, const cJSON *tools, const struct qr_chat_opts *o)
{
    int n = cJSON_GetArraySize(msgs);
    qr_status st = qwen3_header(b, msgs, tools);
    if (st != QR_OK)
        return st;
    for (int i = 0; i < n; i++) {
        const cJSON *m = cJSON_GetArrayItem(msgs, i);
        const cJSON *cv = item(m, "content");
        const char *content = cJSON_IsString(cv) ? cv->valuestring : "";
        if (role_is(m, "user") || (role_is(m, "system") && i > 0)) {
            turn(b, role_of(m), content);
        } else if (role_is(m, "assistant")) {
            sb_puts(b, "<|im_start|>assistant\n");
            sb_puts(b, content);
            if ((st = qwen3_tool_calls(b, m, content, i)) != QR_OK)
                return st;
            sb_puts(b, "<|im_end|>\n");
        } else if (role_is(m, "tool")) {
            if ((st = tool_message(b, msgs, i, n, NULL, content)) != QR_OK)
                return st;
        }
    }
    if (o->add_generation_prompt)
        sb_puts(b, "<|im_start|>assistant\n");
    return QR_OK;
}

/* Qwen3 hybrid (thinking) and Thinking-2507: `strict` = hybrid (content must be
 * a string, reasoning_content "defined and not none"); else the 2507 rules
 * (non-string content is '', reasoning_content "is string"). */
static qr_status render_thinking(struct sb *b, const cJSON *msgs, const cJSON *tools, const struct qr_chat_opts *o,
                                 bool hybrid)
{
    int n = cJSON_GetArraySize(msgs);
    qr_status st = qwen3_header(b, msgs, tools);
    if (st != QR_OK)
        return st;
    /* the last user query that is not a wrapped tool response */
    int last_query = n - 1;
    for (int i = n - 1; i >= 0; i--) {
        const cJSON *m = cJSON_GetArrayItem(msgs, i);
        if (!role_is(m, "user"))
            continue;
        const cJSON *cv = item(m, "content");
        if (!cJSON_IsString(cv)) {
            if (hybrid)
                return qr_set_error(QR_E_INVALID_ARG, "chat template: messages[%d].content must be a string", i);
            continue;
        }
        const char *c = cv->valuestring;
        size_t cl = strlen(c);
        bool wrapped = !strncmp(c, "<tool_response>", 15) && cl >= 16 && !strcmp(c + cl - 16, "</tool_response>");
        if (!wrapped) {
            last_query = i;
            break;
        }
    }
    for (int i = 0; i < n; i++) {
        const cJSON *m = cJSON_GetArrayItem(msgs, i);
        const cJSON *cv = item(m, "content");
        const char *content = cJSON_IsString(cv) ? cv->valuestring : "";
        if (role_is(m, "user") || (role_is(m, "system") && i > 0)) {
            if (hybrid && (st = need_str(m, "content", i, &content)) != QR_OK)
                return st;
            turn(b, role_of(m), content);
        } else if (role_is(m, "assistant")) {
            if (hybrid && cv && !cJSON_IsString(cv) && !cJSON_IsNull(cv))
                return qr_set_error(QR_E_INVALID_ARG, "chat template: messages[%d].content must be a string", i);
            const cJSON *rv = item(m, "reasoning_content");
            char *own_content = NULL, *own_reasoning = NULL;
            const char *reasoning = "";
            bool have_r = hybrid ? (rv && !cJSON_IsNull(rv)) : cJSON_IsString(rv);
            if (have_r) {
                if (!cJSON_IsString(rv))
                    return qr_set_error(QR_E_INVALID_ARG, "chat template: messages[%d].reasoning_content must be a string", i);
                reasoning = rv->valuestring;
            } else if (strstr(content, "</think>")) {
                if (!split_think(content, &own_content, &own_reasoning))
                    return qr_set_error(QR_E_OOM_HOST, "chat template: out of memory");
                content = own_content;
                reasoning = own_reasoning;
            }
            if (i > last_query && (i == n - 1 || reasoning[0])) {
                size_t rl = strlen(reasoning);
                const char *r0 = lstrip_nl(reasoning);
                rl = rstrip_nl_len(r0, rl - (size_t)(r0 - reasoning));
                sb_puts(b, "<|im_start|>assistant\n<think>\n");
                sb_putn(b, r0, rl);
                sb_puts(b, "\n</think>\n\n");
                sb_puts(b, lstrip_nl(content));
            } else {
                sb_puts(b, "<|im_start|>assistant\n");
                sb_puts(b, content);
            }
            st = qwen3_tool_calls(b, m, content, i);
            free(own_content);
            free(own_reasoning);
            if (st != QR_OK)
                return st;
            sb_puts(b, "<|im_end|>\n");
        } else if (role_is(m, "tool")) {
            st = hybrid ? tool_message(b, msgs, i, n, cv, NULL) : tool_message(b, msgs, i, n, NULL, content);
            if (st != QR_OK)
                return st;
        }
    }
    if (o->add_generation_prompt) {
        if (hybrid) {
            sb_puts(b, "<|im_start|>assistant\n");
            if (o->enable_thinking == 0)
                sb_puts(b, "<think>\n\n</think>\n\n");
        } else
            sb_puts(b, "<|im_start|>assistant\n<think>\n");
    }
    return QR_OK;
}

static qr_status render_qwen25(struct sb *b, const cJSON *msgs, const cJSON *tools, const struct qr_chat_opts *o)
{
    int n = cJSON_GetArraySize(msgs);
    const cJSON *m0 = cJSON_GetArrayItem(msgs, 0);
    const char *c;
    qr_status st;
    if (truthy(tools)) {
        sb_puts(b, "<|im_start|>system\n");
        if (role_is(m0, "system")) {
            if ((st = py_print(b, item(m0, "content"), "system message content")) != QR_OK)
                return st;
        } else
            sb_puts(b, k_qwen25_default_system);
        sb_puts(b, "\n\n");
        sb_puts(b, k_tools_head);
        tools_list(b, tools);
    } else if (role_is(m0, "system")) {
        if ((st = need_str(m0, "content", 0, &c)) != QR_OK)
            return st;
        turn(b, "system", c);
    } else
        turn(b, "system", k_qwen25_default_system);
    for (int i = 0; i < n; i++) {
        const cJSON *m = cJSON_GetArrayItem(msgs, i);
        const cJSON *tcs = item(m, "tool_calls");
        if (role_is(m, "user") || (role_is(m, "system") && i > 0) || (role_is(m, "assistant") && !truthy(tcs))) {
            if ((st = need_str(m, "content", i, &c)) != QR_OK)
                return st;
            turn(b, role_of(m), c);
        } else if (role_is(m, "assistant")) {
            sb_puts(b, "<|im_start|>assistant");
            const cJSON *cv = item(m, "content");
            if (truthy(cv)) {
                sb_putn(b, "\n", 1);
                if ((st = need_str(m, "content", i, &c)) != QR_OK)
                    return st;
                sb_puts(b, c);
            }
            if (!cJSON_IsArray(tcs))
                return qr_set_error(QR_E_INVALID_ARG, "chat template: messages[%d].tool_calls must be an array", i);
            const cJSON *tc;
            cJSON_ArrayForEach(tc, tcs) {
                const cJSON *fn = item(tc, "function");
                const cJSON *call = fn ? fn : tc;
                sb_puts(b, "\n<tool_call>\n{\"name\": \"");
                if ((st = py_print(b, item(call, "name"), "tool call name")) != QR_OK)
                    return st;
                sb_puts(b, "\", \"arguments\": ");
                const cJSON *args = item(call, "arguments");
                if (!args)
                    return qr_set_error(QR_E_INVALID_ARG, "chat template: messages[%d] has a tool call without arguments", i);
                tojson(b, args);
                sb_puts(b, "}\n</tool_call>");
            }
            sb_puts(b, "<|im_end|>\n");
        } else if (role_is(m, "tool")) {
            if ((st = tool_message(b, msgs, i, n, item(m, "content"), NULL)) != QR_OK)
                return st;
        }
    }
    if (o->add_generation_prompt)
        sb_puts(b, "<|im_start|>assistant\n");
    return QR_OK;
}

static qr_status render_qwen15(struct sb *b, const cJSON *msgs, const struct qr_chat_opts *o)
{
    int n = cJSON_GetArraySize(msgs);
    for (int i = 0; i < n; i++) {
        const cJSON *m = cJSON_GetArrayItem(msgs, i);
        const char *c;
        if (i == 0 && !role_is(m, "system"))
            turn(b, "system", k_qwen15_default_system);
        if (!cJSON_IsString(item(m, "role")))
            return qr_set_error(QR_E_INVALID_ARG, "chat template: messages[%d].role must be a string", i);
        qr_status st = need_str(m, "content", i, &c);
        if (st != QR_OK)
            return st;
        turn(b, role_of(m), c);
    }
    if (o->add_generation_prompt)
        sb_puts(b, "<|im_start|>assistant\n");
    return QR_OK;
}

qr_status qr_chat_render(enum qr_chat_variant v, const cJSON *messages, const cJSON *tools,
                         const struct qr_chat_opts *o, char **out)
{
    static const struct qr_chat_opts dflt = {.add_generation_prompt = true, .enable_thinking = -1};
    if (!out)
        return qr_set_error(QR_E_INVALID_ARG, "qr_chat_render: NULL output");
    if (!cJSON_IsArray(messages))
        return qr_set_error(QR_E_INVALID_ARG, "chat: \"messages\" must be an array");
    if (tools && !cJSON_IsNull(tools) && !cJSON_IsArray(tools))
        return qr_set_error(QR_E_INVALID_ARG, "chat: \"tools\" must be an array");
    if (!o)
        o = &dflt;
    int n = cJSON_GetArraySize(messages);
    if (n == 0 && v != QR_CHAT_QWEN15)
        return qr_set_error(QR_E_INVALID_ARG, "chat: \"messages\" is empty");
    for (int i = 0; i < n; i++) {
        const cJSON *m = cJSON_GetArrayItem(messages, i);
        if (!cJSON_IsObject(m))
            return qr_set_error(QR_E_INVALID_ARG, "chat: messages[%d] is not an object", i);
    }
    struct sb b = {0};
    qr_status st;
    switch (v) {
    case QR_CHAT_QWEN3_INSTRUCT_2507: st = render_instruct_2507(&b, messages, tools, o); break;
    case QR_CHAT_QWEN3_THINKING_2507: st = render_thinking(&b, messages, tools, o, false); break;
    case QR_CHAT_QWEN3_HYBRID: st = render_thinking(&b, messages, tools, o, true); break;
    case QR_CHAT_QWEN25: st = render_qwen25(&b, messages, tools, o); break;
    case QR_CHAT_QWEN15: st = render_qwen15(&b, messages, o); break;
    default: st = qr_set_error(QR_E_UNSUPPORTED, "chat: unknown chat template variant %d", (int)v);
    }
    if (st == QR_OK && b.oom)
        st = qr_set_error(QR_E_OOM_HOST, "chat: out of memory");
    if (st == QR_OK && !b.p && !(b.p = calloc(1, 1)))
        st = qr_set_error(QR_E_OOM_HOST, "chat: out of memory");
    if (st != QR_OK) {
        free(b.p);
        return st;
    }
    *out = b.p;
    return QR_OK;
}

/* ----------------------------------------------------------- detection ---- */

const char *qr_chat_variant_name(enum qr_chat_variant v)
{
    switch (v) {
    case QR_CHAT_QWEN3_INSTRUCT_2507: return "qwen3-instruct-2507";
    case QR_CHAT_QWEN3_THINKING_2507: return "qwen3-thinking-2507";
    case QR_CHAT_QWEN3_HYBRID: return "qwen3-hybrid";
    case QR_CHAT_QWEN25: return "qwen2.5";
    case QR_CHAT_QWEN15: return "qwen1.5";
    case QR_CHAT_UNKNOWN: break;
    }
    return "unknown";
}

/* fragment present, written either with Jinja "\n" escapes or real newlines */
static bool has(const char *src, const char *frag)
{
    if (strstr(src, frag))
        return true;
    char buf[256];
    size_t o = 0;
    for (const char *p = frag; *p && o + 1 < sizeof buf; p++) {
        if (p[0] == '\\' && p[1] == 'n') {
            buf[o++] = '\n';
            p++;
        } else
            buf[o++] = *p;
    }
    buf[o] = 0;
    return strstr(src, buf) != NULL;
}

qr_status qr_chat_detect_template(const char *src, enum qr_chat_variant *v)
{
    if (!src || !v)
        return qr_set_error(QR_E_INVALID_ARG, "qr_chat_detect_template: NULL argument");
    enum qr_chat_variant r = QR_CHAT_UNKNOWN;
    bool chatml = has(src, "<|im_start|>") && has(src, "<|im_end|>");
    bool foreign = has(src, "<function=") || has(src, "[TOOL_CALLS]");
    if (chatml && !foreign) {
        bool think = has(src, "<think>");
        if (has(src, "<|im_start|>assistant\\n<think>\\n") && has(src, "reasoning_content"))
            r = QR_CHAT_QWEN3_THINKING_2507;
        else if (has(src, "enable_thinking") && has(src, "<think>\\n\\n</think>\\n\\n") && has(src, "reasoning_content"))
            r = QR_CHAT_QWEN3_HYBRID;
        else if (!think && has(src, k_qwen25_default_system) && has(src, "<tool_call>"))
            r = QR_CHAT_QWEN25;
        else if (!think && has(src, k_qwen15_default_system) && !has(src, "tool_call") && !has(src, "You are Qwen"))
            r = QR_CHAT_QWEN15;
        else if (!think && has(src, "<tool_call>") && has(src, "<tool_response>") && !has(src, "You are Qwen") &&
                 !has(src, "You are a helpful assistant"))
            r = QR_CHAT_QWEN3_INSTRUCT_2507;
    }
    if (r == QR_CHAT_UNKNOWN) {
        char head[61];
        size_t k = 0;
        for (const char *p = src; *p && k < 60; p++)
            head[k++] = (*p == '\n' || *p == '\r') ? ' ' : *p;
        head[k] = 0;
        return qr_set_error(QR_E_UNSUPPORTED,
                            "unknown chat template (begins \"%s\"): qrun renders only the Qwen3 Instruct-2507, "
                            "Thinking-2507, hybrid Qwen3, Qwen2.5 and Qwen1.5 templates", head);
    }
    *v = r;
    return QR_OK;
}

qr_status qr_chat_detect(const char *dir, enum qr_chat_variant *v)
{
    if (!dir || !v)
        return qr_set_error(QR_E_INVALID_ARG, "qr_chat_detect: NULL argument");
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/tokenizer_config.json", dir) >= sizeof path)
        return qr_set_error(QR_E_INVALID_ARG, "model directory path too long");
    FILE *f = fopen(path, "rb");
    if (!f)
        return qr_set_error(QR_E_IO, "cannot open %s (needed for the chat template)", path);
    char *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (!buf)
        return qr_set_error(QR_E_IO, "cannot read %s", path);
    buf[n] = 0;
    cJSON *root = cJSON_Parse(buf);
    free(buf);
    if (!root)
        return qr_set_error(QR_E_FORMAT, "%s: JSON syntax error", path);
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(root, "chat_template");
    const char *src = NULL;
    if (cJSON_IsString(ct))
        src = ct->valuestring;
    else if (cJSON_IsArray(ct)) {   /* [{"name": "default", "template": ...}, ...] */
        const cJSON *e;
        cJSON_ArrayForEach(e, ct) {
            const cJSON *nm = cJSON_GetObjectItemCaseSensitive(e, "name");
            const cJSON *tp = cJSON_GetObjectItemCaseSensitive(e, "template");
            if (cJSON_IsString(nm) && !strcmp(nm->valuestring, "default") && cJSON_IsString(tp))
                src = tp->valuestring;
        }
    }
    qr_status st;
    if (!src) {
        /* newer checkpoints keep the template in chat_template.jinja */
        snprintf(path, sizeof path, "%s/chat_template.jinja", dir);
        f = fopen(path, "rb");
        char *jb = NULL;
        if (f) {
            if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
                (jb = malloc((size_t)n + 1)) != NULL && fread(jb, 1, (size_t)n, f) != (size_t)n) {
                free(jb);
                jb = NULL;
            }
            fclose(f);
        }
        if (jb) {
            jb[n] = 0;
            st = qr_chat_detect_template(jb, v);
            free(jb);
        } else
            st = qr_set_error(QR_E_NOT_FOUND, "%s/tokenizer_config.json has no \"chat_template\" (and no chat_template.jinja)",
                              dir);
    } else
        st = qr_chat_detect_template(src, v);
    cJSON_Delete(root);
    return st;
}
