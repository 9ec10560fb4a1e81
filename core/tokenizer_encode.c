/* tokenizer_encode.c - text -> ids, as HF tokenizers' TokenizerImpl::encode
 * does it for a byte-level BPE tokenizer.json:
 *   1. added tokens are matched in the raw text (leftmost, then longest) and
 *      never split (added_vocabulary.rs, aho-corasick LeftmostLongest);
 *   2. each remaining segment is NFC-normalized (utf8proc, with HF's Unicode 9.0
 *      behaviour for marks added later: tokenizer_nfc9.c);
 *   3. split by the pre-tokenizer regex with behavior Isolated (PCRE2, UTF+UCP,
 *      JIT; `\s` rewritten to Unicode White_Space as Oniguruma has it, `\p{L}`
 *      extended by CJK Ext. I, which PCRE2 10.42 predates);
 *   4. each piece's bytes go through BPE: adjacent pairs merged by rank, lowest
 *      rank first, leftmost on ties (models/bpe/word.rs merge_all).
 * Invalid UTF-8 input is rejected with QR_E_INVALID_ARG (HF's Python binding
 * cannot take it either: Rust strings are always valid UTF-8). */
#include "tokenizer_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Oniguruma's \s (Unicode White_Space); PCRE2's UCP \s lacks U+0085 */
#define WS_CLASS "\\t\\n\\x{0B}\\f\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"

/* letters PCRE2 10.42 (Unicode 15.0) lacks but Oniguruma in HF tokenizers 0.23
 * has: CJK Extension I (Unicode 15.1), seen in a bulk comparison against HF */
#define EXTRA_L "\\x{2EBF0}-\\x{2EE5D}"

qr_status qr_tok_compile_regex(struct qr_tokenizer *t, const char *pattern)
{
    size_t n = strlen(pattern);
    size_t cap = n * 8 + sizeof WS_CLASS * 4 * (n / 2 + 1) + 16;
    char *p = malloc(cap);
    if (!p)
        return qr_set_error(QR_E_OOM_HOST, "tokenizer: out of memory");
    size_t o = 0;
    bool in_class = false;
    for (size_t i = 0; i < n; i++) {
        char c = pattern[i];
        if (c == '\\' && i + 1 < n) {
            char d = pattern[i + 1];
            if (d == 's') {
                o += (size_t)sprintf(p + o, in_class ? "%s" : "[%s]", WS_CLASS);
            } else if (d == 'S' && !in_class) {
                o += (size_t)sprintf(p + o, "[^%s]", WS_CLASS);
            } else if (d == 'p' && !strncmp(pattern + i + 2, "{L}", 3)) {
                o += (size_t)sprintf(p + o, in_class ? "%s" : "[%s]", "\\p{L}" EXTRA_L);
                i += 3;
            } else {
                p[o++] = c;
                p[o++] = d;
            }
            i++;
            continue;
        }
        if (c == '[' && !in_class) {
            in_class = true;
            p[o++] = c;
            if (i + 1 < n && pattern[i + 1] == '^')
                p[o++] = pattern[++i];
            if (i + 1 < n && pattern[i + 1] == ']')   /* a literal ] first in a class */
                p[o++] = pattern[++i];
            continue;
        }
        if (c == ']' && in_class)
            in_class = false;
        p[o++] = c;
    }
    p[o] = 0;
    int err = 0;
    PCRE2_SIZE erroff = 0;
    t->re = pcre2_compile((PCRE2_SPTR)p, o, PCRE2_UTF | PCRE2_UCP, &err, &erroff, NULL);
    free(p);
    if (!t->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return qr_set_error(QR_E_FORMAT, "tokenizer.json: pre-tokenizer regex does not compile: %s (near offset %zu)",
                            (const char *)msg, (size_t)erroff);
    }
    t->re_jit = pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE) == 0;
    if (!t->re_jit)
        qr_log(QR_LOG_WARN, "tokenizer: PCRE2 JIT unavailable; using the interpreter (slower)");
    return QR_OK;
}

