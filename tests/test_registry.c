/* test_registry.c - backends.ini lookup, plugin loading and its failure
 * messages, device options, and the checked wrappers (bounds, dead device,
 * graph fallback, argmax fallback).
 * Needs the CPU plugin and the test plugins of tests/plugins (built next to
 * this executable as libqrtest-plugin-<variant>.so). */
#include "qrun/qr_registry.h"
#include "testutil.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_tmp[PATH_MAX];
static char g_bin[PATH_MAX];   /* directory of this executable (plugins live here) */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
}

static const char *tmp_path(const char *name)
{
    static char buf[4][PATH_MAX + 64];
    static int k;
    char *p = buf[k++ & 3];
    snprintf(p, PATH_MAX + 64, "%s/%s", g_tmp, name);
    return p;
}

static bool plugin_built(const char *variant)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/libqrtest-plugin-%s.so", g_bin, variant);
    return access(p, R_OK) == 0;
}

/* ---- backends.ini lookup order ---- */
static void test_ini_lookup(void)
{
    struct qr_config_ini *ini = NULL;
    write_file(tmp_path("a.ini"), "[qrun]\ndefault_backend = cpu ; comment\nmodel_dir = models/x\n"
                                  "[backend.cpu]\nthreads = 3\n");
    CHECK(qr_ini_load(tmp_path("a.ini"), &ini) == QR_OK);
    if (ini) {
        char want[PATH_MAX + 64];
        CHECK(qr_ini_path(ini) && strstr(qr_ini_path(ini), "a.ini"));
        CHECK(qr_ini_get(ini, "qrun", "default_backend") && !strcmp(qr_ini_get(ini, "qrun", "default_backend"), "cpu"));
        CHECK(qr_ini_get(ini, "backend.cpu", "threads") && !strcmp(qr_ini_get(ini, "backend.cpu", "threads"), "3"));
        CHECK(qr_ini_get(ini, "backend.cpu", "nope") == NULL);
        char real[PATH_MAX];
        CHECK(realpath(g_tmp, real) != NULL);
        snprintf(want, sizeof want, "%s/models/x", real);
        CHECKF(qr_ini_default_model_dir(ini) && !strcmp(qr_ini_default_model_dir(ini), want), "model_dir %s",
               qr_ini_default_model_dir(ini) ? qr_ini_default_model_dir(ini) : "(null)");
        qr_ini_free(ini);
    }

    /* explicit path that does not exist: an error naming it */
    ini = NULL;
    CHECK(qr_ini_load(tmp_path("missing.ini"), &ini) == QR_E_NOT_FOUND && ini == NULL);
    CHECK(strstr(qr_last_error(), "missing.ini") != NULL);

    /* malformed file */
    write_file(tmp_path("bad.ini"), "[backend.cpu\nthis line is not ini\n");
    CHECK(qr_ini_load(tmp_path("bad.ini"), &ini) == QR_E_FORMAT && ini == NULL);
    CHECKF(strstr(qr_last_error(), "bad.ini") != NULL, "%s", qr_last_error());

    /* $QRUN_CONFIG when no explicit path */
    setenv("QRUN_CONFIG", tmp_path("a.ini"), 1);
    CHECK(qr_ini_load(NULL, &ini) == QR_OK);
    if (ini) {
        CHECK(qr_ini_path(ini) && strstr(qr_ini_path(ini), "a.ini"));
        qr_ini_free(ini);
    }
    /* explicit beats the environment */
    write_file(tmp_path("b.ini"), "[qrun]\ndefault_backend = auto\n");
    CHECK(qr_ini_load(tmp_path("b.ini"), &ini) == QR_OK);
    if (ini) {
        CHECK(qr_ini_path(ini) && strstr(qr_ini_path(ini), "b.ini"));
        qr_ini_free(ini);
    }
    setenv("QRUN_CONFIG", tmp_path("missing.ini"), 1);
    CHECK(qr_ini_load(NULL, &ini) == QR_E_NOT_FOUND);
    unsetenv("QRUN_CONFIG");

    /* ./backends.ini */
    char cwd[PATH_MAX];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    mkdir(tmp_path("cwd1"), 0755);
    mkdir(tmp_path("cwd2"), 0755);
    write_file(tmp_path("cwd1/backends.ini"), "[qrun]\nmodel_dir = /abs/model\n");
    CHECK(chdir(tmp_path("cwd1")) == 0);
    CHECK(qr_ini_load(NULL, &ini) == QR_OK);
    if (ini) {
        CHECK(qr_ini_path(ini) && strstr(qr_ini_path(ini), "cwd1/backends.ini"));
        CHECK(qr_ini_default_model_dir(ini) && !strcmp(qr_ini_default_model_dir(ini), "/abs/model"));
        qr_ini_free(ini);
    }
    /* nothing found: an empty config with the defaults (unless installed) */
    CHECK(chdir(tmp_path("cwd2")) == 0);
    CHECK(qr_ini_load(NULL, &ini) == QR_OK);
    if (ini) {
        if (qr_ini_path(ini))
            printf("note: an installed config was found: %s\n", qr_ini_path(ini));
        else
            CHECK(qr_ini_default_model_dir(ini) == NULL);
        qr_ini_free(ini);
    }
    CHECK(chdir(cwd) == 0);
}

