/* dtype.c - dtype names and sizes; bf16/f16 <-> f32 scalar conversions. */
#include "qrun/qr_types.h"
#include "qrun/qr_backend.h"

#include <math.h>
#include <string.h>

static const char *const k_dtype_names[QR_DTYPE_COUNT] = {"F32", "F16", "BF16", "I32", "F8_E4M3"};
static const size_t k_dtype_sizes[QR_DTYPE_COUNT] = {4, 2, 2, 4, 1};

const char *qr_dtype_name(enum qr_dtype t) { return (unsigned)t < QR_DTYPE_COUNT ? k_dtype_names[t] : "?"; }
size_t qr_dtype_size(enum qr_dtype t) { return (unsigned)t < QR_DTYPE_COUNT ? k_dtype_sizes[t] : 0; }

int qr_dtype_from_name(const char *s)
{
    for (int i = 0; i < QR_DTYPE_COUNT; i++)
        if (strcmp(s, k_dtype_names[i]) == 0)
            return i;
    return -1;
}

static const char *const k_op_names[QR_OP_COUNT] = {
    "embed", "matmul", "rmsnorm", "qk_norm", "rope", "kv_store", "attn", "silu_mul", "add", "logits", "argmax", "topk",
};
const char *qr_op_name(enum qr_op op) { return (unsigned)op < QR_OP_COUNT ? k_op_names[op] : "?"; }

float qr_bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t qr_f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u)      /* NaN: keep it quiet */
        return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);          /* round to nearest even */
    return (uint16_t)(u >> 16);
}

float qr_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ffu;
    uint32_t u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else {                              /* subnormal: renormalize */
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400u));
            man &= 0x3ffu;
            u = sign | ((uint32_t)(127 - 15 - e) << 23) | (man << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t qr_f32_to_f16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u)
        return (uint16_t)(sign | 0x7e00u);                /* NaN */
    if (a >= 0x477ff000u)                                 /* >= 65520 rounds to inf */
        return (uint16_t)(sign | 0x7c00u);
    if (a < 0x38800000u) {                                /* subnormal or zero in f16 */
        float af;
        memcpy(&af, &a, 4);
        /* scale so that one f16 subnormal ulp (2^-24) becomes 1, round to even */
        float scaled = af * 16777216.0f;
        uint32_t r = (uint32_t)nearbyintf(scaled);
        return (uint16_t)(sign | r);
    }
    uint32_t exp = ((a >> 23) - 127 + 15) << 10;
    uint32_t man = (a >> 13) & 0x3ffu;
    uint32_t rest = a & 0x1fffu;
    uint32_t h = exp | man;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u)))
        h++;
    return (uint16_t)(sign | h);
}

/* E4M3: sign, 4 exponent bits (bias 7), 3 mantissa bits; exponent 0 holds the subnormals m * 2^-9; S.1111.111 is
 * NaN; the largest finite value is S.1111.110 = 448 */
float qr_f8e4m3_to_f32(uint8_t b)
{
    const int e = (b >> 3) & 15, m = b & 7;
    float v;
    if (e == 15 && m == 7)
        v = NAN;
    else if (e == 0)
        v = (float)m * (1.0f / 512.0f);
    else
        v = ldexpf(1.0f + (float)m / 8.0f, e - 7);
    return (b & 0x80) ? -v : v;
}

uint8_t qr_f32_to_f8e4m3(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    const uint8_t sign = (uint8_t)((u >> 24) & 0x80u);
    const uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u)
        return sign | 0x7f;                      /* NaN */
    if (a >= 0x43e00000u)                        /* >= 448 (Inf included): saturate */
        return sign | 0x7e;
    if (a < 0x3c800000u) {                       /* below 2^-6: subnormal or zero, steps of 2^-9 */
        float q;
        uint32_t ua = a;
        memcpy(&q, &ua, 4);
        q *= 512.0f;                             /* exact: a power of two */
        uint32_t m = (uint32_t)q;
        const float r = q - (float)m;
        if (r > 0.5f || (r == 0.5f && (m & 1u)))
            m++;                                 /* m == 8 is 2^-6, the smallest normal: the encoding carries */
        return sign | (uint8_t)m;
    }
    int e = (int)(a >> 23) - 127;                /* -6 .. 8 */
    uint32_t keep = (a >> 20) & 7u, rest = a & 0xfffffu;
    if (rest > 0x80000u || (rest == 0x80000u && (keep & 1u)))
        keep++;
    if (keep == 8) {
        keep = 0;
        e++;
    }
    if (e > 8 || (e == 8 && keep > 6))           /* rounded past 448 (only from inputs >= 464, caught above) */
        return sign | 0x7e;
    return sign | (uint8_t)(((uint32_t)(e + 7) << 3) | keep);
}
