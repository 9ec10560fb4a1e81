#version 450
// Paged causal attention (prompt chunks and decodes in one varlen batch).
// A workgroup owns a tile of ROWS (token, head) rows: qt consecutive query
// tokens of one sequence x hs query heads sharing one KV head (GQA), so every
// K/V tile loaded into shared memory serves all rows.  Keys are visited 16 at
// a time with an online softmax (f32).  With n_split > 1 (decode, long
// contexts) the key range is split over gl_WorkGroupID.z and each split
// writes (max, sum, unnormalised acc) to the partial buffer; attn_combine
// merges them.  head_dim <= 128.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "pc/attn.h"
#include "include/common.glsl"
layout(local_size_x = 128) in;
layout(constant_id = 0) const uint SG = 32;   // subgroup size
#extension GL_KHR_shader_subgroup_shuffle : require
layout(std430, binding = 0) writeonly buffer O { float o[]; };
layout(std430, binding = 1) readonly buffer Q { float q[]; };
layout(std430, binding = 2) readonly buffer KC { uint kc[]; };
layout(std430, binding = 3) readonly buffer VC { uint vc[]; };
layout(std430, binding = 4) readonly buffer BT { int bt[]; };
layout(std430, binding = 5) readonly buffer SL { int sl[]; };
layout(std430, binding = 6) readonly buffer QS { int qs[]; };
layout(std430, binding = 7) writeonly buffer PT { float part[]; };

#define ROWS 16
#define KT 16
#define HDMAX 128
#define HDP 129
#define HD4P 33           // vec4 row stride (132 floats)
shared vec4 qsh4[ROWS][HD4P];
shared vec4 ksh4[KT][HD4P];
shared float vsh[KT][HDP];
shared vec4 ssh4[ROWS][KT / 4];
shared float m_sh[ROWS], l_sh[ROWS], a_sh[ROWS];
shared int pos_sh[ROWS];
shared int s_seq, s_tok0, s_ntok, s_pos0;

