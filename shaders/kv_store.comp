#version 450
// Paged KV write: token t's k/v rows go to slot slots[t] (skipped if < 0 or
// out of the pool).  Each invocation writes a pair of dims = one 32-bit word
// for 16-bit caches (head_dim is even).
#extension GL_GOOGLE_include_directive : require
#include "pc/kv_store.h"
#include "include/common.glsl"
layout(local_size_x = 64) in;
layout(std430, binding = 0) buffer KC { uint kc[]; };
layout(std430, binding = 1) buffer VC { uint vc[]; };
layout(std430, binding = 2) readonly buffer K { float k[]; };
layout(std430, binding = 3) readonly buffer V { float v[]; };
layout(std430, binding = 4) readonly buffer S { int slots[]; };

uint pack2(float a, float b, int t) {
    if (t == QR_PC_BF16) return qr_f32_to_bf16(a) | (qr_f32_to_bf16(b) << 16);
    return packHalf2x16(vec2(a, b));
}

void main() {
    int hp = pc.head_dim / 2;
    int g = int(gl_GlobalInvocationID.x);
    int t = int(gl_WorkGroupID.y);
    if (g >= pc.n_kv_heads * hp || t >= pc.n_tokens) return;
    int slot = slots[pc.slots_off + t];
    if (slot < 0 || slot >= pc.num_blocks * pc.block_size) return;
    int h = g / hp, d = (g % hp) * 2;
    int blk = slot / pc.block_size, off = slot % pc.block_size;
    uint e = uint((blk * pc.n_kv_heads + h) * pc.block_size + off) * uint(pc.head_dim) + uint(d);
    int src = t * pc.ld + h * pc.head_dim + d;
    float k0 = k[pc.k_off + src], k1 = k[pc.k_off + src + 1];
    float v0 = v[pc.v_off + src], v1 = v[pc.v_off + src + 1];
    if (pc.kvtype == QR_PC_F32) {
        uint ek = uint(pc.kc_off) + e, ev = uint(pc.vc_off) + e;
        kc[ek] = floatBitsToUint(k0); kc[ek + 1u] = floatBitsToUint(k1);
        vc[ev] = floatBitsToUint(v0); vc[ev + 1u] = floatBitsToUint(v1);
    } else {
        kc[(uint(pc.kc_off) + e) >> 1] = pack2(k0, k1, pc.kvtype);
        vc[(uint(pc.vc_off) + e) >> 1] = pack2(v0, v1, pc.kvtype);
    }
}