/* ------------------------------------------------------------- buffers ---- */

struct ids_vec {
    int32_t *v;
    int n, cap;
};

static bool ids_push(struct ids_vec *a, int32_t id)
{
    if (a->n == a->cap) {
        int nc = a->cap ? a->cap * 2 : 256;
        int32_t *nv = realloc(a->v, (size_t)nc * sizeof *nv);
        if (!nv)
            return false;
        a->v = nv;
        a->cap = nc;
    }
    a->v[a->n++] = id;
    return true;
}

struct bpe_sym {
    int32_t id, prev, next;
    uint32_t len;
};

struct bpe_merge {
    int32_t rank, pos, new_id;
};

struct enc_ctx {
    const struct qr_tokenizer *t;
    struct ids_vec out;
    struct bpe_sym *sym;
    struct bpe_merge *heap;
    size_t sym_cap, heap_cap, heap_n;
    pcre2_match_data *md;
};

static bool merge_less(const struct bpe_merge *a, const struct bpe_merge *b)
{
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static bool heap_push(struct enc_ctx *c, int32_t rank, int32_t pos, int32_t new_id)
{
    if (c->heap_n == c->heap_cap) {
        size_t nc = c->heap_cap ? c->heap_cap * 2 : 64;
        struct bpe_merge *nh = realloc(c->heap, nc * sizeof *nh);
        if (!nh)
            return false;
        c->heap = nh;
        c->heap_cap = nc;
    }
    size_t i = c->heap_n++;
    struct bpe_merge m = {rank, pos, new_id};
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!merge_less(&m, &c->heap[p]))
            break;
        c->heap[i] = c->heap[p];
        i = p;
    }
    c->heap[i] = m;
    return true;
}

static struct bpe_merge heap_pop(struct enc_ctx *c)
{
    struct bpe_merge top = c->heap[0];
    struct bpe_merge last = c->heap[--c->heap_n];
    size_t i = 0, n = c->heap_n;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const struct bpe_merge *best = &last;
        if (l < n && merge_less(&c->heap[l], best)) { m = l; best = &c->heap[l]; }
        if (r < n && merge_less(&c->heap[r], best)) { m = r; }
        if (m == i)
            break;
        c->heap[i] = c->heap[m];
        i = m;
    }
    if (n)
        c->heap[i] = last;
    return top;
}

/* ----------------------------------------------------------------- BPE ---- */

