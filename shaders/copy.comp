#version 450
// Device-to-device copy in 16-byte words, grid-stride (the stream's copy when offsets and size are 16-byte
// aligned: vkCmdCopyBuffer ran at ~0.76 TB/s read + write on the H100's compute queue, a shader copy streams at the
// memory's rate).
#extension GL_GOOGLE_include_directive : require
#include "pc/copy.h"
layout(local_size_x = 256) in;
layout(std430, binding = 0) writeonly buffer D { uvec4 d[]; };
layout(std430, binding = 1) readonly buffer S { uvec4 s[]; };
#extension GL_EXT_control_flow_attributes : require
// four loads in flight per thread (all issued before the stores), each round coalesced across the grid
void main() {
    uint stride = gl_NumWorkGroups.x * 256u, n = uint(pc.n);
    for (uint i = gl_GlobalInvocationID.x; i < n; i += 4u * stride) {
        uvec4 v[4];
        [[unroll]] for (uint u = 0u; u < 4u; u++) {
            uint j = i + u * stride;
            if (j < n) v[u] = s[uint(pc.s_off) + j];
        }
        [[unroll]] for (uint u = 0u; u < 4u; u++) {
            uint j = i + u * stride;
            if (j < n) d[uint(pc.d_off) + j] = v[u];
        }
    }
}
