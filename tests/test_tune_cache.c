/* test_tune_cache.c - the persistent tuning cache (core/tune_cache.c) the CUDA GEMM tuner keeps its choices in:
 * paths, a round trip through the file, the first record of a key winning, malformed lines skipped, another
 * device's file left alone, a line still being written ignored, bounds. */
#include "qrun/qr_tune_cache.h"
#include "testutil.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_tmp[PATH_MAX];
static const char *DEV = "NVIDIA H100 80GB HBM3|sm90|132 SMs|cublasLt 130000|qrun gemm tune 2";

static struct qr_tc_rec rec(int64_t a, int64_t b, uint64_t v0, uint64_t v1)
{
    struct qr_tc_rec r = {.n_key = 3, .n_val = 2};
    r.key[0] = a;
    r.key[1] = b;
    r.key[2] = -7;
    r.val[0] = v0;
    r.val[1] = v1;
    return r;
}

static void test_paths(void)
{
    char p[PATH_MAX];
    CHECK(qr_tc_path(g_tmp, "cuda-gemm", DEV, p, sizeof p) == QR_OK);
    CHECKF(!strncmp(p, g_tmp, strlen(g_tmp)) && strstr(p, "/cuda-gemm-NVIDIA_H100_80GB_HBM3_sm90_132_SMs") &&
               strstr(p, ".txt"),
           "%s", p);
    /* the hash tells apart device strings whose readable parts are the same */
    char q[PATH_MAX];
    CHECK(qr_tc_path(g_tmp, "cuda-gemm", "NVIDIA H100 80GB HBM3|sm90|132 SMs|cublasLt 130000|qrun gemm tune 3", q,
                     sizeof q) == QR_OK);
    CHECK(strcmp(p, q) != 0);
    /* the environment's directories, in order */
    setenv("QRUN_CACHE_DIR", "/x/qc", 1);
    CHECK(qr_tc_path(NULL, "k", "d", p, sizeof p) == QR_OK && !strncmp(p, "/x/qc/k-d-", 10));
    unsetenv("QRUN_CACHE_DIR");
    setenv("XDG_CACHE_HOME", "/x/xdg", 1);
    CHECK(qr_tc_path(NULL, "k", "d", p, sizeof p) == QR_OK && !strncmp(p, "/x/xdg/qrun/k-d-", 16));
    unsetenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    char *saved = home ? strdup(home) : NULL;
    setenv("HOME", "/x/home", 1);
    CHECK(qr_tc_path(NULL, "k", "d", p, sizeof p) == QR_OK && !strncmp(p, "/x/home/.cache/qrun/k-d-", 24));
    unsetenv("HOME");
    CHECK(qr_tc_path(NULL, "k", "d", p, sizeof p) == QR_E_NOT_FOUND);
    if (saved)
        setenv("HOME", saved, 1);
    free(saved);
    /* bad arguments */
    CHECK(qr_tc_path(g_tmp, "", DEV, p, sizeof p) == QR_E_INVALID_ARG);
    CHECK(qr_tc_path(g_tmp, "a/b", DEV, p, sizeof p) == QR_E_INVALID_ARG);
    CHECK(qr_tc_path(g_tmp, "k", "two\nlines", p, sizeof p) == QR_E_INVALID_ARG);
    CHECK(qr_tc_path(g_tmp, "k", "", p, sizeof p) == QR_E_INVALID_ARG);
    char longdev[QR_TC_DEVICE_MAX + 2];
    memset(longdev, 'a', sizeof longdev - 1);
    longdev[sizeof longdev - 1] = '\0';
    CHECK(qr_tc_path(g_tmp, "k", longdev, p, sizeof p) == QR_E_INVALID_ARG);
    CHECK(qr_tc_path(g_tmp, "k", DEV, p, 20) == QR_E_INVALID_ARG);
}

