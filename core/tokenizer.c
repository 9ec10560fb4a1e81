/* tokenizer.c - tokenizer.json loading (vocab, merges, added tokens, byte-level
 * map, normalizer/pre-tokenizer checks), token lookup, decoding and the
 * streaming decoder.  Encoding (added-token split, NFC, regex split, BPE) is in
 * tokenizer_encode.c.
 *
 * Reference: HF tokenizers `models/bpe` (BPE::from vocab + merges, merge ranks
 * = index), `pre_tokenizers/byte_level.rs` (bytes_to_unicode, ByteLevel
 * decoder = String::from_utf8_lossy over the concatenated bytes),
 * `tokenizer/added_vocabulary.rs`. */
#include "tokenizer_impl.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- UTF-8 ---- */

int qr_utf8_seq_len(const unsigned char *p, size_t avail, bool *partial)
{
    /* Unicode Table 3-7: well-formed byte sequences */
    unsigned char c = p[0];
    int n;
    unsigned char lo = 0x80, hi = 0xBF;
    *partial = false;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else
        return 0;
    for (int k = 1; k < n; k++) {
        if ((size_t)k >= avail) {
            *partial = true;
            return 0;
        }
        unsigned char b = p[k];
        if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF))
            return 0;
    }
    return n;
}

/* number of bytes forming the maximal valid-prefix subpart at p (>= 1) */
static size_t utf8_bad_span(const unsigned char *p, size_t avail)
{
    unsigned char c = p[0];
    int n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) { n = 3; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 4; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
    else return 1;
    size_t k = 1;
    for (; k < (size_t)n && k < avail; k++) {
        unsigned char b = p[k];
        if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF))
            break;
    }
    return k;
}

size_t qr_utf8_lossy(const unsigned char *in, size_t n, char *out)
{
    size_t i = 0, o = 0;
    while (i < n) {
        bool partial;
        int l = qr_utf8_seq_len(in + i, n - i, &partial);
        if (l > 0) {
            memcpy(out + o, in + i, (size_t)l);
            o += (size_t)l;
            i += (size_t)l;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i += utf8_bad_span(in + i, n - i);
        }
    }
    return o;
}

/* --------------------------------------------------- byte-level mapping ---- */

/* GPT-2 bytes_to_unicode: printable bytes map to themselves, the other 68 to
 * U+0100.. in ascending byte order. */
static void byte_level_tables(uint32_t b2u[256], int16_t u2b[324])
{
    int n = 0;
    for (int i = 0; i < 324; i++)
        u2b[i] = -1;
    for (int b = 0; b < 256; b++) {
        bool keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        b2u[b] = keep ? (uint32_t)b : (uint32_t)(256 + n++);
        u2b[b2u[b]] = (int16_t)b;
    }
}

/* Byte-level token string -> raw bytes in out (at most strlen bytes).
 * Returns the byte count, or -1 if some char is not in the byte-level map. */
static long byte_level_decode(const int16_t u2b[324], const char *s, size_t n, char *out)
{
    size_t i = 0, o = 0;
    while (i < n) {
        const unsigned char *p = (const unsigned char *)s + i;
        bool partial;
        int l = qr_utf8_seq_len(p, n - i, &partial);
        if (l <= 0)
            return -1;
        uint32_t cp;
        if (l == 1) cp = p[0];
        else if (l == 2) cp = ((p[0] & 0x1Fu) << 6) | (p[1] & 0x3Fu);
        else cp = 0x10000;   /* 3- and 4-byte chars are never byte-level */
        if (cp >= 324 || u2b[cp] < 0)
            return -1;
        out[o++] = (char)u2b[cp];
        i += (size_t)l;
    }
    return (long)o;
}

/* ------------------------------------------------------------ lookups ---- */

int32_t qr_tok_vocab_lookup(const struct qr_tokenizer *t, const char *s, size_t n)
{
    size_t i = qr_tok_hash_bytes(s, n) & t->vmap_mask;
    for (;;) {
        int32_t id = t->vmap[i];
        if (id < 0)
            return -1;
        if (t->blen[id] == n && !memcmp(t->pool + t->off[id], s, n))
            return id;
        i = (i + 1) & t->vmap_mask;
    }
}

