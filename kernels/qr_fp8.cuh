/* qr_fp8.cuh - FP8 E4M3 ("FN": no infinities, max 448) conversions for the KV cache (QK_F8 caches).
 *
 * f32 -> e4m3 is CUDA's SATFINITE conversion (round to nearest even, +-Inf and everything past 448 saturate to
 * +-448; a cvt instruction on sm_89+, emulated before), with NaN kept NaN with its sign (0x7f | sign) as the CPU
 * reference's qr_f32_to_f8e4m3 (core/dtype.c) does; CUDA writes an unsigned 0x7f.
 * e4m3 -> f16 is exact (every E4M3 value, subnormals included, is an F16 normal), two at a time: cvt.rn.f16x2.e4m3x2
 * on sm_89+, elsewhere the bits moved into an f16 whose exponent is 8 too small, times 2^8 (exact). */
#ifndef QRUN_QR_FP8_CUH
#define QRUN_QR_FP8_CUH

#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <stdint.h>

/* f32 -> e4m3 byte, bit-equal to qr_f32_to_f8e4m3 */
__device__ __forceinline__ uint8_t qk_f32_f8(float f)
{
    const uint32_t u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint8_t)(((u >> 24) & 0x80u) | 0x7fu);
    return (uint8_t)__nv_cvt_float_to_fp8(f, __NV_SATFINITE, __NV_E4M3);
}

/* the two e4m3 values in the low 16 bits of x (byte 0 -> the low half) as the bits of an f16 pair */
__device__ __forceinline__ uint32_t qk_f8x2_h2(uint32_t x)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
    uint32_t r;
    asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(r) : "h"((unsigned short)x));
    return r;
#else
    /* magnitude bits 0..6 of each byte -> f16 bits 7..13, the sign -> bit 15 (per half) */
    const uint32_t m = ((x & 0x7f00u) << 8) | (x & 0x7fu), s = ((x & 0x8000u) << 8) | (x & 0x80u);
    const uint32_t w = (m << 7) | (s << 8);
    const __half2 h = __hmul2(*(const __half2 *)&w, __half2half2(__ushort_as_half((unsigned short)0x5c00u)));
    uint32_t r = *(const uint32_t *)&h;
    if ((x & 0x7fu) == 0x7fu)   /* S.1111.111: NaN */
        r |= 0x00007fffu;
    if ((x & 0x7f00u) == 0x7f00u)
        r |= 0x7fff0000u;
    return r;
#endif
}

/* one e4m3 byte as f32 */
__device__ __forceinline__ float qk_f8_f32(uint8_t b)
{
    const uint32_t h = qk_f8x2_h2(b);
    return __half2float(__ushort_as_half((unsigned short)(h & 0xffffu)));
}

/* 8 e4m3 bytes (v.x: bytes 0..3) -> 8 f16 (16 bytes, the same order) */
__device__ __forceinline__ uint4 qk_f8x8_h8(uint2 v)
{
    return make_uint4(qk_f8x2_h2(v.x & 0xffffu), qk_f8x2_h2(v.x >> 16), qk_f8x2_h2(v.y & 0xffffu),
                      qk_f8x2_h2(v.y >> 16));
}

#endif
