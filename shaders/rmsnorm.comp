#version 450
// RMSNorm (Qwen3RMSNorm / Qwen2RMSNorm), also the per-head q/k norm:
// out = w * (x / sqrt(mean(x^2) + eps)), f32 math.  One workgroup per (head, token).
// Rows up to RC * 256 elements are read once into registers with all loads in
// flight (a decode row is latency-bound: no serial load -> use loop); longer
// rows re-read the rest.  PREFETCH_W: the norm weights of the register-cached part
// are loaded with x, before the reduction, so a decode row costs one memory
// round trip before the store instead of two (same arithmetic, same bits).
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_EXT_control_flow_attributes : require
#include "pc/rmsnorm.h"
#include "include/common.glsl"
layout(local_size_x = 256) in;
#define RC 16
layout(std430, binding = 0) buffer O { float o[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) readonly buffer W { uint w[]; };
shared float red[256];

void main() {
    uint j = gl_WorkGroupID.x, t = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x;
    uint n = uint(pc.n);
    uint xb = uint(pc.x_off) + t * uint(pc.ldx) + j * n;
    uint ob = uint(pc.out_off) + t * uint(pc.ldout) + j * n;
    float xr[RC];
    [[unroll]] for (uint u = 0u; u < RC; u++) {
        uint i = tid + u * 256u;
        xr[u] = i < n ? x[xb + i] : 0.0;
    }
#ifdef PREFETCH_W
    float wr[RC];
    [[unroll]] for (uint u = 0u; u < RC; u++) {
        uint i = tid + u * 256u;
        wr[u] = i < n ? QR_LOAD_ANY(w, uint(pc.w_off) + i, pc.wtype) : 0.0;
    }
#endif
    float s = 0.0;
    [[unroll]] for (uint u = 0u; u < RC; u++) s += xr[u] * xr[u];
    for (uint i = tid + RC * 256u; i < n; i += 256u) { float v = x[xb + i]; s += v * v; }
    s = subgroupAdd(s);
    if (subgroupElect()) red[gl_SubgroupID] = s;
    barrier();
    float tot = 0.0;
    for (uint k = 0u; k < gl_NumSubgroups; k++) tot += red[k];
    float r = 1.0 / sqrt(tot / float(pc.n) + pc.eps);
    [[unroll]] for (uint u = 0u; u < RC; u++) {
        uint i = tid + u * 256u;
#ifdef PREFETCH_W
        if (i < n) o[ob + i] = wr[u] * (xr[u] * r);
#else
        if (i < n) o[ob + i] = QR_LOAD_ANY(w, uint(pc.w_off) + i, pc.wtype) * (xr[u] * r);
#endif
    }
    for (uint i = tid + RC * 256u; i < n; i += 256u) {
        float v = x[xb + i];
        o[ob + i] = QR_LOAD_ANY(w, uint(pc.w_off) + i, pc.wtype) * (v * r);
    }
}