static void vmap_insert(struct qr_tokenizer *t, int32_t id)
{
    const char *s = t->pool + t->off[id];
    size_t n = t->blen[id];
    size_t i = qr_tok_hash_bytes(s, n) & t->vmap_mask;
    for (;;) {
        int32_t o = t->vmap[i];
        if (o < 0) {
            t->vmap[i] = id;
            return;
        }
        if (t->blen[o] == n && !memcmp(t->pool + t->off[o], s, n))
            return;   /* same bytes already mapped: keep the first */
        i = (i + 1) & t->vmap_mask;
    }
}

static void merge_insert(struct qr_tokenizer *t, int32_t a, int32_t b, int32_t rank, int32_t new_id)
{
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    size_t i = qr_tok_hash_u64(key) & t->merge_mask;
    for (;;) {
        struct qr_tok_merge_slot *s = &t->merges[i];
        if (s->key == UINT64_MAX || s->key == key) {
            if (s->key == UINT64_MAX)
                t->n_merges++;
            s->key = key;     /* a repeated pair takes the later rank, as HF's HashMap collect */
            s->rank = rank;
            s->new_id = new_id;
            return;
        }
        i = (i + 1) & t->merge_mask;
    }
}

static size_t pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n)
        c <<= 1;
    return c;
}

/* -------------------------------------------------------------- loading ---- */

void qr_tok_free(struct qr_tokenizer *t)
{
    if (!t)
        return;
    if (t->str) {
        for (int i = 0; i < t->n_ids; i++)
            free(t->str[i]);
        free(t->str);
    }
    for (int i = 0; i < t->n_added; i++)
        free(t->added[i].content);
    free(t->added);
    free(t->flags);
    free(t->off);
    free(t->blen);
    free(t->pool);
    free(t->vmap);
    free(t->merges);
    if (t->re)
        pcre2_code_free(t->re);
    free(t);
}

static int cmp_added_len(const void *a, const void *b)
{
    const struct qr_tok_added *x = a, *y = b;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static bool json_int(const cJSON *v, long long lo, long long hi, long long *out)
{
    if (!cJSON_IsNumber(v))
        return false;
    double d = v->valuedouble;
    if (d != d || d < (double)lo || d > (double)hi || d != (double)(long long)d)
        return false;
    *out = (long long)d;
    return true;
}

static bool json_flag(const cJSON *o, const char *key)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, key));
}

