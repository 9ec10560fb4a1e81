#version 450
// Decode GEMV with the neighbours of the matmul folded in (the vector path of
// matmul_gemv.comp: one subgroup per output column, U 16-byte weight loads in
// flight per lane, MR rows of x per workgroup):
//   QR_MM_NORM: x is the RMSNorm input.  Each subgroup sums x^2 over its row
//     while it streams the weights, multiplies x by the norm weight g, and
//     scales the dot product by 1 / sqrt(mean(x^2) + eps) after the sum.
//     Workgroup 0 also writes the norm output h = g * (x * r) for any later
//     reader (Qwen2's separate k and v projections).
//   QR_MM_GLU: gate_up.  Subgroup n computes gate row n (W) and up row n (W2)
//     with the same x loads, stores both into y (columns n and N + n, as the
//     unfused GEMV would) and act[m, n] = silu(gate) * up (silu_mul.comp's
//     formula), so the SwiGLU pass disappears.
// Needs 16-byte aligned x rows, weights and norm weight (the host checks).
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_EXT_control_flow_attributes : require
#include "pc/matmul.h"
#include "include/common.glsl"
layout(local_size_x = 128) in;
layout(constant_id = 0) const uint SG = 32;
const uint RPW = 128u / SG;
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

void main() {
    int m_base = int(gl_WorkGroupID.y) * MR;
    int nm = min(MR, pc.M - m_base);
    uint lane = gl_SubgroupInvocationID;
    bool norm = (pc.flags & QR_MM_NORM) != 0, glu = (pc.flags & QR_MM_GLU) != 0;
    uint xr[MR];
    [[unroll]] for (int m = 0; m < MR; m++) xr[m] = x_row(m_base + min(m, nm - 1));
    uint K = uint(pc.K);
    int n = int(gl_WorkGroupID.x * RPW + gl_SubgroupID);
    int n_active = min(int(RPW), pc.N - int(gl_WorkGroupID.x * RPW));
    if (gl_SubgroupID >= RPW || n >= pc.N) return;
    float acc[MR], acc2[MR], ss[MR];
    [[unroll]] for (int m = 0; m < MR; m++) { acc[m] = 0.0; acc2[m] = 0.0; ss[m] = 0.0; }
    uint wrow = uint(pc.w_off) + uint(n) * K, wrow2 = uint(pc.w2_off) + uint(n) * K;
    const uint step = SG * W_VEC_ELEMS;
    for (uint k0 = lane * W_VEC_ELEMS; k0 < K; k0 += U * step) {
        uvec4 wq[U], wq2[U];
        [[unroll]] for (uint u = 0u; u < U; u++) {
            uint k = k0 + u * step;
            wq[u] = k < K ? wv[(wrow + k) / W_VEC_ELEMS] : uvec4(0u);
        }
        [[unroll]] for (uint u = 0u; u < U; u++) {
            uint k = k0 + u * step;
            wq2[u] = glu && k < K ? wv2[(wrow2 + k) / W_VEC_ELEMS] : uvec4(0u);
        }
        [[unroll]] for (uint u = 0u; u < U; u++) {
            uint k = k0 + u * step;
            if (k < K) {
#if W_TYPE == QR_PC_F32
                vec4 ga = norm ? g4(k) : vec4(1.0);
                vec4 wa = uintBitsToFloat(wq[u]), w2a = uintBitsToFloat(wq2[u]);
                [[unroll]] for (int m = 0; m < MR; m++) {
                    vec4 xa = xv[(xr[m] + k) >> 2];
                    ss[m] += dot(xa, xa);
                    xa *= ga;
                    acc[m] += dot(wa, xa);
                    if (glu) acc2[m] += dot(w2a, xa);
                }
#else
                vec4 ga = vec4(1.0), gb = vec4(1.0);
                if (norm) { ga = g4(k); gb = g4(k + 4u); }
                vec4 wa, wb, w2a = vec4(0.0), w2b = vec4(0.0);
                w_unpack8(wq[u], wa, wb);
                if (glu) w_unpack8(wq2[u], w2a, w2b);
                [[unroll]] for (int m = 0; m < MR; m++) {
                    vec4 xa = xv[(xr[m] + k) >> 2], xb = xv[(xr[m] + k + 4u) >> 2];
                    ss[m] += dot(xa, xa) + dot(xb, xb);
                    xa *= ga;
                    xb *= gb;
                    acc[m] += dot(wa, xa) + dot(wb, xb);
                    if (glu) acc2[m] += dot(w2a, xa) + dot(w2b, xb);
                }
#endif
            }
        }
    }
    float r[MR];
    [[unroll]] for (int m = 0; m < MR; m++) {
        r[m] = norm ? 1.0 / sqrt(subgroupAdd(ss[m]) / float(pc.K) + pc.eps) : 1.0;
        float s = subgroupAdd(acc[m]) * r[m];
        float s2 = glu ? subgroupAdd(acc2[m]) * r[m] : 0.0;
        if (m < nm && lane == 0u) {
            int row = m_base + m, col = pc.n0 + n;
            float gate = y_value(row, col, s);
            y[uint(pc.y_off) + uint(row) * uint(pc.ldy) + uint(col)] = gate;
            if (glu) {
                float up = y_value(row, col + pc.N, s2);
                y[uint(pc.y_off) + uint(row) * uint(pc.ldy) + uint(col + pc.N)] = up;
                act[uint(pc.act_off) + uint(row) * uint(pc.ld_act) + uint(col)] = gate / (1.0 + exp(-gate)) * up;
            }
        }
    }
    // the norm output, for readers after this node: the active subgroups of workgroup 0 share the rows
    if (norm && gl_WorkGroupID.x == 0u && pc.n0 == 0) {
        uint part = (K + uint(n_active) - 1u) / uint(n_active);
        uint lo = uint(n) * part, hi = min(K, lo + part);
        [[unroll]] for (int m = 0; m < MR; m++) {
            if (m < nm) {
                uint ho = uint(pc.h_off) + uint(m_base + m) * uint(pc.ld_h);
                for (uint k = lo + lane; k < hi; k += SG) hout[ho + k] = g1(k) * (xs[xr[m] + k] * r[m]);
            }
        }
    }
}
