/* pc_common.h - shared by C and GLSL: push-constant struct delimiters.
 * C:    struct qr_pc_NAME { ... };
 * GLSL: layout(push_constant) uniform qr_pc_NAME { ... } pc;
 * Fields are int / float only (4 bytes each, std430 = C layout). */
#ifndef QR_PC_COMMON_H
#define QR_PC_COMMON_H
#ifdef GL_core_profile
#define QR_PC_BEGIN(name) layout(push_constant) uniform name {
#define QR_PC_END(name) } pc;
#else
#define QR_PC_BEGIN(name) struct name {
#define QR_PC_END(name) };
#endif
/* dtype codes match enum qr_dtype */
#define QR_PC_F32 0
#define QR_PC_F16 1
#define QR_PC_BF16 2
#endif
