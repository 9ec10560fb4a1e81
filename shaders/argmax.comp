#version 450
// out[r] = argmax_j x[r, j], lowest index on ties; NaNs are skipped.
#extension GL_GOOGLE_include_directive : require
#include "pc/argmax.h"
layout(local_size_x = 256) in;
layout(std430, binding = 0) writeonly buffer O { int o[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
shared float sv[256];
shared int si[256];
void main() {
    uint r = gl_WorkGroupID.x, tid = gl_LocalInvocationID.x;
    float bv = -1.0 / 0.0; int bi = 0x7FFFFFFF;
    uint base = uint(pc.x_off) + r * uint(pc.n);
    for (int j = int(tid); j < pc.n; j += 256) {
        float v = x[base + uint(j)];
        if (v > bv || (bi == 0x7FFFFFFF && !isnan(v))) { bv = v; bi = j; }
    }
    sv[tid] = bv; si[tid] = bi;
    barrier();
    for (uint s = 128u; s > 0u; s >>= 1) {
        if (tid < s) {
            float ov = sv[tid + s]; int oi = si[tid + s];
            if (oi != 0x7FFFFFFF && (si[tid] == 0x7FFFFFFF || ov > sv[tid] || (ov == sv[tid] && oi < si[tid]))) {
                sv[tid] = ov; si[tid] = oi;
            }
        }
        barrier();
    }
    if (tid == 0u) o[pc.out_off + int(r)] = si[0] == 0x7FFFFFFF ? 0 : si[0];
}