static void test_format_parse(void)
{
    char line[1024];
    struct qr_tc_rec r = rec(6144, 2560, 0xffffffffffffffffull, 0);
    CHECK(qr_tc_format(&r, line, sizeof line));
    CHECKF(!strcmp(line, "k 6144 2560 -7 v ffffffffffffffff 0\n"), "%s", line);
    CHECK(!qr_tc_format(&r, line, 10));
    struct qr_tc_rec bad = r;
    bad.n_key = 0;
    CHECK(!qr_tc_format(&bad, line, sizeof line));
    bad = r;
    bad.n_val = QR_TC_VAL_MAX + 1;
    CHECK(!qr_tc_format(&bad, line, sizeof line));

    /* a file's text: the header, good lines, then every kind of bad line */
    char text[4096];
    snprintf(text, sizeof text,
             "qrun-tune-cache 1 %s\n"
             "k 1 2 v a b\n"
             "\n"
             "k 1 2 v c d\n"          /* a repeat: the first wins */
             "k 3 v\n"                /* no value */
             "k v 1\n"                /* no key */
             "x 1 v 1\n"              /* not a record */
             "k 1x v 1\n"             /* not an integer */
             "k 99999999999999999999 v 1\n"   /* out of range */
             "k 4 v 12345678901234567\n"      /* 17 hex digits */
             "k 4 v 0xab\n"           /* a prefix */
             "k 4 v -1\n"             /* a sign */
             "k 4 v AB\n"             /* upper case (the writer uses lower) */
             "k 1 2 3 4 5 6 7 8 9 10 11 12 13 v 1\n"   /* too many keys */
             "k -5  6 v   ff 1\n"     /* extra spaces are fine */
             "k 9 v 1",               /* no newline: still being written */
             DEV);
    struct qr_tc_rec out[8];
    int n = -1, n_bad = -1;
    CHECK(qr_tc_parse(text, strlen(text), DEV, out, 8, &n, &n_bad) == QR_OK);
    CHECKF(n == 2 && n_bad == 10, "n %d bad %d", n, n_bad);
    CHECK(n >= 1 && out[0].n_key == 2 && out[0].key[0] == 1 && out[0].key[1] == 2 && out[0].n_val == 2 &&
          out[0].val[0] == 10 && out[0].val[1] == 11);
    CHECK(n >= 2 && out[1].key[0] == -5 && out[1].key[1] == 6 && out[1].val[0] == 255 && out[1].val[1] == 1);
    const int64_t k12[2] = {1, 2}, k56[2] = {-5, 6}, k9[1] = {9};
    CHECK(qr_tc_find(out, n, k12, 2) == 0 && qr_tc_find(out, n, k56, 2) == 1 && qr_tc_find(out, n, k9, 1) < 0);
    CHECK(qr_tc_find(out, n, k12, 1) < 0);
    /* max bounds the records kept */
    CHECK(qr_tc_parse(text, strlen(text), DEV, out, 1, &n, &n_bad) == QR_OK && n == 1);
    CHECK(qr_tc_parse(text, strlen(text), DEV, NULL, 0, &n, &n_bad) == QR_OK && n == 0);
    /* another device, a damaged header, nothing at all */
    CHECK(qr_tc_parse(text, strlen(text), "other", out, 8, &n, &n_bad) == QR_E_FORMAT && n == 0);
    CHECK(qr_tc_parse("qrun-tune-cache 2 x\nk 1 v 1\n", 26, "x", out, 8, &n, &n_bad) == QR_E_FORMAT);
    CHECK(qr_tc_parse("qrun-tune-cache 1 x", 19, "x", out, 8, &n, &n_bad) == QR_E_FORMAT);
    CHECK(qr_tc_parse("", 0, "x", out, 8, &n, &n_bad) == QR_E_FORMAT);
    CHECK(qr_tc_parse(NULL, 0, "x", out, 8, &n, &n_bad) == QR_E_FORMAT);
    CHECK(qr_tc_parse(text, strlen(text), DEV, NULL, 8, &n, &n_bad) == QR_E_INVALID_ARG);
}

static void test_file(void)
{
    char path[PATH_MAX];
    char dir[PATH_MAX + 8];
    snprintf(dir, sizeof dir, "%s/a/b", g_tmp);   /* directories made as needed */
    CHECK(qr_tc_path(dir, "cuda-gemm", DEV, path, sizeof path) == QR_OK);
    struct qr_tc_rec out[8];
    int n = -1, n_bad = -1;
    CHECK(qr_tc_load(path, DEV, out, 8, &n, &n_bad) == QR_OK && n == 0 && n_bad == 0);   /* none yet */
    struct qr_tc_rec r1 = rec(10, 20, 1, 0x123456789abcdefull), r2 = rec(11, 20, 0, 5), r1b = rec(10, 20, 9, 9);
    CHECK(qr_tc_append(path, DEV, &r1) == QR_OK);
    CHECK(qr_tc_append(path, DEV, &r2) == QR_OK);
    CHECK(qr_tc_append(path, DEV, &r1b) == QR_OK);   /* a later process's choice for the same key */
    CHECK(qr_tc_load(path, DEV, out, 8, &n, &n_bad) == QR_OK);
    CHECKF(n == 2 && n_bad == 0, "n %d bad %d", n, n_bad);
    CHECK(n == 2 && !memcmp(&out[0], &r1, sizeof r1) && !memcmp(&out[1], &r2, sizeof r2));
    /* another device's records are not appended to this file, and this one's are not read from it */
    CHECK(qr_tc_append(path, "other device", &r1) == QR_E_FORMAT);
    CHECK(qr_tc_load(path, "other device", out, 8, &n, &n_bad) == QR_E_FORMAT && n == 0);
    /* an empty file (another process has just made it): nothing appended, no error */
    char empty[PATH_MAX + 16];
    snprintf(empty, sizeof empty, "%s/empty.txt", g_tmp);
    FILE *f = fopen(empty, "w");
    CHECK(f != NULL);
    if (f)
        fclose(f);
    CHECK(qr_tc_append(empty, DEV, &r1) == QR_OK);
    struct stat sb;
    CHECK(stat(empty, &sb) == 0 && sb.st_size == 0);
    /* a file too long to be a cache is not read */
    char big[PATH_MAX + 16];
    snprintf(big, sizeof big, "%s/big.txt", g_tmp);
    f = fopen(big, "w");
    if (f) {
        CHECK(fseek(f, QR_TC_FILE_MAX, SEEK_SET) == 0 && fputc('\n', f) != EOF);
        fclose(f);
    }
    CHECK(qr_tc_load(big, DEV, out, 8, &n, &n_bad) == QR_E_IO && n == 0);
    /* a path that cannot be made */
    char blocked[PATH_MAX + 32];
    snprintf(blocked, sizeof blocked, "%s/big.txt/sub/x.txt", g_tmp);
    CHECK(qr_tc_append(blocked, DEV, &r1) == QR_E_IO);
    CHECK(qr_tc_append(path, DEV, NULL) == QR_E_INVALID_ARG);
    CHECK(qr_tc_load(NULL, DEV, out, 8, &n, &n_bad) == QR_E_INVALID_ARG);
}

int main(void)
{
    snprintf(g_tmp, sizeof g_tmp, "/tmp/qrun-test-tune-cache-XXXXXX");
    if (!mkdtemp(g_tmp)) {
        perror("mkdtemp");
        return 1;
    }
    test_paths();
    test_format_parse();
    test_file();
    qt_rm_rf(g_tmp);
    return qt_summary("test_tune_cache");
}