static qr_status check_normalizer(struct qr_tokenizer *t, const cJSON *n)
{
    if (!n || cJSON_IsNull(n))
        return QR_OK;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(n, "type");
    if (!cJSON_IsString(type))
        return qr_set_error(QR_E_FORMAT, "tokenizer.json: normalizer has no \"type\"");
    if (!strcmp(type->valuestring, "NFC")) {
        t->nfc = true;
        return QR_OK;
    }
    if (!strcmp(type->valuestring, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(n, "normalizers"), *e;
        if (!cJSON_IsArray(list))
            return qr_set_error(QR_E_FORMAT, "tokenizer.json: normalizer Sequence without \"normalizers\"");
        cJSON_ArrayForEach(e, list) {
            qr_status st = check_normalizer(t, e);
            if (st != QR_OK)
                return st;
        }
        return QR_OK;
    }
    return qr_set_error(QR_E_UNSUPPORTED, "tokenizer.json: normalizer \"%s\" is not supported (only NFC)",
                        type->valuestring);
}

/* GPT-2's split regex, for a ByteLevel pre-tokenizer with use_regex=true */
static const char k_gpt2_regex[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static qr_status check_pre_tokenizer(struct qr_tokenizer *t, const cJSON *p, bool *have_bytelevel)
{
    if (!p || cJSON_IsNull(p))
        return QR_OK;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(p, "type");
    if (!cJSON_IsString(type))
        return qr_set_error(QR_E_FORMAT, "tokenizer.json: pre_tokenizer has no \"type\"");
    const char *ty = type->valuestring;
    if (!strcmp(ty, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(p, "pretokenizers"), *e;
        if (!cJSON_IsArray(list))
            return qr_set_error(QR_E_FORMAT, "tokenizer.json: pre_tokenizer Sequence without \"pretokenizers\"");
        cJSON_ArrayForEach(e, list) {
            qr_status st = check_pre_tokenizer(t, e, have_bytelevel);
            if (st != QR_OK)
                return st;
        }
        return QR_OK;
    }
    if (!strcmp(ty, "Split")) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(p, "pattern");
        const cJSON *re = pat ? cJSON_GetObjectItemCaseSensitive(pat, "Regex") : NULL;
        const cJSON *beh = cJSON_GetObjectItemCaseSensitive(p, "behavior");
        if (!cJSON_IsString(re))
            return qr_set_error(QR_E_UNSUPPORTED, "tokenizer.json: Split pre-tokenizer needs a \"pattern\": {\"Regex\": ...}");
        if (!cJSON_IsString(beh) || strcmp(beh->valuestring, "Isolated"))
            return qr_set_error(QR_E_UNSUPPORTED, "tokenizer.json: Split behavior must be \"Isolated\"");
        if (json_flag(p, "invert"))
            return qr_set_error(QR_E_UNSUPPORTED, "tokenizer.json: inverted Split is not supported");
        if (t->re || *have_bytelevel)
            return qr_set_error(QR_E_UNSUPPORTED, "tokenizer.json: only one Split before ByteLevel is supported");
        return qr_tok_compile_regex(t, re->valuestring);
    }
    if (!strcmp(ty, "ByteLevel")) {
        if (json_flag(p, "add_prefix_space"))
            return qr_set_error(QR_E_UNSUPPORTED, "tokenizer.json: ByteLevel add_prefix_space=true is not supported");
        *have_bytelevel = true;
        const cJSON *ur = cJSON_GetObjectItemCaseSensitive(p, "use_regex");
        if (!ur || cJSON_IsTrue(ur)) {   /* HF default: true */
            if (t->re)
                return qr_set_error(QR_E_UNSUPPORTED, "tokenizer.json: Split followed by ByteLevel(use_regex) is not supported");
            return qr_tok_compile_regex(t, k_gpt2_regex);
        }
        return QR_OK;
    }
    return qr_set_error(QR_E_UNSUPPORTED, "tokenizer.json: pre_tokenizer \"%s\" is not supported", ty);
}

static qr_status check_model_options(const cJSON *model)
{
    const cJSON *v;
    v = cJSON_GetObjectItemCaseSensitive(model, "type");
    if (v && (!cJSON_IsString(v) || strcmp(v->valuestring, "BPE")))
        return qr_set_error(QR_E_UNSUPPORTED, "tokenizer.json: model type \"%s\" is not supported (only BPE)",
                            cJSON_IsString(v) ? v->valuestring : "?");
    if (json_flag(model, "byte_fallback"))
        return qr_set_error(QR_E_UNSUPPORTED, "tokenizer.json: BPE byte_fallback is not supported");
    v = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (v && !cJSON_IsNull(v) && !(cJSON_IsNumber(v) && v->valuedouble == 0.0))
        return qr_set_error(QR_E_UNSUPPORTED, "tokenizer.json: BPE dropout is not supported");
    const char *keys[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        v = cJSON_GetObjectItemCaseSensitive(model, keys[i]);
        if (v && !cJSON_IsNull(v) && !(cJSON_IsString(v) && !v->valuestring[0]))
            return qr_set_error(QR_E_UNSUPPORTED, "tokenizer.json: BPE %s is not supported", keys[i]);
    }
    return QR_OK;
}

/* one merge entry -> the two token strings (pointers into the JSON or into buf) */
static bool merge_parts(const cJSON *m, char *buf, size_t cap, const char **a, const char **b)
{
    if (cJSON_IsArray(m)) {
        if (cJSON_GetArraySize(m) != 2)
            return false;
        const cJSON *x = cJSON_GetArrayItem(m, 0), *y = cJSON_GetArrayItem(m, 1);
        if (!cJSON_IsString(x) || !cJSON_IsString(y))
            return false;
        *a = x->valuestring;
        *b = y->valuestring;
        return true;
    }
    if (cJSON_IsString(m)) {
        const char *s = m->valuestring, *sp = strchr(s, ' ');
        size_t n = strlen(s);
        if (!sp || n + 1 > cap || strchr(sp + 1, ' '))
            return false;
        memcpy(buf, s, n + 1);
        buf[sp - s] = 0;
        *a = buf;
        *b = buf + (sp - s) + 1;
        return true;
    }
    return false;
}

static qr_status load_json(const cJSON *root, struct qr_tokenizer **out)
{
    qr_status st = QR_OK;
    struct qr_tokenizer *t = NULL;
    char *tmp = NULL, *tmp2 = NULL;
    uint32_t b2u[256];
    int16_t u2b[324];
    byte_level_tables(b2u, u2b);

    if (!cJSON_IsObject(root))
        return qr_set_error(QR_E_FORMAT, "tokenizer.json: top level is not an object");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsObject(model))
        return qr_set_error(QR_E_FORMAT, "tokenizer.json: missing \"model\" object");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!cJSON_IsObject(vocab))
        return qr_set_error(QR_E_FORMAT, "tokenizer.json: missing \"model.vocab\" object");
    if (!cJSON_IsArray(merges))
        return qr_set_error(QR_E_FORMAT, "tokenizer.json: missing \"model.merges\" array");
    if ((st = check_model_options(model)) != QR_OK)
        return st;
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (added && !cJSON_IsNull(added) && !cJSON_IsArray(added))
        return qr_set_error(QR_E_FORMAT, "tokenizer.json: \"added_tokens\" is not an array");

    /* pass 1: id range and sizes */
    long long max_id = -1, id = 0;
    size_t pool = 0;
    int n_added = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, vocab) {
        if (!json_int(e, 0, QR_TOK_MAX_ID - 1, &id))
            return qr_set_error(QR_E_FORMAT, "tokenizer.json: vocab entry \"%.64s\" has an invalid or out-of-range id "
                                "(must be an integer in [0, %d))", e->string ? e->string : "", QR_TOK_MAX_ID);
        if (id > max_id) max_id = id;
        pool += strlen(e->string);
    }
    if (added && cJSON_IsArray(added)) {
        cJSON_ArrayForEach(e, added) {
            const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "content");
            if (!cJSON_IsObject(e) || !cJSON_IsString(c) || !c->valuestring[0] ||
                !json_int(cJSON_GetObjectItemCaseSensitive(e, "id"), 0, QR_TOK_MAX_ID - 1, &id))
                return qr_set_error(QR_E_FORMAT, "tokenizer.json: added_tokens[%d] needs a non-empty \"content\" and "
                                    "an integer \"id\" in [0, %d)", n_added, QR_TOK_MAX_ID);
            if (id > max_id) max_id = id;
            pool += strlen(c->valuestring);
            n_added++;
        }
    }
    if (max_id < 0)
        return qr_set_error(QR_E_FORMAT, "tokenizer.json: empty vocabulary");

    t = calloc(1, sizeof *t);
    if (!t)
        return qr_set_error(QR_E_OOM_HOST, "tokenizer: out of memory");
    t->n_ids = (int)max_id + 1;
    t->flags = calloc((size_t)t->n_ids, 1);
    t->off = calloc((size_t)t->n_ids, sizeof *t->off);
    t->blen = calloc((size_t)t->n_ids, sizeof *t->blen);
    t->str = calloc((size_t)t->n_ids, sizeof *t->str);
    t->pool = malloc(pool + 1);
    size_t vcap = pow2_at_least((size_t)cJSON_GetArraySize(vocab) * 2 + 16);
    t->vmap = malloc(vcap * sizeof *t->vmap);
    size_t mcap = pow2_at_least((size_t)cJSON_GetArraySize(merges) * 2 + 16);
    t->merges = malloc(mcap * sizeof *t->merges);
    t->added = calloc((size_t)n_added + 1, sizeof *t->added);
    if (!t->flags || !t->off || !t->blen || !t->str || !t->pool || !t->vmap || !t->merges || !t->added) {
        st = qr_set_error(QR_E_OOM_HOST, "tokenizer: out of memory");
        goto fail;
    }
    memset(t->vmap, 0xff, vcap * sizeof *t->vmap);
    t->vmap_mask = vcap - 1;
    for (size_t i = 0; i < mcap; i++)
        t->merges[i].key = UINT64_MAX;
    t->merge_mask = mcap - 1;

    /* pass 2: vocab */
    cJSON_ArrayForEach(e, vocab) {
        json_int(e, 0, QR_TOK_MAX_ID - 1, &id);
        if (t->flags[id] & TOK_F_PRESENT) {
            st = qr_set_error(QR_E_FORMAT, "tokenizer.json: id %lld is used by both \"%.64s\" and \"%.64s\"", id,
                              t->str[id], e->string);
            goto fail;
        }
        size_t n = strlen(e->string);
        t->str[id] = strdup(e->string);
        if (!t->str[id]) {
            st = qr_set_error(QR_E_OOM_HOST, "tokenizer: out of memory");
            goto fail;
        }
        t->flags[id] = TOK_F_PRESENT;
        t->off[id] = (uint32_t)t->pool_len;
        long nb = byte_level_decode(u2b, e->string, n, t->pool + t->pool_len);
        bool bl = nb >= 0;
        if (!bl) {   /* not byte-level: decodes to its own UTF-8 (HF ByteLevel decoder fallback) */
            memcpy(t->pool + t->pool_len, e->string, n);
            nb = (long)n;
        }
        t->blen[id] = (uint32_t)nb;
        t->pool_len += (size_t)nb;
        if (bl)
            vmap_insert(t, (int32_t)id);
    }

    /* added tokens */
    if (added && cJSON_IsArray(added)) {
        cJSON_ArrayForEach(e, added) {
            const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "content");
            json_int(cJSON_GetObjectItemCaseSensitive(e, "id"), 0, QR_TOK_MAX_ID - 1, &id);
            struct qr_tok_added *a = &t->added[t->n_added];
            a->len = strlen(c->valuestring);
            a->content = strdup(c->valuestring);
            if (!a->content) {
                st = qr_set_error(QR_E_OOM_HOST, "tokenizer: out of memory");
                goto fail;
            }
            a->id = (int32_t)id;
            a->special = json_flag(e, "special");
            a->lstrip = json_flag(e, "lstrip");
            a->rstrip = json_flag(e, "rstrip");
            t->n_added++;
            t->added_first[(uint8_t)a->content[0]] = 1;
            if (t->flags[id] & TOK_F_ADDED) {
                st = qr_set_error(QR_E_FORMAT, "tokenizer.json: added token id %lld appears twice", id);
                goto fail;
            }
            /* an added token decodes to its content (HF: added vocabulary first) */
            free(t->str[id]);
            t->str[id] = strdup(a->content);
            if (!t->str[id]) {
                st = qr_set_error(QR_E_OOM_HOST, "tokenizer: out of memory");
                goto fail;
            }
            t->flags[id] |= TOK_F_PRESENT | TOK_F_ADDED | (a->special ? TOK_F_SPECIAL : 0);
            t->off[id] = (uint32_t)t->pool_len;
            long nb = byte_level_decode(u2b, a->content, a->len, t->pool + t->pool_len);
            if (nb < 0) {
                memcpy(t->pool + t->pool_len, a->content, a->len);
                nb = (long)a->len;
            }
            t->blen[id] = (uint32_t)nb;
            t->pool_len += (size_t)nb;
        }
        qsort(t->added, (size_t)t->n_added, sizeof *t->added, cmp_added_len);
    }

    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        t->byte_id[b] = qr_tok_vocab_lookup(t, &c, 1);
    }

    /* merges: rank = index; both parts and their concatenation must be in the vocab */
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(model, "ignore_merges");
    t->ignore_merges = cJSON_IsTrue(o);
    size_t tcap = 1024;
    tmp = malloc(tcap);
    tmp2 = malloc(tcap * 2);
    if (!tmp || !tmp2) {
        st = qr_set_error(QR_E_OOM_HOST, "tokenizer: out of memory");
        goto fail;
    }
    int rank = 0;
    cJSON_ArrayForEach(e, merges) {
        const char *a, *b;
        if (!merge_parts(e, tmp, tcap, &a, &b)) {
            st = qr_set_error(QR_E_FORMAT, "tokenizer.json: merges[%d] is not a [\"a\", \"b\"] pair or an \"a b\" string",
                              rank);
            goto fail;
        }
        size_t la = strlen(a), lb = strlen(b);
        if (la + lb > tcap) {
            st = qr_set_error(QR_E_FORMAT, "tokenizer.json: merges[%d] is too long", rank);
            goto fail;
        }
        long na = byte_level_decode(u2b, a, la, tmp2);
        long nb = na >= 0 ? byte_level_decode(u2b, b, lb, tmp2 + na) : -1;
        int32_t ia = na > 0 ? qr_tok_vocab_lookup(t, tmp2, (size_t)na) : -1;
        int32_t ib = nb > 0 ? qr_tok_vocab_lookup(t, tmp2 + na, (size_t)nb) : -1;
        int32_t inew = ia >= 0 && ib >= 0 ? qr_tok_vocab_lookup(t, tmp2, (size_t)(na + nb)) : -1;
        if (ia < 0 || ib < 0 || inew < 0) {
            st = qr_set_error(QR_E_FORMAT, "tokenizer.json: merges[%d] (\"%.64s\" \"%.64s\"): token \"%.64s%s\" is not in "
                              "the vocab", rank, a, b, ia < 0 ? a : ib < 0 ? b : a, ia < 0 || ib < 0 ? "" : b);
            goto fail;
        }
        merge_insert(t, ia, ib, rank, inew);
        rank++;
    }

    if ((st = check_normalizer(t, cJSON_GetObjectItemCaseSensitive(root, "normalizer"))) != QR_OK)
        goto fail;
    bool have_bl = false;
    if ((st = check_pre_tokenizer(t, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), &have_bl)) != QR_OK)
        goto fail;
    if (!have_bl) {
        st = qr_set_error(QR_E_UNSUPPORTED, "tokenizer.json: no ByteLevel pre-tokenizer (only byte-level BPE is supported)");
        goto fail;
    }
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(root, "decoder");
    const cJSON *dty = dec ? cJSON_GetObjectItemCaseSensitive(dec, "type") : NULL;
    if (dec && !cJSON_IsNull(dec) && (!cJSON_IsString(dty) || strcmp(dty->valuestring, "ByteLevel"))) {
        st = qr_set_error(QR_E_UNSUPPORTED, "tokenizer.json: decoder \"%s\" is not supported (only ByteLevel)",
                          cJSON_IsString(dty) ? dty->valuestring : "?");
        goto fail;
    }
    free(tmp);
    free(tmp2);
    *out = t;
    return QR_OK;