static qr_status bpe_piece(struct enc_ctx *c, const unsigned char *s, size_t n)
{
    const struct qr_tokenizer *t = c->t;
    if (n == 0)
        return QR_OK;
    if (n == 1) {
        if (t->byte_id[s[0]] >= 0 && !ids_push(&c->out, t->byte_id[s[0]]))
            return qr_set_error(QR_E_OOM_HOST, "tokenizer: out of memory");
        return QR_OK;
    }
    if (t->ignore_merges) {
        int32_t id = qr_tok_vocab_lookup(t, (const char *)s, n);
        if (id >= 0)
            return ids_push(&c->out, id) ? QR_OK : qr_set_error(QR_E_OOM_HOST, "tokenizer: out of memory");
    }
    if (n > c->sym_cap) {
        size_t nc = n < 256 ? 256 : n;
        struct bpe_sym *ns = realloc(c->sym, nc * sizeof *ns);
        if (!ns)
            return qr_set_error(QR_E_OOM_HOST, "tokenizer: out of memory");
        c->sym = ns;
        c->sym_cap = nc;
    }
    struct bpe_sym *sym = c->sym;
    int m = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = t->byte_id[s[i]];
        if (id < 0)
            continue;   /* HF drops characters missing from the vocab when there is no unk token */
        sym[m].id = id;
        sym[m].len = 1;
        sym[m].prev = m - 1;
        sym[m].next = m + 1;
        m++;
    }
    if (m == 0)
        return QR_OK;
    sym[m - 1].next = -1;
    c->heap_n = 0;
    for (int i = 0; i + 1 < m; i++) {
        int32_t nid, r = qr_tok_merge_lookup(t, sym[i].id, sym[i + 1].id, &nid);
        if (r >= 0 && !heap_push(c, r, i, nid))
            return qr_set_error(QR_E_OOM_HOST, "tokenizer: out of memory");
    }
    while (c->heap_n) {
        struct bpe_merge top = heap_pop(c);
        struct bpe_sym *a = &sym[top.pos];
        if (a->len == 0 || a->next < 0)
            continue;
        int32_t bi = a->next;
        struct bpe_sym *b = &sym[bi];
        int32_t nid;
        if (qr_tok_merge_lookup(t, a->id, b->id, &nid) < 0 || nid != top.new_id)
            continue;
        a->id = nid;
        a->len += b->len;
        a->next = b->next;
        if (b->next >= 0)
            sym[b->next].prev = top.pos;
        b->len = 0;
        if (a->prev >= 0) {
            int32_t r = qr_tok_merge_lookup(t, sym[a->prev].id, a->id, &nid);
            if (r >= 0 && !heap_push(c, r, a->prev, nid))
                return qr_set_error(QR_E_OOM_HOST, "tokenizer: out of memory");
        }
        if (a->next >= 0) {
            int32_t r = qr_tok_merge_lookup(t, a->id, sym[a->next].id, &nid);
            if (r >= 0 && !heap_push(c, r, top.pos, nid))
                return qr_set_error(QR_E_OOM_HOST, "tokenizer: out of memory");
        }
    }
    for (int i = 0; i >= 0; i = sym[i].next)
        if (!ids_push(&c->out, sym[i].id))
            return qr_set_error(QR_E_OOM_HOST, "tokenizer: out of memory");
    return QR_OK;
}

/* ------------------------------------------------------ split + segment ---- */

