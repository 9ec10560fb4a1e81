#version 450
// Merges split-KV partials of attn.comp / attn_dec.comp:
//   out = sum_z e^(m_z-M) acc_z / sum_z e^(m_z-M) l_z,  M = max_z m_z
// Workgroup = (head, token), 256 threads = ZG = 2 groups of 128 dims; each
// group takes every other split, so the partial rows are read with many
// independent loads in flight (no serial walk over the splits).
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#include "pc/attn_combine.h"
layout(local_size_x = 256) in;
#define ZG 2u
#define ZMAX 256                 /* n_split limit (the dispatch checks it) */
#define NEG_INF (-1.0 / 0.0)
layout(std430, binding = 0) writeonly buffer O { float o[]; };
layout(std430, binding = 1) readonly buffer PT { float part[]; };
shared float sh_f[ZMAX];         // e^(m_z - M) per split
shared float sh_red[256];      // one per subgroup
shared float sh_num[128];

void main() {
    uint tid = gl_LocalInvocationID.x;
    int h = int(gl_WorkGroupID.x), t = int(gl_WorkGroupID.y);
    uint stride = uint(pc.head_dim + 2);
    uint nz = uint(pc.n_split);
    uint pb = uint((t * pc.n_heads + h) * pc.n_split) * stride;
    // M: max over the splits
    float mz = tid < nz ? part[pb + tid * stride] : NEG_INF;
    float mz2 = tid + 256u < nz ? part[pb + (tid + 256u) * stride] : NEG_INF;
    float M = subgroupMax(max(mz, mz2));
    if (subgroupElect()) sh_red[gl_SubgroupID] = M;
    barrier();
    M = NEG_INF;
    for (uint k = 0u; k < gl_NumSubgroups; k++) M = max(M, sh_red[k]);
    barrier();
    // weights and the denominator
    float den = 0.0;
    for (uint z = tid; z < nz; z += 256u) {
        float m = part[pb + z * stride];
        float f = (m == NEG_INF || M == NEG_INF) ? 0.0 : exp(m - M);
        sh_f[z] = f;
        if (f != 0.0) den += f * part[pb + z * stride + 1u];
    }
    den = subgroupAdd(den);
    if (subgroupElect()) sh_red[gl_SubgroupID] = den;
    barrier();
    den = 0.0;
    for (uint k = 0u; k < gl_NumSubgroups; k++) den += sh_red[k];
    // numerator: dim d of the splits zg, zg + ZG, ...
    uint d = tid % 128u, zg = tid / 128u;
    float num = 0.0;
    if (d < uint(pc.head_dim)) {
        uint z = zg;
        for (; z + 3u * ZG < nz; z += 4u * ZG) {
            float a0 = part[pb + z * stride + 2u + d], a1 = part[pb + (z + ZG) * stride + 2u + d];
            float a2 = part[pb + (z + 2u * ZG) * stride + 2u + d], a3 = part[pb + (z + 3u * ZG) * stride + 2u + d];
            float f0 = sh_f[z], f1 = sh_f[z + ZG], f2 = sh_f[z + 2u * ZG], f3 = sh_f[z + 3u * ZG];
            if (f0 != 0.0) num += f0 * a0;
            if (f1 != 0.0) num += f1 * a1;
            if (f2 != 0.0) num += f2 * a2;
            if (f3 != 0.0) num += f3 * a3;
        }
        for (; z < nz; z += ZG) {
            float f = sh_f[z];
            if (f != 0.0) num += f * part[pb + z * stride + 2u + d];
        }
    }
    if (zg == 1u) sh_num[d] = num;
    barrier();
    if (zg == 0u && d < uint(pc.head_dim)) {
        num += sh_num[d];
        o[pc.o_off + t * pc.ldo + h * pc.head_dim + int(d)] = den > 0.0 ? num / den : 0.0;
    }
}