fail:
    free(tmp);
    free(tmp2);
    qr_tok_free(t);
    return st;
}

qr_status qr_tok_load_mem(const char *json, size_t len, struct qr_tokenizer **out)
{
    if (!json || !out)
        return qr_set_error(QR_E_INVALID_ARG, "qr_tok_load_mem: NULL argument");
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, false);
    if (!root)
        return qr_set_error(QR_E_FORMAT, "tokenizer.json: JSON syntax error near byte %ld",
                            end ? (long)(end - json) : -1L);
    qr_status st = load_json(root, out);
    cJSON_Delete(root);
    return st;
}

static char *read_whole(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) != NULL) {
            if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
                free(buf);
                buf = NULL;
            } else {
                buf[n] = 0;
                *len = (size_t)n;
            }
        }
    }
    fclose(f);
    return buf;
}

qr_status qr_tok_load(const char *path, struct qr_tokenizer **out)
{
    if (!path || !out)
        return qr_set_error(QR_E_INVALID_ARG, "qr_tok_load: NULL argument");
    size_t len = 0;
    char *buf = read_whole(path, &len);
    if (!buf)
        return qr_set_error(QR_E_IO, "cannot read tokenizer '%s': %s", path, strerror(errno));
    double t0 = qr_time_s();
    qr_status st = qr_tok_load_mem(buf, len, out);
    free(buf);
    if (st != QR_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", qr_last_error());
        return qr_set_error(st, "%s (in %s)", msg, path);
    }
    qr_log(QR_LOG_DEBUG, "tokenizer %s: %d ids, %d merges, %d added tokens, %.0f ms", path, (*out)->n_ids,
           (*out)->n_merges, (*out)->n_added, 1000 * (qr_time_s() - t0));
    return QR_OK;
}

