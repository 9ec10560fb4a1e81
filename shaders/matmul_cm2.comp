#version 450
// Cooperative-matrix GEMM for prompts, the wide form (GL_NV_cooperative_matrix,
// fp16 inputs, f32 accumulation): y[m, n] = x[m, :] . W[n, :].
// 128 x 256 tile per workgroup of 8 subgroups in a 2 x 4 grid, each owning
// 64 x 64 = 4 x 4 fragments of 16 x 16, so every A and B fragment loaded from
// shared memory feeds four MMAs (matmul_cm.comp: 32 x 64 per subgroup).  The
// tiles are staged as f16vec4 (one 8-byte shared store per 4 converted
// values), the next K slice is fetched into registers while the tensor cores
// work on the current one.  Vector path only (K % 32 == 0, 16-byte aligned
// rows: the host checks and uses matmul_cm.comp otherwise).
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_NV_cooperative_matrix : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_shared_memory_block : require
#include "pc/matmul.h"
#include "include/common.glsl"
layout(local_size_x = 256) in;
#include "include/mm_io.glsl"
#include "include/wload.glsl"

#define BM 128
#define BN 256
#define BK 32
#define SA4 10   // row stride in f16vec4: BK / 4 + 2 of padding (80 bytes: conflict-free fragment loads)
// two views of one workgroup memory (GL_EXT_shared_memory_block: shared blocks alias): 8-byte stores through
// the vector view, fragment loads through the scalar one
shared SV { f16vec4 a[BM * SA4]; f16vec4 b[BN * SA4]; } sv;
shared SH { float16_t a[BM * SA4 * 4]; float16_t b[BN * SA4 * 4]; float c[8][16 * 16]; } sh;

f16vec4 h16x4(vec4 v) { return f16vec4(clamp(v, vec4(-65504.0), vec4(65504.0))); }

void main() {
    int m0 = int(gl_WorkGroupID.y) * BM, nb = int(gl_WorkGroupID.x) * BN;
    uint tid = gl_LocalInvocationID.x;
    uint sg = gl_SubgroupID;
    int wm = int(sg / 4u) * 64, wn = int(sg % 4u) * 64;
    fcoopmatNV<32, gl_ScopeSubgroup, 16, 16> acc[4][4];
    [[unroll]] for (int i = 0; i < 4; i++)
        [[unroll]] for (int j = 0; j < 4; j++) acc[i][j] = fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>(0.0);
    // x: 128 rows x 8 vec4 per slice = 4 per thread; W: 256 rows x (4 uvec4 | 8 vec4) = 4 | 8 per thread
    vec4 xr[4];
#if W_TYPE == QR_PC_F32
    vec4 wr[8];
#else
    uvec4 wr[4];
#endif
    uint xrow[4];
    [[unroll]] for (int q = 0; q < 4; q++) {
        int r = (int(tid) + q * 256) / 8;
        xrow[q] = m0 + r < pc.M ? x_row(m0 + r) : 0xFFFFFFFFu;
    }
#define FETCH_X(k0) \
    [[unroll]] for (int q = 0; q < 4; q++) { \
        int c = ((int(tid) + q * 256) % 8) * 4; \
        xr[q] = xrow[q] != 0xFFFFFFFFu ? xv[(xrow[q] + uint((k0) + c)) >> 2] : vec4(0.0); \
    }
#if W_TYPE == QR_PC_F32
#define FETCH_W(k0) \
    [[unroll]] for (int q = 0; q < 8; q++) { \
        int e = int(tid) + q * 256, r = e / 8, c = (e % 8) * 4; \
        wr[q] = nb + r < pc.N ? uintBitsToFloat(wv[(uint(pc.w_off) + uint(nb + r) * uint(pc.K) + uint((k0) + c)) >> 2]) : vec4(0.0); \
    }
#else
#define FETCH_W(k0) \
    [[unroll]] for (int q = 0; q < 4; q++) { \
        int e = int(tid) + q * 256, r = e / 4, c = (e % 4) * 8; \
        wr[q] = nb + r < pc.N ? wv[(uint(pc.w_off) + uint(nb + r) * uint(pc.K) + uint((k0) + c)) >> 3] : uvec4(0u); \
    }
#endif
    FETCH_X(0)
    FETCH_W(0)
    for (int k0 = 0; k0 < pc.K; k0 += BK) {
        [[unroll]] for (int q = 0; q < 4; q++) {
            int e = int(tid) + q * 256;
            sv.a[(e / 8) * SA4 + e % 8] = h16x4(xr[q]);
        }
#if W_TYPE == QR_PC_F32
        [[unroll]] for (int q = 0; q < 8; q++) {
            int e = int(tid) + q * 256;
            sv.b[(e / 8) * SA4 + e % 8] = h16x4(wr[q]);
        }
#else
        [[unroll]] for (int q = 0; q < 4; q++) {
            int e = int(tid) + q * 256;
            vec4 a, b;
            w_unpack8(wr[q], a, b);
            int o = (e / 4) * SA4 + (e % 4) * 2;
            sv.b[o] = h16x4(a);
            sv.b[o + 1] = h16x4(b);
        }
#endif
        barrier();
        if (k0 + BK < pc.K) {
            FETCH_X(k0 + BK)
            FETCH_W(k0 + BK)
        }
        [[unroll]] for (int kk = 0; kk < BK / 4; kk += 4) {   // 16 columns = 4 f16vec4 per fragment step
            fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> a[4];
            [[unroll]] for (int i = 0; i < 4; i++)
                coopMatLoadNV(a[i], sh.a, uint(((wm + i * 16) * SA4 + kk) * 4), uint(SA4 * 4), false);
            [[unroll]] for (int j = 0; j < 4; j++) {
                fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> b;
                coopMatLoadNV(b, sh.b, uint(((wn + j * 16) * SA4 + kk) * 4), uint(SA4 * 4), true);
                [[unroll]] for (int i = 0; i < 4; i++) acc[i][j] = coopMatMulAddNV(a[i], b, acc[i][j]);
            }
        }
        barrier();
    }
    uint lane = gl_SubgroupInvocationID;
    [[unroll]] for (int i = 0; i < 4; i++)
        [[unroll]] for (int j = 0; j < 4; j++) {
            coopMatStoreNV(acc[i][j], sh.c[sg], 0u, 16u, false);
            subgroupBarrier();
            for (uint e = lane; e < 256u; e += 32u) {
                int m = m0 + wm + i * 16 + int(e / 16u), n = nb + wn + j * 16 + int(e % 16u);
                if (m < pc.M && n < pc.N) y_store(m, n, sh.c[sg][e]);
            }
            subgroupBarrier();
        }
}
