#version 450
// Merges split-KV partials of attn.comp: out = sum_z e^(m_z-M) acc_z / sum_z e^(m_z-M) l_z
#extension GL_GOOGLE_include_directive : require
#include "pc/attn_combine.h"
layout(local_size_x = 128) in;
layout(std430, binding = 0) writeonly buffer O { float o[]; };
layout(std430, binding = 1) readonly buffer PT { float part[]; };
void main() {
    int h = int(gl_WorkGroupID.x), t = int(gl_WorkGroupID.y), d = int(gl_LocalInvocationID.x);
    if (d >= pc.head_dim) return;
    uint stride = uint(pc.head_dim + 2);
    uint pb = uint((t * pc.n_heads + h) * pc.n_split) * stride;
    float M = -1.0 / 0.0;
    for (int z = 0; z < pc.n_split; z++) M = max(M, part[pb + uint(z) * stride]);
    float num = 0.0, den = 0.0;
    if (M != -1.0 / 0.0) {
        for (int z = 0; z < pc.n_split; z++) {
            float m = part[pb + uint(z) * stride];
            if (m == -1.0 / 0.0) continue;
            float f = exp(m - M);
            den += f * part[pb + uint(z) * stride + 1u];
            num += f * part[pb + uint(z) * stride + 2u + uint(d)];
        }
    }
    o[pc.o_off + t * pc.ldo + h * pc.head_dim + d] = den > 0.0 ? num / den : 0.0;
}
