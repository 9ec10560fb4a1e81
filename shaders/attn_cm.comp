#version 450
// Paged causal attention for prompt chunks on cooperative matrices (NVIDIA
// tensor cores, GL_NV_cooperative_matrix), head_dim 128, subgroup 32.
// Workgroup: 4 subgroups, a tile of 64 (token, head) rows = qt tokens of one
// sequence x hs heads sharing a KV head; subgroup w owns rows 16w..16w+15.
// Per 32-key tile: K and V are staged as fp16 in shared memory,
// S = Q.K^T (2 fragments x 8 k-steps), the online softmax runs on S in f32
// (two lanes per row), P (fp16) . V gives 8 output fragments that are added
// to the f32 output rows each lane keeps in registers.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_NV_cooperative_matrix : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require
#include "pc/attn.h"
#include "include/common.glsl"
layout(local_size_x = 128) in;
layout(std430, binding = 0) writeonly buffer O { float o[]; };
layout(std430, binding = 1) readonly buffer Q { float q[]; };
layout(std430, binding = 2) readonly buffer KC { uint kc[]; };
layout(std430, binding = 3) readonly buffer VC { uint vc[]; };
layout(std430, binding = 4) readonly buffer BT { int bt[]; };
layout(std430, binding = 5) readonly buffer SL { int sl[]; };
layout(std430, binding = 6) readonly buffer QS { int qs[]; };
layout(std430, binding = 7) writeonly buffer PT { float part[]; };

#define ROWS 64
#define KT 32
#define HD 128
#define SQ 136   // fp16 row stride of the Q / K / V tiles
#define SS 36    // f32 row stride of the per-subgroup S / PV scratch
#define SP 40    // fp16 row stride of P
#define NEG_INF (-1.0 / 0.0)

shared float16_t kvsh[2 * KT * SQ];   // the Q tile (64 x SQ) first, then K (KT x SQ) and V
shared float ssh[4][16 * SS];
shared float16_t psh[4][16 * SP];
shared int pos_sh[ROWS];
shared int s_seq, s_tok0, s_ntok, s_pos0;

float16_t h16(float v) { return float16_t(clamp(v, -65504.0, 65504.0)); }

void sg_sync() { subgroupMemoryBarrierShared(); subgroupBarrier(); }

