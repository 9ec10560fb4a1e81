/* test_dtype.c - scalar dtype conversions: FP8 E4M3 (the KV cache's), checked against its definition for all 256
 * encodings, round-to-nearest-even at every midpoint, saturation and NaN; names and sizes of every dtype. */
#include "qrun/qr_types.h"
#include "util/testutil.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* the value of an E4M3 encoding from the format's definition (sign, exponent bias 7, 3 mantissa bits, exponent 0
 * subnormal, S.1111.111 NaN), computed in double */
static double e4m3_def(unsigned b)
{
    unsigned e = (b >> 3) & 15, m = b & 7;
    if (e == 15 && m == 7)
        return NAN;
    double v = e == 0 ? m / 8.0 * pow(2, -6) : (1 + m / 8.0) * pow(2, (int)e - 7);
    return (b & 0x80) ? -v : v;
}

static void test_decode_all(void)
{
    int bad = 0;
    for (unsigned b = 0; b < 256; b++) {
        double d = e4m3_def(b);
        float f = qr_f8e4m3_to_f32((uint8_t)b);
        if (isnan(d) ? !isnan(f) : (double)f != d || !signbit(f) != !signbit(d))
            bad++;
    }
    CHECKF(bad == 0, "%d of 256 encodings decode wrong", bad);
    CHECK(qr_f8e4m3_to_f32(0x7e) == 448.0f && qr_f8e4m3_to_f32(0xfe) == -448.0f);
    CHECK(qr_f8e4m3_to_f32(0x01) == ldexpf(1, -9) && qr_f8e4m3_to_f32(0x08) == ldexpf(1, -6));
}

/* every finite encoding encodes back to itself; each midpoint between neighbours rounds to the even one; values
 * just beside a midpoint round to the nearer */
static void test_encode(void)
{
    int bad_rt = 0, bad_mid = 0, bad_near = 0;
    for (unsigned b = 0; b < 256; b++) {
        if ((b & 0x7f) == 0x7f)
            continue;
        float v = qr_f8e4m3_to_f32((uint8_t)b);
        uint8_t r = qr_f32_to_f8e4m3(v);
        if (r != b && !(v == 0 && (r & 0x7f) == 0 && (r & 0x80) == (b & 0x80)))
            bad_rt++;
    }
    for (unsigned b = 0; b < 0x7e; b++) {   /* positive neighbours b, b + 1 (sign symmetric: checked below) */
        float lo = qr_f8e4m3_to_f32((uint8_t)b), hi = qr_f8e4m3_to_f32((uint8_t)(b + 1));
        float mid = (float)(((double)lo + (double)hi) / 2);   /* exact in f32 */
        uint8_t want = (b & 1) ? (uint8_t)(b + 1) : (uint8_t)b;
        if (qr_f32_to_f8e4m3(mid) != want || qr_f32_to_f8e4m3(-mid) != (want | 0x80))
            bad_mid++;
        if (qr_f32_to_f8e4m3(nextafterf(mid, 0)) != b || qr_f32_to_f8e4m3(nextafterf(mid, 1000)) != b + 1)
            bad_near++;
    }
    CHECKF(bad_rt == 0, "%d encodings do not round-trip", bad_rt);
    CHECKF(bad_mid == 0, "%d midpoints not rounded to even", bad_mid);
    CHECKF(bad_near == 0, "%d values beside a midpoint rounded the wrong way", bad_near);
}

/* saturation to +-448 (CUDA's __NV_SATFINITE), NaN, zeros, the smallest subnormals */
static void test_edges(void)
{
    CHECK(qr_f32_to_f8e4m3(448.0f) == 0x7e && qr_f32_to_f8e4m3(463.9f) == 0x7e && qr_f32_to_f8e4m3(464.0f) == 0x7e);
    CHECK(qr_f32_to_f8e4m3(1e30f) == 0x7e && qr_f32_to_f8e4m3(-1e30f) == 0xfe);
    CHECK(qr_f32_to_f8e4m3(INFINITY) == 0x7e && qr_f32_to_f8e4m3(-INFINITY) == 0xfe);
    CHECK((qr_f32_to_f8e4m3(NAN) & 0x7f) == 0x7f && isnan(qr_f8e4m3_to_f32(qr_f32_to_f8e4m3(NAN))));
    CHECK(qr_f32_to_f8e4m3(0.0f) == 0x00 && qr_f32_to_f8e4m3(-0.0f) == 0x80);
    CHECK(qr_f32_to_f8e4m3(ldexpf(1, -10)) == 0x00);                 /* half the smallest subnormal: even, 0 */
    CHECK(qr_f32_to_f8e4m3(nextafterf(ldexpf(1, -10), 1)) == 0x01);
    CHECK(qr_f32_to_f8e4m3(ldexpf(1, -30)) == 0x00 && qr_f32_to_f8e4m3(1e-45f) == 0x00);
    CHECK(qr_f32_to_f8e4m3(ldexpf(15, -10)) == 0x08);                /* 7.5 * 2^-9: even -> 8 -> the smallest normal */
    CHECK(qr_f32_to_f8e4m3(1.0f) == 0x38 && qr_f32_to_f8e4m3(-2.0f) == 0xc0 && qr_f32_to_f8e4m3(0.3f) == 0x2a);
}

static void test_names(void)
{
    CHECK(strcmp(qr_dtype_name(QR_DTYPE_F8E4M3), "F8_E4M3") == 0 && qr_dtype_size(QR_DTYPE_F8E4M3) == 1);
    CHECK(qr_dtype_size(QR_DTYPE_BF16) == 2 && qr_dtype_size(QR_DTYPE_F32) == 4 && qr_dtype_size(QR_DTYPE_COUNT) == 0);
    for (int t = 0; t < QR_DTYPE_COUNT; t++)
        CHECKF(qr_dtype_from_name(qr_dtype_name((enum qr_dtype)t)) == t, "dtype %d name round trip", t);
    CHECK(qr_dtype_from_name("F8_E5M2") == -1 && strcmp(qr_dtype_name(QR_DTYPE_COUNT), "?") == 0);
}

int main(void)
{
    test_decode_all();
    test_encode();
    test_edges();
    test_names();
    return qt_summary("test_dtype");
}