/* ---- plugins: found, and every broken kind gives a message ---- */
static const struct qr_backend_info *find_info(const struct qr_backend_info *v, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(v[i].name, name))
            return &v[i];
    return NULL;
}

static void expect_unavailable(const struct qr_config_ini *ini, const struct qr_backend_info *v, int n,
                               const char *name, const char *why_part)
{
    const struct qr_backend_info *b = find_info(v, n, name);
    CHECKF(b != NULL, "backend %s listed", name);
    if (!b)
        return;
    CHECKF(!(b->loaded && b->n_devices > 0), "%s should be unavailable", name);
    CHECKF(strstr(b->why, why_part) != NULL, "%s: why = '%s', expected '%s'", name, b->why, why_part);
    struct qr_device *d = NULL;
    qr_status st = qr_backend_open(ini, name, NULL, &d);
    CHECKF(st != QR_OK && d == NULL, "opening %s must fail", name);
    CHECKF(strstr(qr_last_error(), name) != NULL, "open error names the backend: %s", qr_last_error());
    printf("  %-9s -> %s\n", name, qr_last_error());
}

static void test_plugins(void)
{
    static const char *const variants[] = {"nosym", "version", "null", "score0", "nodev", "brokenvt", "fake"};
    bool have_all = true;
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++)
        have_all &= plugin_built(variants[i]);
    CHECKF(have_all, "test plugins not built in %s: add `add_subdirectory(plugins)` to tests/CMakeLists.txt", g_bin);

    /* a file that is not a shared object, and one copy of the CPU plugin on
     * $QR_BACKEND_PATH under another name */
    mkdir(tmp_path("sub"), 0755);
    write_file(tmp_path("sub/libqrun-garbage.so"), "this is not an ELF file\n");
    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "cp '%s/libqrun-cpu.so' '%s/sub/libqrun-cpu2.so'", g_bin, g_tmp);
    CHECK(system(cmd) == 0);

    static char ini_text[8 * PATH_MAX + 4096];
    snprintf(ini_text, sizeof ini_text,
             "[qrun]\ndefault_backend = auto\n"
             "[backend.cpu]\nlib = libqrun-cpu.so\npriority = 10\nthreads = 2\n"
             "[backend.viapath]\nlib = libqrun-cpu2.so\npriority = 5\n"
             "[backend.relative]\nlib = sub/libqrun-cpu2.so\npriority = 4\n"
             "[backend.missing]\nlib = libqrun-doesnotexist.so\npriority = 200\n"
             "[backend.garbage]\nlib = sub/libqrun-garbage.so\npriority = 199\n"
             "[backend.nosym]\nlib = %s/libqrtest-plugin-nosym.so\npriority = 198\n"
             "[backend.version]\nlib = %s/libqrtest-plugin-version.so\npriority = 197\n"
             "[backend.null]\nlib = %s/libqrtest-plugin-null.so\npriority = 196\n"
             "[backend.score0]\nlib = %s/libqrtest-plugin-score0.so\npriority = 195\n"
             "[backend.nodev]\nlib = %s/libqrtest-plugin-nodev.so\npriority = 194\n"
             "[backend.brokenvt]\nlib = %s/libqrtest-plugin-brokenvt.so\npriority = 193\n"
             "[backend.off]\nenabled = false\nlib = libqrun-cpu.so\npriority = 300\n"
             "[backend.fake]\nlib = %s/libqrtest-plugin-fake.so\npriority = 1\n",
             g_bin, g_bin, g_bin, g_bin, g_bin, g_bin, g_bin);
    write_file(tmp_path("plugins.ini"), ini_text);
    setenv("QR_BACKEND_PATH", tmp_path("sub"), 1);

    struct qr_config_ini *ini = NULL;
    CHECK(qr_ini_load(tmp_path("plugins.ini"), &ini) == QR_OK);
    if (!ini)
        return;
    struct qr_backend_info v[16];
    int n = 0;
    CHECK(qr_backends_list(ini, v, 16, &n) == QR_OK);
    CHECK(n == 13);
    for (int i = 1; i < n; i++)
        CHECKF(v[i - 1].priority >= v[i].priority, "sorted by priority");

    const struct qr_backend_info *cpu = find_info(v, n, "cpu");
    CHECK(cpu && cpu->loaded && cpu->n_devices == 1 && cpu->reg && !strcmp(cpu->reg->name, "cpu"));
    const struct qr_backend_info *vp = find_info(v, n, "viapath");
    CHECKF(vp && vp->loaded && strstr(vp->lib_path, "/sub/libqrun-cpu2.so"), "found via QR_BACKEND_PATH: %s",
           vp ? vp->lib_path : "?");
    const struct qr_backend_info *rel = find_info(v, n, "relative");
    CHECKF(rel && rel->loaded, "lib relative to the ini dir: %s", rel ? rel->why : "?");

    if (have_all) {
        printf("broken plugins:\n");
        expect_unavailable(ini, v, n, "missing", "not found");
        expect_unavailable(ini, v, n, "garbage", "cannot load");
        expect_unavailable(ini, v, n, "nosym", "does not export qr_backend_init");
        expect_unavailable(ini, v, n, "version", "API version");
        expect_unavailable(ini, v, n, "null", "returned NULL");
        expect_unavailable(ini, v, n, "score0", "qr_backend_score");
        expect_unavailable(ini, v, n, "nodev", "driver too old");
        expect_unavailable(ini, v, n, "off", "disabled");
        const struct qr_backend_info *bv = find_info(v, n, "brokenvt");
        CHECK(bv && bv->loaded && bv->n_devices == 1);
        struct qr_device *d = NULL;
        CHECK(qr_backend_open(ini, "brokenvt", NULL, &d) == QR_E_FORMAT && d == NULL);
        CHECKF(strstr(qr_last_error(), "broken") != NULL, "%s", qr_last_error());
        printf("  brokenvt  -> %s\n", qr_last_error());
    }
    struct qr_device *d = NULL;
    CHECK(qr_backend_open(ini, "notconfigured", NULL, &d) != QR_OK && d == NULL);

    /* auto skips every broken backend above cpu and opens cpu */
    CHECK(qr_backend_open(ini, "auto", NULL, &d) == QR_OK);
    if (d) {
        CHECK(d->reg && !strcmp(d->reg->name, "cpu"));
        struct qr_device_props p;
        CHECK(qr_dev_props(d, &p) == QR_OK);
        CHECKF(strstr(p.description, "2 threads") != NULL, "ini threads=2: %s", p.description);
        qr_device_close(d);
        d = NULL;
    }
    /* overrides beat the ini */
    struct qr_backend_opts ov = {.device_index = -1, .n_threads = 3};
    CHECK(qr_backend_open(ini, "cpu", &ov, &d) == QR_OK);
    if (d) {
        struct qr_device_props p;
        CHECK(qr_dev_props(d, &p) == QR_OK);
        CHECKF(strstr(p.description, "3 threads") != NULL, "override threads=3: %s", p.description);
        qr_device_close(d);
        d = NULL;
    }
    ov.device_index = 4;
    CHECK(qr_backend_open(ini, "cpu", &ov, &d) == QR_E_NOT_FOUND && d == NULL);
    CHECK(strstr(qr_last_error(), "device 4") != NULL);
    ov.device_index = -1;
    ov.device_name = "no-such-device-name";
    CHECK(qr_backend_open(ini, "cpu", &ov, &d) == QR_E_NOT_FOUND && d == NULL);
    qr_ini_free(ini);

    /* auto passes over a device emulated on the CPU (lavapipe) while a later backend has a device, and takes it
     * only when nothing else opens */
    snprintf(ini_text, sizeof ini_text,
             "[backend.soft]\nlib = %s/libqrtest-plugin-soft.so\npriority = 60\n"
             "[backend.cpu]\nlib = libqrun-cpu.so\npriority = 10\n",
             g_bin);
    write_file(tmp_path("soft.ini"), ini_text);
    CHECK(qr_ini_load(tmp_path("soft.ini"), &ini) == QR_OK);
    if (ini) {
        CHECK(qr_backend_open(ini, "auto", NULL, &d) == QR_OK);
        CHECKF(d && d->reg && !strcmp(d->reg->name, "cpu"), "auto took %s", d && d->reg ? d->reg->name : "?");
        qr_device_close(d);
        d = NULL;
        CHECK(qr_backend_open(ini, "soft", NULL, &d) == QR_OK && d);   /* named: taken */
        qr_device_close(d);
        d = NULL;
        qr_ini_free(ini);
    }
    snprintf(ini_text, sizeof ini_text,
             "[backend.soft]\nlib = %s/libqrtest-plugin-soft.so\npriority = 60\n"
             "[backend.cpu]\nenabled = false\nlib = libqrun-cpu.so\npriority = 10\n"
             "[backend.missing]\nlib = libqrun-doesnotexist.so\npriority = 5\n",
             g_bin);
    write_file(tmp_path("soft2.ini"), ini_text);
    CHECK(qr_ini_load(tmp_path("soft2.ini"), &ini) == QR_OK);
    if (ini) {
        CHECK(qr_backend_open(ini, "auto", NULL, &d) == QR_OK);   /* nothing else: the emulated device */
        CHECKF(d && d->reg && !strcmp(d->reg->name, "fake"), "auto took %s", d && d->reg ? d->reg->name : "?");
        qr_device_close(d);
        d = NULL;
        qr_ini_free(ini);
    }
    /* the same with the real plugins where a Vulkan device is emulated on the CPU (lavapipe in CI) */
    snprintf(ini_text, sizeof ini_text,
             "[backend.vulkan]\nlib = libqrun-vulkan.so\npriority = 50\n"
             "[backend.cpu]\nlib = libqrun-cpu.so\npriority = 10\n");
    write_file(tmp_path("vk.ini"), ini_text);
    CHECK(qr_ini_load(tmp_path("vk.ini"), &ini) == QR_OK);
    if (ini) {
        struct qr_device *vd = NULL;
        struct qr_device_props vp = {0};
        if (qr_backend_open(ini, "vulkan", NULL, &vd) == QR_OK && qr_dev_props(vd, &vp) == QR_OK) {
            const bool emu = (vp.caps & QR_CAP_SOFTWARE) != 0;
            printf("vulkan device 0: %s (%s)\n", vp.name, vp.description);
            CHECKF(emu == (strstr(vp.description, "emulated on the CPU") != NULL), "%s", vp.description);
            qr_device_close(vd);
            CHECK(qr_backend_open(ini, "auto", NULL, &d) == QR_OK);
            CHECKF(d && d->reg && !strcmp(d->reg->name, emu ? "cpu" : "vulkan"), "auto took %s (vulkan %s)",
                   d && d->reg ? d->reg->name : "?", emu ? "emulated" : "a GPU");
            qr_device_close(d);
            d = NULL;
        } else {
            qr_device_close(vd);
            printf("vulkan: no device here (%s); the lavapipe auto case skipped\n", qr_last_error());
        }
        qr_ini_free(ini);
    }

    /* default_backend in [qrun] is used for "auto" */
    write_file(tmp_path("def.ini"), "[qrun]\ndefault_backend = fakex\n[backend.cpu]\nlib = libqrun-cpu.so\n");
    CHECK(qr_ini_load(tmp_path("def.ini"), &ini) == QR_OK);
    if (ini) {
        CHECK(qr_backend_open(ini, "auto", NULL, &d) != QR_OK && d == NULL);
        CHECKF(strstr(qr_last_error(), "fakex") != NULL, "%s", qr_last_error());
        qr_ini_free(ini);
    }
    unsetenv("QR_BACKEND_PATH");
}

