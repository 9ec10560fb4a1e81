/* qr_mma.cuh - warp-level tensor-core and async-copy helpers shared by the
 * attention kernels: mma.sync m16n8k16 (two m16n8k8 on sm_75), ldmatrix,
 * cp.async with zero fill, and f32 pair packing to bf16 / f16. */
#ifndef QRUN_QR_MMA_CUH
#define QRUN_QR_MMA_CUH

#include "qr_cuda_common.cuh"
#include "qr_kernels.h"

#include <math.h>

template <typename T>
__device__ __forceinline__ uint32_t pf_pack(float lo, float hi);
template <>
__device__ __forceinline__ uint32_t pf_pack<__nv_bfloat16>(float lo, float hi)
{
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *(uint32_t *)&v;
}
template <>
__device__ __forceinline__ uint32_t pf_pack<__half>(float lo, float hi)
{
    __half2 v = __floats2half2_rn(lo, hi);
    return *(uint32_t *)&v;
}

template <typename T>
__device__ __forceinline__ T pf_cvt(float f);
template <>
__device__ __forceinline__ __nv_bfloat16 pf_cvt<__nv_bfloat16>(float f) { return __float2bfloat16_rn(f); }
template <>
__device__ __forceinline__ __half pf_cvt<__half>(float f) { return __float2half_rn(f); }

/* d[4] += a[4] (16x16, row) * b[2] (16x8, col) */
template <typename T>
__device__ __forceinline__ void pf_mma(float *d, const uint32_t *a, const uint32_t *b);
template <>
__device__ __forceinline__ void pf_mma<__nv_bfloat16>(float *d, const uint32_t *a, const uint32_t *b)
{
#if __CUDA_ARCH__ >= 800
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
    __trap();   /* the host never launches bf16 on sm_75 */
#endif
}
template <>
__device__ __forceinline__ void pf_mma<__half>(float *d, const uint32_t *a, const uint32_t *b)
{
#if __CUDA_ARCH__ >= 800
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(b[0]));
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[2]), "r"(a[3]), "r"(b[1]));
#endif
}

__device__ __forceinline__ uint32_t smem_u32(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }

/* 16-byte async copy global -> shared; ok == false zero-fills without reading */
__device__ __forceinline__ void cp_async16(void *dst, const void *src, bool ok)
{
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(dst)), "l"(src), "r"(ok ? 16 : 0));
#else
    *(uint4 *)dst = ok ? *(const uint4 *)src : make_uint4(0, 0, 0, 0);
#endif
}
/* the same with the destination as a shared-memory address */
__device__ __forceinline__ void cp_async16_s(uint32_t dst, const void *src, bool ok)
{
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(ok ? 16 : 0));
#else
    (void)dst, (void)src, (void)ok;
    __trap();   /* callers are sm_80+ kernels */
#endif
}
__device__ __forceinline__ void cp_async_commit(void)
{
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.commit_group;\n" ::);
#endif
}
template <int N>
__device__ __forceinline__ void cp_async_wait(void)
{
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
#endif
}

__device__ __forceinline__ void ldsm_x4(uint32_t *r, const void *p)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_u32(p)));
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t *r, const void *p)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_u32(p)));
}

/* the m16n8k16 A fragments of 16 query rows (rows g and g + 8 of the lane; q0 / q1 their f32 rows, v0 / v1 whether
 * they exist, else zeros), each value times qscale, over head_dim D: qa[kk] covers columns kk*16 .. kk*16+15 */
/* one pair of output columns (c, c + 1) of a prompt kernel's row: f32 into of unless it is NULL, and the
 * 16-bit copy (QK_BF16 / QK_F16, rows of n_heads * head_dim: the o_proj GEMM's input) into oh unless NULL.
 * The conversion is k_convert_rows' own, so the GEMM sees the same bits either way. */
