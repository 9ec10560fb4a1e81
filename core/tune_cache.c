/* tune_cache.c - the persistent file of a device's tuning results (qr_tune_cache.h).  The CUDA backend keeps its
 * GEMM tuner's choices here, so a second process neither re-times them nor picks differently. */
#include "qrun/qr_tune_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TC_MAGIC "qrun-tune-cache 1 "

static bool device_ok(const char *device)
{
    if (!device || !*device || strlen(device) > QR_TC_DEVICE_MAX)
        return false;
    for (const char *p = device; *p; p++)
        if (*p == '\n' || *p == '\r')
            return false;
    return true;
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

qr_status qr_tc_path(const char *dir, const char *kind, const char *device, char *out, size_t n)
{
    if (!kind || !*kind || !device_ok(device) || !out || n == 0)
        return qr_set_error(QR_E_INVALID_ARG, "tune cache: bad kind or device string");
    for (const char *p = kind; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
            return qr_set_error(QR_E_INVALID_ARG, "tune cache: kind '%s' is not [a-z0-9_-]", kind);
    char base[4096];
    const char *e;
    if (dir && *dir)
        snprintf(base, sizeof base, "%s", dir);
    else if ((e = getenv("QRUN_CACHE_DIR")) && *e)
        snprintf(base, sizeof base, "%s", e);
    else if ((e = getenv("XDG_CACHE_HOME")) && *e)
        snprintf(base, sizeof base, "%s/qrun", e);
    else if ((e = getenv("HOME")) && *e)
        snprintf(base, sizeof base, "%s/.cache/qrun", e);
    else
        return qr_set_error(QR_E_NOT_FOUND, "tune cache: no directory (QRUN_CACHE_DIR, XDG_CACHE_HOME, HOME unset)");
    /* the device string's readable part (at most 64 characters), then a hash of all of it */
    char san[65];
    size_t k = 0;
    for (const char *p = device; *p && k < sizeof san - 1; p++) {
        const char c = *p;
        const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                          c == '-' || c == '_';
        san[k++] = keep ? c : '_';
    }
    san[k] = '\0';
    const int w = snprintf(out, n, "%s/%s-%s-%016llx.txt", base, kind, san, (unsigned long long)fnv1a(device));
    if (w < 0 || (size_t)w >= n || strlen(base) >= sizeof base - 1)
        return qr_set_error(QR_E_INVALID_ARG, "tune cache: path too long");
    return QR_OK;
}

/* the next space-separated token of [*p, end) on this line: its bounds, false at the line's end */
static bool next_tok(const char **p, const char *end, const char **t0, size_t *tn)
{
    const char *s = *p;
    while (s < end && *s == ' ')
        s++;
    if (s >= end)
        return false;
    const char *t = s;
    while (s < end && *s != ' ')
        s++;
    *t0 = t;
    *tn = (size_t)(s - t);
    *p = s;
    return true;
}

static bool tok_is(const char *t, size_t tn, const char *word) { return tn == strlen(word) && !memcmp(t, word, tn); }

static bool tok_int(const char *t, size_t tn, int64_t *v)
{
    char buf[24];
    if (tn == 0 || tn >= sizeof buf)
        return false;
    memcpy(buf, t, tn);
    buf[tn] = '\0';
    for (size_t i = 0; i < tn; i++)
        if (!((buf[i] >= '0' && buf[i] <= '9') || (i == 0 && buf[i] == '-' && tn > 1)))
            return false;
    errno = 0;
    char *e = NULL;
    const long long x = strtoll(buf, &e, 10);
    if (errno || *e)
        return false;
    *v = (int64_t)x;
    return true;
}

static bool tok_hex(const char *t, size_t tn, uint64_t *v)
{
    if (tn == 0 || tn > 16)
        return false;
    uint64_t x = 0;
    for (size_t i = 0; i < tn; i++) {
        const char c = t[i];
        const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return false;
        x = x << 4 | (uint64_t)d;
    }
    *v = x;
    return true;
}

/* one record line [p, end) */
static bool parse_line(const char *p, const char *end, struct qr_tc_rec *r)
{
    const char *t;
    size_t tn;
    *r = (struct qr_tc_rec){0};
    if (!next_tok(&p, end, &t, &tn) || !tok_is(t, tn, "k"))
        return false;
    bool in_val = false;
    while (next_tok(&p, end, &t, &tn)) {
        if (!in_val && tok_is(t, tn, "v")) {
            in_val = true;
        } else if (!in_val) {
            if (r->n_key == QR_TC_KEY_MAX || !tok_int(t, tn, &r->key[r->n_key]))
                return false;
            r->n_key++;
        } else {
            if (r->n_val == QR_TC_VAL_MAX || !tok_hex(t, tn, &r->val[r->n_val]))
                return false;
            r->n_val++;
        }
    }
    return in_val && r->n_key > 0 && r->n_val > 0;
}

int qr_tc_find(const struct qr_tc_rec *recs, int n, const int64_t *key, int n_key)
{
    for (int i = 0; recs && key && i < n; i++)
        if (recs[i].n_key == n_key && !memcmp(recs[i].key, key, (size_t)n_key * sizeof *key))
            return i;
    return -1;
}

qr_status qr_tc_parse(const char *text, size_t len, const char *device, struct qr_tc_rec *out, int max, int *n,
                      int *n_bad)
{
    if (!device_ok(device) || (!text && len) || !n || !n_bad || (max > 0 && !out))
        return qr_set_error(QR_E_INVALID_ARG, "tune cache: bad arguments");
    *n = 0;
    *n_bad = 0;
    const char *end = text + len, *nl = text ? memchr(text, '\n', len) : NULL;
    const size_t ml = strlen(TC_MAGIC), dl = strlen(device);
    if (!nl || (size_t)(nl - text) != ml + dl || memcmp(text, TC_MAGIC, ml) || memcmp(text + ml, device, dl))
        return qr_set_error(QR_E_FORMAT, "tune cache: not this device's file");
    for (const char *p = nl + 1; p < end;) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e)
            break;   /* a last line without its newline is a write still in progress */
        struct qr_tc_rec r;
        if (e > p) {
            if (!parse_line(p, e, &r))
                ++*n_bad;
            else if (*n < max && qr_tc_find(out, *n, r.key, r.n_key) < 0)
                out[(*n)++] = r;   /* a repeat of a key (two processes tuned it at once) is passed over */
        }
        p = e + 1;
    }
    return QR_OK;
}

