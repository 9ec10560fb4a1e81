#version 450
// Cooperative-matrix GEMM for prompts, software-pipelined (GL_NV_cooperative_matrix, fp16 inputs, f32
// accumulation): y[m, n] = x[m, :] . W[n, :].  Same numerics as matmul_cm.comp (x and W clamped to +-65504 and
// converted to fp16, f32 accumulators, bias and residual added at the store).  128 x 128 tile, BK = 32:
//   - two shared-memory stages and one barrier per K slice: slice t+1 is converted and stored into the other
//     stage, and slice t+2 is fetched from global memory into registers (16-byte loads), before the tensor cores
//     work on slice t; the barrier after the MMAs publishes slice t+1 and frees stage t for slice t+2;
//   - stores into the stages are 8 bytes (x, f32 W: 4 halves) or 16 bytes (16-bit W: 8 halves), rows padded to
//     80 bytes so the fragment loads (8 rows of 16 bytes) hit distinct banks;
//   - NSG subgroups in an SGM x (NSG / SGM) grid: NSG 8, SGM 2 (matmul_cm3_*): 64 x 32 per subgroup, 4 x 2
//     fragments; NSG 4 (matmul_cm3b_*): 64 x 64, 4 x 4 fragments (more MMAs per fragment load, fewer warps);
//   - the epilogue reuses the stages: 16 rows of a subgroup's fragments at a time, written as whole 128-byte rows.
// Vector path only: K % 32 == 0 and 16-byte aligned rows (QR_MM_VEC; the host uses matmul_cm.comp otherwise).
// The tiles alias through GL_EXT_shared_memory_block (VK_KHR_workgroup_memory_explicit_layout, as matmul_cm2).
// X16 (matmul_cm3h_*): x comes already converted to fp16 (to_f16.comp, binding 2 holds M rows of K halves), so the
// slice is copied into the stage as 16-byte words with no conversion, and its global reads are half the bytes.
// LAB (timing-only variants for the GEMM lab, wrong results): bit 1 no global reads, bit 2 no stage stores, bit 4 no
// fragment loads or MMAs, bit 8 stores without the fp16 conversion (raw bits), bit 16 fragments loaded once before
// the K loop (MMAs only inside), bit 32 B fragments loaded row-major.  GROUP_M (matmul_cm3hkg: 16, the KHR default; lab
// cm3kg / cm3hkg8: 8): grouped workgroup order (below).  FRAG_N: the N size of the B and accumulator
// fragments (16, or 8: 16 x 8 x 16 MMAs).  ACC16 (lab only): fp16 accumulators, converted to f32 at the store.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
// Every constant-bound loop carries [[unroll]] (UNR): without it glslc keeps the fragment arrays in Function
// memory indexed by the loop counter, and the NVIDIA driver ran the MMAs ~13x slower (H100, docs/PERF.md,
// nineteenth session: MMA-only GEMM loop 31 -> 394-502 TFLOP/s, whole GEMM 29-31 -> 97-101 TFLOP/s).
#define UNR [[unroll]]
#extension GL_NV_cooperative_matrix : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_shared_memory_block : require
#include "pc/matmul.h"
#include "include/common.glsl"
#ifndef NSG
#define NSG 8
#endif
#ifndef SGM
#define SGM 2
#endif
#define NT (NSG * 32)
layout(local_size_x = NT) in;
#include "include/mm_io.glsl"
#include "include/wload.glsl"

#define BM 128
#define BN 128
#define BK 32
#define SA 40                    // row stride in halves (BK + 8: 80 bytes)
#define STAGE ((BM + BN) * SA)   // halves per stage: BM rows of x, then BN rows of W
#define WM (BM / SGM)            // rows of the tile per subgroup
#define WN (BN / (NSG / SGM))    // columns per subgroup
#ifndef FRAG_N
#define FRAG_N 16
#endif
#ifdef ACC16
#define ACC_T 16
#else
#define ACC_T 32
#endif
#define FM (WM / 16)
#define FN (WN / FRAG_N)
#ifdef X16
#define XQ (BM * BK / 8 / NT)    // uvec4 (8 halves) of x per thread and slice
#else
#define XQ (BM * BK / 4 / NT)    // vec4 of x per thread and slice
#endif
#ifndef LAB
#define LAB 0
#endif
#if W_TYPE == QR_PC_F32
#define WQ (BN * BK / 4 / NT)    // vec4 of W
#else
#define WQ (BN * BK / 8 / NT)    // uvec4 (8 weights) of W
#endif

