#version 450
// Fused Qwen3 q/k path: for each token and each of the n_hq + n_hk heads
// (q heads then k heads, contiguous), RMSNorm over head_dim with q_norm or
// k_norm (Qwen3RMSNorm), then the NeoX rotary embedding (same math as
// rmsnorm.comp followed by rope.comp), in place.  head_dim/2 threads per head.
// pc.norm == 0: RoPE only (Qwen2's q/k rows, no norm weights bound).
// KV_STORE: the paged KV write too (kv_store.comp's packing): the grid has
// n_hk more workgroups for the v heads, and k and v rows of tokens with a slot
// go to the cache from a shared-memory copy of the head.
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#include "pc/qk_norm_rope.h"
#include "include/common.glsl"
#include "include/rope_cs.glsl"
layout(local_size_x = 64) in;
layout(std430, binding = 0) buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer WQ { uint wq[]; };
layout(std430, binding = 2) readonly buffer WK { uint wk[]; };
layout(std430, binding = 3) readonly buffer P { int pos[]; };
layout(std430, binding = 4) readonly buffer F { float inv_freq[]; };
shared float red[64];
#ifdef KV_STORE
layout(std430, binding = 5) buffer KC { uint kc[]; };
layout(std430, binding = 6) buffer VC { uint vc[]; };
layout(std430, binding = 7) readonly buffer S { int slots[]; };
shared float row[256];

uint pack2(float a, float b, int t) {
    if (t == QR_PC_BF16) return qr_f32_to_bf16(a) | (qr_f32_to_bf16(b) << 16);
    return packHalf2x16(vec2(a, b));
}

// the head in row[] -> cache head kvh of token t's slot (a k or a v row)
void store_row(int t, int kvh, bool is_v) {
    int slot = slots[pc.slots_off + t];
    if (slot < 0 || slot >= pc.num_blocks * pc.block_size) return;
    int blk = slot / pc.block_size, off = slot % pc.block_size;
    uint e = uint((blk * pc.n_hk + kvh) * pc.block_size + off) * uint(pc.head_dim);
    uint base = uint(is_v ? pc.vc_off : pc.kc_off) + e;
    for (int d = 2 * int(gl_LocalInvocationID.x); d < pc.head_dim; d += 2 * int(gl_WorkGroupSize.x)) {
        float a = row[d], b = row[d + 1];
        if (pc.kvtype == QR_PC_F32) {
            if (is_v) { vc[base + uint(d)] = floatBitsToUint(a); vc[base + uint(d) + 1u] = floatBitsToUint(b); }
            else { kc[base + uint(d)] = floatBitsToUint(a); kc[base + uint(d) + 1u] = floatBitsToUint(b); }
        } else {
            uint w = pack2(a, b, pc.kvtype);
            if (is_v) vc[(base + uint(d)) >> 1] = w;
            else kc[(base + uint(d)) >> 1] = w;
        }
    }
}
#endif

void main() {
    int half_d = pc.head_dim / 2;
    int h = int(gl_WorkGroupID.x), t = int(gl_WorkGroupID.y), i = int(gl_LocalInvocationID.x);
    bool act = i < half_d;
    int b = pc.x_off + t * pc.ld + h * pc.head_dim + i;
#ifdef KV_STORE
    if (h >= pc.n_hq + pc.n_hk) {   // a v head: copied to the cache as it is
        if (act) { row[i] = x[b]; row[i + half_d] = x[b + half_d]; }
        barrier();
        store_row(t, h - pc.n_hq - pc.n_hk, true);
        return;
    }
#endif
    float x1 = act ? x[b] : 0.0, x2 = act ? x[b + half_d] : 0.0;
    float s = subgroupAdd(x1 * x1 + x2 * x2);
    if (subgroupElect()) red[gl_SubgroupID] = s;
    barrier();
    float tot = 0.0;
    for (uint k = 0u; k < gl_NumSubgroups; k++) tot += red[k];
#ifndef KV_STORE
    if (!act) return;
#endif
    float r = 1.0 / sqrt(tot / float(pc.head_dim) + pc.eps);
    bool isq = h < pc.n_hq;
    int ii = act ? i : 0;   // idle threads (head_dim < 128) stay inside the bindings
    float n1 = x1, n2 = x2;
    if (pc.norm != 0) {
        float w1 = isq ? QR_LOAD_ANY(wq, uint(pc.wq_off + ii), pc.wqtype) : QR_LOAD_ANY(wk, uint(pc.wk_off + ii), pc.wktype);
        float w2 = isq ? QR_LOAD_ANY(wq, uint(pc.wq_off + ii + half_d), pc.wqtype)
                       : QR_LOAD_ANY(wk, uint(pc.wk_off + ii + half_d), pc.wktype);
        n1 = w1 * (x1 * r);
        n2 = w2 * (x2 * r);
    }
    vec2 cs = qr_rope_cs(pos[pc.pos_off + t], inv_freq[pc.if_off + ii], pc.attn_factor);
    float c = cs.x, sn = cs.y;
    float o1 = n1 * c - n2 * sn, o2 = n2 * c + n1 * sn;
    if (act) {
        x[b] = o1;
        x[b + half_d] = o2;
    }
#ifdef KV_STORE
    if (!isq) {
        if (act) { row[i] = o1; row[i + half_d] = o2; }
        barrier();
        store_row(t, h - pc.n_hq, false);
    }
#endif
}
