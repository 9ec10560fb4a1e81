/* fuzz_safetensors.c - libFuzzer target for qr_st_parse (the safetensors header
 * and offset validation).  On success every tensor's byte range is read once,
 * so ASan catches any range the parser let point outside the input.
 * Build: CC=clang cmake -S . -B build-fuzz -DQR_FUZZ=ON -DQR_SANITIZE=ON -DQR_CUDA=OFF -DQR_VULKAN=OFF
 *        ninja -C build-fuzz fuzz_safetensors && build-fuzz/bin/fuzz_safetensors fuzz/corpus/safetensors */
#include "fuzz_util.h"
#include "qrun/qr_model.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet_once();
    uint8_t *buf = (uint8_t *)fuzz_copy(data, size);
    if (!buf)
        return 0;
    struct qr_st_file *f = NULL;
    if (qr_st_parse(buf, size, "fuzz.safetensors", &f) == QR_OK) {
        volatile unsigned sum = 0;
        size_t total = 0;
        for (int i = 0; i < qr_st_count(f); i++) {
            const struct qr_tensor_info *t = qr_st_tensor(f, i);
            if (!t || !t->name || t->n_dims < 0 || t->n_dims > 4)
                __builtin_trap();
            const uint8_t *p = t->data;
            if (t->nbytes) {
                if (p < buf || p + t->nbytes > buf + size)
                    __builtin_trap();
                sum += p[0] + p[t->nbytes - 1];
            }
            total += t->nbytes;
            (void)qr_st_dtype_name(f, i);
        }
        if (total > size)
            __builtin_trap();
        (void)sum;
    }
    qr_st_free(f);
    free(buf);
    return 0;
}