// views of one workgroup memory (shared blocks alias): 8- and 16-byte stores, fragment loads, the epilogue
shared S2 { uvec2 v[2 * STAGE / 4]; } s2;
shared S4 { uvec4 v[2 * STAGE / 8]; } s4;
shared SH { float16_t h[2 * STAGE]; } sh;
shared SC { float c[NSG][16 * WN]; } sc;

// 4 values -> 4 fp16 as two words (the conversion of matmul_cm.comp's h16)
uvec2 h16x4(vec4 v) {
    f16vec4 h = f16vec4(clamp(v, vec4(-65504.0), vec4(65504.0)));
    return uvec2(packFloat2x16(h.xy), packFloat2x16(h.zw));
}

#if W_TYPE != QR_PC_F32
// 8 weights of one 16-byte word -> 8 fp16
uvec4 w16x8(uvec4 u) {
    vec4 lo, hi;
    w_unpack8(u, lo, hi);
    return uvec4(h16x4(lo), h16x4(hi));
}
#endif

void main() {
#ifdef GROUP_M
    // grouped order: consecutive workgroups take GROUP_M row tiles down one column of W tiles, then the next column,
    // so a wave re-reads W tiles from L2 instead of streaming all of W once per row of tiles (a bijection of the
    // grid: the last group holds the remaining mt % GROUP_M row tiles)
    uint n_tn = gl_NumWorkGroups.x, n_tm = gl_NumWorkGroups.y;
    uint wg_id = gl_WorkGroupID.y * n_tn + gl_WorkGroupID.x, per_group = uint(GROUP_M) * n_tn;
    uint grp = wg_id / per_group, rem = wg_id % per_group, gm = min(uint(GROUP_M), n_tm - grp * uint(GROUP_M));
    int m0 = int(grp * uint(GROUP_M) + rem % gm) * BM, nb = int(rem / gm) * BN;
#else
    int m0 = int(gl_WorkGroupID.y) * BM, nb = int(gl_WorkGroupID.x) * BN;
#endif
    int tid = int(gl_LocalInvocationID.x);
    uint sg = gl_SubgroupID;
    int wm = int(sg % uint(SGM)) * WM, wn = int(sg / uint(SGM)) * WN;
    fcoopmatNV<ACC_T, gl_ScopeSubgroup, 16, FRAG_N> acc[FM][FN];
    UNR for (int i = 0; i < FM; i++)
        UNR for (int j = 0; j < FN; j++) acc[i][j] = fcoopmatNV<ACC_T, gl_ScopeSubgroup, 16, FRAG_N>(0.0);

#ifdef X16
    // thread tid loads x rows tid / 4 + q * NT / 4, 8 halves at (tid % 4) * 8 (4 threads: 64 bytes); x is compact
    const int xc = (tid % 4) * 8, xstep = NT / 4;
    uint xrow[XQ];
    UNR for (int q = 0; q < XQ; q++) {
        int r = tid / 4 + q * xstep;
        xrow[q] = m0 + r < pc.M ? uint(pc.x_off) + uint(m0 + r) * uint(pc.K) + uint(xc) : 0xFFFFFFFFu;
    }
    uvec4 xr[XQ];
#else
    // thread tid loads x rows tid / 8 + q * NT / 8, column (tid % 8) * 4 of the slice (8 threads: 128 bytes)
    const int xc = (tid % 8) * 4, xstep = NT / 8;
    uint xrow[XQ];
    UNR for (int q = 0; q < XQ; q++) {
        int r = tid / 8 + q * xstep;
        xrow[q] = m0 + r < pc.M ? x_row(m0 + r) + uint(xc) : 0xFFFFFFFFu;
    }
    vec4 xr[XQ];
#endif
#if W_TYPE == QR_PC_F32
    // W rows tid / 8 + q * NT / 8, 4 weights at (tid % 8) * 4
    const int wc = (tid % 8) * 4, wr0 = tid / 8, wstep = NT / 8;
    vec4 wr[WQ];
#else
    // W rows tid / 4 + q * NT / 4, 8 weights at (tid % 4) * 8 (4 threads: 64 bytes)
    const int wc = (tid % 4) * 8, wr0 = tid / 4, wstep = NT / 4;
    uvec4 wr[WQ];
#endif
    uint wrow[WQ];
    UNR for (int q = 0; q < WQ; q++) {
        int r = nb + wr0 + q * wstep;
        wrow[q] = r < pc.N ? uint(pc.w_off) + uint(r) * uint(pc.K) + uint(wc) : 0xFFFFFFFFu;
    }

#if (LAB & 1) != 0
#define FETCH(k0) { \
        UNR for (int q = 0; q < XQ; q++) xr[q] = XR_T(q + (k0)); \
        UNR for (int q = 0; q < WQ; q++) wr[q] = WR_T(q + (k0)); }