__device__ __forceinline__ void pf_store2(float *of, uint16_t *oh, int ht, int c, float v0, float v1)
{
    if (of) {   /* the f32 row stride may be odd: scalar stores */
        of[c] = v0;
        of[c + 1] = v1;
    }
    if (oh) {
        uint32_t lo = ht == QK_BF16 ? qk_f32_bf16(v0) : qk_f32_f16(v0);
        uint32_t hi = ht == QK_BF16 ? qk_f32_bf16(v1) : qk_f32_f16(v1);
        *(uint32_t *)(oh + c) = lo | hi << 16;   /* c is even and the row length is even */
    }
}

/* a prompt kernel's epilogue for its two rows (row0, row1 of the m16 fragment; sequence s's tokens start at qs):
 * the row sums l0 / l1 gathered over the quad, O (D / 8 column groups x 4, fragment order) divided by them and
 * stored through pf_store2 (f32 into a.out, and the 16-bit copy into a.out_h, where set) */
template <int D>
__device__ __forceinline__ void pf_store_rows(const struct qr_cuda_attn &a, const float *o, float l0, float l1,
                                              int row0, int row1, int qs, int qlen, int h, int t4)
{
    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    const float i0 = l0 > 0.f ? 1.f / l0 : 0.f, i1 = l1 > 0.f ? 1.f / l1 : 0.f;
    const int ldh = a.n_heads * D;
    if (row0 < qlen) {
        float *of = a.out ? a.out + (int64_t)(qs + row0) * a.ldo + (int64_t)h * D : NULL;
        uint16_t *oh = a.out_h ? (uint16_t *)a.out_h + (int64_t)(qs + row0) * ldh + (int64_t)h * D : NULL;
#pragma unroll
        for (int i = 0; i < D / 8; i++)
            pf_store2(of, oh, a.out_h_type, i * 8 + 2 * t4, o[4 * i] * i0, o[4 * i + 1] * i0);
    }
    if (row1 < qlen) {
        float *of = a.out ? a.out + (int64_t)(qs + row1) * a.ldo + (int64_t)h * D : NULL;
        uint16_t *oh = a.out_h ? (uint16_t *)a.out_h + (int64_t)(qs + row1) * ldh + (int64_t)h * D : NULL;
#pragma unroll
        for (int i = 0; i < D / 8; i++)
            pf_store2(of, oh, a.out_h_type, i * 8 + 2 * t4, o[4 * i + 2] * i1, o[4 * i + 3] * i1);
    }
}

template <typename T, int D>
__device__ __forceinline__ void pf_load_q(uint32_t (&qa)[D / 16][4], const float *q0, const float *q1, bool v0,
                                          bool v1, float qscale, int t4)
{
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) {
        int c = kk * 16 + 2 * t4;
        float x00 = v0 ? q0[c] * qscale : 0.f, x01 = v0 ? q0[c + 1] * qscale : 0.f;
        float x10 = v1 ? q1[c] * qscale : 0.f, x11 = v1 ? q1[c + 1] * qscale : 0.f;
        float y00 = v0 ? q0[c + 8] * qscale : 0.f, y01 = v0 ? q0[c + 9] * qscale : 0.f;
        float y10 = v1 ? q1[c + 8] * qscale : 0.f, y11 = v1 ? q1[c + 9] * qscale : 0.f;
        qa[kk][0] = pf_pack<T>(x00, x01);
        qa[kk][1] = pf_pack<T>(x10, x11);
        qa[kk][2] = pf_pack<T>(y00, y01);
        qa[kk][3] = pf_pack<T>(y10, y11);
    }
}

/* 2^x on the special-function unit: one MUFU.EX2 (exp2f adds range fix-ups around it, ~4 more instructions per
 * element); relative error ~2^-22, subnormal results flushed to 0, 2^-inf = 0.  The probabilities it feeds are
 * rounded to 16 bits right after. */