void main() {
    uint tid = gl_LocalInvocationID.x, w = gl_SubgroupID, lane = gl_SubgroupInvocationID;
    int G = pc.n_heads / pc.n_kv_heads;
    int n_hsub = (G + pc.hs - 1) / pc.hs;
    int kvh = int(gl_WorkGroupID.y) / n_hsub;
    int hbase = kvh * G + (int(gl_WorkGroupID.y) % n_hsub) * pc.hs;
    int hcount = min(pc.hs, kvh * G + G - hbase);
    if (tid == 0u) {
        int idx = int(gl_WorkGroupID.x);
        s_seq = -1;
        for (int s = 0; s < pc.n_seqs; s++) {
            int a = qs[pc.qs_off + s], b = qs[pc.qs_off + s + 1];
            int nt = (max(b - a, 0) + pc.qt - 1) / pc.qt;
            if (idx < nt) {
                s_seq = s; s_tok0 = a + idx * pc.qt; s_ntok = min(pc.qt, b - s_tok0);
                s_pos0 = sl[pc.sl_off + s] - (b - a) + idx * pc.qt;
                break;
            }
            idx -= nt;
        }
    }
    barrier();
    if (s_seq < 0) return;
    int seq = s_seq, tok0 = s_tok0, ntok = s_ntok, pos0 = s_pos0;
    int nrows = ntok * pc.hs;
    if (tid < uint(ROWS)) {
        int r = int(tid);
        pos_sh[r] = (r < nrows && (r % pc.hs) < hcount) ? pos0 + r / pc.hs : -1;
    }
    for (uint e = tid; e < uint(ROWS * HD); e += 128u) {
        int r = int(e >> 7), d = int(e & 127u);
        int tq = r / pc.hs, hl = r % pc.hs;
        float v = 0.0;
        if (r < nrows && hl < hcount) v = q[pc.q_off + (tok0 + tq) * pc.ldq + (hbase + hl) * HD + d] * pc.scale;
        kvsh[r * SQ + d] = h16(v);
    }
    barrier();
    fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> qf[HD / 16];
    [[unroll]] for (int kk = 0; kk < HD / 16; kk++)
        coopMatLoadNV(qf[kk], kvsh, uint(int(w) * 16 * SQ + kk * 16), uint(SQ), false);
    barrier();   // the Q tile is in registers; kvsh now holds K and V

    int k_end = min(sl[pc.sl_off + seq], pos0 + ntok);
    uint rr = lane >> 1, hf = lane & 1u;
    int my_pos = pos_sh[int(w) * 16 + int(rr)];
    float m = NEG_INF, l = 0.0;
    float acc[8][8];
    [[unroll]] for (int j = 0; j < 8; j++) [[unroll]] for (int i = 0; i < 8; i++) acc[j][i] = 0.0;
    int lc = int(tid >> 2);                 // loader: key row of this thread
    for (int kb = 0; kb < k_end; kb += KT) {
        int jk = kb + lc;
        bool jin = jk < k_end;
        uint base = 0u;
        if (jin) {
            int blk = clamp(bt[pc.bt_off + seq * pc.mbps + jk / pc.block_size], 0, pc.num_blocks - 1);
            base = uint((blk * pc.n_kv_heads + kvh) * pc.block_size + jk % pc.block_size) * uint(HD);
        }
        [[unroll]] for (int i = 0; i < 16; i++) {
            uint d = 2u * ((tid & 3u) + 4u * uint(i));
            float k0 = 0.0, k1 = 0.0, v0 = 0.0, v1 = 0.0;
            if (jin) {
                uint ek = uint(pc.kc_off) + base + d, ev = uint(pc.vc_off) + base + d;
                k0 = QR_LOAD_ANY(kc, ek, pc.kvtype); k1 = QR_LOAD_ANY(kc, ek + 1u, pc.kvtype);
                v0 = QR_LOAD_ANY(vc, ev, pc.kvtype); v1 = QR_LOAD_ANY(vc, ev + 1u, pc.kvtype);
            }
            kvsh[lc * SQ + int(d)] = h16(k0);
            kvsh[lc * SQ + int(d) + 1] = h16(k1);
            kvsh[(KT + lc) * SQ + int(d)] = h16(v0);
            kvsh[(KT + lc) * SQ + int(d) + 1] = h16(v1);
        }
        barrier();
        // S = Q . K^T for this subgroup's 16 rows x 32 keys
        fcoopmatNV<32, gl_ScopeSubgroup, 16, 16> s0 = fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>(0.0);
        fcoopmatNV<32, gl_ScopeSubgroup, 16, 16> s1 = fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>(0.0);
        [[unroll]] for (int kk = 0; kk < HD / 16; kk++) {
            fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> b0, b1;
            coopMatLoadNV(b0, kvsh, uint(kk * 16), uint(SQ), true);
            coopMatLoadNV(b1, kvsh, uint(16 * SQ + kk * 16), uint(SQ), true);
            s0 = coopMatMulAddNV(qf[kk], b0, s0);
            s1 = coopMatMulAddNV(qf[kk], b1, s1);
        }
        coopMatStoreNV(s0, ssh[w], 0u, uint(SS), false);
        coopMatStoreNV(s1, ssh[w], 16u, uint(SS), false);
        sg_sync();
        // online softmax: lanes 2r and 2r+1 share row r, 16 keys each
        float sv[16];
        float mx = m;
        [[unroll]] for (int i = 0; i < 16; i++) {
            int col = int(hf) * 16 + i, jj = kb + col;
            bool ok = my_pos >= 0 && jj < k_end && jj <= my_pos;
            sv[i] = ok ? ssh[w][rr * SS + uint(col)] : NEG_INF;
            mx = max(mx, sv[i]);
        }
        mx = max(mx, subgroupShuffleXor(mx, 1u));
        float alpha = mx == NEG_INF ? 1.0 : exp(m - mx);
        float sum = 0.0;
        [[unroll]] for (int i = 0; i < 16; i++) {
            float p = sv[i] == NEG_INF ? 0.0 : exp(sv[i] - mx);
            sum += p;
            psh[w][rr * SP + hf * 16u + uint(i)] = float16_t(p);
        }
        sum += subgroupShuffleXor(sum, 1u);
        l = l * alpha + sum;
        m = mx;
        [[unroll]] for (int j = 0; j < 8; j++) [[unroll]] for (int i = 0; i < 8; i++) acc[j][i] *= alpha;
        sg_sync();
        // O += P . V, one 16x16 output fragment at a time through the scratch
        fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> pa0, pa1;
        coopMatLoadNV(pa0, psh[w], 0u, uint(SP), false);
        coopMatLoadNV(pa1, psh[w], 16u, uint(SP), false);
        [[unroll]] for (int j = 0; j < 8; j++) {
            fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> vb0, vb1;
            coopMatLoadNV(vb0, kvsh, uint(KT * SQ + j * 16), uint(SQ), false);
            coopMatLoadNV(vb1, kvsh, uint((KT + 16) * SQ + j * 16), uint(SQ), false);
            fcoopmatNV<32, gl_ScopeSubgroup, 16, 16> pv = fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>(0.0);
            pv = coopMatMulAddNV(pa0, vb0, pv);
            pv = coopMatMulAddNV(pa1, vb1, pv);
            coopMatStoreNV(pv, ssh[w], 0u, uint(SS), false);
            sg_sync();
            [[unroll]] for (int i = 0; i < 8; i++) acc[j][i] += ssh[w][rr * SS + hf * 8u + uint(i)];
            sg_sync();
        }
        barrier();   // before the next K/V tile overwrites kvsh
    }
    int row = int(w) * 16 + int(rr);
    if (my_pos < 0) return;
    int t = tok0 + row / pc.hs, h = hbase + row % pc.hs;
    [[unroll]] for (int j = 0; j < 8; j++)
        [[unroll]] for (int i = 0; i < 8; i++) {
            int d = 16 * j + int(hf) * 8 + i;
            o[pc.o_off + t * pc.ldo + h * HD + d] = l > 0.0 ? acc[j][i] / l : 0.0;
        }
}