qr_status qr_tok_load_dir(const char *dir, struct qr_tokenizer **out)
{
    if (!dir || !out)
        return qr_set_error(QR_E_INVALID_ARG, "qr_tok_load_dir: NULL argument");
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/tokenizer.json", dir) >= sizeof path)
        return qr_set_error(QR_E_INVALID_ARG, "model directory path too long");
    return qr_tok_load(path, out);
}

/* ------------------------------------------------------------ accessors ---- */

int qr_tok_vocab_size(const struct qr_tokenizer *t) { return t ? t->n_ids : 0; }

bool qr_tok_is_special(const struct qr_tokenizer *t, int32_t id)
{
    return t && id >= 0 && id < t->n_ids && (t->flags[id] & TOK_F_SPECIAL);
}

int32_t qr_tok_id(const struct qr_tokenizer *t, const char *token)
{
    if (!t || !token)
        return -1;
    size_t n = strlen(token);
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].len == n && !memcmp(t->added[i].content, token, n))
            return t->added[i].id;
    char stackbuf[256];
    char *buf = n < sizeof stackbuf ? stackbuf : malloc(n + 1);
    if (!buf)
        return -1;
    uint32_t b2u[256];
    int16_t u2b[324];
    byte_level_tables(b2u, u2b);
    long nb = byte_level_decode(u2b, token, n, buf);
    int32_t id = -1;
    if (nb > 0) {
        id = qr_tok_vocab_lookup(t, buf, (size_t)nb);
        if (id >= 0 && (!t->str[id] || strcmp(t->str[id], token)))
            id = -1;
    }
    if (id < 0) {   /* tokens whose string is not byte-level: linear scan */
        for (int i = 0; i < t->n_ids && id < 0; i++)
            if (t->str[i] && !strcmp(t->str[i], token))
                id = i;
    }
    if (buf != stackbuf)
        free(buf);
    return id;
}

