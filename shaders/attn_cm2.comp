#version 450
// Paged causal attention for prompt chunks on cooperative matrices, the
// accumulator-resident form (GL_NV_cooperative_matrix, head_dim 128,
// subgroup 32, 16-bit KV cache).  Same tiling as attn_cm.comp (64 (token,
// head) rows per workgroup of 4 subgroups, 32-key tiles), but:
//  - the output stays in eight f32 accumulator fragments per subgroup
//    (attn_cm.comp moves every P.V fragment through shared memory into
//    registers, eight round trips per tile);
//  - the softmax keeps a per-row reference max and only moves it when a tile's
//    max exceeds it by more than RESCALE_AT (natural log units), so P stays
//    below e^8 (fp16-safe) and the accumulators are rescaled through shared
//    memory only on those rare tiles (always exact: O and l are scaled alike);
//  - K and V come in as 16-byte words, prefetched into registers one tile
//    ahead and staged as f16vec4 through a second view of workgroup memory
//    (GL_EXT_shared_memory_block).
// FRAG8 (attn_cm2k, rewritten to VK_KHR_cooperative_matrix at build time by qr-spv-nv2khr): the B operands (K^T and
// V) and the accumulators are 16 x 8 fragments, so the A (16 x 16) and B types differ as the KHR rewrite needs;
// same products, same order of the sums.
// NSG = 8 (attn_cm2k_w8): 128 rows per workgroup of 8 subgroups (each K/V tile staged once for twice the rows; the Q
// tile goes through the K/V region in 64-row passes); REVERSE (attn_cm2k_r): workgroups take the query tiles last to
// first, so the longest (causal) tiles start first and the short ones fill the tail.  Both keep every sum's order.
// LAB (timing only, wrong results): 1 no S -> P softmax (P left as it is in shared memory), 2 no K/V global reads.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
// Every constant-bound loop carries [[unroll]] (UNR): without it glslc keeps the fragment arrays in Function
// memory indexed by the loop counter, and the NVIDIA driver ran the MMAs ~13x slower (H100, docs/PERF.md,
// nineteenth session: MMA-only GEMM loop 31 -> 394-502 TFLOP/s, whole GEMM 29-31 -> 97-101 TFLOP/s).
#define UNR [[unroll]]
#extension GL_NV_cooperative_matrix : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require
#extension GL_KHR_shader_subgroup_vote : require
#extension GL_EXT_shared_memory_block : require
#include "pc/attn.h"
#include "include/common.glsl"
#ifndef NSG
#define NSG 4
#endif
#define NT (32 * NSG)   // threads
layout(local_size_x = NT) in;
layout(std430, binding = 0) writeonly buffer O { float o[]; };
layout(std430, binding = 1) readonly buffer Q { float q[]; };
layout(std430, binding = 4) readonly buffer BT { int bt[]; };
layout(std430, binding = 5) readonly buffer SL { int sl[]; };
layout(std430, binding = 6) readonly buffer QS { int qs[]; };
layout(std430, binding = 8) readonly buffer KC4 { uvec4 kc4[]; };
layout(std430, binding = 9) readonly buffer VC4 { uvec4 vc4[]; };

#define ROWS (16 * NSG)
#define KT 32
#define HD 128
#define SQ 136   // fp16 row stride of the Q / K / V tiles
#define SQ4 34   // the same in f16vec4
#define SS 36    // f32 row stride of the per-subgroup S / O scratch
#define SP 40    // fp16 row stride of P
#define NEG_INF (-1.0 / 0.0)
#ifdef FRAG8
#define FN 8    // columns of a B / accumulator fragment
#else
#define FN 16
#endif
#define NS (KT / FN)   // S fragments per key tile
#define NO (HD / FN)   // output fragments
#define CPL (FN / 2)   // fragment columns per lane (lanes 2r, 2r + 1 share row r)
#define RESCALE_AT 8.0
#define LSTEP (NT / 16)      // key rows one loader pass covers (16 threads x 16 bytes per 128-dim row)
#define LP (KT / LSTEP)      // loader passes per tile
#ifndef LAB
#define LAB 0
#endif

// the two views alias (shared blocks start at the same address): vector stores, scalar fragment loads
shared SV { f16vec4 kv4[2 * KT * SQ4]; } sv;
shared SH {
    float16_t kv[2 * KT * SQ];   // the Q tile (64 x SQ) first, then K (KT x SQ) and V
    float ssh[NSG][16 * SS];
    float16_t psh[NSG][16 * SP];
    int pos_sh[ROWS];
    int s_seq, s_tok0, s_ntok, s_pos0;
} sh;

float16_t h16(float v) { return float16_t(clamp(v, -65504.0, 65504.0)); }
f16vec4 h16x4(vec4 v) { return f16vec4(clamp(v, vec4(-65504.0), vec4(65504.0))); }

void sg_sync() { subgroupMemoryBarrierShared(); subgroupBarrier(); }

