#version 450
// GEMV for small M (decode): y[m, n] = x[m, :] . W[n, :]  (F.linear), m < 8
// per workgroup row.  One subgroup per output column n: its lanes stride
// over K with 16-byte loads (8 bf16/f16 or 4 f32 weights), then subgroupAdd.
// No shared memory, no barriers.  RPW = columns per workgroup = 128 / SG.
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#include "pc/matmul.h"
#include "include/common.glsl"
layout(local_size_x = 128) in;
layout(constant_id = 0) const uint SG = 32;
const uint RPW = 128u / SG;
#include "include/mm_io.glsl"
#include "include/wload.glsl"

#define MMAX 8
layout(std430, binding = 7) writeonly buffer XO { float act[]; };

void main() {
    int m_base = int(gl_WorkGroupID.y) * MMAX;
    int nm = min(MMAX, pc.M - m_base);
    uint lane = gl_SubgroupInvocationID, S = gl_SubgroupSize;
    uint xr[MMAX];
    for (int m = 0; m < MMAX; m++) xr[m] = m < nm ? x_row(m_base + m) : 0u;
    uint K = uint(pc.K);
    if ((pc.flags & QR_MM_SILU) != 0 && gl_WorkGroupID.x == 0u) {
        // the fused SwiGLU output is also stored, for any later reader
        for (int m = 0; m < MMAX; m++) {
            if (m >= nm) break;
            for (uint k = gl_LocalInvocationID.x; k < K; k += 128u)
                act[uint(pc.act_off) + uint(m_base + m) * uint(pc.ld_act) + k] = x_scalar(xr[m] + k);
        }
    }
    for (uint r = gl_SubgroupID; r < RPW; r += gl_NumSubgroups) {
        int n = int(gl_WorkGroupID.x * RPW + r);
        if (n >= pc.N) break;
        float acc[MMAX];
        for (int m = 0; m < MMAX; m++) acc[m] = 0.0;
        uint wrow = uint(pc.w_off) + uint(n) * K;
        if ((pc.flags & QR_MM_VEC) != 0) {
            // unrolled by U: U independent 16-byte weight loads in flight per lane
            const uint U = 4u;
            uint step = S * W_VEC_ELEMS;
            uint k = lane * W_VEC_ELEMS;
            for (; k + (U - 1u) * step < K; k += U * step) {
#if W_TYPE == QR_PC_F32
                vec4 wa[U];
                for (uint u = 0u; u < U; u++) w_vec(wrow + k + u * step, wa[u]);
                for (uint u = 0u; u < U; u++)
                    for (int m = 0; m < MMAX; m++) {
                        if (m >= nm) break;
                        acc[m] += dot(wa[u], x_vec4(xr[m] + k + u * step));
                    }
#else
                vec4 wa[U], wb[U];
                for (uint u = 0u; u < U; u++) w_vec8(wrow + k + u * step, wa[u], wb[u]);
                for (uint u = 0u; u < U; u++)
                    for (int m = 0; m < MMAX; m++) {
                        if (m >= nm) break;
                        uint xe = xr[m] + k + u * step;
                        acc[m] += dot(wa[u], x_vec4(xe)) + dot(wb[u], x_vec4(xe + 4u));
                    }
#endif
            }
            for (; k < K; k += step) {
#if W_TYPE == QR_PC_F32
                vec4 wa; w_vec(wrow + k, wa);
                for (int m = 0; m < MMAX; m++) {
                    if (m >= nm) break;
                    acc[m] += dot(wa, x_vec4(xr[m] + k));
                }
#else
                vec4 wa, wb; w_vec8(wrow + k, wa, wb);
                for (int m = 0; m < MMAX; m++) {
                    if (m >= nm) break;
                    uint xe = xr[m] + k;
                    acc[m] += dot(wa, x_vec4(xe)) + dot(wb, x_vec4(xe + 4u));
                }
#endif
            }
        } else {
            for (uint k = lane; k < K; k += S) {
                float wk = w_scalar(wrow + k);
                for (int m = 0; m < MMAX; m++) {
                    if (m >= nm) break;
                    acc[m] += wk * x_scalar(xr[m] + k);
                }
            }
        }
        for (int m = 0; m < MMAX; m++) {
            if (m >= nm) break;
            float s = subgroupAdd(acc[m]);
            if (lane == 0u) y_store(m_base + m, n, s);
        }
    }
}
