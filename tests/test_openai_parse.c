/* test_openai_parse.c - the server's protocol layers without HTTP or an
 * engine: OpenAI request parsing and validation (tools/qrun/server_openai.c),
 * the streaming <tool_call> parser (server_toolcall.c), UTF-8 / error helpers
 * (server_util.c) and the Prometheus histograms (server_metrics.c).
 * The server sources are compiled into this test directly (llama2.c style). */
#define _GNU_SOURCE
#include "testutil.h"

#include "../tools/qrun/server_util.c"
#include "../tools/qrun/server_openai.c"
#include "../tools/qrun/server_toolcall.c"
#include "../tools/qrun/server_metrics.c"

static const char *const NAMES[] = {"qwen-test", "/models/qwen-test"};
static struct srv_limits LIM = {NAMES, 2, 1000, 256};

static struct qr_request_params defaults(void)
{
    struct qr_request_params p;
    memset(&p, 0, sizeof p);
    p.sampling.temperature = 0.7f;
    p.sampling.top_k = 20;
    p.sampling.top_p = 0.8f;
    p.sampling.repetition_penalty = 1.0f;
    p.max_tokens = 16;
    p.logprobs = -1;
    p.skip_special = true;
    return p;
}

/* parses; returns the HTTP status (200 when accepted) */
static int parse(enum srv_kind k, const char *body, struct srv_request *out, struct srv_error *e)
{
    struct qr_request_params d = defaults();
    struct srv_request tmp;
    if (!out)
        out = &tmp;
    memset(e, 0, sizeof *e);
    if (srv_parse_request(k, body, strlen(body), &LIM, &d, out, e))
        return e->http;
    if (out == &tmp)
        srv_request_free(out);
    return 200;
}

static void test_utf8(void)
{
    CHECK(srv_utf8_valid("hello", 5));
    CHECK(srv_utf8_valid("h\xC3\xA9", 3));
    CHECK(srv_utf8_valid("\xF0\x9F\x98\x80", 4));
    CHECK(!srv_utf8_valid("\xFF", 1));
    CHECK(!srv_utf8_valid("\xC0\xAF", 2));          /* overlong */
    CHECK(!srv_utf8_valid("\xED\xA0\x80", 3));      /* surrogate */
    CHECK(!srv_utf8_valid("\xE2\x82", 2));          /* truncated */
    CHECK(!srv_utf8_valid("\xF4\x90\x80\x80", 4));  /* > U+10FFFF */
    char *s = srv_utf8_sanitize("a\xFF" "b\xE2\x82", 5);
    CHECK(s && !strcmp(s, "a\xEF\xBF\xBD" "b\xEF\xBF\xBD\xEF\xBF\xBD"));
    free(s);
    CHECK(srv_consteq("secret", 6, "secret", 6));
    CHECK(!srv_consteq("secreT", 6, "secret", 6));
    CHECK(!srv_consteq("secret-longer", 13, "secret", 6));
    CHECK(!srv_consteq("", 0, "secret", 6));
    CHECK(!srv_consteq("sec", 3, "secret", 6));
}

static void test_error_json(void)
{
    struct srv_error e;
    srv_err(&e, 400, "max_tokens", "bad %d", 7);
    char *j = srv_error_json(&e);
    cJSON *r = cJSON_Parse(j);
    const cJSON *er = cJSON_GetObjectItem(r, "error");
    CHECK(cJSON_IsString(cJSON_GetObjectItem(er, "message")) &&
          !strcmp(cJSON_GetObjectItem(er, "message")->valuestring, "bad 7"));
    CHECK(!strcmp(cJSON_GetObjectItem(er, "type")->valuestring, "invalid_request_error"));
    CHECK(!strcmp(cJSON_GetObjectItem(er, "param")->valuestring, "max_tokens"));
    CHECK(cJSON_GetObjectItem(er, "code") != NULL);
    cJSON_Delete(r);
    free(j);
    srv_err(&e, 401, NULL, "no key \xFF");       /* invalid UTF-8 in a message stays valid JSON */
    j = srv_error_json(&e);
    r = cJSON_Parse(j);
    CHECK(r && cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "error"), "param")));
    CHECK(!strcmp(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "error"), "type")->valuestring, "authentication_error"));
    cJSON_Delete(r);
    free(j);
}

