#version 450
// Cooperative-matrix GEMM for prompts (NVIDIA tensor cores through
// GL_NV_cooperative_matrix): y[m, n] = x[m, :] . W[n, :], fp16 inputs, f32
// accumulation.  128x128 tile per workgroup of 8 subgroups (32 lanes each),
// every subgroup owns 32x64 of the tile = 2x4 16x16 fragments.  x (f32) and
// W (bf16/f16/f32) are converted to fp16 while staged in shared memory.
// B_KN (the matmul_cm_bt variants, opt-in QR_VK_CM_BT=1, not yet measured on a
// GPU): W is staged k-major ([BK][BN]), so its fragments load without the
// transpose; the loaders then take 128 consecutive rows per k chunk.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_NV_cooperative_matrix : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#include "pc/matmul.h"
#include "include/common.glsl"
layout(local_size_x = 256) in;
#include "include/mm_io.glsl"
#include "include/wload.glsl"

#define BM 128
#define BN 128
#define BK 32
#define SA (BK + 8)
shared float16_t ash[BM * SA];
#ifdef B_KN
#define SB (BN + 8)
shared float16_t bsh[BK * SB];
#define B_AT(r, c) bsh[(c) * SB + (r)]
#else
shared float16_t bsh[BN * SA];
#define B_AT(r, c) bsh[(r) * SA + (c)]
#endif
shared float csh[8][16 * 16];

// the W loaders: element e of a K slice -> (row r of the tile, column c); k-major staging walks the rows fastest
#ifdef B_KN
#define W_ROW4(e) ((e) % BN)
#define W_COL4(e) (((e) / BN) * 4)
#define W_ROW8(e) ((e) % BN)
#define W_COL8(e) (((e) / BN) * 8)
#define B_LOAD(m, n0, k0) coopMatLoadNV(m, bsh, uint((k0) * SB + (n0)), uint(SB), false)
#else
#define W_ROW4(e) ((e) / 8)
#define W_COL4(e) (((e) % 8) * 4)
#define W_ROW8(e) ((e) / 4)
#define W_COL8(e) (((e) % 4) * 8)
#define B_LOAD(m, n0, k0) coopMatLoadNV(m, bsh, uint((n0) * SA + (k0)), uint(SA), true)
#endif

float16_t h16(float v) { return float16_t(clamp(v, -65504.0, 65504.0)); }

