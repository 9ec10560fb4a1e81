/* server_openai.c - OpenAI request bodies -> struct srv_request.
 *
 * Everything a client controls is checked here, before any engine work:
 * types, ranges (max_tokens 0/-1/2^63, temperature NaN/inf, top_k > vocab,
 * token ids out of range, n, logprobs), UTF-8, and shapes of messages/tools.
 * Every failure is a 4xx srv_error; unknown fields are ignored as OpenAI does. */
#include "server.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int srv_parse_body(const char *body, size_t len, cJSON **root, struct srv_error *err)
{
    if (!body || len == 0)
        return srv_err(err, 400, NULL, "request body is empty: expected a JSON object");
    if (!srv_utf8_valid(body, len))
        return srv_err(err, 400, NULL, "request body is not valid UTF-8");
    if (memchr(body, 0, len))
        return srv_err(err, 400, NULL, "request body contains a NUL byte");
    const char *end = NULL;
    cJSON *r = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!r) {
        size_t off = end && end >= body ? (size_t)(end - body) : 0;
        return srv_err(err, 400, NULL, "malformed JSON in request body (near byte %zu)", off);
    }
    /* only whitespace may follow the value */
    for (const char *p = end; p && p < body + len; p++) {
        if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t') {
            cJSON_Delete(r);
            return srv_err(err, 400, NULL, "malformed JSON: trailing data after the object");
        }
    }
    if (!cJSON_IsObject(r)) {
        cJSON_Delete(r);
        return srv_err(err, 400, NULL, "request body must be a JSON object");
    }
    *root = r;
    return 0;
}

/* ---- typed field readers: 1 = present and valid, 0 = absent or null, -1 = error ---- */

static int get_bool(const cJSON *o, const char *k, bool *out, struct srv_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsBool(v))
        return srv_err(err, 400, k, "'%s' must be a boolean", k);
    *out = cJSON_IsTrue(v);
    return 1;
}

static int get_num(const cJSON *o, const char *k, double lo, double hi, double *out, struct srv_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsNumber(v))
        return srv_err(err, 400, k, "'%s' must be a number", k);
    double d = v->valuedouble;
    if (!isfinite(d) || d < lo || d > hi)
        return srv_err(err, 400, k, "'%s' must be a finite number in [%g, %g], got %g", k, lo, hi, d);
    *out = d;
    return 1;
}

static int get_int(const cJSON *o, const char *k, long long lo, long long hi, long long *out, struct srv_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsNumber(v))
        return srv_err(err, 400, k, "'%s' must be an integer", k);
    double d = v->valuedouble;
    if (!isfinite(d) || d != floor(d))
        return srv_err(err, 400, k, "'%s' must be an integer, got %g", k, d);
    if (d < (double)lo || d > (double)hi)
        return srv_err(err, 400, k, "'%s' must be in [%lld, %lld], got %.0f", k, lo, hi, d);
    *out = (long long)d;
    return 1;
}

/* content: a string, null, or an array of {"type":"text","text":...} parts */
static int flatten_content(const cJSON *c, int idx, char **out, struct srv_error *err)
{
    if (!c || cJSON_IsNull(c)) {
        *out = strdup("");
        return *out ? 0 : srv_err(err, 400, "messages", "out of memory");
    }
    if (cJSON_IsString(c)) {
        *out = strdup(c->valuestring);
        return *out ? 0 : srv_err(err, 400, "messages", "out of memory");
    }
    if (!cJSON_IsArray(c))
        return srv_err(err, 400, "messages", "messages[%d].content must be a string or an array of text parts", idx);
    struct srv_buf b = {0};
    srv_buf_put(&b, "", 0);
    const cJSON *part;
    cJSON_ArrayForEach(part, c) {
        const cJSON *ty = cJSON_GetObjectItemCaseSensitive(part, "type");
        const cJSON *tx = cJSON_GetObjectItemCaseSensitive(part, "text");
        if (!cJSON_IsObject(part) || !cJSON_IsString(ty)) {
            srv_buf_free(&b);
            return srv_err(err, 400, "messages", "messages[%d].content parts must be objects with a 'type'", idx);
        }
        if (strcmp(ty->valuestring, "text") || !cJSON_IsString(tx)) {
            srv_buf_free(&b);
            return srv_err(err, 400, "messages", "messages[%d].content: only text parts are supported (got '%s')",
                           idx, ty->valuestring);
        }
        srv_buf_puts(&b, tx->valuestring);
    }
    if (b.oom) {
        srv_buf_free(&b);
        return srv_err(err, 413, "messages", "message content too large");
    }
    *out = b.p;
    return 0;
}

