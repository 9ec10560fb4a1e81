/* vk_shaders.h - the embedded SPIR-V table (generated from shaders/variants.cmake). */
#ifndef QR_VK_SHADERS_H
#define QR_VK_SHADERS_H
#include <stddef.h>
struct qr_spv_entry {
    const char *name;               /* variant name, e.g. "matmul_gemv1_bf16" */
    const unsigned char *code;
    const size_t *size;
};
extern const struct qr_spv_entry qr_spv_table[];   /* NULL-terminated */
#endif