vec4 kv_lo(uvec4 u) {
    if (pc.kvtype == QR_PC_BF16) return vec4(qr_bf16_lo(u.x), qr_bf16_hi(u.x), qr_bf16_lo(u.y), qr_bf16_hi(u.y));
    return vec4(unpackHalf2x16(u.x), unpackHalf2x16(u.y));
}
vec4 kv_hi(uvec4 u) {
    if (pc.kvtype == QR_PC_BF16) return vec4(qr_bf16_lo(u.z), qr_bf16_hi(u.z), qr_bf16_lo(u.w), qr_bf16_hi(u.w));
    return vec4(unpackHalf2x16(u.z), unpackHalf2x16(u.w));
}

void main() {
    uint tid = gl_LocalInvocationID.x, w = gl_SubgroupID, lane = gl_SubgroupInvocationID;
    int G = pc.n_heads / pc.n_kv_heads;
    int n_hsub = (G + pc.hs - 1) / pc.hs;
    int kvh = int(gl_WorkGroupID.y) / n_hsub;
    int hbase = kvh * G + (int(gl_WorkGroupID.y) % n_hsub) * pc.hs;
    int hcount = min(pc.hs, kvh * G + G - hbase);
    if (tid == 0u) {
#ifdef REVERSE
        int idx = int(gl_NumWorkGroups.x - 1u - gl_WorkGroupID.x);
#else
        int idx = int(gl_WorkGroupID.x);
#endif
        sh.s_seq = -1;
        for (int s = 0; s < pc.n_seqs; s++) {
            int a = qs[pc.qs_off + s], b = qs[pc.qs_off + s + 1];
            int nt = (max(b - a, 0) + pc.qt - 1) / pc.qt;
            if (idx < nt) {
                sh.s_seq = s; sh.s_tok0 = a + idx * pc.qt; sh.s_ntok = min(pc.qt, b - sh.s_tok0);
                sh.s_pos0 = sl[pc.sl_off + s] - (b - a) + idx * pc.qt;
                break;
            }
            idx -= nt;
        }
    }
    barrier();
    if (sh.s_seq < 0) return;
    int seq = sh.s_seq, tok0 = sh.s_tok0, ntok = sh.s_ntok, pos0 = sh.s_pos0;
    int nrows = ntok * pc.hs;
    if (tid < uint(ROWS)) {
        int r = int(tid);
        sh.pos_sh[r] = (r < nrows && (r % pc.hs) < hcount) ? pos0 + r / pc.hs : -1;
    }
    // the Q tile in 64-row passes through kv (one pass for 4 subgroups)
    fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> qf[HD / 16];
    UNR for (int ps = 0; ps < NSG / 4; ps++) {
        for (uint e = tid; e < uint(64 * HD); e += uint(NT)) {
            int rp = int(e >> 7), r = ps * 64 + rp, d = int(e & 127u);
            int tq = r / pc.hs, hl = r % pc.hs;
            float v = 0.0;
            if (r < nrows && hl < hcount) v = q[pc.q_off + (tok0 + tq) * pc.ldq + (hbase + hl) * HD + d] * pc.scale;
            sh.kv[rp * SQ + d] = h16(v);
        }
        barrier();
        if (int(w) / 4 == ps)
            UNR for (int kk = 0; kk < HD / 16; kk++)
                coopMatLoadNV(qf[kk], sh.kv, uint((int(w) - ps * 4) * 16 * SQ + kk * 16), uint(SQ), false);
        barrier();   // this pass's rows are in registers; kv is free again (for K and V after the last)
    }

    int k_end = min(sl[pc.sl_off + seq], pos0 + ntok);
    uint rr = lane >> 1, hf = lane & 1u;
    int my_pos = sh.pos_sh[int(w) * 16 + int(rr)];
    float m = NEG_INF, l = 0.0;
    fcoopmatNV<32, gl_ScopeSubgroup, 16, FN> acc[NO];
    UNR for (int j = 0; j < NO; j++) acc[j] = fcoopmatNV<32, gl_ScopeSubgroup, 16, FN>(0.0);

    // loader: thread t moves 16-byte chunk (t % 16) of key rows t / 16 + LSTEP i, i < LP, of K and of V
    int lrow = int(tid >> 4), lch = int(tid & 15u);
    uvec4 kr[LP], vr[LP];
#if LAB == 2
#define KV_READ(e) kr[i] = uvec4(e, e + 1u, e + 2u, e + 3u) & uvec4(0x3c003c00u); vr[i] = kr[i];
#else
#define KV_READ(e) kr[i] = kc4[(uint(pc.kc_off) + e) >> 3]; vr[i] = vc4[(uint(pc.vc_off) + e) >> 3];
#endif
#define FETCH(kb0) \
    UNR for (int i = 0; i < LP; i++) { \
        int jk = (kb0) + lrow + LSTEP * i; \
        kr[i] = uvec4(0u); vr[i] = uvec4(0u); \
        if (jk < k_end) { \
            int blk = clamp(bt[pc.bt_off + seq * pc.mbps + jk / pc.block_size], 0, pc.num_blocks - 1); \
            uint e = uint((blk * pc.n_kv_heads + kvh) * pc.block_size + jk % pc.block_size) * uint(HD) + uint(lch * 8); \
            KV_READ(e) \
        } \
    }
    FETCH(0)
    for (int kb = 0; kb < k_end; kb += KT) {
        UNR for (int i = 0; i < LP; i++) {
            int r = lrow + LSTEP * i;
            sv.kv4[r * SQ4 + 2 * lch] = h16x4(kv_lo(kr[i]));
            sv.kv4[r * SQ4 + 2 * lch + 1] = h16x4(kv_hi(kr[i]));
            sv.kv4[(KT + r) * SQ4 + 2 * lch] = h16x4(kv_lo(vr[i]));
            sv.kv4[(KT + r) * SQ4 + 2 * lch + 1] = h16x4(kv_hi(vr[i]));
        }
        barrier();
        if (kb + KT < k_end) FETCH(kb + KT)
        // S = Q . K^T for this subgroup's 16 rows x 32 keys
        fcoopmatNV<32, gl_ScopeSubgroup, 16, FN> sf[NS];
        UNR for (int j = 0; j < NS; j++) sf[j] = fcoopmatNV<32, gl_ScopeSubgroup, 16, FN>(0.0);
        UNR for (int kk = 0; kk < HD / 16; kk++) {
            UNR for (int j = 0; j < NS; j++) {
                fcoopmatNV<16, gl_ScopeSubgroup, 16, FN> b;
                coopMatLoadNV(b, sh.kv, uint(j * FN * SQ + kk * 16), uint(SQ), true);
                sf[j] = coopMatMulAddNV(qf[kk], b, sf[j]);
            }
        }
        UNR for (int j = 0; j < NS; j++) coopMatStoreNV(sf[j], sh.ssh[w], uint(j * FN), uint(SS), false);
        sg_sync();
#if LAB != 1
        // softmax against the row's reference max m: lanes 2r and 2r+1 share row r, 16 keys each
        float sv16[16];
        float mx = NEG_INF;
        UNR for (int i = 0; i < 16; i++) {
            int col = int(hf) * 16 + i, jj = kb + col;
            bool ok = my_pos >= 0 && jj < k_end && jj <= my_pos;
            sv16[i] = ok ? sh.ssh[w][rr * SS + uint(col)] : NEG_INF;
            mx = max(mx, sv16[i]);
        }
        mx = max(mx, subgroupShuffleXor(mx, 1u));
        bool move = mx != NEG_INF && (m == NEG_INF || mx > m + RESCALE_AT);
        float alpha = 1.0;
        if (move) {
            alpha = m == NEG_INF ? 0.0 : exp(m - mx);
            m = mx;
        }
        float sum = 0.0;
        UNR for (int i = 0; i < 16; i++) {
            float p = sv16[i] == NEG_INF ? 0.0 : exp(sv16[i] - m);
            sum += p;
            sh.psh[w][rr * SP + hf * 16u + uint(i)] = float16_t(p);
        }
        sum += subgroupShuffleXor(sum, 1u);
        float l_old = l;
        l = l * alpha + sum;
        // accumulators of rows whose reference moved (and held something) are scaled through the scratch
        if (subgroupAny(alpha != 1.0 && l_old > 0.0)) {
            UNR for (int j = 0; j < NO; j++) {
                sg_sync();
                coopMatStoreNV(acc[j], sh.ssh[w], 0u, uint(SS), false);
                sg_sync();
                UNR for (int i = 0; i < CPL; i++) sh.ssh[w][rr * SS + hf * uint(CPL) + uint(i)] *= alpha;
                sg_sync();
                coopMatLoadNV(acc[j], sh.ssh[w], 0u, uint(SS), false);
            }
        }
#endif
        sg_sync();
        // O += P . V in the accumulators
        fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> pa0, pa1;
        coopMatLoadNV(pa0, sh.psh[w], 0u, uint(SP), false);
        coopMatLoadNV(pa1, sh.psh[w], 16u, uint(SP), false);
        UNR for (int j = 0; j < NO; j++) {
            fcoopmatNV<16, gl_ScopeSubgroup, 16, FN> vb0, vb1;
            coopMatLoadNV(vb0, sh.kv, uint(KT * SQ + j * FN), uint(SQ), false);
            coopMatLoadNV(vb1, sh.kv, uint((KT + 16) * SQ + j * FN), uint(SQ), false);
            acc[j] = coopMatMulAddNV(pa0, vb0, acc[j]);
            acc[j] = coopMatMulAddNV(pa1, vb1, acc[j]);
        }
        barrier();   // before the next K/V tile overwrites kv
    }
    int row = int(w) * 16 + int(rr);
    int t = tok0 + row / pc.hs, h = hbase + row % pc.hs;
    UNR for (int j = 0; j < NO; j++) {
        sg_sync();
        coopMatStoreNV(acc[j], sh.ssh[w], 0u, uint(SS), false);
        sg_sync();
        if (my_pos >= 0)
            UNR for (int i = 0; i < CPL; i++) {
                int d = FN * j + int(hf) * CPL + i;
                o[pc.o_off + t * pc.ldo + h * HD + d] = l > 0.0 ? sh.ssh[w][rr * SS + hf * uint(CPL) + uint(i)] / l : 0.0;
            }
    }
}
