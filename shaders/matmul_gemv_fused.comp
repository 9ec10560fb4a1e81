#version 450
// Decode GEMV with the neighbours of the matmul folded in (the vector path of
// matmul_gemv.comp: one subgroup per output column, U 16-byte weight loads in
// flight per lane, MR rows of x per workgroup):
//   QR_MM_NORM: x is the RMSNorm input.  Each subgroup sums x^2 over its row
//     while it streams the weights, multiplies x by the norm weight g, and
//     scales the dot product by 1 / sqrt(mean(x^2) + eps) after the sum.
//     Workgroup 0 also writes the norm output h = g * (x * r) for any later
//     reader (Qwen2's separate k and v projections).
//     The norm output is written in slices, one per workgroup (a few
//     elements each), so no workgroup carries a serial tail.
//   QR_MM_GLU: gate_up.  The first RPW / 2 subgroups of a workgroup compute
//     gate rows n (W), the others the up rows n (W2) of the same columns, each
//     one row exactly as the plain GEMV does (U loads in flight, no second
//     weight stream per subgroup); the up sums go through shared memory and
//     the gate subgroups store gate, up (columns n and N + n of y, as the
//     unfused GEMV would) and act[m, n] = silu(gate) * up (silu_mul.comp's
//     formula), so the SwiGLU pass disappears.  Needs RPW >= 2 and all N gate
//     columns in one dispatch (the host checks).
//   NORM_SH (variant matmul_gemvn1: MR = 1, QR_MM_NORM without QR_MM_GLU, K <= KMAX, 256-thread workgroups): the
//     workgroup stages g * x once in shared memory and sums x^2 while each subgroup's first round of weight loads
//     is in flight; every subgroup then runs the plain GEMV's loop on the staged row (no norm-weight loads or x^2
//     sums per weight word) and scales its dot product by 1 / rms.  QR_VK_GEMV_NORM_SH=1 (with QR_VK_FUSE_GEMV).
// Needs 16-byte aligned x rows, weights and norm weight (the host checks).
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_EXT_control_flow_attributes : require
#include "pc/matmul.h"
#include "include/common.glsl"
#ifndef WG
#define WG 128
#endif
layout(local_size_x = WG) in;
layout(constant_id = 0) const uint SG = 32;
const uint RPW = uint(WG) / SG;
#include "include/mm_io.glsl"
#include "include/wload.glsl"

#ifndef MR
#define MR 1
#endif
#define U 8u
layout(std430, binding = 7) writeonly buffer ACT { float act[]; };
layout(std430, binding = 8) readonly buffer GV { uvec4 gv[]; };
layout(std430, binding = 9) writeonly buffer H { float hout[]; };
layout(std430, binding = 10) readonly buffer WV2 { uvec4 wv2[]; };
const uint HALF = RPW / 2u;   // QR_MM_GLU: gate subgroups per workgroup
shared float sh_up[MR][RPW];

// norm weights k .. k+3 (k a multiple of 4)
vec4 g4(uint k) {
    uint e = uint(pc.g_off) + k;
    if (pc.gtype == QR_PC_F32) return uintBitsToFloat(gv[e >> 2]);
    uvec4 u = gv[e >> 3];
    uvec2 p = (e & 4u) != 0u ? u.zw : u.xy;
    if (pc.gtype == QR_PC_BF16) return vec4(qr_bf16_lo(p.x), qr_bf16_hi(p.x), qr_bf16_lo(p.y), qr_bf16_hi(p.y));
    return vec4(unpackHalf2x16(p.x), unpackHalf2x16(p.y));
}
float g1(uint k) {
    vec4 v = g4(k & ~3u);
    return v[k & 3u];
}