static int parse_messages(const cJSON *root, struct srv_request *r, struct srv_error *err)
{
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (!msgs)
        return srv_err(err, 400, "messages", "'messages' is required");
    if (!cJSON_IsArray(msgs))
        return srv_err(err, 400, "messages", "'messages' must be an array");
    if (cJSON_GetArraySize(msgs) == 0)
        return srv_err(err, 400, "messages", "'messages' must not be empty");
    r->messages = cJSON_CreateArray();
    if (!r->messages)
        return srv_err(err, 400, "messages", "out of memory");
    int i = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs) {
        if (!cJSON_IsObject(m))
            return srv_err(err, 400, "messages", "messages[%d] must be an object", i);
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsString(role))
            return srv_err(err, 400, "messages", "messages[%d].role must be a string", i);
        const char *rs = role->valuestring;
        if (!strcmp(rs, "developer"))
            rs = "system";
        if (strcmp(rs, "system") && strcmp(rs, "user") && strcmp(rs, "assistant") && strcmp(rs, "tool"))
            return srv_err(err, 400, "messages", "messages[%d].role '%s' is not one of system, developer, user, "
                           "assistant, tool", i, role->valuestring);
        char *content = NULL;
        if (flatten_content(cJSON_GetObjectItemCaseSensitive(m, "content"), i, &content, err))
            return -1;
        cJSON *nm = cJSON_CreateObject();
        cJSON_AddItemToArray(r->messages, nm);
        cJSON_AddStringToObject(nm, "role", rs);
        cJSON_AddStringToObject(nm, "content", content);
        free(content);
        const cJSON *tc = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
        if (tc && !cJSON_IsNull(tc)) {
            if (!cJSON_IsArray(tc))
                return srv_err(err, 400, "messages", "messages[%d].tool_calls must be an array", i);
            const cJSON *call;
            cJSON_ArrayForEach(call, tc) {
                const cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
                if (!cJSON_IsObject(fn) || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(fn, "name")))
                    return srv_err(err, 400, "messages", "messages[%d].tool_calls[].function.name must be a string", i);
            }
            cJSON_AddItemToObject(nm, "tool_calls", cJSON_Duplicate(tc, 1));
        }
        static const char *const copy_keys[] = {"name", "tool_call_id", "reasoning_content"};
        for (size_t k = 0; k < sizeof copy_keys / sizeof *copy_keys; k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, copy_keys[k]);
            if (cJSON_IsString(v))
                cJSON_AddStringToObject(nm, copy_keys[k], v->valuestring);
        }
        i++;
    }
    return 0;
}