__device__ __forceinline__ float pf_exp2(float x)
{
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

/* one online-softmax step over score fragments sc[NT][4] (rows g: elements 0, 1; g + 8: 2, 3; masked ones -inf,
 * in log2 units): the running maxima m0 / m1 and per-lane partial sums l0 / l1 move, sc becomes exp2(s - max), and
 * al0 / al1 are the factors by which the rows' accumulated output must be rescaled.  The row maxima and sums are
 * reduced as trees (a chain of NT dependent max / add instructions per row stalls a warp with few others to
 * switch to). */
template <int NT>
__device__ __forceinline__ void pf_softmax(float (&sc)[NT][4], float &m0, float &m1, float &l0, float &l1, float &al0,
                                           float &al1)
{
    float t0[NT], t1[NT];
#pragma unroll
    for (int j = 0; j < NT; j++) {
        t0[j] = fmaxf(sc[j][0], sc[j][1]);
        t1[j] = fmaxf(sc[j][2], sc[j][3]);
    }
#pragma unroll
    for (int w = 1; w < NT; w *= 2)
#pragma unroll
        for (int j = 0; j + w < NT; j += 2 * w) {
            t0[j] = fmaxf(t0[j], t0[j + w]);
            t1[j] = fmaxf(t1[j], t1[j + w]);
        }
    float mx0 = t0[0], mx1 = t1[0];
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
    const float mn0 = fmaxf(m0, mx0), mn1 = fmaxf(m1, mx1);
    al0 = mn0 == -INFINITY ? 1.f : pf_exp2(m0 - mn0);
    al1 = mn1 == -INFINITY ? 1.f : pf_exp2(m1 - mn1);
    m0 = mn0;
    m1 = mn1;
    const float b0 = mn0 == -INFINITY ? 0.f : mn0, b1 = mn1 == -INFINITY ? 0.f : mn1;   /* all masked: p = 0 */
#pragma unroll
    for (int j = 0; j < NT; j++) {
        sc[j][0] = pf_exp2(sc[j][0] - b0);
        sc[j][1] = pf_exp2(sc[j][1] - b0);
        sc[j][2] = pf_exp2(sc[j][2] - b1);
        sc[j][3] = pf_exp2(sc[j][3] - b1);
        t0[j] = sc[j][0] + sc[j][1];
        t1[j] = sc[j][2] + sc[j][3];
    }
#pragma unroll
    for (int w = 1; w < NT; w *= 2)
#pragma unroll
        for (int j = 0; j + w < NT; j += 2 * w) {
            t0[j] += t0[j + w];
            t1[j] += t1[j + w];
        }
    l0 = l0 * al0 + t0[0];
    l1 = l1 * al1 + t1[0];
}


/* O's rows rescaled by the factors pf_softmax returned (rows g: elements 0, 1; g + 8: 2, 3) */
template <int N>
__device__ __forceinline__ void pf_rescale(float (&o)[N][4], float al0, float al1)
{
#pragma unroll
    for (int i = 0; i < N; i++) {
        o[i][0] *= al0;
        o[i][1] *= al0;
        o[i][2] *= al1;
        o[i][3] *= al1;
    }
}

/* the A fragment of P for keys 16 jj .. 16 jj + 15: score fragments 2 jj and 2 jj + 1 packed to 16 bits */
template <typename T, int NT>
__device__ __forceinline__ void pf_pack_p(uint32_t (&pa)[4], const float (&sc)[NT][4], int jj)
{
    pa[0] = pf_pack<T>(sc[2 * jj][0], sc[2 * jj][1]);
    pa[1] = pf_pack<T>(sc[2 * jj][2], sc[2 * jj][3]);
    pa[2] = pf_pack<T>(sc[2 * jj + 1][0], sc[2 * jj + 1][1]);
    pa[3] = pf_pack<T>(sc[2 * jj + 1][2], sc[2 * jj + 1][3]);
}

#endif