/* ---- wrappers ---- */
static void test_wrappers(void)
{
    struct qr_config_ini *ini = NULL;
    char text[PATH_MAX + 256];
    snprintf(text, sizeof text, "[backend.cpu]\nlib = libqrun-cpu.so\nthreads = 2\n"
                                "[backend.fake]\nlib = %s/libqrtest-plugin-fake.so\n", g_bin);
    write_file(tmp_path("w.ini"), text);
    CHECK(qr_ini_load(tmp_path("w.ini"), &ini) == QR_OK);
    if (!ini)
        return;
    struct qr_device *d = NULL, *d2 = NULL;
    struct qr_stream *s = NULL;
    struct qr_buf *b = NULL, *b2 = NULL, *y = NULL;
    CHECK(qr_backend_open(ini, "cpu", NULL, &d) == QR_OK);
    CHECK(qr_backend_open(ini, "cpu", NULL, &d2) == QR_OK);
    if (!d || !d2)
        goto done;
    CHECK(qr_stream_create(d, &s) == QR_OK);
    CHECK(qr_buf_alloc(d, 100, QR_BUF_SCRATCH, &b) == QR_OK);
    CHECK(qr_buf_alloc(d2, 100, QR_BUF_SCRATCH, &b2) == QR_OK);
    CHECK(qr_buf_alloc(d, 0, QR_BUF_SCRATCH, &y) == QR_E_INVALID_ARG && y == NULL);
    if (!s || !b || !b2)
        goto done;
    char bytes[128] = {0};
    CHECK(qr_stream_write(s, b, 90, bytes, 10) == QR_OK);
    CHECK(qr_stream_write(s, b, 90, bytes, 11) == QR_E_INVALID_ARG);
    CHECK(qr_stream_write(s, b, SIZE_MAX, bytes, 2) == QR_E_INVALID_ARG);
    CHECK(qr_stream_read(s, b, 0, bytes, 101) == QR_E_INVALID_ARG);
    CHECK(qr_stream_memset0(s, b, 50, 51) == QR_E_INVALID_ARG);
    CHECK(qr_stream_copy(s, b, 0, b, 50, 50) == QR_OK);
    CHECK(qr_stream_copy(s, b, 0, b, 51, 50) == QR_E_INVALID_ARG);
    CHECK(qr_stream_write(s, b2, 0, bytes, 4) == QR_E_INVALID_ARG);   /* other device's buffer */
    CHECK(strstr(qr_last_error(), "another device") != NULL);

    /* op validation: y holds 2x3 floats (24 B) at offset 0 of b (100 B) */
    float xs[6] = {1, 2, 3, 4, 5, 6}, ws[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1}, ys[6];
    CHECK(qr_stream_write(s, b, 24, xs, sizeof xs) == QR_OK);   /* x at 24 */
    CHECK(qr_stream_write(s, b, 48, ws, sizeof ws) == QR_OK);   /* w at 48 (36 B) */
    struct qr_node mm = {.op = QR_OP_MATMUL};
    mm.a.matmul = (struct qr_matmul_args){
        .y = {b, 0}, .x = {b, 24}, .w = {b, 48}, .wtype = QR_DTYPE_F32, .M = 2, .N = 3, .K = 3, .ldx = 3, .ldy = 3,
    };
    CHECK(qr_node_run(s, &mm) == QR_OK);
    CHECK(qr_stream_read(s, b, 0, ys, sizeof ys) == QR_OK);
    CHECK(ys[0] == 1 && ys[1] == 2 && ys[2] == 3 && ys[3] == 4 && ys[4] == 5 && ys[5] == 6);
    struct qr_node bad = mm;
    bad.a.matmul.w.off = 72;   /* 72 + 36 > 100 */
    CHECK(qr_node_run(s, &bad) == QR_E_INVALID_ARG);
    CHECKF(strstr(qr_last_error(), "w out of bounds") != NULL, "%s", qr_last_error());
    bad = mm;
    bad.a.matmul.ldy = 2;      /* stride below the row width */
    CHECK(qr_node_run(s, &bad) == QR_E_INVALID_ARG);
    bad = mm;
    bad.a.matmul.x.buf = b2;
    CHECK(qr_node_run(s, &bad) == QR_E_INVALID_ARG);
    bad = mm;
    bad.a.matmul.M = -1;
    CHECK(qr_node_run(s, &bad) == QR_E_INVALID_ARG);
    bad = mm;
    bad.a.matmul.M = 0;        /* empty: nothing to do */
    CHECK(qr_node_run(s, &bad) == QR_OK);

    /* graph: validated as a whole before anything runs; then node by node */
    struct qr_node add = {.op = QR_OP_ADD};
    add.a.add = (struct qr_add_args){.y = {b, 0}, .x = {b, 24}, .n = 6};
    struct qr_node g1[3] = {add, add, mm};
    g1[2].a.matmul.w.off = 80;
    struct qr_graph g = {g1, 3, 0};
    CHECK(qr_graph_run(s, &g) == QR_E_INVALID_ARG);
    CHECKF(strstr(qr_last_error(), "graph node 2") != NULL, "%s", qr_last_error());
    CHECK(qr_stream_read(s, b, 0, ys, sizeof ys) == QR_OK);
    CHECK(ys[0] == 1 && ys[5] == 6);     /* untouched */
    g.n_nodes = 2;
    CHECK(qr_graph_run(s, &g) == QR_OK);
    CHECK(qr_stream_read(s, b, 0, ys, sizeof ys) == QR_OK);
    CHECK(ys[0] == 3 && ys[5] == 18);    /* y + 2x */

    CHECK(qr_dev_supports(d, QR_OP_MATMUL, QR_DTYPE_BF16));
    CHECK(!qr_dev_supports(d, QR_OP_MATMUL, QR_DTYPE_I32));

    /* a backend without argmax gets the core's; a DEVICE_LOST marks it dead */
    struct qr_device *f = NULL;
    if (plugin_built("fake") && qr_backend_open(ini, "fake", NULL, &f) == QR_OK) {
        struct qr_stream *fs = NULL;
        struct qr_buf *fb = NULL;
        CHECK(qr_stream_create(f, &fs) == QR_OK);
        CHECK(qr_buf_alloc(f, 256, QR_BUF_SCRATCH, &fb) == QR_OK);
        if (fs && fb) {
            float row[8] = {0.5f, 3.0f, -1.0f, 3.0f, 2.0f, 9.0f, 9.0f, 1.0f};
            CHECK(qr_stream_write(fs, fb, 0, row, sizeof row) == QR_OK);
            struct qr_node am = {.op = QR_OP_ARGMAX};
            am.a.argmax = (struct qr_argmax_args){.out = {fb, 64}, .x = {fb, 0}, .n_rows = 2, .n = 4};
            CHECK(qr_dev_supports(f, QR_OP_ARGMAX, QR_DTYPE_F32));
            CHECK(qr_node_run(fs, &am) == QR_OK);
            int32_t ids[2] = {-1, -1};
            CHECK(qr_stream_read(fs, fb, 64, ids, sizeof ids) == QR_OK);
            CHECK(ids[0] == 1 && ids[1] == 1);
            CHECK(!qr_dev_supports(f, QR_OP_ATTN, QR_DTYPE_F32));
            struct qr_node at = {.op = QR_OP_ROPE};
            at.a.rope = (struct qr_rope_args){.x = {fb, 0}, .pos = {fb, 64}, .inv_freq = {fb, 128},
                                              .n_tokens = 1, .n_heads = 1, .head_dim = 2, .ld = 2};
            CHECK(qr_node_run(fs, &at) == QR_E_UNSUPPORTED);
            struct qr_node fm = {.op = QR_OP_MATMUL};
            fm.a.matmul = (struct qr_matmul_args){.y = {fb, 0}, .x = {fb, 0}, .w = {fb, 0}, .wtype = QR_DTYPE_F32,
                                                  .M = 1, .N = 1, .K = 1, .ldx = 1, .ldy = 1};
            CHECK(!f->dead);
            CHECK(qr_node_run(fs, &fm) == QR_E_DEVICE_LOST);
            CHECK(f->dead);
            CHECK(qr_stream_write(fs, fb, 0, row, 4) == QR_E_DEVICE_LOST);
            CHECK(qr_node_run(fs, &am) == QR_E_DEVICE_LOST);
            struct qr_buf *nb = NULL;
            CHECK(qr_buf_alloc(f, 16, QR_BUF_SCRATCH, &nb) == QR_E_DEVICE_LOST && nb == NULL);
            CHECK(!qr_dev_supports(f, QR_OP_ADD, QR_DTYPE_F32));
        }
        qr_buf_free(fb);
        qr_stream_destroy(fs);
        qr_device_close(f);
    } else {
        CHECKF(false, "fake plugin did not open: %s", qr_last_error());
    }
done:
    qr_buf_free(b);
    qr_buf_free(b2);
    qr_stream_destroy(s);
    qr_device_close(d);
    qr_device_close(d2);
    qr_ini_free(ini);
}

int main(void)
{
    snprintf(g_tmp, sizeof g_tmp, "/tmp/qrun-test-registry-XXXXXX");
    if (!mkdtemp(g_tmp)) {
        perror("mkdtemp");
        return 1;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = 0;
    snprintf(g_bin, sizeof g_bin, "%s", exe);
    qr_log_set_level(QR_LOG_ERROR);

    test_ini_lookup();
    test_plugins();
    test_wrappers();

    /* shutdown, then the CPU backend opens again */
    qr_backends_shutdown();
    struct qr_device *d = NULL;
    CHECK(qr_backend_open(NULL, "cpu", NULL, &d) == QR_OK && d != NULL);
    qr_device_close(d);
    qr_backends_shutdown();

    qt_rm_rf(g_tmp);
    return qt_summary("test_registry");
}
