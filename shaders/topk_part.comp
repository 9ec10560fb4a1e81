#version 450
// The split form of each row's k best for sampling (QR_OP_TOPK; semantics: backends/cpu/cpu_ref_ops.c; the algorithm
// of kernels/topk.cu): v = x * inv_t[row] (one f32 multiply, NaN as -inf), the k best by (v descending, index
// ascending), written in that order.  Keys are order-preserving maps of v (-0 and +0 one key, as the float compare
// has them equal); (key, index) is a total order, so a row's k best are among the k best of each of its chunks.
//   topk_part (this file): workgroup (chunk, row), 256 invocations holding a QR_TOPK_CHUNK-element chunk's keys in
//     registers (eight loads in flight each); the chunk's min(k, len) best go to the scratch at [row][chunk * k] in
//     index order (so a row's candidates, chunk after chunk, are in index order too), or, with one chunk per row,
//     ranked straight to ids / vals;
//   topk_merge (TK_MERGE=1): one workgroup of QR_TOPK_MERGE_WG per row selects the k best of the row's candidates
//     (values already scaled) the same way and writes them ranked.
// The selection: four 8-bit radix passes (shared histogram, each invocation adding its runs of one bin at once; the
// digit found from the top by 16 invocations over 16-bin groups) give the k-th best key T, how many keys rank above
// it and how many keys equal to T to take; the keys above T are gathered in any order, the keys equal to T by
// position, a slice of the workgroup's width at a time (a bit per invocation in shared words, so the rank in the
// slice needs no subgroup layout), until enough are taken.  Each candidate's place is the count of candidates ranking
// above it (ranked) or with a lower index (the scratch).
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "pc/topk.h"
#ifndef TK_MERGE
#define TK_MERGE 0
#endif
#if TK_MERGE
#define NT QR_TOPK_MERGE_WG
#define E QR_TOPK_MERGE_E
#else
#define NT 256
#define E (QR_TOPK_CHUNK / 256)
#endif
#if NT < 256 || NT % 32 != 0 || E > 64
#error "topk_part: NT >= 256, a multiple of 32, and at most 64 keys an invocation"
#endif
#define KMAX 256
#define NW (NT / 32)
layout(local_size_x = NT) in;
layout(std430, binding = 0) writeonly buffer I { int ids[]; };
layout(std430, binding = 1) writeonly buffer V { float vals[]; };
layout(std430, binding = 2) readonly buffer X { float x[]; };
layout(std430, binding = 3) readonly buffer TI { float inv_t[]; };
#if TK_MERGE
layout(std430, binding = 4) readonly buffer S { uvec2 sc[]; };   // (value bits, index) per candidate
#else
layout(std430, binding = 4) writeonly buffer S { uvec2 sc[]; };
#endif
shared uint hist[256];
shared uint gsum[16];
shared uint s_prefix, s_need, s_gt, s_ngt;   // the key prefix found so far; keys matching it still to take; above it
shared uint eqw[3][NW];                      // keys equal to T in a slice, a bit per invocation (three in turn)
shared float cv[KMAX];
shared int ci[KMAX];

uint key[E];   // the invocation's keys: position p = s * NT + tid (0 where p >= len; masked by position)
uint base_el;  // part: the chunk's first element in x; merge: the row's first candidate in sc
float it;      // part: the row's inverse temperature

float val(float xv, float t) { return isnan(xv) ? -1.0 / 0.0 : xv * t; }
// larger v, larger key; -0 as +0
uint key_of(float v) {
    uint b = floatBitsToUint(v == 0.0 ? 0.0 : v);
    return (b & 0x80000000u) != 0u ? ~b : (b | 0x80000000u);
}
bool above(float va, int ia, float vb, int ib) { return va > vb || (va == vb && ia < ib); }

#if TK_MERGE
float val_at(int p) { return uintBitsToFloat(sc[base_el + uint(p)].x); }
int idx_at(int p) { return int(sc[base_el + uint(p)].y); }
#else
float val_at(int p) { return val(x[base_el + uint(p)], it); }
int idx_at(int p) { return int(gl_WorkGroupID.x) * QR_TOPK_CHUNK + p; }
#endif

// after a pass's histogram: the digit d where the count of keys from the top reaches need; prefix |= d << shift, need
// and gt move past the bins above d.  need: s_need as read before the barrier (one invocation rewrites it here).
void tk_digit(uint prefix, uint need, uint shift) {
    uint tid = gl_LocalInvocationID.x;
    if (tid < 16u) {
        uint s = 0u;
        for (uint j = 0u; j < 16u; j++) s += hist[255u - 16u * tid - j];
        gsum[tid] = s;
    }
    barrier();
    if (tid < 16u) {
        uint cum = 0u;
        for (uint j = 0u; j < tid; j++) cum += gsum[j];
        if (cum < need && cum + gsum[tid] >= need) {   // exactly one group: need <= the keys matching the prefix
            for (uint j = 0u; j < 16u; j++) {
                uint b = 255u - 16u * tid - j, c = hist[b];
                if (cum + c >= need) {
                    s_prefix = prefix | (b << shift);
                    s_gt += cum;
                    s_need = need - cum;
                    break;
                }
                cum += c;
            }
        }
    }
    barrier();
}

