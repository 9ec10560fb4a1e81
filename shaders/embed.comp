#version 450
// embed: out[t, :] = table[clamp(ids[t]), :]   (torch.nn.Embedding)
// W_TYPE (QR_PC_F32/F16/BF16) picks the table dtype.
#extension GL_GOOGLE_include_directive : require
#include "pc/embed.h"
#include "include/common.glsl"
layout(local_size_x = 256) in;
layout(std430, binding = 0) writeonly buffer O { float o[]; };
layout(std430, binding = 1) readonly buffer T { uint tab[]; };
layout(std430, binding = 2) readonly buffer I { int ids[]; };

void main() {
    uint i = gl_GlobalInvocationID.x;
    int t = int(gl_WorkGroupID.y);
    if (i >= uint(pc.dim) || t >= pc.n_tokens) return;
    int id = clamp(ids[pc.ids_off + t], 0, pc.vocab - 1);
    if (id < pc.vocab_lo || id >= pc.vocab_hi) return;
    uint e = uint(pc.table_off) + uint(id - pc.vocab_lo) * uint(pc.dim) + i;
    o[pc.out_off + t * pc.dim + int(i)] = QR_LOAD_ANY(tab, e, W_TYPE);
}