const char *qr_tok_bytes(const struct qr_tokenizer *t, int32_t id, size_t *len)
{
    if (!t || id < 0 || id >= t->n_ids || !(t->flags[id] & TOK_F_PRESENT))
        return NULL;
    if (len)
        *len = t->blen[id];
    return t->pool + t->off[id];
}

/* ------------------------------------------------------------- decoding ---- */

qr_status qr_tok_decode(const struct qr_tokenizer *t, const int32_t *ids, int n, bool skip_special, char **text,
                        size_t *len)
{
    if (!t || (!ids && n > 0) || n < 0 || !text)
        return qr_set_error(QR_E_INVALID_ARG, "qr_tok_decode: bad arguments");
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0)
            return qr_set_error(QR_E_INVALID_ARG, "qr_tok_decode: negative token id %d", id);
        if (id >= t->n_ids || !(t->flags[id] & TOK_F_PRESENT) || (skip_special && (t->flags[id] & TOK_F_SPECIAL)))
            continue;   /* unknown ids (e.g. embedding padding rows) decode to nothing, as in HF */
        total += t->blen[id];
    }
    unsigned char *raw = malloc(total + 1);
    char *outb = malloc(3 * total + 1);
    if (!raw || !outb) {
        free(raw);
        free(outb);
        return qr_set_error(QR_E_OOM_HOST, "qr_tok_decode: out of memory");
    }
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id >= t->n_ids || !(t->flags[id] & TOK_F_PRESENT) || (skip_special && (t->flags[id] & TOK_F_SPECIAL)))
            continue;
        memcpy(raw + o, t->pool + t->off[id], t->blen[id]);
        o += t->blen[id];
    }
    size_t m = qr_utf8_lossy(raw, o, outb);
    free(raw);
    outb[m] = 0;
    *text = outb;
    if (len)
        *len = m;
    return QR_OK;
}