static int parse_tools(const cJSON *root, struct srv_request *r, struct srv_error *err)
{
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(root, "tools");
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(root, "tool_choice");
    r->tool_choice = SRV_TC_NONE;
    if (tools && !cJSON_IsNull(tools)) {
        if (!cJSON_IsArray(tools))
            return srv_err(err, 400, "tools", "'tools' must be an array");
        int i = 0;
        const cJSON *t;
        cJSON_ArrayForEach(t, tools) {
            const cJSON *ty = cJSON_GetObjectItemCaseSensitive(t, "type");
            const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
            if (!cJSON_IsObject(t) || !cJSON_IsString(ty) || strcmp(ty->valuestring, "function"))
                return srv_err(err, 400, "tools", "tools[%d] must be {\"type\": \"function\", \"function\": {...}}", i);
            const cJSON *nm = cJSON_GetObjectItemCaseSensitive(fn, "name");
            if (!cJSON_IsObject(fn) || !cJSON_IsString(nm) || !nm->valuestring[0])
                return srv_err(err, 400, "tools", "tools[%d].function.name must be a non-empty string", i);
            const cJSON *params = cJSON_GetObjectItemCaseSensitive(fn, "parameters");
            if (params && !cJSON_IsNull(params) && !cJSON_IsObject(params))
                return srv_err(err, 400, "tools", "tools[%d].function.parameters must be an object", i);
            i++;
        }
        if (i > 0) {
            r->tools = cJSON_Duplicate(tools, 1);
            r->tool_choice = SRV_TC_AUTO;
        }
    }
    if (!tc || cJSON_IsNull(tc))
        return 0;
    if (cJSON_IsString(tc)) {
        const char *s = tc->valuestring;
        if (!strcmp(s, "none")) r->tool_choice = SRV_TC_NONE;
        else if (!strcmp(s, "auto")) r->tool_choice = r->tools ? SRV_TC_AUTO : SRV_TC_NONE;
        else if (!strcmp(s, "required")) {
            if (!r->tools)
                return srv_err(err, 400, "tool_choice", "tool_choice 'required' needs 'tools'");
            r->tool_choice = SRV_TC_REQUIRED;
        } else
            return srv_err(err, 400, "tool_choice", "tool_choice must be 'none', 'auto', 'required' or an object");
        return 0;
    }
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(fn, "name");
    if (!cJSON_IsObject(tc) || !cJSON_IsString(nm))
        return srv_err(err, 400, "tool_choice", "tool_choice object must be {\"type\": \"function\", \"function\": "
                       "{\"name\": ...}}");
    bool found = false;
    const cJSON *t;
    cJSON_ArrayForEach(t, r->tools) {
        const cJSON *tn = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(t, "function"), "name");
        if (cJSON_IsString(tn) && !strcmp(tn->valuestring, nm->valuestring))
            found = true;
    }
    if (!found)
        return srv_err(err, 400, "tool_choice", "tool_choice names function '%s', which is not in 'tools'",
                       nm->valuestring);
    r->tool_choice = SRV_TC_NAMED;
    r->tool_name = strdup(nm->valuestring);
    return 0;
}

static int parse_ids(const cJSON *arr, const struct srv_limits *lim, struct srv_prompt *p, struct srv_error *err)
{
    int n = cJSON_GetArraySize(arr);
    if (n == 0)
        return srv_err(err, 400, "prompt", "the prompt is empty");
    if (lim->max_model_len > 0 && n > lim->max_model_len)
        return srv_err(err, 400, "prompt", "This model's maximum context length is %d tokens. However, your "
                       "prompt has %d tokens", lim->max_model_len, n);
    p->ids = malloc(sizeof(int32_t) * (size_t)n);
    if (!p->ids)
        return srv_err(err, 413, "prompt", "prompt too large");
    int i = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, arr) {
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble != floor(v->valuedouble))
            return srv_err(err, 400, "prompt", "prompt token ids must be integers");
        double d = v->valuedouble;
        if (d < 0 || d >= (double)lim->vocab_size)
            return srv_err(err, 400, "prompt", "prompt token id %.0f is out of range [0, %d)", d, lim->vocab_size);
        p->ids[i++] = (int32_t)d;
    }
    p->n_ids = n;
    return 0;
}