#ifdef X16
#define XR_T(v) uvec4(uint(v))
#else
#define XR_T(v) vec4(float(v))
#endif
#if W_TYPE == QR_PC_F32
#define WR_T(v) vec4(float(v))
#else
#define WR_T(v) uvec4(uint(v))
#endif
#else
#ifdef X16
#define FETCH_X(k0) \
        UNR for (int q = 0; q < XQ; q++) \
            xr[q] = xrow[q] != 0xFFFFFFFFu ? floatBitsToUint(xv[(xrow[q] + uint(k0)) >> 3]) : uvec4(0u);
#else
#define FETCH_X(k0) \
        UNR for (int q = 0; q < XQ; q++) \
            xr[q] = xrow[q] != 0xFFFFFFFFu ? xv[(xrow[q] + uint(k0)) >> 2] : vec4(0.0);
#endif
#define FETCH(k0) { FETCH_X(k0) FETCH_W(k0) }
#if W_TYPE == QR_PC_F32
#define FETCH_W(k0) \
        UNR for (int q = 0; q < WQ; q++) \
            wr[q] = wrow[q] != 0xFFFFFFFFu ? uintBitsToFloat(wv[(wrow[q] + uint(k0)) >> 2]) : vec4(0.0);
#else
#define FETCH_W(k0) \
        UNR for (int q = 0; q < WQ; q++) \
            wr[q] = wrow[q] != 0xFFFFFFFFu ? wv[(wrow[q] + uint(k0)) >> 3] : uvec4(0u);
#endif
#endif
    // element offsets (halves) of this thread's first x and W stores inside a stage
#ifdef X16
    const uint xs0 = uint((tid / 4) * SA + xc);
#else
    const uint xs0 = uint((tid / 8) * SA + xc);
#endif
    const uint ws0 = uint(BM * SA + wr0 * SA + wc);
#if (LAB & 2) != 0
#define STORE(st) { }
#else
#define STORE(st) { \
        uint base = (st) * uint(STAGE); \
        STORE_X(base) \
        STORE_W(base) }
#endif
#if (LAB & 8) != 0
#define CVT4(v) uvec2(floatBitsToUint(v.x), floatBitsToUint(v.y))
#define CVT8(u) (u)
#else
#define CVT4(v) h16x4(v)
#if W_TYPE == QR_PC_F16 && defined(X16)
#define CVT8(u) (u)   // fp16 weights go in as they are (the f32 round trip only clamped infinities)
#else
#define CVT8(u) w16x8(u)
#endif
#endif
#ifdef X16
#define STORE_X(base) \
        UNR for (int q = 0; q < XQ; q++) \
            s4.v[((base) + xs0 + uint(q * xstep * SA)) >> 3] = xr[q];
