// wload.glsl - weight access for matmul shaders; W_TYPE is QR_PC_F32/F16/BF16.
// Bindings: 3 = weights as words (scalar), 4 = weights as uvec4 (vector path).
#ifndef QR_XQ
#define QR_XQ
#endif
layout(std430, binding = 3) readonly QR_XQ buffer WS { uint ws[]; };
layout(std430, binding = 4) readonly QR_XQ buffer WV { uvec4 wv[]; };

float w_scalar(uint e) { return QR_LOAD_ANY(ws, e, W_TYPE); }

#if W_TYPE == QR_PC_F32
#define W_VEC_ELEMS 4u
// 4 weights from element e (multiple of 4)
void w_vec(uint e, out vec4 a) { a = uintBitsToFloat(wv[e >> 2]); }
#else
#define W_VEC_ELEMS 8u
// the 8 weights of one 16-byte word
void w_unpack8(uvec4 u, out vec4 a, out vec4 b) {
#if W_TYPE == QR_PC_BF16
    a = vec4(qr_bf16_lo(u.x), qr_bf16_hi(u.x), qr_bf16_lo(u.y), qr_bf16_hi(u.y));
    b = vec4(qr_bf16_lo(u.z), qr_bf16_hi(u.z), qr_bf16_lo(u.w), qr_bf16_hi(u.w));
#else
    a = vec4(unpackHalf2x16(u.x), unpackHalf2x16(u.y));
    b = vec4(unpackHalf2x16(u.z), unpackHalf2x16(u.w));
#endif
}
// 8 weights from element e (multiple of 8)
void w_vec8(uint e, out vec4 a, out vec4 b) { w_unpack8(wv[e >> 3], a, b); }
#endif