void main() {
    int m0 = int(gl_WorkGroupID.y) * BM, nb = int(gl_WorkGroupID.x) * BN;
    uint tid = gl_LocalInvocationID.x;
    uint sg = gl_SubgroupID;
    int wm = int(sg / 2u) * 32, wn = int(sg % 2u) * 64;
    fcoopmatNV<32, gl_ScopeSubgroup, 16, 16> acc[2][4];
    [[unroll]] for (int i = 0; i < 2; i++)
        [[unroll]] for (int j = 0; j < 4; j++) acc[i][j] = fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>(0.0);
    bool vec = (pc.flags & QR_MM_VEC) != 0;   // then K % 32 == 0 (host checks)
    if (vec) {
        // register double buffering: the next K slice is fetched from global
        // memory while the tensor cores work on the current one
        vec4 xr[4];
#if W_TYPE == QR_PC_F32
        vec4 wr[4];
#else
        uvec4 wr[2];
#endif
        uint xrow[4];
        [[unroll]] for (int q = 0; q < 4; q++) {
            int r = (int(tid) + q * 256) / 8;
            xrow[q] = m0 + r < pc.M ? x_row(m0 + r) : 0xFFFFFFFFu;
        }
#define FETCH(k0) { \
            [[unroll]] for (int q = 0; q < 4; q++) { \
                int e = int(tid) + q * 256, c = (e % 8) * 4; \
                xr[q] = xrow[q] != 0xFFFFFFFFu ? xv[(xrow[q] + uint((k0) + c)) >> 2] : vec4(0.0); \
            } \
            FETCH_W(k0) }
#if W_TYPE == QR_PC_F32
#define FETCH_W(k0) \
            [[unroll]] for (int q = 0; q < 4; q++) { \
                int e = int(tid) + q * 256, r = W_ROW4(e), c = W_COL4(e); \
                wr[q] = nb + r < pc.N ? uintBitsToFloat(wv[(uint(pc.w_off) + uint(nb + r) * uint(pc.K) + uint((k0) + c)) >> 2]) : vec4(0.0); \
            }
#else
#define FETCH_W(k0) \
            [[unroll]] for (int q = 0; q < 2; q++) { \
                int e = int(tid) + q * 256, r = W_ROW8(e), c = W_COL8(e); \
                wr[q] = nb + r < pc.N ? wv[(uint(pc.w_off) + uint(nb + r) * uint(pc.K) + uint((k0) + c)) >> 3] : uvec4(0u); \
            }
#endif
        FETCH(0)
        for (int k0 = 0; k0 < pc.K; k0 += BK) {
            [[unroll]] for (int q = 0; q < 4; q++) {
                int e = int(tid) + q * 256, r = e / 8, c = (e % 8) * 4;
                [[unroll]] for (int i = 0; i < 4; i++) ash[r * SA + c + i] = h16(xr[q][i]);
            }
#if W_TYPE == QR_PC_F32
            [[unroll]] for (int q = 0; q < 4; q++) {
                int e = int(tid) + q * 256, r = W_ROW4(e), c = W_COL4(e);
                [[unroll]] for (int i = 0; i < 4; i++) B_AT(r, c + i) = h16(wr[q][i]);
            }
#else
            [[unroll]] for (int q = 0; q < 2; q++) {
                int e = int(tid) + q * 256, r = W_ROW8(e), c = W_COL8(e);
                uvec4 u = wr[q];
#if W_TYPE == QR_PC_BF16
                vec4 a = vec4(qr_bf16_lo(u.x), qr_bf16_hi(u.x), qr_bf16_lo(u.y), qr_bf16_hi(u.y));
                vec4 b = vec4(qr_bf16_lo(u.z), qr_bf16_hi(u.z), qr_bf16_lo(u.w), qr_bf16_hi(u.w));
#else
                vec4 a = vec4(unpackHalf2x16(u.x), unpackHalf2x16(u.y));
                vec4 b = vec4(unpackHalf2x16(u.z), unpackHalf2x16(u.w));
#endif
                [[unroll]] for (int i = 0; i < 4; i++) { B_AT(r, c + i) = h16(a[i]); B_AT(r, c + 4 + i) = h16(b[i]); }
            }
#endif
            barrier();
            if (k0 + BK < pc.K) FETCH(k0 + BK)
            [[unroll]] for (int kk = 0; kk < BK; kk += 16) {
                fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> a[2], b[4];
                [[unroll]] for (int i = 0; i < 2; i++)
                    coopMatLoadNV(a[i], ash, uint((wm + i * 16) * SA + kk), uint(SA), false);
                [[unroll]] for (int j = 0; j < 4; j++) B_LOAD(b[j], wn + j * 16, kk);
                [[unroll]] for (int i = 0; i < 2; i++)
                    [[unroll]] for (int j = 0; j < 4; j++) acc[i][j] = coopMatMulAddNV(a[i], b[j], acc[i][j]);
            }
            barrier();
        }
    } else {
        for (int k0 = 0; k0 < pc.K; k0 += BK) {
            [[unroll]] for (int q = 0; q < 16; q++) {
                int e = int(tid) + q * 256;
                int r = e / BK, c = e % BK;
                int k = k0 + c;
                float xa = (m0 + r < pc.M && k < pc.K) ? xs[x_row(m0 + r) + uint(k)] : 0.0;
                float wb = (nb + r < pc.N && k < pc.K) ? w_scalar(uint(pc.w_off) + uint(nb + r) * uint(pc.K) + uint(k)) : 0.0;
                ash[r * SA + c] = h16(xa);
                B_AT(r, c) = h16(wb);
            }
            barrier();
            [[unroll]] for (int kk = 0; kk < BK; kk += 16) {
                fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> a[2], b[4];
                [[unroll]] for (int i = 0; i < 2; i++)
                    coopMatLoadNV(a[i], ash, uint((wm + i * 16) * SA + kk), uint(SA), false);
                [[unroll]] for (int j = 0; j < 4; j++) B_LOAD(b[j], wn + j * 16, kk);
                [[unroll]] for (int i = 0; i < 2; i++)
                    [[unroll]] for (int j = 0; j < 4; j++) acc[i][j] = coopMatMulAddNV(a[i], b[j], acc[i][j]);
            }
            barrier();
        }
    }
    uint lane = gl_SubgroupInvocationID;
    [[unroll]] for (int i = 0; i < 2; i++)
        [[unroll]] for (int j = 0; j < 4; j++) {
            coopMatStoreNV(acc[i][j], csh[sg], 0u, 16u, false);
            subgroupBarrier();
            for (uint e = lane; e < 256u; e += 32u) {
                int m = m0 + wm + i * 16 + int(e / 16u), n = nb + wn + j * 16 + int(e % 16u);
                if (m < pc.M && n < pc.N) y_store(m, n, csh[sg][e]);
            }
            subgroupBarrier();
        }
}