#ifdef NORM_SH
#define KMAX 4096u
shared vec4 sh_gx[KMAX / 4u];   // g * x of the one row
shared float sh_ss[64];         // per-subgroup sums of x^2 (WG / SG <= 64)
// KSPLIT (matmul_gemvn1k<KS>, QR_VK_GEMV_KSPLIT): KS subgroups per output row, part p taking 16-byte slots p, p + KS,
// ... (one round of U loads per lane for K <= KS * U * SG * 8); partials meet in shared memory, added in part order
#ifndef KSPLIT
#define KSPLIT 1
#endif
#if KSPLIT > 1
shared float sh_part[64];
#endif
// NROWS2 (matmul_gemvn1r2, the default; gemvn1r4 lab: RPS = 4): RPS (2) adjacent output rows per subgroup, NROWS2
// loads of each in flight per round, one g * x read from shared memory serving all; each row's sums keep the one-row
// order (same bits)
// GLU_PAIR (matmul_gemvn1g, with NROWS2; QR_MM_NORM | QR_MM_GLU, one row of x): the subgroup's two rows are the gate
// row n (W) and the up row n (W2) of one column, so it stores gate, up and act = silu(gate) * up itself (the GLU
// fold's outputs and formula above) with no exchange between subgroups; the SwiGLU pass disappears
#ifdef NROWS2
#ifdef GLU_PAIR
#define NR 2
#elif defined(RPS)
#define NR RPS
#else
#define NR 2
#endif
#define UR uint(NROWS2)
#if KSPLIT > 1
#error "NROWS2 with KSPLIT"
#endif
#else
#define NR 1
#define UR U
#endif
#ifdef GLU_PAIR
#define WLOAD(q, e) ((q) == 0 ? wv[(e) / W_VEC_ELEMS] : wv2[(e) / W_VEC_ELEMS])
#else
#define WLOAD(q, e) wv[(e) / W_VEC_ELEMS]
#endif