static int parse_prompts(const cJSON *root, const struct srv_limits *lim, struct srv_request *r,
                         struct srv_error *err)
{
    const cJSON *pr = cJSON_GetObjectItemCaseSensitive(root, "prompt");
    if (!pr || cJSON_IsNull(pr))
        return srv_err(err, 400, "prompt", "'prompt' is required");
    r->prompts = calloc(SRV_MAX_PROMPTS, sizeof *r->prompts);
    if (!r->prompts)
        return srv_err(err, 400, "prompt", "out of memory");
    if (cJSON_IsString(pr)) {
        if (!pr->valuestring[0])
            return srv_err(err, 400, "prompt", "the prompt is empty");
        r->prompts[0].text = strdup(pr->valuestring);
        r->n_prompts = 1;
        return 0;
    }
    if (!cJSON_IsArray(pr))
        return srv_err(err, 400, "prompt", "'prompt' must be a string, an array of strings, an array of token ids "
                       "or an array of such arrays");
    int n = cJSON_GetArraySize(pr);
    if (n == 0)
        return srv_err(err, 400, "prompt", "the prompt is empty");
    const cJSON *first = cJSON_GetArrayItem(pr, 0);
    if (cJSON_IsNumber(first)) {
        r->n_prompts = 1;
        return parse_ids(pr, lim, &r->prompts[0], err);
    }
    if (n > SRV_MAX_PROMPTS)
        return srv_err(err, 400, "prompt", "at most %d prompts per request", SRV_MAX_PROMPTS);
    const cJSON *v;
    cJSON_ArrayForEach(v, pr) {
        struct srv_prompt *p = &r->prompts[r->n_prompts++];
        if (cJSON_IsString(v)) {
            if (!v->valuestring[0])
                return srv_err(err, 400, "prompt", "prompt %d is empty", r->n_prompts - 1);
            p->text = strdup(v->valuestring);
        } else if (cJSON_IsArray(v)) {
            if (parse_ids(v, lim, p, err))
                return -1;
        } else {
            return srv_err(err, 400, "prompt", "prompt %d must be a string or an array of token ids", r->n_prompts - 1);
        }
    }
    return 0;
}

static int parse_stop(const cJSON *root, struct srv_request *r, struct srv_error *err)
{
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(root, "stop");
    if (!st || cJSON_IsNull(st))
        return 0;
    const cJSON *one = NULL;
    int n = 0;
    if (cJSON_IsString(st)) {
        one = st;
        n = 1;
    } else if (cJSON_IsArray(st)) {
        n = cJSON_GetArraySize(st);
    } else {
        return srv_err(err, 400, "stop", "'stop' must be a string or an array of strings");
    }
    if (n > QR_MAX_STOP)
        return srv_err(err, 400, "stop", "at most %d stop strings", QR_MAX_STOP);
    for (int i = 0; i < n; i++) {
        const cJSON *v = one ? one : cJSON_GetArrayItem(st, i);
        if (!cJSON_IsString(v))
            return srv_err(err, 400, "stop", "stop strings must be strings");
        size_t l = strlen(v->valuestring);
        if (l == 0)
            continue;       /* an empty stop string would match everywhere: ignore it, as OpenAI does */
        if (l > SRV_MAX_STOP_LEN)
            return srv_err(err, 400, "stop", "stop strings are limited to %d bytes", SRV_MAX_STOP_LEN);
        r->stop_store[r->params.n_stop] = strdup(v->valuestring);
        r->params.stop[r->params.n_stop] = r->stop_store[r->params.n_stop];
        r->params.n_stop++;
    }
    return 0;
}

static int check_model(const cJSON *root, const struct srv_limits *lim, struct srv_error *err)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!m || cJSON_IsNull(m))
        return 0;
    if (!cJSON_IsString(m))
        return srv_err(err, 400, "model", "'model' must be a string");
    for (int i = 0; i < lim->n_model_names; i++)
        if (lim->model_names[i] && !strcmp(lim->model_names[i], m->valuestring))
            return 0;
    srv_err(err, 404, "model", "The model '%s' does not exist (this server serves '%s')", m->valuestring,
            lim->n_model_names ? lim->model_names[0] : "");
    snprintf(err->code, sizeof err->code, "model_not_found");
    return -1;
}

