/* safetensors.c - parse and validate one safetensors file held in memory
 * (usually an mmap).  Reference: huggingface/safetensors README "Format" and
 * REFERENCE.md section 5.
 *
 * Layout: u64 little-endian N, N bytes of JSON header (begins with '{', may be
 * right-padded with whitespace), then the byte buffer.  Rules enforced here:
 *   - the file holds the 8-byte size and the whole header; N <= 100,000,000;
 *     the header is valid UTF-8;
 *   - the header is one JSON object; every key is unique; "__metadata__" maps
 *     strings to strings; every other key is a tensor object with a known
 *     "dtype", a "shape" of non-negative integers (rank <= 4) and
 *     "data_offsets" [BEGIN, END] with BEGIN <= END;
 *   - shape x dtype size (overflow-checked) equals END - BEGIN;
 *   - sorted by BEGIN, the tensors cover the byte buffer exactly: the first
 *     starts at 0, each starts where the previous ended, the last ends at the
 *     end of the file (no gaps, no overlaps, nothing past the file).
 * Tensors of a dtype qrun does not compute with (I8, F64, ...) are parsed and
 * checked, with qr_tensor_info.dtype = QR_DTYPE_COUNT; qr_st_dtype_name() names
 * them.  The model loader decides what to accept. */
#include "qrun/qr_model.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ST_MAX_HEADER 100000000ull /* the safetensors design note's cap */
#define ST_MAX_RANK 4

struct st_dtype_desc {
    const char *name;
    size_t size;
    int qr;          /* enum qr_dtype, or QR_DTYPE_COUNT when qrun does not compute with it */
};

static const struct st_dtype_desc k_st_dtypes[] = {
    {"BOOL", 1, QR_DTYPE_COUNT},  {"U8", 1, QR_DTYPE_COUNT},      {"I8", 1, QR_DTYPE_COUNT},
    {"I16", 2, QR_DTYPE_COUNT},   {"U16", 2, QR_DTYPE_COUNT},     {"F16", 2, QR_DTYPE_F16},
    {"BF16", 2, QR_DTYPE_BF16},   {"I32", 4, QR_DTYPE_I32},       {"U32", 4, QR_DTYPE_COUNT},
    {"F32", 4, QR_DTYPE_F32},     {"F64", 8, QR_DTYPE_COUNT},     {"I64", 8, QR_DTYPE_COUNT},
    {"U64", 8, QR_DTYPE_COUNT},   {"F8_E4M3", 1, QR_DTYPE_COUNT}, {"F8_E5M2", 1, QR_DTYPE_COUNT},
    {"F8_E8M0", 1, QR_DTYPE_COUNT},
};

struct st_entry {
    struct qr_tensor_info info;  /* first member: qr_st_tensor returns &entry->info */
    const char *st_dtype;        /* static string from k_st_dtypes */
    uint64_t begin, end;         /* relative to the byte buffer */
};

struct qr_st_file {
    char *fname;
    struct st_entry *e;
    int n;
    size_t data_size;            /* bytes of the byte buffer */
};

static const struct st_dtype_desc *st_dtype_find(const char *s)
{
    for (size_t i = 0; i < sizeof k_st_dtypes / sizeof k_st_dtypes[0]; i++)
        if (strcmp(s, k_st_dtypes[i].name) == 0)
            return &k_st_dtypes[i];
    return NULL;
}

/* Reads a JSON number that must be a non-negative integer exactly representable
 * in a double (<= 2^53).  Larger values cannot be offsets inside any real file
 * and are rejected as out of range by the caller. */
static bool json_u64(const cJSON *it, uint64_t *out)
{
    if (!cJSON_IsNumber(it))
        return false;
    double d = it->valuedouble;
    if (!(d >= 0.0) || d > 9007199254740992.0 || d != (double)(uint64_t)d)
        return false;
    *out = (uint64_t)d;
    return true;
}

