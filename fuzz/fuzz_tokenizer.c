/* fuzz_tokenizer.c - libFuzzer target for the tokenizer and chat templates.
 * The first input byte picks what the rest feeds:
 *   0: qr_tok_load_mem (the tokenizer.json parser; on success, encode/decode a sample)
 *   1: qr_tok_encode / decode / streaming decode with a fixed small byte-level tokenizer
 *   2: qr_chat_render of the bytes parsed as JSON messages, for every variant
 * Build: CC=clang cmake -S . -B build-fuzz -DQR_FUZZ=ON -DQR_SANITIZE=ON -DQR_CUDA=OFF -DQR_VULKAN=OFF
 *        ninja -C build-fuzz fuzz_tokenizer && build-fuzz/bin/fuzz_tokenizer fuzz/corpus/tokenizer */
#include "fuzz_util.h"
#include "qrun/qr_tokenizer.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static const char k_tiny[] =
    "{\"added_tokens\":[{\"id\":9,\"content\":\"<|e|>\",\"special\":true},{\"id\":10,\"content\":\"<t>\",\"special\":false}],"
    "\"normalizer\":{\"type\":\"NFC\"},\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\","
    "\"pattern\":{\"Regex\":\"(?i:'s|'t)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}| ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|"
    "\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"},\"behavior\":\"Isolated\",\"invert\":false},{\"type\":\"ByteLevel\","
    "\"add_prefix_space\":false,\"use_regex\":false}]},\"decoder\":{\"type\":\"ByteLevel\"},"
    "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"\\u0120\":2,\"ab\":3,\"\\u0120a\":4,\"\\u00c3\":5,\"\\u00a9\":6,"
    "\"\\u00c3\\u00a9\":7,\"\\u0120ab\":8},\"merges\":[\"a b\",\"\\u0120 a\",\"\\u00c3 \\u00a9\",[\"\\u0120\",\"ab\"]]}}";

static struct qr_tokenizer *g_tiny;

static void exercise(const struct qr_tokenizer *t, const char *s, size_t n)
{
    int32_t *ids = NULL;
    int k = 0;
    for (int special = 0; special < 2; special++) {
        if (qr_tok_encode(t, s, n, special, &ids, &k) != QR_OK)
            continue;
        char *text = NULL;
        size_t len;
        if (qr_tok_decode(t, ids, k, special, &text, &len) == QR_OK)
            free(text);
        struct qr_tok_stream *st = NULL;
        if (qr_tok_stream_create(t, special, &st) == QR_OK) {
            char out[4096];
            size_t m;
            for (int i = 0; i < k; i++)
                (void)qr_tok_stream_push(st, ids[i], out, sizeof out, &m);
            (void)qr_tok_stream_flush(st, out, sizeof out, &m);
            qr_tok_stream_free(st);
        }
        free(ids);
        ids = NULL;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    qr_log_set_level(QR_LOG_ERROR + 1);
    if (!g_tiny && qr_tok_load_mem(k_tiny, sizeof k_tiny - 1, &g_tiny) != QR_OK)
        abort();
    if (size < 1)
        return 0;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    switch (data[0] % 3) {
    case 0: {
        struct qr_tokenizer *t = NULL;
        if (qr_tok_load_mem(s, n, &t) == QR_OK) {
            exercise(t, "ab a\xc3\xa9 <|e|>", 11);
            (void)qr_tok_vocab_size(t);
            (void)qr_tok_id(t, "ab");
            qr_tok_free(t);
        }
        break;
    }
    case 1:
        exercise(g_tiny, s, n);
        /* random ids too */
        if (n >= 4) {
            int32_t ids[64];
            int k = 0;
            for (size_t i = 0; i + 1 < n && k < 64; i += 2)
                ids[k++] = ((uint8_t)s[i] | (uint8_t)s[i + 1] << 8) % 16 - 2;
            char *text = NULL;
            size_t len;
            if (qr_tok_decode(g_tiny, ids, k, true, &text, &len) == QR_OK)
                free(text);
        }
        break;
    case 2: {
        cJSON *j = cJSON_ParseWithLength(s, n);
        if (j) {
            const cJSON *m = cJSON_IsObject(j) ? cJSON_GetObjectItem(j, "messages") : j;
            const cJSON *tools = cJSON_IsObject(j) ? cJSON_GetObjectItem(j, "tools") : NULL;
            for (int v = QR_CHAT_UNKNOWN; v <= QR_CHAT_QWEN15; v++)
                for (int th = -1; th <= 1; th++) {
                    struct qr_chat_opts o = {.add_generation_prompt = th != 0, .enable_thinking = th};
                    char *out = NULL;
                    if (qr_chat_render((enum qr_chat_variant)v, m, tools, &o, &out) == QR_OK)
                        free(out);
                }
            cJSON_Delete(j);
        }
        char *z = malloc(n + 1);
        if (z) {
            memcpy(z, s, n);
            z[n] = 0;
            enum qr_chat_variant v;
            (void)qr_chat_detect_template(z, &v);
            free(z);
        }
        break;
    }
    }
    return 0;
}