#else
#define STORE_X(base) \
        UNR for (int q = 0; q < XQ; q++) \
            s2.v[((base) + xs0 + uint(q * xstep * SA)) >> 2] = CVT4(xr[q]);
#endif
#if W_TYPE == QR_PC_F32
#define STORE_W(base) \
        UNR for (int q = 0; q < WQ; q++) \
            s2.v[((base) + ws0 + uint(q * wstep * SA)) >> 2] = CVT4(wr[q]);
#else
#define STORE_W(base) \
        UNR for (int q = 0; q < WQ; q++) \
            s4.v[((base) + ws0 + uint(q * wstep * SA)) >> 3] = CVT8(wr[q]);
#endif

#if (LAB & 32) != 0
#define B_COLMAJOR false
#else
#define B_COLMAJOR true
#endif
#if (LAB & 16) != 0
    fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> la[FM];
    fcoopmatNV<16, gl_ScopeSubgroup, 16, FRAG_N> lb[FN];
    UNR for (int i = 0; i < FM; i++) coopMatLoadNV(la[i], sh.h, uint((wm + i * 16) * SA), uint(SA), false);
    UNR for (int j = 0; j < FN; j++) coopMatLoadNV(lb[j], sh.h, uint((BM + wn + j * FRAG_N) * SA), uint(SA), true);
#endif
    int nk = pc.K / BK;
    if (nk > 0) {
        FETCH(0)
        STORE(0u)
        if (nk > 1) FETCH(BK)
        barrier();
        for (int t = 0; t < nk; t++) {
            uint st = uint(t) & 1u;
            if (t + 1 < nk) {   // registers hold slice t+1: into the free stage, then fetch slice t+2
                STORE(st ^ 1u)
                if (t + 2 < nk) FETCH((t + 2) * BK)
            }
            uint ab = st * uint(STAGE) + uint(wm * SA), bb = st * uint(STAGE) + uint((BM + wn) * SA);
#if (LAB & 16) != 0
            UNR for (int kk = 0; kk < BK; kk += 16)
                UNR for (int j = 0; j < FN; j++)
                    UNR for (int i = 0; i < FM; i++) acc[i][j] = coopMatMulAddNV(la[i], lb[j], acc[i][j]);
#else
            UNR for (int kk = 0; kk < BK && (LAB & 4) == 0; kk += 16) {
                fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> a[FM];
                UNR for (int i = 0; i < FM; i++)
                    coopMatLoadNV(a[i], sh.h, ab + uint(i * 16 * SA + kk), uint(SA), false);
                UNR for (int j = 0; j < FN; j++) {
                    fcoopmatNV<16, gl_ScopeSubgroup, 16, FRAG_N> b;
                    coopMatLoadNV(b, sh.h, bb + uint(j * FRAG_N * SA + kk), uint(SA), B_COLMAJOR);
                    UNR for (int i = 0; i < FM; i++) acc[i][j] = coopMatMulAddNV(a[i], b, acc[i][j]);
                }
            }
#endif
            barrier();   // slice t+1 visible; stage st free for slice t+2
        }
    }
    // epilogue: the last barrier above ended every read of the stages, which SC aliases
    uint lane = gl_SubgroupInvocationID;
    UNR for (int i = 0; i < FM; i++) {
        UNR for (int j = 0; j < FN; j++) {
#ifdef ACC16
            fcoopmatNV<32, gl_ScopeSubgroup, 16, FRAG_N> a32 = fcoopmatNV<32, gl_ScopeSubgroup, 16, FRAG_N>(acc[i][j]);
            coopMatStoreNV(a32, sc.c[sg], uint(j * FRAG_N), uint(WN), false);
#else
            coopMatStoreNV(acc[i][j], sc.c[sg], uint(j * FRAG_N), uint(WN), false);
#endif
        }
        subgroupBarrier();
        for (uint e = lane; e < uint(16 * WN); e += 32u) {
            int m = m0 + wm + i * 16 + int(e / uint(WN)), n = nb + wn + int(e % uint(WN));
            if (m < pc.M && n < pc.N) y_store(m, n, sc.c[sg][e]);
        }
        subgroupBarrier();
    }
}
