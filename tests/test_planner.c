/* test_planner.c - qr_plan_* on known configurations against hand calculations.
 *
 * Qwen3-4B-Instruct-2507 (REFERENCE.md 1.1), BF16, tied:
 *   embed 151936 x 2560                                   =   388,956,160
 *   per layer: q 2560x4096 10,485,760 + k,v 2x2560x1024 5,242,880 + o 10,485,760
 *              + mlp 3x2560x9728 74,711,040 + 2 norms 5,120 + q/k norm 256
 *                                                         =   100,930,816  x 36 = 3,633,509,376
 *   final norm                                            =         2,560
 *   params 4,022,468,096 -> 8,044,936,192 bytes (8.045 GB)
 *   KV/token = 36 x 2 x 8 x 128 x 2 B = 147,456 B = 144 KiB; 262,144 tokens = 38,654,705,664 B = 36 GiB
 * Max context with the default memory model (x0.90, 1 GiB overhead, 16-token blocks):
 *   16 GiB: floor(16 GiB x 0.9) = 15,461,882,265; - 8,044,936,192 - 1,073,741,824 = 6,343,204,249
 *           / 147,456 = 43,017 tokens -> 2,688 blocks = 43,008 tokens: 32K fits, 64K does not;
 *           8192+512 = 544 blocks per request -> 4 concurrent
 *   24 GiB: 23,192,823,398 - 8,044,936,192 - 1,073,741,824 = 14,074,145,382 / 147,456 = 95,446
 *           -> 5,965 blocks = 95,440 tokens: 32K and 64K fit, 128K does not; 10 concurrent
 *   decode on an RTX 4090D: 1008 GB/s x 0.60 / (8,044,936,192 + 147,456 x (8192 + 256)) = 65.1 tok/s
 * Qwen2.5-7B (untied, qkv bias): 2 x 152064 x 3584 + 28 x 233,057,792 + 3584 = 7,615,616,512 params. */
#include "qrun/qr_planner.h"
#include "testutil.h"

#include <math.h>
#include <string.h>

static void test_qwen3_4b(void)
{
    struct qr_model_config c;
    qr_plan_qwen3_4b_config(&c);
    struct qr_plan_opts o;
    qr_plan_opts_default(&o);
    struct qr_plan p;
    CHECK(qr_plan_compute(&c, &o, 16, 0, 0, &p) == QR_OK);
    CHECKF(p.params == 4022468096.0, "params %.0f", p.params);
    CHECKF(p.weight_bytes == 8044936192.0, "weight bytes %.0f", p.weight_bytes);
    CHECK(fabs(p.weight_bytes / 1e9 - 8.045) < 0.0005);
    CHECKF(p.kv_bytes_per_token == 147456.0 && p.kv_bytes_per_token / 1024 == 144.0, "kv %.0f", p.kv_bytes_per_token);
    CHECK(p.kv_bytes_per_token * 262144 == 36.0 * 1024 * 1024 * 1024);
    /* 16 GiB card (T4, A4000, RTX 4080) */
    CHECKF(p.weights_fit && p.kv_tokens == 43008 && p.max_context == 43008, "16 GiB: %lld", p.kv_tokens);
    CHECK(p.max_context >= 32768 && p.max_context < 65536);
    CHECKF(p.max_concurrency == 4, "16 GiB concurrency %d", p.max_concurrency);
    /* 24 GiB card (RTX 4090D) */
    const struct qr_gpu_card *g = qr_plan_find_card("RTX4090D");
    CHECK(g && strcmp(g->name, "RTX 4090D") == 0 && g->vram_gib == 24 && g->bandwidth_gbs == 1008);
    if (g) {
        CHECK(qr_plan_compute(&c, &o, g->vram_gib, g->bandwidth_gbs, g->fp16_tflops, &p) == QR_OK);
        CHECKF(p.kv_tokens == 95424 && p.max_context == 95424, "24 GiB: %lld", p.kv_tokens);
        CHECK(p.max_context >= 65536 && p.max_context < 131072);
        CHECKF(p.max_concurrency == 10, "24 GiB concurrency %d", p.max_concurrency);
        CHECKF(fabs(p.decode_tok_s - 65.0977) < 0.01, "decode %.4f", p.decode_tok_s);
        CHECK(p.prefill_tok_s > 0);
    }
    /* 80 GiB: 256K needs 36 GiB of KV: fits, and context is capped by max_position_embeddings */
    CHECK(qr_plan_compute(&c, &o, 80, 3350, 989, &p) == QR_OK);
    CHECK(p.kv_tokens > 262144 && p.max_context == 262144);
    /* 8 GiB: the weights alone do not fit */
    CHECK(qr_plan_compute(&c, &o, 8, 300, 0, &p) == QR_OK);
    CHECK(!p.weights_fit && p.max_context == 0 && p.max_concurrency == 0);
    /* f32 KV doubles the per-token bytes; fp16 weights are the same size as bf16 */
    o.kv_dtype = QR_DTYPE_F32;
    o.weight_dtype = QR_DTYPE_F16;
    CHECK(qr_plan_compute(&c, &o, 24, 0, 0, &p) == QR_OK);
    CHECK(p.kv_bytes_per_token == 294912.0 && p.weight_bytes == 8044936192.0);
    /* bad arguments */
    qr_plan_opts_default(&o);
    CHECK(qr_plan_compute(&c, &o, 0, 0, 0, &p) == QR_E_INVALID_ARG);
    o.block_size = 0;
    CHECK(qr_plan_compute(&c, &o, 16, 0, 0, &p) == QR_E_INVALID_ARG);
}

