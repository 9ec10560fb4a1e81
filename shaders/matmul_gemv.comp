#version 450
// GEMV for small M (decode): y[m, n] = x[m, :] . W[n, :]  (F.linear).
// One subgroup per output column n; a workgroup takes RPW = WG / SG columns
// (WG = 128 threads, 256 in the matmul_gemv<MR>w variants)
// and MR rows of x (MR = 1, 2, 4 or 8: one variant each, so the per-row
// accumulators are plain registers, never a dynamically indexed array).
// Vector path (QR_MM_VEC): each lane issues U = 8 independent 16-byte weight
// loads per round (8 bf16/f16 or 4 f32 weights each), all before the FMAs;
// the last round is predicated instead of a scalar tail (or, QR_MM_CLAMP, its
// loads clamped to the row's last word).  x is read as vec4.
// No shared memory, no barriers.
// QR_MM_SILU (SwiGLU folded into the input: x = silu(gu[:, :K]) * gu[:, K:]):
// the SwiGLU output is also stored for later readers, a slice of K per
// workgroup.  The SILU_SH variant (MR = 1, vector path) computes each round's
// U * SG * W_VEC_ELEMS inputs once per workgroup into shared memory (after the
// round's weight loads are issued) instead of once per subgroup, so the
// exp/rcp work is 1 / RPW of the register path's.
// X_SH (MR = 1, vector path, lab variant matmul_gemv1wx): the whole x row is
// staged once per workgroup in shared memory (sized by specialization
// constant 1 from the device limit) while the first weight round is in
// flight, so the loop reads x from shared memory instead of L1/L2; same sums
// in the same order as the register path.  XRESTRICT (matmul_gemv1wr): the x
// and weight buffers are declared restrict.
// KSPLIT (MR = 1, vector path, matmul_gemv1k<KS>, 256 threads): KS subgroups share one output row, subgroup part p
// taking 16-byte slots p, p + KS, p + 2 KS, ... of SG words each (the KS subgroups read contiguous spans together), so
// a long row (down_proj: K = 9728) is read in one round of U loads per lane instead of five, and the N = 2560 GEMVs
// have KS times as many workgroups to spread over the SMs; the KS partial sums meet in shared memory and the row's
// first subgroup adds them in part order (a different summation order from the one-subgroup form).
// NROWS2 (MR = 1, vector path, 16-bit weights; matmul_gemv1w2u4 the default, gemv1w4u2 and gemv1w2 lab): each
// subgroup takes RPS (2 or 4) adjacent output rows, NROWS2 loads of each in flight per round, one x read serving all
// (1 / RPS of the x traffic through L1); the sums per row keep gemv1w's order (same bits).  SHTOUCH (lab,
// matmul_gemv1w2u4s): the same with a shared array declared but never used, to time what a kernel that has shared
// memory costs between dispatches (the split GEMVs: faster per dispatch, slower per step).
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_EXT_control_flow_attributes : require
#include "pc/matmul.h"
#include "include/common.glsl"
#ifdef XRESTRICT
#define QR_XQ restrict
#endif
#ifndef WG
#define WG 128
#endif
layout(local_size_x = WG) in;
layout(constant_id = 0) const uint SG = 32;
const uint RPW = uint(WG) / SG;
#include "include/mm_io.glsl"
#include "include/wload.glsl"

#ifndef MR
#define MR 8
#endif
#define U 8u
layout(std430, binding = 7) writeonly buffer XO { float act[]; };
#ifdef SILU_SH
const uint RE = U * SG * W_VEC_ELEMS;   // inputs per round (elements)
shared vec4 sh_x[RE / 4u];
#endif
#ifndef RPS
#define RPS 2
#endif
#ifdef KSPLIT
shared float ks_part[WG / 4];   // one partial per subgroup (SG >= 4)
#endif
#ifdef SHTOUCH
shared float sh_touch[WG];      // lab (matmul_gemv1w2u4s): shared memory declared, never used at run time
#endif
#ifdef X_SH
layout(constant_id = 1) const uint XSH_V4 = 1024u;   // vec4 slots for x (the host checks K / 4 <= it)
shared vec4 sh_xv[XSH_V4];
#endif

