/* qr_tokenizer.h - Qwen byte-level BPE (tokenizer.json), exactly as HF
 * tokenizers does it; streaming decode; the chat template rendered natively. */
#ifndef QRUN_QR_TOKENIZER_H
#define QRUN_QR_TOKENIZER_H

#include "qr_types.h"

#ifdef __cplusplus
extern "C" {
#endif

struct qr_tokenizer;
struct cJSON;

/* tokenizer.json (+ tokenizer_config.json in the same dir, optional) */
qr_status qr_tok_load(const char *tokenizer_json_path, struct qr_tokenizer **out);
/* from a model directory: tokenizer.json and tokenizer_config.json */
qr_status qr_tok_load_dir(const char *dir, struct qr_tokenizer **out);
qr_status qr_tok_load_mem(const char *json, size_t len, struct qr_tokenizer **out);
void qr_tok_free(struct qr_tokenizer *t);

/* Encode UTF-8 text.  parse_special: match added tokens in the text (HF default);
 * false: no added token is matched (plain BPE).  Invalid UTF-8 is QR_E_INVALID_ARG.
 * Thread-safe on a shared tokenizer.  *ids is malloc'd (free with free()). */
qr_status qr_tok_encode(const struct qr_tokenizer *t, const char *text, size_t len, bool parse_special,
                        int32_t **ids, int *n_ids);
/* Decode ids to bytes; skip_special drops special=true added tokens.  Invalid
 * UTF-8 sequences become U+FFFD as HF's errors="replace".  *text malloc'd, NUL-terminated.
 * Ids >= qr_tok_vocab_size (embedding padding rows) decode to nothing, as in HF;
 * negative ids are QR_E_INVALID_ARG. */
qr_status qr_tok_decode(const struct qr_tokenizer *t, const int32_t *ids, int n, bool skip_special,
                        char **text, size_t *len);
int qr_tok_vocab_size(const struct qr_tokenizer *t);   /* highest id + 1, added tokens included */
bool qr_tok_is_special(const struct qr_tokenizer *t, int32_t id);
int32_t qr_tok_id(const struct qr_tokenizer *t, const char *token);  /* -1 if absent */
/* raw bytes of one token (after byte-level decoding); NULL for out-of-range ids */
const char *qr_tok_bytes(const struct qr_tokenizer *t, int32_t id, size_t *len);

/* Streaming decoder: emits only complete UTF-8 code points. */
struct qr_tok_stream;
qr_status qr_tok_stream_create(const struct qr_tokenizer *t, bool skip_special, struct qr_tok_stream **out);
/* writes the newly completed text for `id` to out (up to cap, NUL-terminated); *n = bytes written.
 * A cap too small for the text is QR_E_INVALID_ARG with the stream unchanged; 3 * (longest
 * token + 3) + 1 bytes always suffice (1024 for Qwen, whose longest token is 128 bytes). */
qr_status qr_tok_stream_push(struct qr_tok_stream *s, int32_t id, char *out, size_t cap, size_t *n);
/* flushes held-back bytes (as U+FFFD where incomplete) */
qr_status qr_tok_stream_flush(struct qr_tok_stream *s, char *out, size_t cap, size_t *n);
void qr_tok_stream_free(struct qr_tok_stream *s);

/* ---- chat templates ---- */
enum qr_chat_variant {
    QR_CHAT_UNKNOWN = 0,
    QR_CHAT_QWEN3_INSTRUCT_2507,   /* no think handling, plain generation prompt */
    QR_CHAT_QWEN3_THINKING_2507,   /* generation prompt opens <think> */
    QR_CHAT_QWEN3_HYBRID,          /* enable_thinking switch, reasoning_content */
    QR_CHAT_QWEN25,                /* default system prompt "You are Qwen, ..." */
    QR_CHAT_QWEN15,                /* default system prompt "You are a helpful assistant." */
};
const char *qr_chat_variant_name(enum qr_chat_variant v);

/* Detect the variant from tokenizer_config.json's chat_template in `dir`.
 * An unknown template is QR_E_UNSUPPORTED with a clear message. */
qr_status qr_chat_detect(const char *dir, enum qr_chat_variant *v);
qr_status qr_chat_detect_template(const char *jinja_src, enum qr_chat_variant *v);

struct qr_chat_opts {
    bool add_generation_prompt;
    int enable_thinking;           /* -1 = template default, 0/1 explicit (hybrid only) */
};

/* messages: OpenAI-style array; tools: array or NULL.  *out malloc'd. */
qr_status qr_chat_render(enum qr_chat_variant v, const struct cJSON *messages, const struct cJSON *tools,
                         const struct qr_chat_opts *o, char **out);

#ifdef __cplusplus
}
#endif
#endif
