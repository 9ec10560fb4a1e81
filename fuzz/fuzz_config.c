/* fuzz_config.c - libFuzzer target for qr_config_parse (config.json).  On
 * success the invariants the loader and runtime rely on are asserted.
 * Build: CC=clang cmake -S . -B build-fuzz -DQR_FUZZ=ON -DQR_SANITIZE=ON -DQR_CUDA=OFF -DQR_VULKAN=OFF
 *        ninja -C build-fuzz fuzz_config && build-fuzz/bin/fuzz_config fuzz/corpus/config */
#include "fuzz_util.h"
#include "qrun/qr_model.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet_once();
    char *buf = fuzz_copy(data, size);
    if (!buf)
        return 0;
    struct qr_model_config c;
    if (qr_config_parse(buf, size, &c) == QR_OK) {
        if (c.hidden_size <= 0 || c.num_hidden_layers <= 0 || c.num_attention_heads <= 0 ||
            c.num_key_value_heads <= 0 || c.num_attention_heads % c.num_key_value_heads != 0 || c.head_dim <= 0 ||
            c.head_dim % 2 != 0 || c.intermediate_size <= 0 || c.vocab_size <= 0 || c.n_eos < 0 ||
            c.n_eos > QR_MAX_EOS || !(c.rms_norm_eps > 0) || !(c.rope_theta >= 1.0))
            __builtin_trap();
        for (int i = 0; i < c.n_eos; i++)
            if (c.eos_token_ids[i] < 0 || c.eos_token_ids[i] >= c.vocab_size)
                __builtin_trap();
    }
    free(buf);
    return 0;
}
