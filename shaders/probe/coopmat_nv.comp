#version 450
#extension GL_NV_cooperative_matrix : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_memory_scope_semantics : require
layout(local_size_x = 32) in;
layout(std430, binding = 0) buffer B { float16_t d[]; };
void main() {
    fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> a;
    coopMatLoadNV(a, d, 0, 16, false);
    fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> c = coopMatMulAddNV(a, a, a);
    coopMatStoreNV(c, d, 0, 16, false);
}