qr_status qr_tc_load(const char *path, const char *device, struct qr_tc_rec *out, int max, int *n, int *n_bad)
{
    if (!path || !n || !n_bad)
        return qr_set_error(QR_E_INVALID_ARG, "tune cache: bad arguments");
    *n = 0;
    *n_bad = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT ? QR_OK : qr_set_error(QR_E_IO, "tune cache %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || sb.st_size < 0 || (uint64_t)sb.st_size > QR_TC_FILE_MAX) {
        fclose(f);
        return qr_set_error(QR_E_IO, "tune cache %s: unreadable or longer than %u bytes", path, QR_TC_FILE_MAX);
    }
    char *buf = malloc((size_t)sb.st_size + 1);
    if (!buf) {
        fclose(f);
        return qr_set_error(QR_E_OOM_HOST, "tune cache %s: %lld bytes", path, (long long)sb.st_size);
    }
    const size_t got = fread(buf, 1, (size_t)sb.st_size, f);
    fclose(f);
    qr_status st = qr_tc_parse(buf, got, device, out, max, n, n_bad);
    free(buf);
    return st;
}

bool qr_tc_format(const struct qr_tc_rec *r, char *buf, size_t n)
{
    if (!r || !buf || r->n_key < 1 || r->n_key > QR_TC_KEY_MAX || r->n_val < 1 || r->n_val > QR_TC_VAL_MAX)
        return false;
    size_t o = 0;
    int w = snprintf(buf, n, "k");
    for (int i = 0; w >= 0 && (o += (size_t)w) < n && i < r->n_key; i++)
        w = snprintf(buf + o, n - o, " %lld", (long long)r->key[i]);
    if (w < 0 || o >= n)
        return false;
    w = snprintf(buf + o, n - o, " v");
    for (int i = 0; w >= 0 && (o += (size_t)w) < n && i < r->n_val; i++)
        w = snprintf(buf + o, n - o, " %llx", (unsigned long long)r->val[i]);
    if (w < 0 || o + 1 >= n)
        return false;
    buf[o++] = '\n';
    buf[o] = '\0';
    return true;
}

/* mkdir -p of path's directory */
static qr_status make_parents(const char *path)
{
    char d[4096];
    if (snprintf(d, sizeof d, "%s", path) >= (int)sizeof d)
        return qr_set_error(QR_E_INVALID_ARG, "tune cache: path too long");
    char *slash = strrchr(d, '/');
    if (!slash || slash == d)
        return QR_OK;
    *slash = '\0';
    for (char *p = d + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(d, 0755) != 0 && errno != EEXIST)
            return qr_set_error(QR_E_IO, "tune cache: mkdir %s: %s", d, strerror(errno));
        *p = '/';
    }
    if (mkdir(d, 0755) != 0 && errno != EEXIST)
        return qr_set_error(QR_E_IO, "tune cache: mkdir %s: %s", d, strerror(errno));
    return QR_OK;
}

static bool write_all(int fd, const char *s, size_t n)
{
    while (n) {
        const ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        s += w;
        n -= (size_t)w;
    }
    return true;
}

qr_status qr_tc_append(const char *path, const char *device, const struct qr_tc_rec *r)
{
    char line[1024], head[QR_TC_DEVICE_MAX + 32];
    if (!path || !*path || !device_ok(device) || !qr_tc_format(r, line, sizeof line))
        return qr_set_error(QR_E_INVALID_ARG, "tune cache: bad arguments");
    qr_status st = make_parents(path);
    if (st != QR_OK)
        return st;
    const int hn = snprintf(head, sizeof head, TC_MAGIC "%s\n", device);
    /* a new file gets the header and the first line in one write */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
        char both[sizeof head + sizeof line];
        memcpy(both, head, (size_t)hn);
        memcpy(both + hn, line, strlen(line) + 1);
        const bool ok = write_all(fd, both, strlen(both));
        close(fd);
        return ok ? QR_OK : qr_set_error(QR_E_IO, "tune cache %s: write failed", path);
    }
    if (errno != EEXIST)
        return qr_set_error(QR_E_IO, "tune cache %s: %s", path, strerror(errno));
    fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
    if (fd < 0)
        return qr_set_error(QR_E_IO, "tune cache %s: %s", path, strerror(errno));
    /* only after this device's header (an empty file is another process's, just created: left to it) */
    char got[sizeof head];
    const ssize_t g = pread(fd, got, (size_t)hn, 0);
    if (g == 0) {
        close(fd);
        return QR_OK;
    }
    if (g != hn || memcmp(got, head, (size_t)hn)) {
        close(fd);
        return qr_set_error(QR_E_FORMAT, "tune cache %s: another device's or a damaged file (remove it)", path);
    }
    const bool ok = write_all(fd, line, strlen(line));
    close(fd);
    return ok ? QR_OK : qr_set_error(QR_E_IO, "tune cache %s: write failed", path);
}
