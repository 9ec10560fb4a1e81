/* testutil.h - a minimal test harness: CHECK macros, counters, data paths.
 * Each test program ends with `return qt_summary("name");`, which prints the
 * plain closing line "N passed, N failed" and returns the exit code. */
#ifndef QRUN_TESTUTIL_H
#define QRUN_TESTUTIL_H

#include <stdio.h>
#include <stddef.h>

extern int qt_passed, qt_failed;

#define CHECK(cond) do { if (cond) qt_passed++; else { qt_failed++; \
    fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); } } while (0)
#define CHECKF(cond, ...) do { if (cond) qt_passed++; else { qt_failed++; \
    fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); fprintf(stderr, __VA_ARGS__); \
    fputc('\n', stderr); } } while (0)

int qt_summary(const char *name);
/* path under the source tree ($QR_SOURCE_DIR or "."); returns a static buffer */
const char *qt_src_path(const char *rel);
/* path under the build tree ($QR_BUILD_DIR or "build") */
const char *qt_build_path(const char *rel);
/* reads a whole file; NUL-terminated; NULL on error */
char *qt_read_file(const char *path, size_t *len);
/* removes a test's scratch directory and everything in it (a warning on stderr where that fails) */
void qt_rm_rf(const char *dir);

/* A device without cooperative matrices (lavapipe in CI) computes every op in f32, with 16-bit storage only: its
 * results differ from the CPU reference by summation order and rounding ties (lavapipe: NMSE <= ~5e-9), so the
 * parity tests cap their NMSE limits, sized for bf16 / fp16 tensor-core inputs (up to 1e-4), at QT_F32_MATH_NMSE for
 * it (a systematic error of 0.02 % fails) and test_e2e holds it to the CPU tolerance */
#define QT_F32_MATH_NMSE 3e-8
struct qr_device;
/* whether d lacks cooperative matrices (f32 math); prints a line naming the backend when it does */
int qt_f32_math(struct qr_device *d, const char *backend);

#endif