static int parse_sampling(const cJSON *root, const struct srv_limits *lim, struct srv_request *r,
                          struct srv_error *err)
{
    struct qr_sampler_params *sp = &r->params.sampling;
    double d;
    long long v;
    int rc;
    if ((rc = get_num(root, "temperature", 0.0, 100.0, &d, err)) < 0) return -1;
    if (rc) sp->temperature = (float)d;
    if ((rc = get_num(root, "top_p", 0.0, 1.0, &d, err)) < 0) return -1;
    if (rc) {
        if (d <= 0.0)
            return srv_err(err, 400, "top_p", "'top_p' must be in (0, 1], got %g", d);
        sp->top_p = (float)d;
    }
    if ((rc = get_int(root, "top_k", -1, lim->vocab_size, &v, err)) < 0) return -1;
    if (rc) sp->top_k = v < 0 ? 0 : (int)v;
    if ((rc = get_num(root, "min_p", 0.0, 1.0, &d, err)) < 0) return -1;
    if (rc) sp->min_p = (float)d;
    if ((rc = get_num(root, "presence_penalty", -2.0, 2.0, &d, err)) < 0) return -1;
    if (rc) sp->presence_penalty = (float)d;
    if ((rc = get_num(root, "frequency_penalty", -2.0, 2.0, &d, err)) < 0) return -1;
    if (rc) sp->frequency_penalty = (float)d;
    if ((rc = get_num(root, "repetition_penalty", 0.0, 100.0, &d, err)) < 0) return -1;
    if (rc) {
        if (d <= 0.0)
            return srv_err(err, 400, "repetition_penalty", "'repetition_penalty' must be > 0, got %g", d);
        sp->repetition_penalty = (float)d;
    }
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(root, "seed");
    if (seed && !cJSON_IsNull(seed)) {
        if (!cJSON_IsNumber(seed) || !isfinite(seed->valuedouble) || seed->valuedouble != floor(seed->valuedouble) ||
            fabs(seed->valuedouble) > 9007199254740992.0)
            return srv_err(err, 400, "seed", "'seed' must be an integer of magnitude <= 2^53");
        r->has_seed = true;
        r->seed = (uint64_t)(int64_t)seed->valuedouble;
    }
    bool b;
    if ((rc = get_bool(root, "ignore_eos", &b, err)) < 0) return -1;
    if (rc) r->params.ignore_eos = b;
    if ((rc = get_bool(root, "skip_special_tokens", &b, err)) < 0) return -1;
    if (rc) r->params.skip_special = b;
    return 0;
}

static int parse_max_tokens(const cJSON *root, const struct srv_limits *lim, struct srv_request *r,
                            struct srv_error *err)
{
    long long v;
    long long hi = lim->max_model_len > 0 ? lim->max_model_len : (1LL << 30);
    const char *keys[2] = {"max_completion_tokens", "max_tokens"};
    for (int i = 0; i < 2; i++) {
        int rc = get_int(root, keys[i], 1, hi, &v, err);
        if (rc < 0) {
            if (lim->max_model_len > 0)
                snprintf(err->message + strlen(err->message), sizeof err->message - strlen(err->message),
                         " (max_model_len is %d)", lim->max_model_len);
            return -1;
        }
        if (rc) {
            r->max_tokens = (int)v;
            return 0;
        }
    }
    return 0;
}

static int parse_logprobs(enum srv_kind kind, const cJSON *root, struct srv_request *r, struct srv_error *err)
{
    long long v;
    int rc;
    r->logprobs = -1;
    if (kind == SRV_CHAT) {
        bool lp = false;
        if (get_bool(root, "logprobs", &lp, err) < 0)
            return -1;
        rc = get_int(root, "top_logprobs", 0, QR_MAX_TOP_LOGPROBS, &v, err);
        if (rc < 0)
            return -1;
        if (rc && !lp && v > 0)
            return srv_err(err, 400, "top_logprobs", "'top_logprobs' requires 'logprobs': true");
        if (lp)
            r->logprobs = rc ? (int)v : 0;
    } else {
        const cJSON *lp = cJSON_GetObjectItemCaseSensitive(root, "logprobs");
        if (cJSON_IsBool(lp))
            return srv_err(err, 400, "logprobs", "'logprobs' must be an integer for /v1/completions");
        rc = get_int(root, "logprobs", 0, QR_MAX_TOP_LOGPROBS, &v, err);
        if (rc < 0)
            return -1;
        if (rc)
            r->logprobs = (int)v;
    }
    r->params.logprobs = r->logprobs;
    return 0;
}

