#version 450
// Each row's k best for sampling (QR_OP_TOPK; semantics: backends/cpu/cpu_ref_ops.c): v = x * inv_t[row] (NaN as
// -inf), the k best by (v descending, index ascending), written in that order.  One 256-thread workgroup per row, as
// kernels/topk.cu: a radix select in four 8-bit passes over order-preserving keys (-0 as +0) finds the k-th best key
// T and how many rank above it; one pass in index order takes the keys above T (any order) and the lowest-index
// keys equal to T (a workgroup scan per 256-element chunk, skipped once enough are taken); each candidate's place
// is the count of candidates ranking above it.
#extension GL_GOOGLE_include_directive : require
#include "pc/topk.h"
layout(local_size_x = 256) in;
#define KMAX 256
layout(std430, binding = 0) writeonly buffer I { int ids[]; };
layout(std430, binding = 1) writeonly buffer V { float vals[]; };
layout(std430, binding = 2) readonly buffer X { float x[]; };
layout(std430, binding = 3) readonly buffer T { float inv_t[]; };
shared uint hist[256];
shared uint s_prefix, s_need, s_gt, s_ngt, s_base;
shared uint scan[256];
shared float cv[KMAX];
shared int ci[KMAX];

float val(float xv, float it) { return isnan(xv) ? -1.0 / 0.0 : xv * it; }
uint key_of(float v) {
    uint b = floatBitsToUint(v == 0.0 ? 0.0 : v);
    return (b & 0x80000000u) != 0u ? ~b : (b | 0x80000000u);
}
bool above(float va, int ia, float vb, int ib) { return va > vb || (va == vb && ia < ib); }

void main() {
    uint tid = gl_LocalInvocationID.x, r = gl_WorkGroupID.x;
    uint base = uint(pc.x_off) + r * uint(pc.n);
    float it = inv_t[uint(pc.it_off) + r];
    if (tid == 0u) { s_prefix = 0u; s_need = uint(pc.k); s_gt = 0u; s_ngt = 0u; s_base = 0u; }
    for (int pass = 0; pass < 4; pass++) {
        int shift = 24 - 8 * pass;
        hist[tid] = 0u;
        barrier();
        uint prefix = s_prefix;
        uint pmask = pass == 0 ? 0u : (0xffffffffu << uint(32 - 8 * pass));
        for (int i = int(tid); i < pc.n; i += 256) {
            uint key = key_of(val(x[base + uint(i)], it));
            if ((key & pmask) == prefix) atomicAdd(hist[(key >> uint(shift)) & 255u], 1u);
        }
        barrier();
        if (tid == 0u) {
            uint need = s_need, cum = 0u;
            int d = 255;
            for (; d > 0; d--) {
                if (cum + hist[d] >= need) break;
                cum += hist[d];
            }
            s_gt += cum;
            s_need = need - cum;
            s_prefix = prefix | (uint(d) << uint(shift));
        }
        barrier();
    }
    uint T = s_prefix, need_eq = s_need, n_gt = s_gt;
    for (int c0 = 0; c0 < pc.n; c0 += 256) {
        int i = c0 + int(tid);
        float v = 0.0;
        uint key = 0u;
        if (i < pc.n) { v = val(x[base + uint(i)], it); key = key_of(v); }
        if (i < pc.n && key > T) {
            uint p = atomicAdd(s_ngt, 1u);
            cv[p] = v; ci[p] = i;
        }
        bool want = s_base < need_eq;   // uniform: s_base changes only between the barriers below
        if (want) {
            uint eq = (i < pc.n && key == T) ? 1u : 0u;
            scan[tid] = eq;
            barrier();
            for (uint o = 1u; o < 256u; o <<= 1) {   // inclusive scan
                uint add = tid >= o ? scan[tid - o] : 0u;
                barrier();
                scan[tid] += add;
                barrier();
            }
            uint before = s_base + scan[tid] - eq;
            if (eq == 1u && before < need_eq) { cv[n_gt + before] = v; ci[n_gt + before] = i; }
            barrier();
            if (tid == 0u) s_base += scan[255];
        }
        barrier();
        if (s_base >= need_eq && s_ngt >= n_gt) break;
        barrier();
    }
    barrier();
    if (int(tid) < pc.k) {
        float v = cv[tid];
        int i = ci[tid];
        int place = 0;
        for (int j = 0; j < pc.k; j++) place += above(cv[j], ci[j], v, i) ? 1 : 0;
        ids[uint(pc.ids_off) + r * uint(pc.k) + uint(place)] = i;
        vals[uint(pc.vals_off) + r * uint(pc.k) + uint(place)] = v;
    }
}
