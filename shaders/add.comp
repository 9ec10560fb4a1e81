#version 450
// y[i] += x[i]  (residual add), grid-stride over a 2-D grid
#extension GL_GOOGLE_include_directive : require
#include "pc/add.h"
layout(local_size_x = 256) in;
layout(std430, binding = 0) buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
void main() {
    uint stride = gl_NumWorkGroups.x * 256u;
    uint i = gl_WorkGroupID.y * stride + gl_GlobalInvocationID.x;
    if (i >= uint(pc.n)) return;
    y[uint(pc.y_off) + i] += x[uint(pc.x_off) + i];
}
