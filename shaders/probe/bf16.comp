#version 450
#extension GL_EXT_bfloat16 : require
layout(local_size_x = 32) in;
layout(std430, binding = 0) buffer B { bfloat16_t d[]; };
void main() { d[0] = bfloat16_t(float(d[1]) + 1.0); }