static void test_chat_ok(void)
{
    struct srv_request r;
    struct srv_error e;
    int st = parse(SRV_CHAT,
                   "{\"model\":\"qwen-test\",\"messages\":[{\"role\":\"developer\",\"content\":\"sys\"},"
                   "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]}],"
                   "\"max_completion_tokens\":12,\"temperature\":0,\"top_p\":0.5,\"top_k\":-1,\"min_p\":0.1,"
                   "\"presence_penalty\":1.5,\"frequency_penalty\":-0.5,\"repetition_penalty\":1.1,\"seed\":42,"
                   "\"stop\":[\"END\",\"\"],\"n\":3,\"logprobs\":true,\"top_logprobs\":5,\"stream\":true,"
                   "\"stream_options\":{\"include_usage\":true},\"user\":\"ignored\",\"unknown_field\":{}}",
                   &r, &e);
    CHECKF(st == 200, "%d %s", st, e.message);
    if (st != 200)
        return;
    CHECK(r.kind == SRV_CHAT && r.stream && r.include_usage && r.n == 3 && r.max_tokens == 12);
    CHECK(r.params.sampling.temperature == 0.0f && r.params.sampling.top_p == 0.5f && r.params.sampling.top_k == 0);
    CHECK(fabsf(r.params.sampling.min_p - 0.1f) < 1e-6f && r.params.sampling.presence_penalty == 1.5f);
    CHECK(r.params.sampling.frequency_penalty == -0.5f && fabsf(r.params.sampling.repetition_penalty - 1.1f) < 1e-6f);
    CHECK(r.has_seed && r.seed == 42);
    CHECK(r.params.n_stop == 1 && !strcmp(r.params.stop[0], "END"));   /* the empty stop string is dropped */
    CHECK(r.logprobs == 5 && r.params.logprobs == 5);
    CHECK(cJSON_GetArraySize(r.messages) == 2);
    const cJSON *m0 = cJSON_GetArrayItem(r.messages, 0), *m1 = cJSON_GetArrayItem(r.messages, 1);
    CHECK(!strcmp(cJSON_GetObjectItem(m0, "role")->valuestring, "system"));
    CHECK(!strcmp(cJSON_GetObjectItem(m1, "content")->valuestring, "ab"));
    CHECK(r.tool_choice == SRV_TC_NONE && !r.tools);
    srv_request_free(&r);

    /* defaults survive when fields are absent */
    st = parse(SRV_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &r, &e);
    CHECK(st == 200);
    if (st == 200) {
        CHECK(r.max_tokens == 0 && !r.stream && r.n == 1 && r.logprobs == -1 && !r.has_seed);
        CHECK(r.params.sampling.temperature == 0.7f && r.params.sampling.top_k == 20);
        srv_request_free(&r);
    }
    /* assistant with tool_calls and null content, tool results */
    st = parse(SRV_CHAT,
               "{\"messages\":[{\"role\":\"user\",\"content\":\"w?\"},{\"role\":\"assistant\",\"content\":null,"
               "\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},"
               "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"21\"}]}", &r, &e);
    CHECKF(st == 200, "%s", e.message);
    if (st == 200) {
        const cJSON *a = cJSON_GetArrayItem(r.messages, 1);
        CHECK(!strcmp(cJSON_GetObjectItem(a, "content")->valuestring, ""));
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(a, "tool_calls")) == 1);
        CHECK(!strcmp(cJSON_GetObjectItem(cJSON_GetArrayItem(r.messages, 2), "tool_call_id")->valuestring, "c1"));
        srv_request_free(&r);
    }
}