/* ---------------------------------------------------- streaming decoder ---- */

struct qr_tok_stream {
    const struct qr_tokenizer *t;
    bool skip_special;
    unsigned char pend[4];          /* an incomplete UTF-8 prefix held back */
    size_t npend;
};

qr_status qr_tok_stream_create(const struct qr_tokenizer *t, bool skip_special, struct qr_tok_stream **out)
{
    if (!t || !out)
        return qr_set_error(QR_E_INVALID_ARG, "qr_tok_stream_create: NULL argument");
    struct qr_tok_stream *s = calloc(1, sizeof *s);
    if (!s)
        return qr_set_error(QR_E_OOM_HOST, "qr_tok_stream_create: out of memory");
    s->t = t;
    s->skip_special = skip_special;
    *out = s;
    return QR_OK;
}

void qr_tok_stream_free(struct qr_tok_stream *s) { free(s); }

/* Decodes pend + bytes; emits every decided character; keeps an incomplete tail. */
static qr_status stream_emit(struct qr_tok_stream *s, const unsigned char *bytes, size_t nb, bool flush, char *out,
                             size_t cap, size_t *n)
{
    size_t nin = s->npend + nb;
    unsigned char stackbuf[512];
    unsigned char *in = nin <= sizeof stackbuf ? stackbuf : malloc(nin);
    if (!in)
        return qr_set_error(QR_E_OOM_HOST, "tokenizer stream: out of memory");
    memcpy(in, s->pend, s->npend);
    if (nb)
        memcpy(in + s->npend, bytes, nb);
    /* find where a trailing incomplete-but-valid prefix starts */
    size_t keep_from = nin;
    if (!flush) {
        size_t i = 0;
        while (i < nin) {
            bool partial;
            int l = qr_utf8_seq_len(in + i, nin - i, &partial);
            if (l > 0)
                i += (size_t)l;
            else if (partial) {
                keep_from = i;
                break;
            } else
                i += utf8_bad_span(in + i, nin - i);
        }
    }
    char tmpbuf[1536];
    char *tmp = 3 * keep_from + 1 <= sizeof tmpbuf ? tmpbuf : malloc(3 * keep_from + 1);
    if (!tmp) {
        if (in != stackbuf)
            free(in);
        return qr_set_error(QR_E_OOM_HOST, "tokenizer stream: out of memory");
    }
    size_t m = qr_utf8_lossy(in, keep_from, tmp);
    qr_status st = QR_OK;
    if (m + 1 > cap) {   /* state unchanged: the caller may retry with a larger buffer */
        st = qr_set_error(QR_E_INVALID_ARG, "tokenizer stream: output buffer of %zu bytes is too small (need %zu)",
                          cap, m + 1);
    } else {
        memcpy(out, tmp, m);
        out[m] = 0;
        *n = m;
        s->npend = nin - keep_from;
        memmove(s->pend, in + keep_from, s->npend);
    }
    if (tmp != tmpbuf)
        free(tmp);
    if (in != stackbuf)
        free(in);
    return st;
}

qr_status qr_tok_stream_push(struct qr_tok_stream *s, int32_t id, char *out, size_t cap, size_t *n)
{
    if (!s || !out || !n || cap == 0)
        return qr_set_error(QR_E_INVALID_ARG, "qr_tok_stream_push: bad arguments");
    const struct qr_tokenizer *t = s->t;
    if (id < 0)
        return qr_set_error(QR_E_INVALID_ARG, "qr_tok_stream_push: negative token id %d", id);
    const unsigned char *b = NULL;
    size_t nb = 0;
    if (id < t->n_ids && (t->flags[id] & TOK_F_PRESENT) && !(s->skip_special && (t->flags[id] & TOK_F_SPECIAL))) {
        b = (const unsigned char *)t->pool + t->off[id];
        nb = t->blen[id];
    }
    return stream_emit(s, b, nb, false, out, cap, n);
}

qr_status qr_tok_stream_flush(struct qr_tok_stream *s, char *out, size_t cap, size_t *n)
{
    if (!s || !out || !n || cap == 0)
        return qr_set_error(QR_E_INVALID_ARG, "qr_tok_stream_flush: bad arguments");
    return stream_emit(s, NULL, 0, true, out, cap, n);
}
