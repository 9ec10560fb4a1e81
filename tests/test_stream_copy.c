/* test_stream_copy.c - qr_stream_copy on every loaded backend: aligned, unaligned, odd-sized, same-buffer and (where
 * one binding cannot cover it: lavapipe's 128 MiB) multi-chunk copies land byte for byte, and nothing outside the
 * destination range changes; qr_stream_memset0 over pages and ragged ends (the CPU backend's madvise path) zeroes
 * exactly its range.  Vulkan copies 16-byte aligned ranges with a shader (copy.comp), the rest with
 * vkCmdCopyBuffer; QR_VK_COPY_CMD=1 forces the latter. */
#include "qrun/qr_registry.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fill(unsigned char *p, size_t n, uint32_t seed) {
    uint32_t r = seed;
    for (size_t i = 0; i < n; i++) {
        r = r * 1664525u + 1013904223u;
        p[i] = (unsigned char)(r >> 24);
    }
}

/* the first byte of b (read back whole) that differs from the host model hb, or size where none does */
static size_t first_wrong(struct qr_stream *s, struct qr_buf *b, const unsigned char *hb, size_t size) {
    unsigned char *got = malloc(size);
    CHECK(got != NULL);
    if (!got) return 0;
    CHECK(qr_stream_read(s, b, 0, got, size) == QR_OK);
    CHECK(qr_stream_sync(s) == QR_OK);
    size_t bad = size;
    for (size_t i = 0; i < size && bad == size; i++)
        if (got[i] != hb[i]) bad = i;
    free(got);
    return bad;
}

/* copy n bytes from (src buffer a or b, soff) to (b, doff); check all of b against the host model */
static void one_copy(struct qr_stream *s, struct qr_buf *a, struct qr_buf *b, unsigned char *ha, unsigned char *hb,
                     size_t size, bool same, size_t doff, size_t soff, size_t n, const char *be) {
    CHECKF(qr_stream_copy(s, b, doff, same ? b : a, soff, n) == QR_OK, "%s: copy %zu bytes %zu -> %zu: %s", be, n,
           soff, doff, qr_last_error());
    memmove(hb + doff, (same ? hb : ha) + soff, n);
    const size_t bad = first_wrong(s, b, hb, size);
    CHECKF(bad == size, "%s: copy %zu bytes %zu -> %zu%s: first wrong byte at %zu", be, n, soff, doff,
           same ? " (same buffer)" : "", bad);
}

/* zero n bytes of b from off (the CPU backend hands whole pages of a large range back to the kernel); check all of b */
static void one_zero(struct qr_stream *s, struct qr_buf *b, unsigned char *hb, size_t size, size_t off, size_t n,
                     const char *be) {
    CHECKF(qr_stream_memset0(s, b, off, n) == QR_OK, "%s: memset0 %zu bytes at %zu: %s", be, n, off, qr_last_error());
    memset(hb + off, 0, n);
    const size_t bad = first_wrong(s, b, hb, size);
    CHECKF(bad == size, "%s: memset0 %zu bytes at %zu: first wrong byte at %zu", be, n, off, bad);
}

static void test_backend(struct qr_config_ini *ini, const char *be) {
    struct qr_device *d = NULL;
    struct qr_stream *s = NULL;
    if (qr_backend_open(ini, be, NULL, &d) != QR_OK || qr_stream_create(d, &s) != QR_OK) {
        printf("backend %s FAIL to open: %s\n", be, qr_last_error());
        CHECK(false);
        if (d) qr_device_close(d);
        return;
    }
    struct qr_device_props p;
    CHECK(qr_dev_props(d, &p) == QR_OK);
    /* 160 MiB: more than one binding on lavapipe (128 MiB), so the shader copy goes in chunks */
    size_t size = (size_t)160 << 20;
    if (p.max_alloc && size > p.max_alloc) size = p.max_alloc;
    struct qr_buf *a = NULL, *b = NULL;
    unsigned char *ha = malloc(size), *hb = malloc(size);
    if (!ha || !hb || qr_buf_alloc(d, size, QR_BUF_SCRATCH, &a) != QR_OK ||
        qr_buf_alloc(d, size, QR_BUF_SCRATCH, &b) != QR_OK) {
        printf("backend %s: cannot allocate 2 x %zu bytes: %s\n", be, size, qr_last_error());
        CHECK(false);
        goto out;
    }
    fill(ha, size, 1);
    fill(hb, size, 2);
    CHECK(qr_stream_write(s, a, 0, ha, size) == QR_OK);
    CHECK(qr_stream_write(s, b, 0, hb, size) == QR_OK);
    one_copy(s, a, b, ha, hb, size, false, 4096, 0, (size_t)1 << 20, be);          /* aligned */
    one_copy(s, a, b, ha, hb, size, false, 16, 48, 4080, be);                      /* aligned, small */
    one_copy(s, a, b, ha, hb, size, false, 3, 17, 1001, be);                       /* unaligned */
    one_copy(s, a, b, ha, hb, size, false, 64, 128, 1000, be);                     /* aligned offsets, odd size */
    one_copy(s, a, b, ha, hb, size, false, 0, 0, 1, be);                           /* one byte */
    one_copy(s, a, b, ha, hb, size, true, 1 << 20, 3 << 20, (size_t)1 << 20, be); /* same buffer, apart */
    one_zero(s, b, hb, size, 100, (3u << 20) + 77, be);                           /* pages and ragged ends */
    one_zero(s, b, hb, size, 8192, 4096, be);                                      /* one whole page */
    one_zero(s, b, hb, size, (5u << 20) + 1, 300000, be);                          /* unaligned, > 256 KiB */
    one_copy(s, a, b, ha, hb, size, false, 50, 200, (4u << 20), be);               /* into the zeroed pages */
    one_copy(s, a, b, ha, hb, size, false, 32, 16, size - 64, be);                 /* nearly all */
    one_copy(s, a, b, ha, hb, size, false, 0, 0, size, be);                         /* all (lavapipe: 2 chunks) */
    CHECK(qr_stream_copy(s, b, size - 8, a, 0, 16) == QR_E_INVALID_ARG);            /* past the end */
    CHECK(qr_stream_copy(s, b, 0, a, size - 8, 16) == QR_E_INVALID_ARG);
    CHECK(qr_stream_copy(s, b, 0, a, 0, 0) == QR_OK);
    printf("backend %-7s copies checked (%zu-byte buffers)\n", be, size);
out:
    free(ha);
    free(hb);
    if (a) qr_buf_free(a);
    if (b) qr_buf_free(b);
    qr_stream_destroy(s);
    qr_device_close(d);
}

int main(void) {
    qr_log_set_level(QR_LOG_WARN);
    struct qr_config_ini *ini = NULL;
    if (qr_ini_load(NULL, &ini) != QR_OK) {
        fprintf(stderr, "cannot load the backend config: %s\n", qr_last_error());
        return 1;
    }
    struct qr_backend_info infos[16];
    int n_info = 0;
    if (qr_backends_list(ini, infos, 16, &n_info) != QR_OK) n_info = 0;
    for (int i = 0; i < n_info; i++) {
        if (!infos[i].loaded || infos[i].n_devices == 0) {
            printf("backend %-7s not tested: %s\n", infos[i].name, infos[i].why);
            continue;
        }
        test_backend(ini, infos[i].name);
    }
    qr_ini_free(ini);
    return qt_summary("test_stream_copy");
}
