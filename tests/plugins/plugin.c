/* plugin.c - deliberately broken or minimal backend plugins for test_registry.
 * Built once per variant (tests/plugins/CMakeLists.txt) as
 * libqrtest-plugin-<variant>.so with -DQRT_<VARIANT>:
 *   NOSYM     exports no qr_backend_init
 *   VERSION   wrong api_version
 *   NULL      qr_backend_init returns NULL
 *   SCORE0    qr_backend_score returns 0
 *   NODEV     no device; unavailable_reason says the driver is too old
 *   BROKENVT  opens a device whose stream vtable is missing
 *   FAKE      a working host-memory device: add works, matmul reports
 *             QR_E_DEVICE_LOST, no argmax (the core supplies it)
 *   SOFT      FAKE, its device marked as emulated on the CPU (QR_CAP_SOFTWARE) */
#include "qrun/qr_backend.h"

#include <stdlib.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

static qr_status fk_get_props(struct qr_device *d, struct qr_device_props *p)
{
    strcpy(p->name, "fake device");
    p->mem_total = p->mem_free = p->max_alloc = 1u << 30;
    p->alignment = 16;
    p->caps = QR_CAP_HOST_MEMORY;
#ifdef QRT_SOFT
    p->caps |= QR_CAP_SOFTWARE;
#endif
    return QR_OK;
}

static qr_status fk_buf_alloc(struct qr_device *d, size_t size, unsigned usage, struct qr_buf **out)
{
    struct qr_buf *b = calloc(1, sizeof *b);
    void *p = calloc(1, size);
    if (!b || !p) {
        free(b);
        free(p);
        return qr_set_error(QR_E_OOM_HOST, "fake: oom");
    }
    b->dev = d;
    b->size = size;
    b->ptr = p;
    *out = b;
    return QR_OK;
}

static void fk_buf_free(struct qr_buf *b)
{
    free(b->ptr);
    free(b);
}

static qr_status fk_stream_create(struct qr_device *d, struct qr_stream **out)
{
    struct qr_stream *s = calloc(1, sizeof *s);
    if (!s)
        return QR_E_OOM_HOST;
    s->dev = d;
    *out = s;
    return QR_OK;
}

static void fk_stream_destroy(struct qr_stream *s) { free(s); }

static void fk_close(struct qr_device *d) { free(d); }

static qr_status fk_write(struct qr_stream *s, struct qr_buf *dst, size_t off, const void *src, size_t n)
{
    memcpy((char *)dst->ptr + off, src, n);
    return QR_OK;
}

static qr_status fk_read(struct qr_stream *s, struct qr_buf *src, size_t off, void *dst, size_t n)
{
    memcpy(dst, (char *)src->ptr + off, n);
    return QR_OK;
}

static qr_status fk_copy(struct qr_stream *s, struct qr_buf *dst, size_t doff, struct qr_buf *src, size_t soff,
                         size_t n)
{
    memmove((char *)dst->ptr + doff, (char *)src->ptr + soff, n);
    return QR_OK;
}

static qr_status fk_memset0(struct qr_stream *s, struct qr_buf *dst, size_t off, size_t n)
{
    memset((char *)dst->ptr + off, 0, n);
    return QR_OK;
}

static qr_status fk_sync(struct qr_stream *s) { return QR_OK; }

static qr_status fk_add(struct qr_stream *s, const struct qr_add_args *a)
{
    float *y = (float *)((char *)a->y.buf->ptr + a->y.off);
    const float *x = (const float *)((char *)a->x.buf->ptr + a->x.off);
    for (int64_t i = 0; i < a->n; i++)
        y[i] += x[i];
    return QR_OK;
}

static qr_status fk_matmul(struct qr_stream *s, const struct qr_matmul_args *a)
{
    return qr_set_error(QR_E_DEVICE_LOST, "fake: simulated device loss");
}

static const struct qr_device_vt k_vt = {
    .close = fk_close, .get_props = fk_get_props, .buf_alloc = fk_buf_alloc, .buf_free = fk_buf_free,
    .stream_create = fk_stream_create, .stream_destroy = fk_stream_destroy,
};
__attribute__((unused)) static const struct qr_stream_vt k_svt = {
    .write = fk_write, .read = fk_read, .copy = fk_copy, .memset0 = fk_memset0, .synchronize = fk_sync,
};
static const struct qr_ops k_ops = {.add = fk_add, .matmul = fk_matmul};

static int fk_count(void)
{
#ifdef QRT_NODEV
    return 0;
#else
    return 1;
#endif
}

static qr_status fk_describe(int idx, struct qr_device_props *p) { return fk_get_props(NULL, p); }

static qr_status fk_open(int idx, const struct qr_backend_opts *o, struct qr_device **out)
{
    struct qr_device *d = calloc(1, sizeof *d);
    if (!d)
        return QR_E_OOM_HOST;
    d->vt = &k_vt;
#ifndef QRT_BROKENVT
    d->svt = &k_svt;
#endif
    d->ops = &k_ops;
    *out = d;
    return QR_OK;
}

static const char *fk_why(void) { return "driver too old (test plugin)"; }

__attribute__((unused)) static struct qr_backend_reg k_reg = {
#ifdef QRT_VERSION
    .api_version = QR_BACKEND_API_VERSION + 998,
#else
    .api_version = QR_BACKEND_API_VERSION,
#endif
    .name = "fake",
    .device_count = fk_count,
    .device_describe = fk_describe,
    .device_open = fk_open,
    .unavailable_reason = fk_why,
};

#ifdef QRT_NOSYM
EXPORT struct qr_backend_reg *qr_backend_init_misspelled(void) { return &k_reg; }
#else
EXPORT struct qr_backend_reg *qr_backend_init(void)
{
#ifdef QRT_NULL
    return NULL;
#else
    return &k_reg;
#endif
}
#endif

#ifdef QRT_SCORE0
EXPORT int qr_backend_score(void) { return 0; }
#endif
