/* fuzz_openai.c - libFuzzer target for what a client sends and what the model
 * writes back: the OpenAI request parser (tools/qrun/server_openai.c), the
 * native chat-template rendering of the parsed messages and tools (every
 * variant), and the streaming <tool_call> parser (server_toolcall.c) over the
 * same bytes cut at a data-chosen point.
 * Input: byte 0 picks the endpoint (bit 0: completions) and the tool parser's
 * split; the rest is the request body (not NUL-terminated on purpose).
 * On success the parser's promises are asserted: n, max_tokens, prompt counts
 * and token ids within the limits it was given, sampling values the sampler accepts.
 * The server sources are compiled in directly, as in tests/test_openai_parse.c. */
#define _GNU_SOURCE
#include "fuzz_util.h"
#include "../tools/qrun/server_util.c"
#include "../tools/qrun/server_openai.c"
#include "../tools/qrun/server_toolcall.c"

#include "qrun/qr_sampler.h"
#include "qrun/qr_tokenizer.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const NAMES[] = {"qwen-fuzz", "/models/qwen-fuzz"};
enum { VOCAB = 1000, MAX_LEN = 4096 };

static void check_request(const struct srv_request *r)
{
    if (r->n < 1 || r->n > SRV_MAX_N || r->max_tokens < 0 || r->max_tokens > MAX_LEN)
        __builtin_trap();
    if (qr_sampler_params_check(&r->params.sampling, VOCAB) != QR_OK)   /* the engine would refuse it */
        __builtin_trap();
    if (r->kind == SRV_COMPLETION) {
        if (r->n_prompts < 1 || r->n_prompts > SRV_MAX_PROMPTS || !r->prompts)
            __builtin_trap();
        for (int i = 0; i < r->n_prompts; i++) {
            const struct srv_prompt *p = &r->prompts[i];
            if (!p->text && (p->n_ids < 1 || !p->ids))
                __builtin_trap();
            for (int k = 0; !p->text && k < p->n_ids; k++)
                if (p->ids[k] < 0 || p->ids[k] >= VOCAB)
                    __builtin_trap();
        }
    } else if (!r->messages) {
        __builtin_trap();
    }
}

/* every chat variant over the parsed messages: an error is fine, a crash or a leak is not */
static void render_all(const struct srv_request *r)
{
    static const enum qr_chat_variant vs[] = {QR_CHAT_QWEN3_INSTRUCT_2507, QR_CHAT_QWEN3_THINKING_2507,
                                              QR_CHAT_QWEN3_HYBRID, QR_CHAT_QWEN25, QR_CHAT_QWEN15};
    for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) {
        struct qr_chat_opts o = {.add_generation_prompt = (i & 1) == 0, .enable_thinking = r->enable_thinking};
        char *text = NULL;
        if (qr_chat_render(vs[i], r->messages, r->tools, &o, &text) == QR_OK && !text)
            __builtin_trap();
        free(text);
    }
}

/* the model's output side: the same bytes through the streaming tool-call parser, in two pieces */
static void toolcalls(const char *s, size_t n, size_t split)
{
    struct srv_toolparse tp;
    struct srv_buf content = {0};
    int n_new = 0;   /* the parser adds to it, as the server's per-event counter */
    srv_tp_init(&tp, true);
    if (split > n)
        split = n;
    srv_tp_feed(&tp, s, split, &content, &n_new);
    srv_tp_feed(&tp, s + split, n - split, &content, &n_new);
    srv_tp_finish(&tp, &content, &n_new);
    if (n_new != tp.n_calls || content.len > n)
        __builtin_trap();
    for (int i = 0; i < tp.n_calls; i++)
        if (!tp.calls[i].name || !tp.calls[i].arguments)
            __builtin_trap();
    srv_tp_free(&tp);
    srv_buf_free(&content);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet_once();
    if (size < 1)
        return 0;
    const uint8_t sel = data[0];
    size_t n = size - 1;
    char *body = fuzz_copy(data + 1, n);
    if (!body)
        return 0;
    struct srv_limits lim = {NAMES, 2, VOCAB, MAX_LEN};
    struct qr_request_params def;
    memset(&def, 0, sizeof def);
    def.sampling.temperature = 0.7f;
    def.sampling.top_p = 0.8f;
    def.sampling.top_k = 20;
    def.sampling.repetition_penalty = 1.0f;
    def.max_tokens = 16;
    def.logprobs = -1;
    struct srv_request r;
    struct srv_error err;
    enum srv_kind kind = (sel & 1) ? SRV_COMPLETION : SRV_CHAT;
    if (srv_parse_request(kind, body, n, &lim, &def, &r, &err) == 0) {
        check_request(&r);
        if (kind == SRV_CHAT)
            render_all(&r);
        srv_request_free(&r);
    } else {
        if (err.http < 400 || err.http > 499 || !memchr(err.message, 0, sizeof err.message))
            __builtin_trap();
        char *ej = srv_error_json(&err);
        free(ej);
    }
    toolcalls(body, n, (size_t)(sel >> 1) * n / 127);
    free(body);
    return 0;
}
