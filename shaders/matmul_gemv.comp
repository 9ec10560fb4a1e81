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

void main() {
    int m_base = int(gl_WorkGroupID.y) * MMAX;
    int nm = min(MMAX, pc.M - m_base);
    uint lane = gl_SubgroupInvocationID, S = gl_SubgroupSize;
    uint xr[MMAX];
    for (int m = 0; m < MMAX; m++) xr[m] = m < nm ? x_row(m_base + m) : 0u;
    uint K = uint(pc.K);
    for (uint r = gl_SubgroupID; r < RPW; r += gl_NumSubgroups) {
        int n = int(gl_WorkGroupID.x * RPW + r);
        if (n >= pc.N) break;
        float acc[MMAX];
        for (int m = 0; m < MMAX; m++) acc[m] = 0.0;
        uint wrow = uint(pc.w_off) + uint(n) * K;
        if ((pc.flags & QR_MM_VEC) != 0) {
            for (uint k = lane * W_VEC_ELEMS; k < K; k += S * W_VEC_ELEMS) {
#if W_TYPE == QR_PC_F32
                vec4 wa; w_vec(wrow + k, wa);
                for (int m = 0; m < MMAX; m++) {
                    if (m >= nm) break;
                    acc[m] += dot(wa, xv[(xr[m] + k) >> 2]);
                }
#else
                vec4 wa, wb; w_vec8(wrow + k, wa, wb);
                for (int m = 0; m < MMAX; m++) {
                    if (m >= nm) break;
                    uint xe = (xr[m] + k) >> 2;
                    acc[m] += dot(wa, xv[xe]) + dot(wb, xv[xe + 1u]);
                }
#endif
            }
        } else {
            for (uint k = lane; k < K; k += S) {
                float wk = w_scalar(wrow + k);
                for (int m = 0; m < MMAX; m++) {
                    if (m >= nm) break;
                    acc[m] += wk * xs[xr[m] + k];
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
