/* fuzz_tune_cache.c - libFuzzer target for qr_tc_parse (the tuning cache file, core/tune_cache.c).  Every record it
 * returns must be in bounds, unique by key, and come back the same through qr_tc_format and a second parse.
 * Build: CC=clang cmake -S . -B build-fuzz -DQR_FUZZ=ON -DQR_SANITIZE=ON -DQR_CUDA=OFF -DQR_VULKAN=OFF
 *        ninja -C build-fuzz fuzz_tune_cache && build-fuzz/bin/fuzz_tune_cache fuzz/corpus/tune_cache */
#include "fuzz_util.h"
#include "qrun/qr_tune_cache.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DEV "NVIDIA H100 80GB HBM3|sm90|132 SMs|cublasLt 130000|qrun gemm tune 2"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet_once();
    char *buf = fuzz_copy(data, size);
    if (!buf)
        return 0;
    static struct qr_tc_rec out[64], again[2];
    int n = 0, n_bad = 0;
    if (qr_tc_parse(buf, size, DEV, out, 64, &n, &n_bad) == QR_OK) {
        if (n < 0 || n > 64 || n_bad < 0)
            __builtin_trap();
        for (int i = 0; i < n; i++) {
            const struct qr_tc_rec *r = &out[i];
            if (r->n_key < 1 || r->n_key > QR_TC_KEY_MAX || r->n_val < 1 || r->n_val > QR_TC_VAL_MAX ||
                qr_tc_find(out, i, r->key, r->n_key) >= 0)
                __builtin_trap();
            char text[1400] = "qrun-tune-cache 1 " DEV "\n";
            const size_t h = strlen(text);
            int m = 0, mb = 0;
            if (!qr_tc_format(r, text + h, sizeof text - h) ||
                qr_tc_parse(text, strlen(text), DEV, again, 2, &m, &mb) != QR_OK || m != 1 || mb != 0 ||
                again[0].n_key != r->n_key || again[0].n_val != r->n_val ||
                memcmp(again[0].key, r->key, sizeof r->key[0] * (size_t)r->n_key) ||
                memcmp(again[0].val, r->val, sizeof r->val[0] * (size_t)r->n_val))
                __builtin_trap();
        }
    } else if (n != 0) {
        __builtin_trap();
    }
    free(buf);
    return 0;
}
