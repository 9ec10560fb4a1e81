#version 450
// NeoX rotary embedding in place (transformers apply_rotary_pos_emb, rotate_half):
// x1' = x1*cos - x2*sin, x2' = x2*cos + x1*sin, with x2 = x[i + head_dim/2].
// The angle pos*inv_freq is rounded to f32 like torch, then reduced mod 2*pi
// in three fma steps (2*pi split into 6.28125 + c2 + c3, Cody-Waite) so
// large positions keep full accuracy on fast sin/cos.
#extension GL_GOOGLE_include_directive : require
#include "pc/rope.h"
#include "include/common.glsl"
#include "include/rope_cs.glsl"
layout(local_size_x = 64) in;
layout(std430, binding = 0) buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer P { int pos[]; };
layout(std430, binding = 2) readonly buffer F { float inv_freq[]; };

void main() {
    int half_d = pc.head_dim / 2;
    int g = int(gl_GlobalInvocationID.x);
    int t = int(gl_WorkGroupID.y);
    if (g >= pc.n_heads * half_d || t >= pc.n_tokens) return;
    int h = g / half_d, i = g % half_d;
    vec2 cs = qr_rope_cs(pos[pc.pos_off + t], inv_freq[pc.if_off + i], pc.attn_factor);
    float c = cs.x, s = cs.y;
    int b = pc.x_off + t * pc.ld + h * pc.head_dim + i;
    float x1 = x[b], x2 = x[b + half_d];
    x[b] = x1 * c - x2 * s;
    x[b + half_d] = x2 * c + x1 * s;
}