// sum_i w[i] * x[xe + i] over the VE weights of one 16-byte word
float dot_word(uvec4 u, uint xe) {
#if W_TYPE == QR_PC_F32
    return dot(uintBitsToFloat(u), x_vec4(xe));
#else
    vec4 a, b;
    w_unpack8(u, a, b);
    return dot(a, x_vec4(xe)) + dot(b, x_vec4(xe + 4u));
#endif
}

#ifdef X_SH
// the same sum as dot_word, with x from shared memory
float dot_word_sh(uvec4 u, uint k) {
#if W_TYPE == QR_PC_F32
    return dot(uintBitsToFloat(u), sh_xv[k >> 2]);
#else
    vec4 a, b;
    w_unpack8(u, a, b);
    return dot(a, sh_xv[k >> 2]) + dot(b, sh_xv[(k >> 2) + 1u]);
#endif
}
#endif

void main() {
    int m_base = int(gl_WorkGroupID.y) * MR;
    int nm = min(MR, pc.M - m_base);
    uint lane = gl_SubgroupInvocationID;
    // rows past M repeat the last row (computed, never stored): no guards in the loops
    uint xr[MR];
    [[unroll]] for (int m = 0; m < MR; m++) xr[m] = x_row(m_base + min(m, nm - 1));
    uint K = uint(pc.K);
#ifndef SILU_SH
    if ((pc.flags & QR_MM_SILU) != 0 && pc.n0 == 0) {
        // the fused SwiGLU output is also stored, for any later reader: a slice of K per workgroup
        uint part = (K + gl_NumWorkGroups.x - 1u) / gl_NumWorkGroups.x;
        uint lo = gl_WorkGroupID.x * part, hi = min(K, lo + part);
        [[unroll]] for (int m = 0; m < MR; m++) {
            if (m < nm)
                for (uint k = lo + gl_LocalInvocationID.x; k < hi; k += uint(WG))
                    act[uint(pc.act_off) + uint(m_base + m) * uint(pc.ld_act) + k] = x_scalar(xr[m] + k);
        }
    }
#endif
    int n = int(gl_WorkGroupID.x * RPW + gl_SubgroupID);
#ifdef SILU_SH
    // every subgroup takes part in the staging (barriers): no early exit
    bool live = gl_SubgroupID < RPW && n < pc.N;
    float acc0 = 0.0;
    uint wrow0 = uint(pc.w_off) + uint(live ? n : 0) * K;
    const uint step0 = SG * W_VEC_ELEMS;
    uint tid = gl_LocalInvocationID.x;
    bool store_act = pc.n0 == 0;
    for (uint kb = 0u; kb < K; kb += RE) {
        uvec4 wq[U];
        [[unroll]] for (uint u = 0u; u < U; u++) {
            uint k = kb + lane * W_VEC_ELEMS + u * step0;
            wq[u] = live && k < K ? wv[(wrow0 + k) / W_VEC_ELEMS] : uvec4(0u);
        }
        barrier();   // the previous round's inputs are consumed
        for (uint i = tid; i < RE / 4u; i += uint(WG)) {
            uint e = kb + 4u * i;
            if (e < K) {
                vec4 g = xv[(xr[0] + e) >> 2], up = xv[(xr[0] + K + e) >> 2];
                vec4 v = g / (1.0 + exp(-g)) * up;
                sh_x[i] = v;
                if (store_act && (e >> 2) % gl_NumWorkGroups.x == gl_WorkGroupID.x) {
                    uint ao = uint(pc.act_off) + uint(m_base) * uint(pc.ld_act) + e;
                    [[unroll]] for (uint c = 0u; c < 4u; c++) act[ao + c] = v[c];
                }
            }
        }
        barrier();
        [[unroll]] for (uint u = 0u; u < U; u++) {
            uint k = kb + lane * W_VEC_ELEMS + u * step0;
            if (k < K) {
                uint i = (k - kb) >> 2;
#if W_TYPE == QR_PC_F32
                acc0 += dot(uintBitsToFloat(wq[u]), sh_x[i]);
#else
                vec4 a, b;
                w_unpack8(wq[u], a, b);
                acc0 += dot(a, sh_x[i]) + dot(b, sh_x[i + 1u]);
#endif
            }
        }
    }
    float s0 = subgroupAdd(acc0);
    if (live && nm > 0 && lane == 0u) y_store(m_base, n, s0);
    return;
#endif
#ifdef X_SH
    {
        // every subgroup takes part in the staging (barrier): no early exit before it
        bool live = gl_SubgroupID < RPW && n < pc.N;
        uint wrow0 = uint(pc.w_off) + uint(live ? n : 0) * K;
        const uint step0 = SG * W_VEC_ELEMS;
        uint k0 = lane * W_VEC_ELEMS;
        uvec4 wq[U];
        [[unroll]] for (uint u = 0u; u < U; u++) {
            uint k = k0 + u * step0;
            wq[u] = live && k < K ? wv[(wrow0 + k) / W_VEC_ELEMS] : uvec4(0u);
        }
        for (uint i = gl_LocalInvocationID.x; i < K / 4u; i += uint(WG)) sh_xv[i] = x_vec4(xr[0] + 4u * i);
        barrier();
        if (!live) return;
        float acc0 = 0.0;
        while (true) {
            [[unroll]] for (uint u = 0u; u < U; u++) {
                uint k = k0 + u * step0;
                if (k < K) acc0 += dot_word_sh(wq[u], k);
            }
            k0 += U * step0;
            if (k0 >= K) break;
            [[unroll]] for (uint u = 0u; u < U; u++) {
                uint k = k0 + u * step0;
                wq[u] = k < K ? wv[(wrow0 + k) / W_VEC_ELEMS] : uvec4(0u);
            }
        }
        float s0 = subgroupAdd(acc0);
        if (nm > 0 && lane == 0u) y_store(m_base, n, s0);
        return;
    }
#endif
#ifdef NROWS2
    {
        int n2 = int(gl_WorkGroupID.x * RPW + gl_SubgroupID) * RPS;
        if (gl_SubgroupID >= RPW || n2 >= pc.N || nm <= 0) return;
        uint wr[RPS];
        float a[RPS];
        [[unroll]] for (int q = 0; q < RPS; q++) {
            wr[q] = uint(pc.w_off) + uint(min(n2 + q, pc.N - 1)) * K;
            a[q] = 0.0;
        }
        const uint step = SG * W_VEC_ELEMS;
        for (uint k0 = lane * W_VEC_ELEMS; k0 < K; k0 += uint(NROWS2) * step) {
            uvec4 qv[RPS][NROWS2];
            [[unroll]] for (int q = 0; q < RPS; q++)
                [[unroll]] for (uint u = 0u; u < uint(NROWS2); u++) {
                    uint k = k0 + u * step;
                    qv[q][u] = k < K ? wv[(wr[q] + k) / W_VEC_ELEMS] : uvec4(0u);
                }
            [[unroll]] for (uint u = 0u; u < uint(NROWS2); u++) {
                uint k = k0 + u * step;
                if (k < K) {
                    vec4 xa = x_vec4(xr[0] + k), xb = x_vec4(xr[0] + k + 4u), wa, wb;
                    [[unroll]] for (int q = 0; q < RPS; q++) {
                        w_unpack8(qv[q][u], wa, wb);
                        a[q] += dot(wa, xa) + dot(wb, xb);
                    }
                }
            }
        }
        [[unroll]] for (int q = 0; q < RPS; q++) {
            float sq = subgroupAdd(a[q]);
#ifdef SHTOUCH
            if (K == 0xFFFFFFFFu) {   // never (K is a row length): keeps the array in the pipeline
                sh_touch[gl_LocalInvocationID.x] = sq;
                sq = sh_touch[gl_LocalInvocationID.x ^ 1u];
            }
#endif
            if (lane == 0u && n2 + q < pc.N) y_store(m_base, n2 + q, sq);
        }
        return;
    }
#endif
#ifdef KSPLIT
    {
        // every subgroup reaches the barrier: no early exit before it
        uint sgid = gl_SubgroupID, part = sgid % uint(KSPLIT);
        int nk = int(gl_WorkGroupID.x * (RPW / uint(KSPLIT)) + sgid / uint(KSPLIT));
        bool live = sgid < RPW && nk < pc.N && nm > 0;
        float acc0 = 0.0;
        if (live) {
            uint wrow = uint(pc.w_off) + uint(nk) * K;
            const uint step = SG * W_VEC_ELEMS, stride = uint(KSPLIT) * step;
            for (uint k0 = part * step + lane * W_VEC_ELEMS; k0 < K; k0 += U * stride) {
                uvec4 wq[U];
                [[unroll]] for (uint u = 0u; u < U; u++) {
                    uint k = k0 + u * stride;
                    wq[u] = k < K ? wv[(wrow + k) / W_VEC_ELEMS] : uvec4(0u);
                }
                [[unroll]] for (uint u = 0u; u < U; u++) {
                    uint k = k0 + u * stride;
                    if (k < K) acc0 += dot_word(wq[u], xr[0] + k);
                }
            }
        }
        float s = subgroupAdd(acc0);
        if (lane == 0u && sgid < RPW) ks_part[sgid] = s;
        barrier();
        if (live && part == 0u && lane == 0u) {
            float t = ks_part[sgid];
            for (uint p = 1u; p < uint(KSPLIT); p++) t += ks_part[sgid + p];
            y_store(m_base, nk, t);
        }
        return;
    }
#endif
    if (gl_SubgroupID >= RPW || n >= pc.N) return;
    float acc[MR];
    [[unroll]] for (int m = 0; m < MR; m++) acc[m] = 0.0;
    uint wrow = uint(pc.w_off) + uint(n) * K;
    if ((pc.flags & QR_MM_VEC) != 0) {
        const uint step = SG * W_VEC_ELEMS;   // elements one load slot covers for the subgroup
        // QR_MM_CLAMP: the U loads of a round carry no condition (a slot past the row reads its last word again and
        // is skipped below), so they cannot be compiled into a chain of branches
        bool clamped = (pc.flags & QR_MM_CLAMP) != 0;
        for (uint k0 = lane * W_VEC_ELEMS; k0 < K; k0 += U * step) {
            uvec4 wq[U];
            if (clamped) {
                [[unroll]] for (uint u = 0u; u < U; u++)
                    wq[u] = wv[(wrow + min(k0 + u * step, K - W_VEC_ELEMS)) / W_VEC_ELEMS];
            } else {
                [[unroll]] for (uint u = 0u; u < U; u++) {
                    uint k = k0 + u * step;
                    wq[u] = k < K ? wv[(wrow + k) / W_VEC_ELEMS] : uvec4(0u);
                }
            }
            [[unroll]] for (uint u = 0u; u < U; u++) {
                uint k = k0 + u * step;
                if (k < K) {
                    [[unroll]] for (int m = 0; m < MR; m++) acc[m] += dot_word(wq[u], xr[m] + k);
                }
            }
        }
    } else {
        for (uint k = lane; k < K; k += SG) {
            float wk = w_scalar(wrow + k);
            [[unroll]] for (int m = 0; m < MR; m++) acc[m] += wk * x_scalar(xr[m] + k);
        }
    }
    [[unroll]] for (int m = 0; m < MR; m++) {
        float s = subgroupAdd(acc[m]);
        if (m < nm && lane == 0u) y_store(m_base + m, n, s);
    }
}
