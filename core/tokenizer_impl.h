/* tokenizer_impl.h - private layout of struct qr_tokenizer, shared by
 * tokenizer.c (load, decode, streaming), tokenizer_encode.c (split + BPE). */
#ifndef QRUN_TOKENIZER_IMPL_H
#define QRUN_TOKENIZER_IMPL_H

#include "qrun/qr_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#define QR_TOK_MAX_ID (1 << 24)     /* ids at or above this are rejected as malformed */

enum { TOK_F_PRESENT = 1, TOK_F_ADDED = 2, TOK_F_SPECIAL = 4 };

struct qr_tok_added {
    char *content;                  /* raw UTF-8 as matched in the text */
    size_t len;
    int32_t id;
    bool special, lstrip, rstrip;
};

/* open-addressing table of merges: key (left id << 32 | right id) */
struct qr_tok_merge_slot {
    uint64_t key;                   /* UINT64_MAX = empty */
    int32_t rank;
    int32_t new_id;
};

struct qr_tokenizer {
    int n_ids;                      /* highest id + 1 */
    uint8_t *flags;                 /* (n_ids) TOK_F_* */
    uint32_t *off, *blen;           /* (n_ids) raw bytes of each token in pool */
    char *pool;
    size_t pool_len;
    char **str;                     /* (n_ids) token string as in tokenizer.json (byte-level form); may be NULL */

    /* model vocab: raw bytes -> id (only tokens whose string is pure byte-level) */
    int32_t *vmap;                  /* -1 = empty */
    size_t vmap_mask;
    int32_t byte_id[256];           /* id of each single byte; -1 if absent */

    struct qr_tok_merge_slot *merges;
    size_t merge_mask;
    int n_merges;
    bool ignore_merges;

    struct qr_tok_added *added;     /* sorted by content length, longest first */
    int n_added;
    uint8_t added_first[256];       /* 1 if some added token starts with this byte */

    bool nfc;                       /* normalizer NFC */
    pcre2_code *re;                 /* split regex (NULL: whole text is one piece) */
    bool re_jit;
};

/* FNV-1a over bytes */
static inline uint64_t qr_tok_hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static inline uint64_t qr_tok_hash_u64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    k ^= k >> 33;
    return k;
}

/* vocab id of the exact byte string, or -1 */
int32_t qr_tok_vocab_lookup(const struct qr_tokenizer *t, const char *s, size_t n);
/* merge (a, b) -> rank (and new id), or -1 */
static inline int32_t qr_tok_merge_lookup(const struct qr_tokenizer *t, int32_t a, int32_t b, int32_t *new_id)
{
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    size_t i = qr_tok_hash_u64(key) & t->merge_mask;
    for (;;) {
        const struct qr_tok_merge_slot *s = &t->merges[i];
        if (s->key == key) {
            *new_id = s->new_id;
            return s->rank;
        }
        if (s->key == UINT64_MAX)
            return -1;
        i = (i + 1) & t->merge_mask;
    }
}

/* Length of a valid UTF-8 sequence at p (1..4), or 0 if the bytes at p are not
 * one; `avail` bytes are readable.  *partial set when the bytes so far are a
 * valid but incomplete prefix that runs into the end of the buffer. */
int qr_utf8_seq_len(const unsigned char *p, size_t avail, bool *partial);
/* Appends the lossy UTF-8 decoding of in[0..n) (maximal invalid subparts ->
 * U+FFFD, as Rust's from_utf8_lossy) to out, which must hold 3*n bytes; returns bytes written. */
size_t qr_utf8_lossy(const unsigned char *in, size_t n, char *out);

/* NFC of valid UTF-8 as HF tokenizers' normalizer computes it (Unicode 9.0
 * normalization data; see tokenizer_nfc9.c); *out malloc'd, NUL-terminated */
qr_status qr_tok_nfc(const char *s, size_t n, char **out, size_t *out_len);

/* compile the split regex (with \s adapted to Unicode White_Space) */
qr_status qr_tok_compile_regex(struct qr_tokenizer *t, const char *pattern);

#endif
