#version 450
// Paged attention for decode batches (every sequence has one query token).
// Workgroup = (token, group of hs query heads sharing one KV head, split).
// Each subgroup walks its own keys: the lanes hold strided slices of head_dim
// (DPL = 128 / subgroup size dims each, a specialization constant), so one
// key row is read coalesced, the q.k dot is a subgroupAdd, and the online
// softmax runs in registers.  The subgroups are merged in shared memory; with
// n_split > 1 the partials go to attn_combine.comp (same layout as attn.comp).
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#include "pc/attn.h"
#include "include/common.glsl"
layout(local_size_x = 128) in;
layout(constant_id = 0) const uint SG = 32;   // subgroup size, set at pipeline creation
const uint DPL = 128u / SG;                   // dims per lane (head_dim <= 128)
#define HSMAX 8
#define NWMAX 32
#define KB 4
layout(std430, binding = 0) writeonly buffer O { float o[]; };
layout(std430, binding = 1) readonly buffer Q { float q[]; };
layout(std430, binding = 2) readonly buffer KC { uint kc[]; };
layout(std430, binding = 3) readonly buffer VC { uint vc[]; };
layout(std430, binding = 4) readonly buffer BT { int bt[]; };
layout(std430, binding = 5) readonly buffer SL { int sl[]; };
layout(std430, binding = 6) readonly buffer QS { int qs[]; };
layout(std430, binding = 7) writeonly buffer PT { float part[]; };

shared float sh_m[NWMAX][HSMAX];
shared float sh_acc[HSMAX][128];
shared float sh_l[HSMAX];
shared int s_seq;

float kv_load(uint e, bool isv) {
    return isv ? QR_LOAD_ANY(vc, e, pc.kvtype) : QR_LOAD_ANY(kc, e, pc.kvtype);
}

void main() {
    uint tid = gl_LocalInvocationID.x, lane = gl_SubgroupInvocationID, w = gl_SubgroupID, nw = gl_NumSubgroups;
    int hd = pc.head_dim;
    int t = int(gl_WorkGroupID.x);
    int G = pc.n_heads / pc.n_kv_heads;
    int n_hsub = (G + pc.hs - 1) / pc.hs;
    int kvh = int(gl_WorkGroupID.y) / n_hsub;
    int hbase = kvh * G + (int(gl_WorkGroupID.y) % n_hsub) * pc.hs;
    int hcount = min(pc.hs, kvh * G + G - hbase);
    if (tid == 0u) {
        s_seq = -1;
        for (int s = 0; s < pc.n_seqs; s++)
            if (qs[pc.qs_off + s] == t && qs[pc.qs_off + s + 1] == t + 1) { s_seq = s; break; }
    }
    for (uint e = tid; e < uint(HSMAX * 128); e += 128u) sh_acc[e / 128u][e % 128u] = 0.0;
    barrier();
    int seq = s_seq;
    if (seq < 0) return;
    int L = sl[pc.sl_off + seq];
    int k_lo = 0, k_hi = L;
    if (pc.n_split > 1) {
        int chunk = (L + pc.n_split - 1) / pc.n_split;
        k_lo = int(gl_WorkGroupID.z) * chunk;
        k_hi = min(L, k_lo + chunk);
    }
    float qv[HSMAX][DPL], acc[HSMAX][DPL], m[HSMAX], l[HSMAX];
    for (int h = 0; h < HSMAX; h++) {
        m[h] = -1.0 / 0.0; l[h] = 0.0;
        for (uint i = 0u; i < DPL; i++) {
            uint d = lane + SG * i;
            acc[h][i] = 0.0;
            qv[h][i] = (h < hcount && d < uint(hd)) ? q[pc.q_off + t * pc.ldq + (hbase + h) * hd + int(d)] * pc.scale : 0.0;
        }
    }
    // each subgroup takes KB consecutive keys at a time: all their loads are
    // issued before the math (memory-level parallelism)
    for (int jb = k_lo + int(w) * KB; jb < k_hi; jb += int(nw) * KB) {
        float kd[KB][DPL], vd[KB][DPL];
        for (int u = 0; u < KB; u++) {
            int j = jb + u;
            bool jin = j < k_hi;
            uint base = 0u;
            if (jin) {
                int blk = clamp(bt[pc.bt_off + seq * pc.mbps + j / pc.block_size], 0, pc.num_blocks - 1);
                base = uint((blk * pc.n_kv_heads + kvh) * pc.block_size + j % pc.block_size) * uint(hd);
            }
            for (uint i = 0u; i < DPL; i++) {
                uint d = lane + SG * i;
                bool in_ = jin && d < uint(hd);
                kd[u][i] = in_ ? QR_LOAD_ANY(kc, uint(pc.kc_off) + base + d, pc.kvtype) : 0.0;
                vd[u][i] = in_ ? QR_LOAD_ANY(vc, uint(pc.vc_off) + base + d, pc.kvtype) : 0.0;
            }
        }
        for (int u = 0; u < KB; u++) {
            if (jb + u >= k_hi) break;
            for (int h = 0; h < HSMAX; h++) {
                if (h >= hcount) break;
                float s = 0.0;
                for (uint i = 0u; i < DPL; i++) s += qv[h][i] * kd[u][i];
                s = subgroupAdd(s);
                float mn = max(m[h], s);
                float alpha = exp(m[h] - mn), p = exp(s - mn);
                l[h] = l[h] * alpha + p;
                m[h] = mn;
                for (uint i = 0u; i < DPL; i++) acc[h][i] = acc[h][i] * alpha + p * vd[u][i];
            }
        }
    }
    // merge the subgroups: global max, then one subgroup at a time adds its scaled part
    if (lane == 0u) for (int h = 0; h < HSMAX; h++) sh_m[w][h] = m[h];
    barrier();
    float f[HSMAX];
    for (int h = 0; h < HSMAX; h++) {
        float M = -1.0 / 0.0;
        for (uint k = 0u; k < nw; k++) M = max(M, sh_m[k][h]);
        f[h] = m[h] == -1.0 / 0.0 ? 0.0 : exp(m[h] - M);
        sh_m[w][h] = M;   // every subgroup writes the same M
    }
    if (tid < uint(HSMAX)) sh_l[tid] = 0.0;
    barrier();
    for (uint k = 0u; k < nw; k++) {
        if (k == w) {
            for (int h = 0; h < HSMAX; h++) {
                if (h >= hcount) break;
                for (uint i = 0u; i < DPL; i++) {
                    uint d = lane + SG * i;
                    if (d < uint(hd)) sh_acc[h][d] += f[h] * acc[h][i];
                }
                if (lane == 0u) sh_l[h] += f[h] * l[h];
            }
        }
        barrier();
    }
    for (uint e = tid; e < uint(hcount * hd); e += 128u) {
        int h = int(e) / hd, d = int(e) % hd;
        float M = sh_m[0][h], lsum = sh_l[h], a = sh_acc[h][d];
        if (pc.n_split > 1) {
            uint pb = uint((t * pc.n_heads + hbase + h) * pc.n_split + int(gl_WorkGroupID.z)) * uint(hd + 2);
            if (d == 0) { part[pb] = M; part[pb + 1u] = lsum; }
            part[pb + 2u + uint(d)] = a;
        } else {
            o[pc.o_off + t * pc.ldo + (hbase + h) * hd + d] = lsum > 0.0 ? a / lsum : 0.0;
        }
    }
}