void main() {
    uint tid = gl_LocalInvocationID.x;
    int hd = pc.head_dim;
    int G = pc.n_heads / pc.n_kv_heads;
    int n_hsub = (G + pc.hs - 1) / pc.hs;
    int kvh = int(gl_WorkGroupID.y) / n_hsub;
    int hbase = kvh * G + (int(gl_WorkGroupID.y) % n_hsub) * pc.hs;
    int hcount = min(pc.hs, kvh * G + G - hbase);
    if (tid == 0u) {
        // find (sequence, tile) of this workgroup
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
    int hd4 = (hd + 3) / 4;
    // load the query tile, scaled
    for (int e = int(tid); e < ROWS * HDMAX; e += 128) {
        int r = e / HDMAX, d = e % HDMAX;
        int tq = r / pc.hs, hl = r % pc.hs;
        float v = 0.0;
        if (r < nrows && hl < hcount && d < hd) v = q[pc.q_off + (tok0 + tq) * pc.ldq + (hbase + hl) * hd + d] * pc.scale;
        qsh4[r][d >> 2][d & 3] = v;
    }
    if (tid < uint(ROWS)) {
        int r = int(tid);
        pos_sh[r] = (r < nrows && (r % pc.hs) < hcount) ? pos0 + r / pc.hs : -1;
        m_sh[r] = -1.0 / 0.0; l_sh[r] = 0.0;
    }
    int k_end = min(sl[pc.sl_off + seq], pos0 + ntok);   // keys 0 .. k_end-1
    int k_lo = 0, k_hi = k_end;
    if (pc.n_split > 1) {
        int chunk = ((k_end + pc.n_split - 1) / pc.n_split + KT - 1) / KT * KT;
        k_lo = int(gl_WorkGroupID.z) * chunk;
        k_hi = min(k_end, k_lo + chunk);
    }
    float acc[ROWS];
    [[unroll]] for (int r = 0; r < ROWS; r++) acc[r] = 0.0;
    uint kvbase_k = uint(pc.kc_off), kvbase_v = uint(pc.vc_off);
    barrier();
    // tile loader: 8 threads per key row, each loads dims (tid & 7) + 8*i
    int lc = int(tid >> 3), ld0 = int(tid & 7u);
    for (int kb = k_lo; kb < k_hi; kb += KT) {
        int j = kb + lc;
        bool jin = j < k_hi;
        uint ebase = 0u;
        if (jin) {
            int blk = clamp(bt[pc.bt_off + seq * pc.mbps + j / pc.block_size], 0, pc.num_blocks - 1);
            ebase = uint((blk * pc.n_kv_heads + kvh) * pc.block_size + j % pc.block_size) * uint(hd);
        }
        float kr[HDMAX / 8], vr[HDMAX / 8];
        [[unroll]] for (int i = 0; i < HDMAX / 8; i++) {
            int d = ld0 + 8 * i;
            bool in_ = jin && d < hd;
            kr[i] = in_ ? QR_LOAD_ANY(kc, kvbase_k + ebase + uint(d), pc.kvtype) : 0.0;
            vr[i] = in_ ? QR_LOAD_ANY(vc, kvbase_v + ebase + uint(d), pc.kvtype) : 0.0;
        }
        [[unroll]] for (int i = 0; i < HDMAX / 8; i++) {
            int d = ld0 + 8 * i;
            ksh4[lc][d >> 2][d & 3] = kr[i];
            vsh[lc][d] = vr[i];
        }
        barrier();
        [[unroll]] for (int h2 = 0; h2 < 2; h2++) {
            int r = int(tid >> 4) + h2 * 8, c = int(tid & 15u);
            int j = kb + c;
            float s = -1.0 / 0.0;
            if (pos_sh[r] >= 0 && j < k_hi && j <= pos_sh[r]) {
                s = 0.0;
                for (int d4 = 0; d4 < hd4; d4++) s += dot(qsh4[r][d4], ksh4[c][d4]);
            }
            ssh4[r][c >> 2][c & 3] = s;
        }
        barrier();
        if (SG >= 8u) {
            // 8 lanes per row, 2 scores each; max and sum by xor-shuffles
            int r = int(tid >> 3), c0 = int(tid & 7u) * 2;
            float s0 = ssh4[r][c0 >> 2][c0 & 3], s1 = ssh4[r][c0 >> 2][(c0 & 3) + 1];
            float mo = m_sh[r];
            float mx = max(mo, max(s0, s1));
            mx = max(mx, subgroupShuffleXor(mx, 1u));
            mx = max(mx, subgroupShuffleXor(mx, 2u));
            mx = max(mx, subgroupShuffleXor(mx, 4u));
            float p0 = s0 == -1.0 / 0.0 ? 0.0 : exp(s0 - mx), p1 = s1 == -1.0 / 0.0 ? 0.0 : exp(s1 - mx);
            float sum = p0 + p1;
            sum += subgroupShuffleXor(sum, 1u);
            sum += subgroupShuffleXor(sum, 2u);
            sum += subgroupShuffleXor(sum, 4u);
            ssh4[r][c0 >> 2][c0 & 3] = p0;
            ssh4[r][c0 >> 2][(c0 & 3) + 1] = p1;
            barrier();
            if ((tid & 7u) == 0u) {
                float alpha = (mx == -1.0 / 0.0) ? 1.0 : exp(mo - mx);
                m_sh[r] = mx; l_sh[r] = l_sh[r] * alpha + sum; a_sh[r] = alpha;
            }
        } else if (tid < uint(ROWS)) {
            int r = int(tid);
            float mo = m_sh[r], mx = mo;
            [[unroll]] for (int c = 0; c < KT; c++) mx = max(mx, ssh4[r][c >> 2][c & 3]);
            float alpha = (mx == -1.0 / 0.0) ? 1.0 : exp(mo - mx);
            float sum = 0.0;
            [[unroll]] for (int c = 0; c < KT; c++) {
                float sv = ssh4[r][c >> 2][c & 3];
                float p = sv == -1.0 / 0.0 ? 0.0 : exp(sv - mx);
                ssh4[r][c >> 2][c & 3] = p; sum += p;
            }
            m_sh[r] = mx; l_sh[r] = l_sh[r] * alpha + sum; a_sh[r] = alpha;
        }
        barrier();
        if (int(tid) < hd) {
            int d = int(tid);
            vec4 vcol[KT / 4];
            [[unroll]] for (int c4 = 0; c4 < KT / 4; c4++)
                vcol[c4] = vec4(vsh[4 * c4][d], vsh[4 * c4 + 1][d], vsh[4 * c4 + 2][d], vsh[4 * c4 + 3][d]);
            [[unroll]] for (int r = 0; r < ROWS; r++) {
                if (r >= nrows) break;
                float s = acc[r] * a_sh[r];
                [[unroll]] for (int c4 = 0; c4 < KT / 4; c4++) s += dot(ssh4[r][c4], vcol[c4]);
                acc[r] = s;
            }
        }
        barrier();
    }
    if (int(tid) >= hd) return;
    int d = int(tid);
    [[unroll]] for (int r = 0; r < ROWS; r++) {
        if (r >= nrows) break;
        if (pos_sh[r] < 0) continue;
        int t = tok0 + r / pc.hs, h = hbase + r % pc.hs;
        if (pc.n_split > 1) {
            uint pb = uint((t * pc.n_heads + h) * pc.n_split + int(gl_WorkGroupID.z)) * uint(hd + 2);
            if (d == 0) { part[pb] = m_sh[r]; part[pb + 1u] = l_sh[r]; }
            part[pb + 2u + uint(d)] = acc[r];
        } else {
            float l = l_sh[r];
            o[pc.o_off + t * pc.ldo + h * hd + d] = l > 0.0 ? acc[r] / l : 0.0;
        }
    }
}
