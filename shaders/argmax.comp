#version 450
// out[r] = argmax_j x[r, j], lowest index on ties; NaNs are skipped (a row of
// NaNs gives 0), as the CPU reference.  Workgroup = (chunk of
// QR_ARGMAX_CHUNK elements, row): each thread issues its 16 loads at once,
// keeps the best of its (ascending) elements, then a tree in shared memory.
// Long rows take two dispatches: mode 1 writes one (value, index) per chunk,
// mode 2 reduces them; mode 0 (a single chunk) writes the index directly.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "pc/argmax.h"
layout(local_size_x = 256) in;
#define PER (QR_ARGMAX_CHUNK / 256)
#define NONE 0x7FFFFFFF
layout(std430, binding = 0) writeonly buffer O { int o[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) buffer P { uvec2 pt[]; };   // (value bits, index) per (row, chunk)
shared float sv[256];
shared int si[256];

// (ov, oi) beats (v, i): a valid index, then the larger value, then the lower index
bool beats(float ov, int oi, float v, int i) {
    return oi != NONE && (i == NONE || ov > v || (ov == v && oi < i));
}

void main() {
    uint tid = gl_LocalInvocationID.x, c = gl_WorkGroupID.x, r = gl_WorkGroupID.y;
    float bv = -1.0 / 0.0;
    int bi = NONE;
    if (pc.mode == 2) {
        for (int k = int(tid); k < pc.n_chunk; k += 256) {
            uvec2 e = pt[r * uint(pc.n_chunk) + uint(k)];
            float v = uintBitsToFloat(e.x);
            if (beats(v, int(e.y), bv, bi)) { bv = v; bi = int(e.y); }
        }
    } else {
        uint base = uint(pc.x_off) + r * uint(pc.n);
        int j0 = int(c) * QR_ARGMAX_CHUNK + int(tid);
        float v[PER];
        [[unroll]] for (int u = 0; u < PER; u++) {
            int j = j0 + u * 256;
            v[u] = j < pc.n ? x[base + uint(j)] : 0.0;
        }
        [[unroll]] for (int u = 0; u < PER; u++) {
            int j = j0 + u * 256;
            if (j < pc.n && !isnan(v[u]) && (bi == NONE || v[u] > bv)) { bv = v[u]; bi = j; }
        }
    }
    sv[tid] = bv; si[tid] = bi;
    barrier();
    for (uint s = 128u; s > 0u; s >>= 1) {
        if (tid < s && beats(sv[tid + s], si[tid + s], sv[tid], si[tid])) {
            sv[tid] = sv[tid + s]; si[tid] = si[tid + s];
        }
        barrier();
    }
    if (tid == 0u) {
        if (pc.mode == 1) pt[r * uint(pc.n_chunk) + c] = uvec2(floatBitsToUint(sv[0]), uint(si[0]));
        else o[pc.out_off + int(r)] = si[0] == NONE ? 0 : si[0];
    }
}