/* strict UTF-8 (no overlongs, no surrogates, <= U+10FFFF); returns the offset of the first bad byte or n */
static size_t utf8_check(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        unsigned lo = 0x80, hi = 0xbf;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            if (c == 0xe0)
                lo = 0xa0;
            else if (c == 0xed)
                hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            if (c == 0xf0)
                lo = 0x90;
            else if (c == 0xf4)
                hi = 0x8f;
        } else {
            return i;
        }
        if (n - i < len || s[i + 1] < lo || s[i + 1] > hi)
            return i;
        for (size_t k = 2; k < len; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return i;
        i += len;
    }
    return n;
}

static void shape_str(const int64_t *shape, int n, char *buf, size_t cap)
{
    size_t k = 0;
    k += (size_t)snprintf(buf + k, cap - k, "[");
    for (int i = 0; i < n && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (k < cap)
        snprintf(buf + k, cap - k, "]");
}

static int cmp_entry_name(const void *a, const void *b)
{
    const struct st_entry *x = a, *y = b;
    return strcmp(x->info.name, y->info.name);
}

static int cmp_entry_begin(const void *a, const void *b)
{
    const struct st_entry *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return strcmp(x->info.name, y->info.name);
}

void qr_st_free(struct qr_st_file *f)
{
    if (!f)
        return;
    for (int i = 0; i < f->n; i++)
        free(f->e[i].info.name);
    free(f->e);
    free(f->fname);
    free(f);
}

/* Parses one tensor entry of the header into e (name already set). */
static qr_status st_parse_entry(const char *fn, const cJSON *obj, struct st_entry *e)
{
    const char *nm = e->info.name;
    if (!cJSON_IsObject(obj))
        return qr_set_error(QR_E_FORMAT, "%s: tensor '%s': header entry is not a JSON object", fn, nm);
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(obj, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(obj, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(obj, "data_offsets");
    if (!cJSON_IsString(jd))
        return qr_set_error(QR_E_FORMAT, "%s: tensor '%s': \"dtype\" is missing or not a string", fn, nm);
    const struct st_dtype_desc *dd = st_dtype_find(jd->valuestring);
    if (!dd)
        return qr_set_error(QR_E_FORMAT, "%s: tensor '%s': unknown dtype \"%.32s\"", fn, nm, jd->valuestring);
    e->st_dtype = dd->name;
    e->info.dtype = (enum qr_dtype)dd->qr;
    if (!cJSON_IsArray(js))
        return qr_set_error(QR_E_FORMAT, "%s: tensor '%s': \"shape\" is missing or not an array", fn, nm);
    int rank = cJSON_GetArraySize(js);
    if (rank > ST_MAX_RANK)
        return qr_set_error(QR_E_UNSUPPORTED, "%s: tensor '%s': rank %d, qrun reads tensors of rank <= %d", fn, nm,
                            rank, ST_MAX_RANK);
    uint64_t numel = 1;
    bool overflow = false;
    int d = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, js) {
        uint64_t v;
        if (!json_u64(it, &v))
            return qr_set_error(QR_E_FORMAT, "%s: tensor '%s': shape[%d] is not a non-negative integer below 2^53",
                                fn, nm, d);
        e->info.shape[d++] = (int64_t)v;
        if (__builtin_mul_overflow(numel, v, &numel))
            overflow = true;
    }
    e->info.n_dims = rank;
    uint64_t nbytes = 0;
    if (overflow || __builtin_mul_overflow(numel, (uint64_t)dd->size, &nbytes)) {
        char sb[128];
        shape_str(e->info.shape, rank, sb, sizeof sb);
        return qr_set_error(QR_E_FORMAT, "%s: tensor '%s': shape %s x %zu bytes (%s) overflows 64 bits", fn, nm, sb,
                            dd->size, dd->name);
    }
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2 || !json_u64(cJSON_GetArrayItem(jo, 0), &e->begin) ||
        !json_u64(cJSON_GetArrayItem(jo, 1), &e->end))
        return qr_set_error(QR_E_FORMAT,
                            "%s: tensor '%s': \"data_offsets\" must be [BEGIN, END], two non-negative integers", fn,
                            nm);
    if (e->end < e->begin)
        return qr_set_error(QR_E_FORMAT, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] end before they begin",
                            fn, nm, e->begin, e->end);
    if (e->end - e->begin != nbytes) {
        char sb[128];
        shape_str(e->info.shape, rank, sb, sizeof sb);
        return qr_set_error(QR_E_FORMAT,
                            "%s: tensor '%s': shape %s x %s needs %" PRIu64 " bytes, but data_offsets [%" PRIu64
                            ", %" PRIu64 "] hold %" PRIu64,
                            fn, nm, sb, dd->name, nbytes, e->begin, e->end, e->end - e->begin);
    }
    return QR_OK;
}