// radix select over the keys at positions < len: leaves s_prefix = T, the k-th best key, s_need = how many keys equal
// to T to take, s_gt = how many keys are above T (and s_ngt, eqw cleared for the gather)
void tk_select(int len, uint k) {
    uint tid = gl_LocalInvocationID.x;
    if (tid == 0u) { s_prefix = 0u; s_need = k; s_gt = 0u; s_ngt = 0u; }
    if (tid < 3u * NW) eqw[tid / NW][tid % NW] = 0u;
    for (int pass = 0; pass < 4; pass++) {
        uint shift = uint(24 - 8 * pass);
        if (tid < 256u) hist[tid] = 0u;
        barrier();
        uint prefix = s_prefix, need = s_need;
        uint pmask = pass == 0 ? 0u : (0xffffffffu << uint(32 - 8 * pass));
        uint run_bin = 0u, run_n = 0u;   // a run of keys in one bin: one atomic (logits crowd into few bins)
        [[unroll]] for (int s = 0; s < E; s++) {
            int p = s * NT + int(tid);
            if (p < len && (key[s] & pmask) == prefix) {
                uint bin = (key[s] >> shift) & 255u;
                if (run_n != 0u && bin != run_bin) { atomicAdd(hist[run_bin], run_n); run_n = 0u; }
                run_bin = bin;
                run_n++;
            }
        }
        if (run_n != 0u) atomicAdd(hist[run_bin], run_n);
        barrier();
        tk_digit(prefix, need, shift);
    }
}

// after tk_select: the keys above T and the first s_need keys equal to T by position into cv / ci; returns how many
// (min(k, len))
uint tk_gather(int len) {
    uint tid = gl_LocalInvocationID.x;
    uint T = s_prefix, need_eq = s_need, n_gt = s_gt;
    uvec2 eqm = uvec2(0u);   // bit s: key[s] == T (s < 32 in x)
    [[unroll]] for (int s = 0; s < E; s++) {
        int p = s * NT + int(tid);
        if (p < len && key[s] > T) {
            uint q = atomicAdd(s_ngt, 1u);
            cv[q] = val_at(p);
            ci[q] = idx_at(p);
        }
        if (p < len && key[s] == T) {
            if (s < 32) eqm.x |= 1u << uint(s);
            else eqm.y |= 1u << uint(s - 32);
        }
    }
    uint w = tid / 32u, bit = 1u << (tid % 32u), taken = 0u;
    for (int s = 0; s < E; s++) {
        if (s * NT >= len) break;   // uniform
        uint buf = uint(s % 3);
        bool eq = ((s < 32 ? eqm.x >> uint(s) : eqm.y >> uint(s - 32)) & 1u) != 0u;
        if (eq) atomicOr(eqw[buf][w], bit);
        barrier();
        // eqw[buf] holds still until the next slice's barrier: every invocation counts the same words
        uint tot = 0u, before = 0u;
        for (uint j = 0u; j < uint(NW); j++) {
            uint c = bitCount(eqw[buf][j]);
            tot += c;
            before += j < w ? c : 0u;
        }
        if (eq) {
            uint r = taken + before + uint(bitCount(eqw[buf][w] & (bit - 1u)));
            if (r < need_eq) {
                int p = s * NT + int(tid);
                cv[n_gt + r] = val_at(p);
                ci[n_gt + r] = idx_at(p);
            }
        }
        // the words of slice s - 1, read before this slice's barrier, for slice s + 2
        if (tid == 0u)
            for (uint j = 0u; j < uint(NW); j++) eqw[(buf + 2u) % 3u][j] = 0u;
        taken += tot;
        if (taken >= need_eq) break;   // uniform: the same count in every invocation
    }
    barrier();
    return n_gt + need_eq;
}

void main() {
    uint tid = gl_LocalInvocationID.x;
    int k = pc.k;
#if TK_MERGE
    uint r = gl_WorkGroupID.x, nc = uint(pc.n_chunk);
    int len = (pc.n_chunk - 1) * k + min(k, pc.n - (pc.n_chunk - 1) * QR_TOPK_CHUNK);   // the row's candidates
    base_el = r * nc * uint(k);
    [[unroll]] for (int s = 0; s < E; s++) {
        int p = s * NT + int(tid);
        key[s] = p < len ? key_of(uintBitsToFloat(sc[base_el + uint(p)].x)) : 0u;
    }
    tk_select(len, uint(k));
#else
    uint c = gl_WorkGroupID.x, r = gl_WorkGroupID.y, nc = uint(pc.n_chunk);
    int len = min(QR_TOPK_CHUNK, pc.n - int(c) * QR_TOPK_CHUNK);
    base_el = uint(pc.x_off) + r * uint(pc.n) + c * uint(QR_TOPK_CHUNK);
    it = inv_t[uint(pc.it_off) + r];
    [[unroll]] for (int s = 0; s < E; s++) {
        int p = s * NT + int(tid);
        key[s] = p < len ? key_of(val(x[base_el + uint(p)], it)) : 0u;
    }
    tk_select(len, uint(min(k, len)));
#endif
    uint m = tk_gather(len);
    if (tid >= m) return;   // m <= KMAX <= NT: one candidate an invocation
    float v = cv[tid];
    int i = ci[tid];
    uint place = 0u;
#if !TK_MERGE
    if (nc > 1u) {   // a chunk of several: by index into the scratch
        for (uint j = 0u; j < m; j++) place += ci[j] < i ? 1u : 0u;
        sc[(r * nc + c) * uint(k) + place] = uvec2(floatBitsToUint(v), uint(i));
        return;
    }
#endif
    for (uint j = 0u; j < m; j++) place += above(cv[j], ci[j], v, i) ? 1u : 0u;
    ids[uint(pc.ids_off) + r * uint(k) + place] = i;
    vals[uint(pc.vals_off) + r * uint(k) + place] = v;
}