static qr_status split_and_bpe(struct enc_ctx *c, const char *s, size_t n)
{
    const struct qr_tokenizer *t = c->t;
    if (!t->re)
        return bpe_piece(c, (const unsigned char *)s, n);
    size_t pos = 0;
    while (pos < n) {
        int rc = t->re_jit ? pcre2_jit_match(t->re, (PCRE2_SPTR)s, n, pos, 0, c->md, NULL)
                           : pcre2_match(t->re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, c->md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return qr_set_error(QR_E_INTERNAL, "tokenizer: regex match failed: %s", (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->md);
        size_t ms = ov[0], me = ov[1];
        if (me == ms) {   /* an empty match splits nothing; step one character */
            size_t step = 1;
            while (ms + step < n && ((unsigned char)s[ms + step] & 0xC0) == 0x80)
                step++;
            if (ms > pos) {
                qr_status st = bpe_piece(c, (const unsigned char *)s + pos, ms - pos);
                if (st != QR_OK)
                    return st;
            }
            qr_status st = bpe_piece(c, (const unsigned char *)s + ms, step);
            if (st != QR_OK)
                return st;
            pos = ms + step;
            continue;
        }
        qr_status st;
        if (ms > pos && (st = bpe_piece(c, (const unsigned char *)s + pos, ms - pos)) != QR_OK)
            return st;
        if ((st = bpe_piece(c, (const unsigned char *)s + ms, me - ms)) != QR_OK)
            return st;
        pos = me;
    }
    if (pos < n)
        return bpe_piece(c, (const unsigned char *)s + pos, n - pos);
    return QR_OK;
}

static qr_status encode_segment(struct enc_ctx *c, const char *s, size_t n)
{
    if (n == 0)
        return QR_OK;
    bool need_nfc = false;
    if (c->t->nfc) {
        /* every code point below U+0300 is NFC-stable and none composes with a
         * preceding one; a lead byte >= 0xCC starts a code point >= U+0300 */
        for (size_t i = 0; i < n && !need_nfc; i++)
            need_nfc = (unsigned char)s[i] >= 0xCC;
    }
    if (!need_nfc)
        return split_and_bpe(c, s, n);
    char *dst = NULL;
    size_t m = 0;
    qr_status st = qr_tok_nfc(s, n, &dst, &m);
    if (st != QR_OK)
        return st;
    st = split_and_bpe(c, dst, m);
    free(dst);
    return st;
}

static bool is_ws_byte(unsigned char ch) { return ch == ' ' || (ch >= '\t' && ch <= '\r'); }

/* The longest added token that starts at s[i], or NULL. */
static const struct qr_tok_added *added_at(const struct qr_tokenizer *t, const char *s, size_t n, size_t i)
{
    if (!t->added_first[(unsigned char)s[i]])
        return NULL;
    for (int k = 0; k < t->n_added; k++) {   /* sorted longest first */
        const struct qr_tok_added *a = &t->added[k];
        if (a->len <= n - i && a->content[0] == s[i] && !memcmp(a->content, s + i, a->len))
            return a;
    }
    return NULL;
}

qr_status qr_tok_encode(const struct qr_tokenizer *t, const char *text, size_t len, bool parse_special, int32_t **ids,
                        int *n_ids)
{
    if (!t || (!text && len) || !ids || !n_ids)
        return qr_set_error(QR_E_INVALID_ARG, "qr_tok_encode: bad arguments");
    if (len > (size_t)1 << 30)
        return qr_set_error(QR_E_INVALID_ARG, "qr_tok_encode: text of %zu bytes is too long (max 1 GiB)", len);
    for (size_t i = 0; i < len;) {
        unsigned char ch = (unsigned char)text[i];
        if (ch < 0x80) {
            i++;
            continue;
        }
        bool partial;
        int l = qr_utf8_seq_len((const unsigned char *)text + i, len - i, &partial);
        if (l <= 0)
            return qr_set_error(QR_E_INVALID_ARG, "qr_tok_encode: invalid UTF-8 at byte %zu (0x%02x)", i, ch);
        i += (size_t)l;
    }
    struct enc_ctx c = {.t = t};
    qr_status st = QR_OK;
    if (t->re) {
        c.md = pcre2_match_data_create_from_pattern(t->re, NULL);
        if (!c.md)
            return qr_set_error(QR_E_OOM_HOST, "tokenizer: out of memory");
    }
    size_t seg = 0, i = 0;
    while (i < len && parse_special && t->n_added) {
        const struct qr_tok_added *a = added_at(t, text, len, i);
        if (!a) {
            i++;
            continue;
        }
        size_t seg_end = i, next = i + a->len;
        if (a->lstrip)
            while (seg_end > seg && is_ws_byte((unsigned char)text[seg_end - 1]))
                seg_end--;
        if (a->rstrip)
            while (next < len && is_ws_byte((unsigned char)text[next]))
                next++;
        if ((st = encode_segment(&c, text + seg, seg_end - seg)) != QR_OK)
            goto done;
        if (!ids_push(&c.out, a->id)) {
            st = qr_set_error(QR_E_OOM_HOST, "tokenizer: out of memory");
            goto done;
        }
        seg = i = next;
    }
    if ((st = encode_segment(&c, text + seg, len - seg)) != QR_OK)
        goto done;
done:
    if (c.md)
        pcre2_match_data_free(c.md);
    free(c.sym);
    free(c.heap);
    if (st != QR_OK) {
        free(c.out.v);
        return st;
    }
    if (!c.out.v && !(c.out.v = malloc(sizeof(int32_t)))) {
        return qr_set_error(QR_E_OOM_HOST, "tokenizer: out of memory");
    }
    *ids = c.out.v;
    *n_ids = c.out.n;
    return QR_OK;
}