static void test_tools(void)
{
    struct srv_request r;
    struct srv_error e;
    const char *tools = "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
                        "\"parameters\":{\"type\":\"object\"}}}]";
    char body[1024];
    snprintf(body, sizeof body, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],%s}", tools);
    CHECK(parse(SRV_CHAT, body, &r, &e) == 200 && r.tool_choice == SRV_TC_AUTO && r.tools);
    srv_request_free(&r);
    snprintf(body, sizeof body, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],%s,\"tool_choice\":\"none\"}",
             tools);
    CHECK(parse(SRV_CHAT, body, &r, &e) == 200 && r.tool_choice == SRV_TC_NONE);
    srv_request_free(&r);
    snprintf(body, sizeof body, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],%s,\"tool_choice\":"
             "{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}}}", tools);
    CHECK(parse(SRV_CHAT, body, &r, &e) == 200 && r.tool_choice == SRV_TC_NAMED &&
          !strcmp(r.tool_name, "get_weather"));
    srv_request_free(&r);
    snprintf(body, sizeof body, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],%s,\"tool_choice\":"
             "{\"type\":\"function\",\"function\":{\"name\":\"other\"}}}", tools);
    CHECK(parse(SRV_CHAT, body, NULL, &e) == 400 && !strcmp(e.param, "tool_choice"));
    CHECK(parse(SRV_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":\"required\"}",
                NULL, &e) == 400);
    CHECK(parse(SRV_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"code\"}]}",
                NULL, &e) == 400);
    CHECK(parse(SRV_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\","
                "\"function\":{\"name\":\"\"}}]}", NULL, &e) == 400);
}

static void test_completions(void)
{
    struct srv_request r;
    struct srv_error e;
    CHECK(parse(SRV_COMPLETION, "{\"prompt\":\"abc\",\"logprobs\":2}", &r, &e) == 200);
    CHECK(r.n_prompts == 1 && !strcmp(r.prompts[0].text, "abc") && r.logprobs == 2);
    srv_request_free(&r);
    CHECK(parse(SRV_COMPLETION, "{\"prompt\":[1,2,999]}", &r, &e) == 200);
    CHECK(r.n_prompts == 1 && r.prompts[0].n_ids == 3 && r.prompts[0].ids[2] == 999 && !r.prompts[0].text);
    srv_request_free(&r);
    CHECK(parse(SRV_COMPLETION, "{\"prompt\":[\"a\",[5,6],\"b\"]}", &r, &e) == 200);
    CHECK(r.n_prompts == 3 && r.prompts[1].n_ids == 2 && !strcmp(r.prompts[2].text, "b"));
    srv_request_free(&r);
}