void main() {
    uint lane = gl_SubgroupInvocationID, sg = gl_SubgroupID, tid = gl_LocalInvocationID.x;
    uint K = uint(pc.K), xr0 = x_row(0);
    uint part = sg % uint(KSPLIT);
#ifdef GLU_PAIR
    int n = int(gl_WorkGroupID.x * RPW + sg);   // one column: gate row n of W, up row n of W2
#else
    int n = int(gl_WorkGroupID.x * (RPW / uint(KSPLIT)) + sg / uint(KSPLIT)) * NR;
#endif
    // every subgroup stages and reaches the barrier; only live ones load weights and store
    bool live = sg < RPW && n < pc.N;
    uint wrow[NR];
#ifdef GLU_PAIR
    wrow[0] = uint(pc.w_off) + uint(live ? n : 0) * K;
    wrow[1] = uint(pc.w2_off) + uint(live ? n : 0) * K;
#else
    [[unroll]] for (int q = 0; q < NR; q++) wrow[q] = uint(pc.w_off) + uint(live ? min(n + q, pc.N - 1) : 0) * K;
#endif
    const uint step = uint(KSPLIT) * SG * W_VEC_ELEMS, kfirst = (part * SG + lane) * W_VEC_ELEMS;
    uvec4 wq[NR][UR];
    [[unroll]] for (int q = 0; q < NR; q++)
        [[unroll]] for (uint u = 0u; u < UR; u++) {   // round 0 in flight under the staging
            uint k = kfirst + u * step;
            wq[q][u] = live && k < K ? WLOAD(q, wrow[q] + k) : uvec4(0u);
        }
    float ss = 0.0;
    for (uint i = tid; i < K / 4u; i += uint(WG)) {
        vec4 v = xv[(xr0 >> 2) + i];
        ss += dot(v, v);
        sh_gx[i] = v * g4(4u * i);
    }
    ss = subgroupAdd(ss);
    if (subgroupElect()) sh_ss[sg] = ss;
    barrier();
    float tot = 0.0;
    for (uint i = 0u; i < gl_NumSubgroups; i++) tot += sh_ss[i];
    float r = 1.0 / sqrt(tot / float(pc.K) + pc.eps);
    float acc[NR];
    [[unroll]] for (int q = 0; q < NR; q++) acc[q] = 0.0;
    if (live) {
        for (uint k0 = kfirst; k0 < K; k0 += UR * step) {
            if (k0 >= kfirst + UR * step) {
                [[unroll]] for (int q = 0; q < NR; q++)
                    [[unroll]] for (uint u = 0u; u < UR; u++) {
                        uint k = k0 + u * step;
                        wq[q][u] = k < K ? WLOAD(q, wrow[q] + k) : uvec4(0u);
                    }
            }
            [[unroll]] for (uint u = 0u; u < UR; u++) {
                uint k = k0 + u * step;
                if (k < K) {
#if W_TYPE == QR_PC_F32
                    vec4 ga = sh_gx[k >> 2];
                    [[unroll]] for (int q = 0; q < NR; q++) acc[q] += dot(uintBitsToFloat(wq[q][u]), ga);
#else
                    vec4 ga = sh_gx[k >> 2], gb = sh_gx[(k >> 2) + 1u], wa, wb;
                    [[unroll]] for (int q = 0; q < NR; q++) {
                        w_unpack8(wq[q][u], wa, wb);
                        acc[q] += dot(wa, ga) + dot(wb, gb);
                    }
#endif
                }
            }
        }
    }
#if KSPLIT > 1
    float sp = subgroupAdd(acc[0]);
    if (lane == 0u && sg < RPW) sh_part[sg] = sp;
    barrier();
    if (live && part == 0u && lane == 0u) {
        float t = sh_part[sg];
        for (uint p = 1u; p < uint(KSPLIT); p++) t += sh_part[sg + p];
        y_store(0, n, t * r);
    }
#elif defined(GLU_PAIR)
    if (live) {
        float sg_gate = subgroupAdd(acc[0]) * r, sg_up = subgroupAdd(acc[1]) * r;
        if (lane == 0u) {
            int col = pc.n0 + n;
            float gate = y_value(0, col, sg_gate), upv = y_value(0, col + pc.N, sg_up);
            y[uint(pc.y_off) + uint(col)] = gate;
            y[uint(pc.y_off) + uint(col + pc.N)] = upv;
            act[uint(pc.act_off) + uint(col)] = gate / (1.0 + exp(-gate)) * upv;
        }
    }
#else
    if (live) {
        [[unroll]] for (int q = 0; q < NR; q++) {
            float s = subgroupAdd(acc[q]) * r;
            if (lane == 0u && n + q < pc.N) y_store(0, n + q, s);
        }
    }
#endif
    // the norm output for later readers, a slice of K per workgroup (matmul_gemvf's formula and bits)
    if (pc.n0 == 0) {
        uint part = (K + gl_NumWorkGroups.x - 1u) / gl_NumWorkGroups.x;
        uint lo = gl_WorkGroupID.x * part, hi = min(K, lo + part);
        for (uint k = lo + tid; k < hi; k += uint(WG)) hout[uint(pc.h_off) + k] = g1(k) * (xs[xr0 + k] * r);
    }
}
#else
void main() {
    int m_base = int(gl_WorkGroupID.y) * MR;
    int nm = min(MR, pc.M - m_base);
    uint lane = gl_SubgroupInvocationID, sg = gl_SubgroupID;
    bool norm = (pc.flags & QR_MM_NORM) != 0, glu = (pc.flags & QR_MM_GLU) != 0;
    uint xr[MR];
    [[unroll]] for (int m = 0; m < MR; m++) xr[m] = x_row(m_base + min(m, nm - 1));
    uint K = uint(pc.K);
    // GLU: subgroups HALF.. take the up rows of the gate subgroups' columns
    bool up = glu && sg >= HALF;
    uint cols = glu ? HALF : RPW;
    int n = int(gl_WorkGroupID.x * cols + (up ? sg - HALF : sg));
    bool live = sg < (glu ? 2u * HALF : RPW) && n < pc.N;
    if (!glu && !live) return;   // (GLU: every subgroup reaches the barrier below)
    float acc[MR], ss[MR];
    [[unroll]] for (int m = 0; m < MR; m++) { acc[m] = 0.0; ss[m] = 0.0; }
    uint wrow = (up ? uint(pc.w2_off) : uint(pc.w_off)) + uint(max(n, 0)) * K;
    const uint step = SG * W_VEC_ELEMS;
    if (live) {
        for (uint k0 = lane * W_VEC_ELEMS; k0 < K; k0 += U * step) {
            uvec4 wq[U];
            if (up) {
                [[unroll]] for (uint u = 0u; u < U; u++) {
                    uint k = k0 + u * step;
                    wq[u] = k < K ? wv2[(wrow + k) / W_VEC_ELEMS] : uvec4(0u);
                }
            } else {
                [[unroll]] for (uint u = 0u; u < U; u++) {
                    uint k = k0 + u * step;
                    wq[u] = k < K ? wv[(wrow + k) / W_VEC_ELEMS] : uvec4(0u);
                }
            }
            [[unroll]] for (uint u = 0u; u < U; u++) {
                uint k = k0 + u * step;
                if (k < K) {
#if W_TYPE == QR_PC_F32
                    vec4 ga = norm ? g4(k) : vec4(1.0);
                    vec4 wa = uintBitsToFloat(wq[u]);
                    [[unroll]] for (int m = 0; m < MR; m++) {
                        vec4 xa = xv[(xr[m] + k) >> 2];
                        ss[m] += dot(xa, xa);
                        acc[m] += dot(wa, xa * ga);
                    }
#else
                    vec4 ga = vec4(1.0), gb = vec4(1.0);
                    if (norm) { ga = g4(k); gb = g4(k + 4u); }
                    vec4 wa, wb;
                    w_unpack8(wq[u], wa, wb);
                    [[unroll]] for (int m = 0; m < MR; m++) {
                        vec4 xa = xv[(xr[m] + k) >> 2], xb = xv[(xr[m] + k + 4u) >> 2];
                        ss[m] += dot(xa, xa) + dot(xb, xb);
                        acc[m] += dot(wa, xa * ga) + dot(wb, xb * gb);
                    }
#endif
                }
            }
        }
    }
    float r[MR];
    [[unroll]] for (int m = 0; m < MR; m++) {
        r[m] = norm ? 1.0 / sqrt(subgroupAdd(ss[m]) / float(pc.K) + pc.eps) : 1.0;
        float s = subgroupAdd(acc[m]) * r[m];
        int row = m_base + m, col = pc.n0 + n;
        if (!glu) {
            if (m < nm && lane == 0u) y[uint(pc.y_off) + uint(row) * uint(pc.ldy) + uint(col)] = y_value(row, col, s);
            continue;
        }
        if (up && live && lane == 0u) sh_up[m][sg - HALF] = y_value(row, col + pc.N, s);
        barrier();
        if (!up && live && m < nm && lane == 0u) {
            float gate = y_value(row, col, s), upv = sh_up[m][sg];
            uint yo = uint(pc.y_off) + uint(row) * uint(pc.ldy);
            y[yo + uint(col)] = gate;
            y[yo + uint(col + pc.N)] = upv;
            act[uint(pc.act_off) + uint(row) * uint(pc.ld_act) + uint(col)] = gate / (1.0 + exp(-gate)) * upv;
        }
    }
    // the norm output, for readers after this node: a slice of K per workgroup, written by its subgroup 0 (always
    // live: the grid has ceil(N / cols) workgroups)
    if (norm && sg == 0u && pc.n0 == 0) {
        uint part = (K + gl_NumWorkGroups.x - 1u) / gl_NumWorkGroups.x;
        uint lo = gl_WorkGroupID.x * part, hi = min(K, lo + part);
        [[unroll]] for (int m = 0; m < MR; m++) {
            if (m < nm) {
                uint ho = uint(pc.h_off) + uint(m_base + m) * uint(pc.ld_h);
                for (uint k = lo + lane; k < hi; k += SG) hout[ho + k] = g1(k) * (xs[xr[m] + k] * r[m]);
            }
        }
    }
}
#endif
