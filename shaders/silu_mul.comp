#version 450
// SwiGLU: out[t, i] = silu(gu[t, i]) * gu[t, n_ff + i]   (Qwen3MLP act_fn(gate) * up)
#extension GL_GOOGLE_include_directive : require
#include "pc/silu_mul.h"
layout(local_size_x = 256) in;
layout(std430, binding = 0) writeonly buffer O { float o[]; };
layout(std430, binding = 1) readonly buffer G { float gu[]; };
void main() {
    int i = int(gl_GlobalInvocationID.x), t = int(gl_WorkGroupID.y);
    if (i >= pc.n_ff || t >= pc.n_tokens) return;
    float g = gu[pc.gu_off + t * pc.ldgu + i], u = gu[pc.gu_off + t * pc.ldgu + pc.n_ff + i];
    o[pc.out_off + t * pc.ldout + i] = g / (1.0 + exp(-g)) * u;
}