int srv_parse_request(enum srv_kind kind, const char *body, size_t len, const struct srv_limits *lim,
                      const struct qr_request_params *defaults, struct srv_request *out, struct srv_error *err)
{
    struct srv_request r;
    memset(&r, 0, sizeof r);
    r.kind = kind;
    r.params = *defaults;
    r.params.n_stop = 0;
    r.params.logprobs = -1;
    r.enable_thinking = -1;
    r.n = 1;
    cJSON *root = NULL;
    if (srv_parse_body(body, len, &root, err))
        return -1;
    long long v;
    int rc;
    bool b;
    if (check_model(root, lim, err)) goto fail;
    if ((rc = get_bool(root, "stream", &b, err)) < 0) goto fail;
    r.stream = rc && b;
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(root, "stream_options");
    if (so && !cJSON_IsNull(so)) {
        if (!cJSON_IsObject(so)) {
            srv_err(err, 400, "stream_options", "'stream_options' must be an object");
            goto fail;
        }
        if (!r.stream) {
            srv_err(err, 400, "stream_options", "'stream_options' is only allowed when 'stream' is true");
            goto fail;
        }
        if ((rc = get_bool(so, "include_usage", &b, err)) < 0) goto fail;
        r.include_usage = rc && b;
    }
    if ((rc = get_int(root, "n", 1, SRV_MAX_N, &v, err)) < 0) goto fail;
    if (rc) r.n = (int)v;
    if ((rc = get_int(root, "best_of", 1, SRV_MAX_N, &v, err)) < 0) goto fail;
    if (rc && v != r.n) {
        srv_err(err, 400, "best_of", "'best_of' other than n is not supported");
        goto fail;
    }
    if (get_bool(root, "echo", &b, err) < 0) goto fail;
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "echo"))) {
        srv_err(err, 400, "echo", "'echo' is not supported");
        goto fail;
    }
    const cJSON *suffix = cJSON_GetObjectItemCaseSensitive(root, "suffix");
    if (suffix && !cJSON_IsNull(suffix)) {
        srv_err(err, 400, "suffix", "'suffix' is not supported");
        goto fail;
    }
    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(root, "response_format");
    if (rf && !cJSON_IsNull(rf)) {
        const cJSON *ty = cJSON_GetObjectItemCaseSensitive(rf, "type");
        if (!cJSON_IsString(ty) || strcmp(ty->valuestring, "text")) {
            srv_err(err, 400, "response_format", "only response_format {\"type\": \"text\"} is supported");
            goto fail;
        }
    }
    if (parse_max_tokens(root, lim, &r, err)) goto fail;
    if (parse_sampling(root, lim, &r, err)) goto fail;
    if (parse_stop(root, &r, err)) goto fail;
    if (parse_logprobs(kind, root, &r, err)) goto fail;
    if (kind == SRV_CHAT) {
        if (parse_messages(root, &r, err)) goto fail;
        if (parse_tools(root, &r, err)) goto fail;
        const cJSON *kw = cJSON_GetObjectItemCaseSensitive(root, "chat_template_kwargs");
        if (kw && !cJSON_IsNull(kw)) {
            if (!cJSON_IsObject(kw)) {
                srv_err(err, 400, "chat_template_kwargs", "'chat_template_kwargs' must be an object");
                goto fail;
            }
            if ((rc = get_bool(kw, "enable_thinking", &b, err)) < 0) goto fail;
            if (rc) r.enable_thinking = b ? 1 : 0;
        }
    } else {
        if (parse_prompts(root, lim, &r, err)) goto fail;
    }
    cJSON_Delete(root);
    *out = r;
    return 0;
fail:
    cJSON_Delete(root);
    srv_request_free(&r);
    return -1;
}

void srv_request_free(struct srv_request *r)
{
    for (int i = 0; i < QR_MAX_STOP; i++)
        free(r->stop_store[i]);
    cJSON_Delete(r->messages);
    cJSON_Delete(r->tools);
    free(r->tool_name);
    if (r->prompts) {
        for (int i = 0; i < r->n_prompts; i++) {
            free(r->prompts[i].text);
            free(r->prompts[i].ids);
        }
        free(r->prompts);
    }
    memset(r, 0, sizeof *r);
}
