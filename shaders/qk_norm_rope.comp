#version 450
// Fused Qwen3 q/k path: for each token and each of the n_hq + n_hk heads
// (q heads then k heads, contiguous), RMSNorm over head_dim with q_norm or
// k_norm (Qwen3RMSNorm), then the NeoX rotary embedding (same math as
// rmsnorm.comp followed by rope.comp), in place.  head_dim/2 threads per head.
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#include "pc/qk_norm_rope.h"
#include "include/common.glsl"
layout(local_size_x = 64) in;
layout(std430, binding = 0) buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer WQ { uint wq[]; };
layout(std430, binding = 2) readonly buffer WK { uint wk[]; };
layout(std430, binding = 3) readonly buffer P { int pos[]; };
layout(std430, binding = 4) readonly buffer F { float inv_freq[]; };
shared float red[64];

void main() {
    int half_d = pc.head_dim / 2;
    int h = int(gl_WorkGroupID.x), t = int(gl_WorkGroupID.y), i = int(gl_LocalInvocationID.x);
    bool act = i < half_d;
    int b = pc.x_off + t * pc.ld + h * pc.head_dim + i;
    float x1 = act ? x[b] : 0.0, x2 = act ? x[b + half_d] : 0.0;
    float s = subgroupAdd(x1 * x1 + x2 * x2);
    if (subgroupElect()) red[gl_SubgroupID] = s;
    barrier();
    float tot = 0.0;
    for (uint k = 0u; k < gl_NumSubgroups; k++) tot += red[k];
    if (!act) return;
    float r = 1.0 / sqrt(tot / float(pc.head_dim) + pc.eps);
    bool isq = h < pc.n_hq;
    float w1 = isq ? QR_LOAD_ANY(wq, uint(pc.wq_off + i), pc.wqtype) : QR_LOAD_ANY(wk, uint(pc.wk_off + i), pc.wktype);
    float w2 = isq ? QR_LOAD_ANY(wq, uint(pc.wq_off + i + half_d), pc.wqtype)
                   : QR_LOAD_ANY(wk, uint(pc.wk_off + i + half_d), pc.wktype);
    float n1 = w1 * (x1 * r), n2 = w2 * (x2 * r);
    precise float a = float(pos[pc.pos_off + t]) * inv_freq[pc.if_off + i];
    precise float k = round(a * 0.15915494309189535);
    precise float rr = fma(-k, 6.28125, a);
    rr = fma(-k, 0.0019353071693331003, rr);
    rr = fma(-k, 1.0253131677018246e-11, rr);
    float c = cos(rr) * pc.attn_factor, sn = sin(rr) * pc.attn_factor;
    x[b] = n1 * c - n2 * sn;
    x[b + half_d] = n2 * c + n1 * sn;
}
