#include "testutil.h"

#include "qrun/qr_registry.h"

#include <stdlib.h>
#include <string.h>

int qt_passed, qt_failed;

int qt_summary(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, qt_passed, qt_failed);
    return qt_failed ? 1 : 0;
}

static const char *join(char *buf, size_t cap, const char *env, const char *dflt, const char *rel)
{
    const char *base = getenv(env);
    snprintf(buf, cap, "%s/%s", base && *base ? base : dflt, rel);
    return buf;
}

const char *qt_src_path(const char *rel)
{
    static _Thread_local char buf[4][4096];
    static _Thread_local int k;
    k = (k + 1) & 3;
    return join(buf[k], sizeof buf[k], "QR_SOURCE_DIR", ".", rel);
}

const char *qt_build_path(const char *rel)
{
    static _Thread_local char buf[4][4096];
    static _Thread_local int k;
    k = (k + 1) & 3;
    return join(buf[k], sizeof buf[k], "QR_BUILD_DIR", "build", rel);
}

char *qt_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    if (p) {
        p[n] = 0;
        if (len)
            *len = (size_t)n;
    }
    return p;
}

int qt_f32_math(struct qr_device *d, const char *backend)
{
    struct qr_device_props p;
    int f32 = qr_dev_props(d, &p) == QR_OK && !(p.caps & QR_CAP_COOPMAT);
    if (f32)
        printf("backend %-7s f32 math (no cooperative matrices): held to f32 limits (NMSE %.0e)\n", backend,
               QT_F32_MATH_NMSE);
    return f32;
}

void qt_rm_rf(const char *dir)
{
    char cmd[4200];
    if (!dir || !*dir || strchr(dir, '\'') || snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir) >= (int)sizeof cmd ||
        system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", dir ? dir : "(null)");
}