static void test_bad(void)
{
    struct srv_error e;
    static const struct { enum srv_kind k; const char *body; int want; const char *param; } cases[] = {
        {SRV_CHAT, "", 400, ""},
        {SRV_CHAT, "{", 400, ""},
        {SRV_CHAT, "[]", 400, ""},
        {SRV_CHAT, "{\"messages\":[]} x", 400, ""},
        {SRV_CHAT, "{\"messages\":\"hi\"}", 400, "messages"},
        {SRV_CHAT, "{}", 400, "messages"},
        {SRV_CHAT, "{\"messages\":[]}", 400, "messages"},
        {SRV_CHAT, "{\"messages\":[1]}", 400, "messages"},
        {SRV_CHAT, "{\"messages\":[{\"content\":\"x\"}]}", 400, "messages"},
        {SRV_CHAT, "{\"messages\":[{\"role\":\"god\",\"content\":\"x\"}]}", 400, "messages"},
        {SRV_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":5}]}", 400, "messages"},
        {SRV_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}", 400, "messages"},
        {SRV_CHAT, "{\"model\":\"gpt-4\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 404, "model"},
        {SRV_CHAT, "{\"model\":7,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 400, "model"},
        {SRV_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_logprobs\":2}", 400, "top_logprobs"},
        {SRV_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logprobs\":true,\"top_logprobs\":21}", 400,
         "top_logprobs"},
        {SRV_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream_options\":{}}", 400,
         "stream_options"},
        {SRV_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":\"yes\"}", 400, "stream"},
        {SRV_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"json_object\"}}",
         400, "response_format"},
        {SRV_COMPLETION, "{\"prompt\":\"x\",\"max_tokens\":0}", 400, "max_tokens"},
        {SRV_COMPLETION, "{\"prompt\":\"x\",\"max_tokens\":-1}", 400, "max_tokens"},
        {SRV_COMPLETION, "{\"prompt\":\"x\",\"max_tokens\":9223372036854775808}", 400, "max_tokens"},
        {SRV_COMPLETION, "{\"prompt\":\"x\",\"max_tokens\":257}", 400, "max_tokens"},
        {SRV_COMPLETION, "{\"prompt\":\"x\",\"max_tokens\":2.5}", 400, "max_tokens"},
        {SRV_COMPLETION, "{\"prompt\":\"x\",\"max_tokens\":\"10\"}", 400, "max_tokens"},
        {SRV_COMPLETION, "{\"prompt\":\"x\",\"max_completion_tokens\":0,\"max_tokens\":5}", 400,
         "max_completion_tokens"},
        {SRV_COMPLETION, "{\"prompt\":\"x\",\"temperature\":NaN}", 400, ""},
        {SRV_COMPLETION, "{\"prompt\":\"x\",\"temperature\":1e999}", 400, "temperature"},
        {SRV_COMPLETION, "{\"prompt\":\"x\",\"temperature\":-0.1}", 400, "temperature"},
        {SRV_COMPLETION, "{\"prompt\":\"x\",\"top_p\":0}", 400, "top_p"},
        {SRV_COMPLETION, "{\"prompt\":\"x\",\"top_p\":1.5}", 400, "top_p"},
        {SRV_COMPLETION, "{\"prompt\":\"x\",\"top_k\":1001}", 400, "top_k"},
        {SRV_COMPLETION, "{\"prompt\":\"x\",\"top_k\":-2}", 400, "top_k"},
        {SRV_COMPLETION, "{\"prompt\":\"x\",\"min_p\":2}", 400, "min_p"},
        {SRV_COMPLETION, "{\"prompt\":\"x\",\"presence_penalty\":3}", 400, "presence_penalty"},
        {SRV_COMPLETION, "{\"prompt\":\"x\",\"repetition_penalty\":0}", 400, "repetition_penalty"},
        {SRV_COMPLETION, "{\"prompt\":\"x\",\"seed\":1.5}", 400, "seed"},
        {SRV_COMPLETION, "{\"prompt\":\"x\",\"n\":0}", 400, "n"},
        {SRV_COMPLETION, "{\"prompt\":\"x\",\"n\":1000000}", 400, "n"},
        {SRV_COMPLETION, "{\"prompt\":\"x\",\"best_of\":3}", 400, "best_of"},
        {SRV_COMPLETION, "{\"prompt\":\"x\",\"logprobs\":true}", 400, "logprobs"},
        {SRV_COMPLETION, "{\"prompt\":\"x\",\"logprobs\":21}", 400, "logprobs"},
        {SRV_COMPLETION, "{\"prompt\":\"x\",\"stop\":5}", 400, "stop"},
        {SRV_COMPLETION, "{\"prompt\":\"x\",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\","
                         "\"l\",\"m\",\"n\",\"o\",\"p\",\"q\"]}", 400, "stop"},
        {SRV_COMPLETION, "{\"prompt\":\"x\",\"echo\":true}", 400, "echo"},
        {SRV_COMPLETION, "{\"prompt\":\"x\",\"suffix\":\"y\"}", 400, "suffix"},
        {SRV_COMPLETION, "{\"prompt\":\"\"}", 400, "prompt"},
        {SRV_COMPLETION, "{\"prompt\":[]}", 400, "prompt"},
        {SRV_COMPLETION, "{\"prompt\":[-1]}", 400, "prompt"},
        {SRV_COMPLETION, "{\"prompt\":[1000]}", 400, "prompt"},
        {SRV_COMPLETION, "{\"prompt\":[2147483647]}", 400, "prompt"},
        {SRV_COMPLETION, "{\"prompt\":[1.5]}", 400, "prompt"},
        {SRV_COMPLETION, "{\"prompt\":[1,\"a\"]}", 400, "prompt"},
        {SRV_COMPLETION, "{\"prompt\":[\"a\",\"\"]}", 400, "prompt"},
        {SRV_COMPLETION, "{\"prompt\":[\"a\",5]}", 400, "prompt"},
        {SRV_COMPLETION, "{\"prompt\":{}}", 400, "prompt"},
        {SRV_COMPLETION, "{}", 400, "prompt"},
        {SRV_COMPLETION, "{\"prompt\":\"\\ud800\"}", 400, ""},
        {SRV_COMPLETION, "{\"prompt\":\"\\udc00x\"}", 400, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int st = parse(cases[i].k, cases[i].body, NULL, &e);
        CHECKF(st == cases[i].want && !strcmp(e.param, cases[i].param), "case %zu %s -> %d (param '%s': %s)", i,
               cases[i].body, st, e.param, e.message);
    }
    /* a prompt longer than the context, as ids */
    char big[8192];
    size_t o = (size_t)snprintf(big, sizeof big, "{\"prompt\":[");
    for (int i = 0; i < 300; i++)
        o += (size_t)snprintf(big + o, sizeof big - o, "%s7", i ? "," : "");
    snprintf(big + o, sizeof big - o, "]}");
    CHECK(parse(SRV_COMPLETION, big, NULL, &e) == 400 && strstr(e.message, "256"));
    /* invalid UTF-8 and NUL bytes */
    const char bad8[] = "{\"prompt\":\"\xff\"}";
    struct qr_request_params d = defaults();
    struct srv_request r;
    CHECK(srv_parse_request(SRV_COMPLETION, bad8, sizeof bad8 - 1, &LIM, &d, &r, &e) == -1 && e.http == 400);
    const char nul[] = "{\"prompt\":\"a\"}\0";
    CHECK(srv_parse_request(SRV_COMPLETION, nul, sizeof nul, &LIM, &d, &r, &e) == -1 && e.http == 400);
    /* deep nesting is refused, not a stack overflow */
    size_t depth = 100000;
    char *deep = malloc(depth * 2 + 32);
    size_t k = 0;
    k += (size_t)sprintf(deep, "{\"prompt\":");
    for (size_t i = 0; i < depth; i++) deep[k++] = '[';
    for (size_t i = 0; i < depth; i++) deep[k++] = ']';
    deep[k++] = '}';
    deep[k] = 0;
    CHECK(parse(SRV_COMPLETION, deep, NULL, &e) == 400);
    free(deep);
}

/* feeds text in pieces of `step` bytes (0: every split point of two pieces) */
static void tp_run(const char *text, size_t step, size_t split, struct srv_buf *content, struct srv_toolparse *tp,
                   int *n_new)
{
    size_t n = strlen(text);
    *n_new = 0;
    if (step == 0) {
        srv_tp_feed(tp, text, split, content, n_new);
        srv_tp_feed(tp, text + split, n - split, content, n_new);
    } else {
        for (size_t i = 0; i < n; i += step)
            srv_tp_feed(tp, text + i, n - i < step ? n - i : step, content, n_new);
    }
    srv_tp_finish(tp, content, n_new);
}

static void test_toolparse(void)
{
    const char *out = "Sure.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n"
                      "</tool_call>\n<tool_call>\n{\"name\": \"t2\", \"arguments\": \"{\\\"a\\\":1}\"}\n</tool_call>";
    size_t n = strlen(out);
    int bad = 0;
    for (size_t step = 0; step <= 7; step++) {
        for (size_t split = 0; split <= (step == 0 ? n : 0); split++) {
            struct srv_toolparse tp;
            struct srv_buf content = {0};
            int n_new = 0;
            srv_tp_init(&tp, true);
            tp_run(out, step, split, &content, &tp, &n_new);
            bool ok = tp.n_calls == 2 && n_new == 2 && content.len == 6 && !memcmp(content.p, "Sure.\n", 6) &&
                      !strcmp(tp.calls[0].name, "get_weather") &&
                      !strcmp(tp.calls[0].arguments, "{\"city\":\"Paris\"}") && !strcmp(tp.calls[1].name, "t2") &&
                      !strcmp(tp.calls[1].arguments, "{\"a\":1}");
            if (!ok && bad++ < 3)
                fprintf(stderr, "toolparse step %zu split %zu: calls %d content '%s'\n", step, split, tp.n_calls,
                        content.p ? content.p : "");
            srv_tp_free(&tp);
            srv_buf_free(&content);
        }
    }
    CHECKF(bad == 0, "%d tool-call splits failed", bad);

    struct srv_toolparse tp;
    struct srv_buf c = {0};
    int n_new = 0;
    /* not JSON: passes through as content, tags included */
    srv_tp_init(&tp, true);
    tp_run("a<tool_call>not json</tool_call>b", 1, 0, &c, &tp, &n_new);
    CHECK(tp.n_calls == 0 && c.p && !strcmp(c.p, "a<tool_call>not json</tool_call>b"));
    srv_tp_free(&tp);
    srv_buf_free(&c);
    /* unterminated call at the end: content */
    srv_tp_init(&tp, true);
    tp_run("x <tool_call>{\"name\": \"f\"", 3, 0, &c, &tp, &n_new);
    CHECK(tp.n_calls == 0 && c.p && !strcmp(c.p, "x <tool_call>{\"name\": \"f\""));
    srv_tp_free(&tp);
    srv_buf_free(&c);
    /* a held-back prefix of the tag is released at the end */
    srv_tp_init(&tp, true);
    srv_tp_feed(&tp, "a < b <tool", 11, &c, &n_new);
    CHECK(c.len == 6 && !memcmp(c.p, "a < b ", 6));
    srv_tp_finish(&tp, &c, &n_new);
    CHECK(c.p && !strcmp(c.p, "a < b <tool"));
    srv_tp_free(&tp);
    srv_buf_free(&c);
    /* disabled: everything is content */
    srv_tp_init(&tp, false);
    tp_run(out, 5, 0, &c, &tp, &n_new);
    CHECK(tp.n_calls == 0 && c.len == n);
    srv_tp_free(&tp);
    srv_buf_free(&c);
    /* forced call: the prompt opened it; the model continues the arguments */
    srv_tp_init(&tp, true);
    srv_tp_start_inside(&tp, "\n{\"name\": \"f\", \"arguments\": ");
    tp_run("{\"x\": 1}}\n</tool_call>", 2, 0, &c, &tp, &n_new);
    CHECK(tp.n_calls == 1 && !strcmp(tp.calls[0].name, "f") && !strcmp(tp.calls[0].arguments, "{\"x\":1}") &&
          c.len == 0);
    srv_tp_free(&tp);
    srv_buf_free(&c);
}

static void test_metrics(void)
{
    struct srv_metrics m;
    srv_metrics_init(&m);
    srv_metrics_request_done(&m, QR_FINISH_STOP, 10, 5, 0.003, 0.02, 0.5);
    srv_metrics_request_done(&m, QR_FINISH_CANCELLED, 0, 2, 100.0, -1, 200.0);
    srv_metrics_http(&m, 200);
    srv_metrics_http(&m, 404);
    srv_metrics_http(&m, 503);
    struct qr_engine_stats st;
    memset(&st, 0, sizeof st);
    st.kv_blocks_total = 100;
    st.kv_blocks_used = 25;
    st.n_waiting = 3;
    st.healthy = true;
    struct srv_buf b = {0};
    srv_metrics_render(&m, &st, "tiny", 2, 4, &b);
    CHECK(b.p && strstr(b.p, "qrun_time_to_first_token_seconds_bucket{model_name=\"tiny\",le=\"0.005\"} 1\n"));
    CHECK(strstr(b.p, "qrun_time_to_first_token_seconds_bucket{model_name=\"tiny\",le=\"+Inf\"} 2\n"));
    CHECK(strstr(b.p, "qrun_time_to_first_token_seconds_count{model_name=\"tiny\"} 2\n"));
    CHECK(strstr(b.p, "qrun_time_per_output_token_seconds_count{model_name=\"tiny\"} 1\n"));
    CHECK(strstr(b.p, "qrun_kv_cache_usage_perc{model_name=\"tiny\"} 0.250000\n"));
    CHECK(strstr(b.p, "qrun_num_requests_waiting{model_name=\"tiny\"} 3\n"));
    CHECK(strstr(b.p, "finished_reason=\"cancelled\"} 1\n"));
    CHECK(strstr(b.p, "qrun_generation_tokens_total{model_name=\"tiny\"} 7\n"));
    CHECK(strstr(b.p, "qrun_http_responses_total{code=\"5xx\"} 1\n"));
    /* every line is a comment or "name{labels} value" */
    int badl = 0;
    for (char *l = b.p; l && *l;) {
        char *nl = strchr(l, '\n');
        if (*l != '#' && !strchr(l, ' '))
            badl++;
        l = nl ? nl + 1 : NULL;
    }
    CHECK(badl == 0);
    srv_buf_free(&b);
    srv_metrics_render(&m, NULL, "tiny", 0, 0, &b);     /* before the engine loads */
    CHECK(b.p && !strstr(b.p, "kv_cache"));
    srv_buf_free(&b);
    srv_metrics_destroy(&m);
}

static void test_health(void)
{
    struct qr_engine_stats st;
    memset(&st, 0, sizeof st);
    st.healthy = true;
    st.last_step_time = 100.0;
    CHECK(srv_health_reason(SRV_READY, &st, 0, 1000.0, 60) == NULL);               /* idle: fine however old */
    CHECK(srv_health_reason(SRV_LOADING, NULL, 0, 1.0, 60) != NULL);
    CHECK(srv_health_reason(SRV_FAILED, NULL, 0, 1.0, 60) != NULL);
    CHECK(srv_health_reason(SRV_DRAINING, &st, 0, 1.0, 60) != NULL);
    CHECK(srv_health_reason(SRV_READY, NULL, 0, 1.0, 60) != NULL);
    st.n_running = 2;
    CHECK(srv_health_reason(SRV_READY, &st, 0, 150.0, 60) == NULL);                /* stepping recently */
    CHECK(srv_health_reason(SRV_READY, &st, 0, 161.0, 60) != NULL);                /* stuck */
    CHECK(srv_health_reason(SRV_READY, &st, 150.0, 161.0, 60) == NULL);            /* work just arrived */
    st.n_running = 0;
    st.healthy = false;
    CHECK(strstr(srv_health_reason(SRV_READY, &st, 0, 100.0, 60), "device"));      /* device dead */
}

int main(void)
{
    test_health();
    test_utf8();
    test_error_json();
    test_chat_ok();
    test_tools();
    test_completions();
    test_bad();
    test_toolparse();
    test_metrics();
    return qt_summary("test_openai_parse");
}
