// mm_io.glsl - activations, bias and row indices of the matmul shaders.
// QR_XQ: a qualifier for the read-only x and weight buffers (the XRESTRICT variants set it to restrict)
#ifndef QR_XQ
#define QR_XQ
#endif
layout(std430, binding = 0) buffer Y { float y[]; };
layout(std430, binding = 1) readonly QR_XQ buffer XS { float xs[]; };
layout(std430, binding = 2) readonly QR_XQ buffer XV { vec4 xv[]; };
layout(std430, binding = 5) readonly buffer B { uint bias[]; };
layout(std430, binding = 6) readonly buffer IDX { int idx[]; };

// element offset of row m of x
uint x_row(int m) {
    int r = (pc.flags & QR_MM_IDX) != 0 ? idx[pc.idx_off + m] : m;
    return uint(pc.x_off) + uint(r) * uint(pc.ldx);
}

// the value stored at (m, col) for the dot product v: plus the bias, plus the old y (residual)
float y_value(int m, int col, float v) {
    if ((pc.flags & QR_MM_BIAS) != 0) v += QR_LOAD_ANY(bias, uint(pc.b_off + col), pc.btype);
    if ((pc.flags & QR_MM_ACC) != 0) v += y[uint(pc.y_off) + uint(m) * uint(pc.ldy) + uint(col)];
    return v;
}

void y_store(int m, int n, float v) {
    int col = pc.n0 + n;
    y[uint(pc.y_off) + uint(m) * uint(pc.ldy) + uint(col)] = y_value(m, col, v);
}

// x[e .. e+3] for the vector path (e a multiple of 4); fused SwiGLU if asked
vec4 x_vec4(uint e) {
    if ((pc.flags & QR_MM_SILU) != 0) {
        vec4 g = xv[e >> 2], u = xv[(e + uint(pc.K)) >> 2];
        return g / (1.0 + exp(-g)) * u;
    }
    return xv[e >> 2];
}
float x_scalar(uint e) {
    if ((pc.flags & QR_MM_SILU) != 0) {
        float g = xs[e], u = xs[e + uint(pc.K)];
        return g / (1.0 + exp(-g)) * u;
    }
    return xs[e];
}