static qr_status st_check_metadata(const char *fn, const cJSON *md)
{
    if (!cJSON_IsObject(md))
        return qr_set_error(QR_E_FORMAT, "%s: \"__metadata__\" is not a JSON object", fn);
    const cJSON *it;
    cJSON_ArrayForEach(it, md) {
        if (!cJSON_IsString(it))
            return qr_set_error(QR_E_FORMAT, "%s: \"__metadata__\" value of '%.64s' is not a string", fn,
                                it->string ? it->string : "?");
    }
    return QR_OK;
}

qr_status qr_st_parse(const void *data, size_t size, const char *fname, struct qr_st_file **out)
{
    const unsigned char *p = data;
    const char *fn = fname ? fname : "safetensors";
    if (!out || (!data && size))
        return qr_set_error(QR_E_INVALID_ARG, "qr_st_parse: bad arguments");
    if (size < 8)
        return qr_set_error(QR_E_FORMAT, "%s: file is %zu bytes, too short for the 8-byte header size (truncated?)",
                            fn, size);
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--)
        hn = (hn << 8) | p[i];
    if (hn > ST_MAX_HEADER)
        return qr_set_error(QR_E_FORMAT, "%s: header size %" PRIu64 " exceeds the 100,000,000-byte limit", fn, hn);
    if (hn > size - 8)
        return qr_set_error(QR_E_FORMAT,
                            "%s: header size %" PRIu64 " runs past the end of the file (%zu bytes; truncated?)", fn,
                            hn, size);
    if (hn < 2 || p[8] != '{')
        return qr_set_error(QR_E_FORMAT, "%s: header does not begin with '{' (not a safetensors file?)", fn);

    size_t bad = utf8_check(p + 8, (size_t)hn);
    if (bad != (size_t)hn)
        return qr_set_error(QR_E_FORMAT, "%s: header is not valid UTF-8 (byte %zu)", fn, bad);
    const char *hdr = (const char *)p + 8;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(hdr, (size_t)hn, &end, 0);
    if (!root) {
        size_t at = end && end >= hdr && end <= hdr + hn ? (size_t)(end - hdr) : 0;
        return qr_set_error(QR_E_FORMAT, "%s: header is not valid JSON (near byte %zu of %" PRIu64 ")", fn, at, hn);
    }
    qr_status st = QR_OK;
    struct qr_st_file *f = NULL;
    for (const char *q = end; q < hdr + hn; q++) {
        if (*q != ' ' && *q != '\t' && *q != '\n' && *q != '\r') {
            st = qr_set_error(QR_E_FORMAT, "%s: header has bytes after the JSON object (at byte %zu)", fn,
                              (size_t)(q - hdr));
            goto fail;
        }
    }
    if (!cJSON_IsObject(root)) {
        st = qr_set_error(QR_E_FORMAT, "%s: header is not a JSON object", fn);
        goto fail;
    }
    int nkeys = cJSON_GetArraySize(root);
    f = calloc(1, sizeof *f);
    if (!f || !(f->fname = strdup(fn)) || !(f->e = calloc((size_t)nkeys + 1, sizeof *f->e))) {
        st = qr_set_error(QR_E_OOM_HOST, "%s: out of memory for %d header entries", fn, nkeys);
        goto fail;
    }
    int n_meta = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, root) {
        const char *key = it->string ? it->string : "";
        if (strcmp(key, "__metadata__") == 0) {
            if (++n_meta > 1) {
                st = qr_set_error(QR_E_FORMAT, "%s: duplicate key \"__metadata__\" in the header", fn);
                goto fail;
            }
            if ((st = st_check_metadata(fn, it)) != QR_OK)
                goto fail;
            continue;
        }
        struct st_entry *e = &f->e[f->n];
        if (!(e->info.name = strdup(key))) {
            st = qr_set_error(QR_E_OOM_HOST, "%s: out of memory", fn);
            goto fail;
        }
        f->n++;
        if (strlen(key) != strnlen(key, 4096) || key[0] == '\0') {
            st = qr_set_error(QR_E_FORMAT, "%s: a tensor has an empty or over-long name", fn);
            goto fail;
        }
        if ((st = st_parse_entry(fn, it, e)) != QR_OK)
            goto fail;
    }
    cJSON_Delete(root);
    root = NULL;

    /* duplicate names */
    if (f->n > 1) {
        qsort(f->e, (size_t)f->n, sizeof *f->e, cmp_entry_name);
        for (int i = 1; i < f->n; i++)
            if (strcmp(f->e[i - 1].info.name, f->e[i].info.name) == 0) {
                st = qr_set_error(QR_E_FORMAT, "%s: duplicate tensor '%s' in the header", fn, f->e[i].info.name);
                goto fail;
            }
    }
    /* exact coverage of the byte buffer */
    uint64_t data_size = (uint64_t)size - 8 - hn;
    qsort(f->e, (size_t)f->n, sizeof *f->e, cmp_entry_begin);
    uint64_t pos = 0;
    for (int i = 0; i < f->n; i++) {
        struct st_entry *e = &f->e[i];
        if (e->begin > pos) {
            st = qr_set_error(QR_E_FORMAT,
                              "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] leave a gap: bytes %" PRIu64
                              "..%" PRIu64 " of the buffer belong to no tensor",
                              fn, e->info.name, e->begin, e->end, pos, e->begin);
            goto fail;
        }
        if (e->begin < pos) {
            st = qr_set_error(QR_E_FORMAT,
                              "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                              "] overlap the previous tensor '%s', which ends at %" PRIu64,
                              fn, e->info.name, e->begin, e->end, f->e[i - 1].info.name, pos);
            goto fail;
        }
        if (e->end > data_size) {
            st = qr_set_error(QR_E_FORMAT,
                              "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                              "] run past the end of the file (the buffer holds %" PRIu64 " bytes; truncated?)",
                              fn, e->info.name, e->begin, e->end, data_size);
            goto fail;
        }
        pos = e->end;
        e->info.data = p + 8 + hn + e->begin;
        e->info.nbytes = (size_t)(e->end - e->begin);
    }
    if (pos != data_size) {
        st = qr_set_error(QR_E_FORMAT,
                          "%s: the tensors cover %" PRIu64 " bytes of the buffer but it holds %" PRIu64
                          " (%" PRIu64 " trailing bytes belong to no tensor)",
                          fn, pos, data_size, data_size - pos);
        goto fail;
    }
    f->data_size = (size_t)data_size;
    *out = f;
    return QR_OK;
fail:
    cJSON_Delete(root);
    qr_st_free(f);
    return st;
}

int qr_st_count(const struct qr_st_file *f) { return f ? f->n : 0; }

const struct qr_tensor_info *qr_st_tensor(const struct qr_st_file *f, int i)
{
    if (!f || i < 0 || i >= f->n)
        return NULL;
    return &f->e[i].info;
}

const char *qr_st_dtype_name(const struct qr_st_file *f, int i)
{
    if (!f || i < 0 || i >= f->n)
        return "?";
    return f->e[i].st_dtype;
}
