#version 450
// RMSNorm (Qwen3RMSNorm / Qwen2RMSNorm), also the per-head q/k norm:
// out = w * (x / sqrt(mean(x^2) + eps)), f32 math.  One workgroup per (head, token).
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#include "pc/rmsnorm.h"
#include "include/common.glsl"
layout(local_size_x = 256) in;
layout(std430, binding = 0) buffer O { float o[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) readonly buffer W { uint w[]; };
shared float red[256];

void main() {
    uint j = gl_WorkGroupID.x, t = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x;
    uint xb = uint(pc.x_off) + t * uint(pc.ldx) + j * uint(pc.n);
    uint ob = uint(pc.out_off) + t * uint(pc.ldout) + j * uint(pc.n);
    float s = 0.0;
    for (uint i = tid; i < uint(pc.n); i += 256u) { float v = x[xb + i]; s += v * v; }
    s = subgroupAdd(s);
    if (subgroupElect()) red[gl_SubgroupID] = s;
    barrier();
    if (tid == 0u) {
        float tot = 0.0;
        for (uint k = 0u; k < gl_NumSubgroups; k++) tot += red[k];
        red[0] = tot;
    }
    barrier();
    float r = 1.0 / sqrt(red[0] / float(pc.n) + pc.eps);
    for (uint i = tid; i < uint(pc.n); i += 256u) {
        float v = x[xb + i];
        o[ob + i] = QR_LOAD_ANY(w, uint(pc.w_off) + i, pc.wtype) * (v * r);
    }
}