static void test_qwen25_7b(void)
{
    const char *js = "{\"architectures\":[\"Qwen2ForCausalLM\"],\"hidden_size\":3584,\"intermediate_size\":18944,"
                     "\"max_position_embeddings\":32768,\"num_attention_heads\":28,\"num_hidden_layers\":28,"
                     "\"num_key_value_heads\":4,\"tie_word_embeddings\":false,\"vocab_size\":152064}";
    struct qr_model_config c;
    CHECK(qr_config_parse(js, strlen(js), &c) == QR_OK);
    CHECKF(qr_plan_params(&c) == 7615616512.0, "params %.0f", qr_plan_params(&c));
    struct qr_plan_opts o;
    qr_plan_opts_default(&o);
    struct qr_plan p;
    CHECK(qr_plan_compute(&c, &o, 80, 0, 0, &p) == QR_OK);
    CHECK(p.kv_bytes_per_token == 28.0 * 2 * 4 * 128 * 2);  /* 57,344 B = 56 KiB */
    CHECK(p.max_context == 32768);                          /* capped by the config */
}

static void test_cards(void)
{
    int n = 0;
    const struct qr_gpu_card *cards = qr_plan_cards(&n);
    CHECK(n >= 17);
    const char *need[] = {"T4", "A4000", "A10", "L4", "RTX 3090", "RTX 4080", "RTX 4090", "RTX 4090D", "A100 40GB",
                          "A100 80GB", "H100 PCIe", "H100 SXM", "H200"};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
        CHECKF(qr_plan_find_card(need[i]) != NULL, "card %s", need[i]);
    bool amd = false, intel = false;
    for (int i = 0; i < n; i++) {
        CHECK(cards[i].vram_gib > 0 && cards[i].bandwidth_gbs > 0 && cards[i].source && cards[i].source[0]);
        amd |= strcmp(cards[i].vendor, "AMD") == 0 && strcmp(cards[i].api, "vulkan") == 0;
        intel |= strcmp(cards[i].vendor, "Intel") == 0 && strcmp(cards[i].api, "vulkan") == 0;
    }
    CHECK(amd && intel);
    CHECK(qr_plan_find_card("rtx 4090d") == qr_plan_find_card("4090D"));
    CHECK(qr_plan_find_card("RTX4080") && qr_plan_find_card("rtx-a4000") == qr_plan_find_card("A4000"));
    CHECK(qr_plan_find_card("h100-sxm") && qr_plan_find_card("H100")->bandwidth_gbs == 3350);
    CHECK(qr_plan_find_card("GTX 480") == NULL && qr_plan_find_card(NULL) == NULL);
}

int main(void)
{
    test_qwen3_4b();
    test_qwen25_7b();
    test_cards();
    return qt_summary("test_planner");
}
