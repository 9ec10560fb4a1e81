// common.glsl - helpers shared by every qrun shader.
// 16-bit data (F16/BF16 weights, KV) is read from 32-bit words and unpacked:
// bf16 -> f32 is a shift of the bits, f16 uses unpackHalf2x16.
#extension GL_GOOGLE_include_directive : require

float qr_bf16_lo(uint w) { return uintBitsToFloat(w << 16); }
float qr_bf16_hi(uint w) { return uintBitsToFloat(w & 0xFFFF0000u); }

// element e of a packed array of dtype t (QR_PC_*), given the word array
#define QR_LOAD_ANY(arr, e, t) \
    ((t) == QR_PC_F32 ? uintBitsToFloat(arr[(e)]) : \
     (t) == QR_PC_BF16 ? uintBitsToFloat((((e) & 1u) != 0u ? (arr[(e) >> 1] & 0xFFFF0000u) : (arr[(e) >> 1] << 16))) : \
     unpackHalf2x16((((e) & 1u) != 0u) ? (arr[(e) >> 1] >> 16) : (arr[(e) >> 1] & 0xFFFFu)).x)

// f32 -> bf16 bits, round to nearest even, NaN kept quiet
uint qr_f32_to_bf16(float f) {
    uint u = floatBitsToUint(f);
    if ((u & 0x7F800000u) == 0x7F800000u && (u & 0x007FFFFFu) != 0u) return (u >> 16) | 0x40u;
    u += 0x7FFFu + ((u >> 16) & 1u);
    return u >> 16;
}
uint qr_f32_to_f16(float f) { return packHalf2x16(vec2(f, 0.0)) & 0xFFFFu; }
