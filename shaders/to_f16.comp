#version 450
// x (f32 rows, QR_MM_IDX-gathered if asked) -> compact fp16 rows for the prompt GEMM's X16 variants
// (matmul_cm3h_*): o[m * K + k] = fp16(clamp(x[row(m), k], +-65504)), the conversion matmul_cm*.comp apply while
// staging, done once per GEMM instead of once per column tile.  Thread = 8 consecutive elements (two 16-byte
// reads, one 16-byte write); K % 8 == 0 and 16-byte aligned rows (the host checks, as for QR_MM_VEC).
// Grid: (ceil(K / 8 / 256), M).  Push constants: qr_pc_matmul (M, K, ldx, x_off, y_off = o's element offset in
// halves, flags & QR_MM_IDX, idx_off).
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#include "pc/matmul.h"
layout(local_size_x = 256) in;
layout(std430, binding = 0) writeonly buffer O { uvec4 o[]; };
layout(std430, binding = 2) readonly buffer XV { vec4 xv[]; };
layout(std430, binding = 6) readonly buffer IDX { int idx[]; };

uvec2 h16x4(vec4 v) {
    f16vec4 h = f16vec4(clamp(v, vec4(-65504.0), vec4(65504.0)));
    return uvec2(packFloat2x16(h.xy), packFloat2x16(h.zw));
}

void main() {
    uint c = gl_GlobalInvocationID.x, kq = uint(pc.K) / 8u;
    int m = int(gl_WorkGroupID.y);
    if (c >= kq || m >= pc.M) return;
    int r = (pc.flags & QR_MM_IDX) != 0 ? idx[pc.idx_off + m] : m;
    uint e = (uint(pc.x_off) + uint(r) * uint(pc.ldx)) / 4u + 2u * c;
    o[uint(pc.y_off) / 8u + uint(m) * kq + c] = uvec4(h16x4(xv[e]), h16x4(xv[e + 1u]));
}
