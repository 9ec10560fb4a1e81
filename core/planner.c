/* planner.c - capacity planning from a config and a card table (qr_planner.h).
 *
 * Memory model (what qrun's runtime allocates):
 *   usable      = VRAM x mem_fraction (--gpu-memory-utilization, default 0.90)
 *   KV budget   = usable - weight bytes - overhead (CUDA/Vulkan context,
 *                 cuBLAS workspace, step scratch, logits; default 1 GiB)
 *   KV tokens   = floor(KV budget / KV bytes per token), rounded down to whole
 *                 KV blocks (16 tokens)
 *   max context = min(KV tokens, max_position_embeddings)
 *   concurrency = KV blocks / blocks per request (ceil((prompt + output) / 16))
 * Speed model (decode is memory bound): each token reads every weight once and
 * the KV of its context, so tok/s = bandwidth x efficiency / (weights + KV x
 * context).  The default efficiency 0.60 is near what llama.cpp reaches on the
 * H100 (56 %, /work/shared/PERF.md); pass the share qrun measured (qrun bench)
 * instead.  Prefill is compute bound: 2 x params FLOP per token at half the
 * dense tensor rate; indicative only (attention not counted). */
#include "qrun/qr_planner.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define GIB (1024.0 * 1024.0 * 1024.0)

/* Vendor figures: memory (as marketed), peak bandwidth, dense FP16/BF16 tensor
 * throughput with FP32 accumulate (the rate inference kernels use; sparsity
 * figures halved).  "(verify)" marks a figure recalled rather than read from
 * a stored copy of the datasheet. */
static const struct qr_gpu_card k_cards[] = {
    {"T4", "NVIDIA", "cuda", 16, 320, 65, "NVIDIA T4 Tensor Core GPU datasheet: 16 GB GDDR6, 320+ GB/s, 65 FP16 TFLOPS"},
    {"A4000", "NVIDIA", "cuda", 16, 448, 76.7,
     "NVIDIA RTX A4000 datasheet: 16 GB GDDR6, 448 GB/s, 153.4 tensor TFLOPS with sparsity (verify)"},
    {"A10", "NVIDIA", "cuda", 24, 600, 125, "NVIDIA A10 datasheet: 24 GB GDDR6, 600 GB/s, BF16 125 TFLOPS (250 sparse)"},
    {"L4", "NVIDIA", "cuda", 24, 300, 121, "NVIDIA L4 datasheet: 24 GB GDDR6, 300 GB/s, FP16 242 TFLOPS sparse"},
    {"RTX 3090", "NVIDIA", "cuda", 24, 936, 71,
     "NVIDIA Ampere GA102 whitepaper: 24 GB GDDR6X, 936 GB/s, FP16 tensor w/ FP32 acc 71 TFLOPS"},
    {"RTX 4080", "NVIDIA", "cuda", 16, 716.8, 97.5,
     "NVIDIA Ada Lovelace whitepaper: 16 GB GDDR6X 22.4 Gbps x 256-bit = 716.8 GB/s, FP16 w/ FP32 acc 97.5 TFLOPS"},
    {"RTX 4090", "NVIDIA", "cuda", 24, 1008, 165.2,
     "NVIDIA Ada Lovelace whitepaper: 24 GB GDDR6X, 1008 GB/s, FP16 w/ FP32 acc 165.2 TFLOPS"},
    {"RTX 4090D", "NVIDIA", "cuda", 24, 1008, 147,
     "NVIDIA GeForce RTX 4090 D spec page: 24 GB GDDR6X 1008 GB/s; 14592 CUDA cores (tensor rate scaled from "
     "4090, verify)"},
    {"A100 40GB", "NVIDIA", "cuda", 40, 1555, 312, "NVIDIA A100 datasheet: 40 GB HBM2, 1555 GB/s, BF16 312 TFLOPS"},
    {"A100 80GB", "NVIDIA", "cuda", 80, 2039, 312,
     "NVIDIA A100 datasheet: 80 GB HBM2e, 2039 GB/s (SXM), BF16 312 TFLOPS"},
    {"H100 PCIe", "NVIDIA", "cuda", 80, 2000, 756,
     "NVIDIA H100 datasheet: 80 GB HBM2e, 2 TB/s, BF16 1513 TFLOPS sparse"},
    {"H100 SXM", "NVIDIA", "cuda", 80, 3350, 989,
     "NVIDIA H100 datasheet: 80 GB HBM3, 3.35 TB/s, BF16 1979 TFLOPS sparse"},
    {"H200", "NVIDIA", "cuda", 141, 4800, 989, "NVIDIA H200 datasheet: 141 GB HBM3e, 4.8 TB/s, BF16 1979 TFLOPS sparse"},
    {"RX 7900 XTX", "AMD", "vulkan", 24, 960, 122.8,
     "AMD Radeon RX 7900 XTX spec page: 24 GB GDDR6, 960 GB/s, 122.8 FP16 TFLOPS (verify)"},
    {"Radeon PRO W7900", "AMD", "vulkan", 48, 864, 122.6,
     "AMD Radeon PRO W7900 spec page: 48 GB GDDR6, 864 GB/s, 122.6 FP16 TFLOPS (verify)"},
    {"Arc A770", "Intel", "vulkan", 16, 560, 138,
     "Intel Arc A770 16GB spec page: 16 GB GDDR6, 560 GB/s; XMX FP16 ~138 TFLOPS (verify)"},
    {"Arc B580", "Intel", "vulkan", 12, 456, 117,
     "Intel Arc B580 spec page: 12 GB GDDR6, 456 GB/s; XMX FP16 ~117 TFLOPS (verify)"},
};

const struct qr_gpu_card *qr_plan_cards(int *n)
{
    if (n)
        *n = (int)(sizeof k_cards / sizeof k_cards[0]);
    return k_cards;
}

static void squash(const char *s, char *out, size_t cap)
{
    size_t k = 0;
    for (; *s && k + 1 < cap; s++)
        if (*s != ' ' && *s != '-' && *s != '_')
            out[k++] = (char)tolower((unsigned char)*s);
    out[k] = '\0';
}

const struct qr_gpu_card *qr_plan_find_card(const char *name)
{
    if (!name)
        return NULL;
    char want[64], have[64], alt[72];
    squash(name, want, sizeof want);
    for (size_t i = 0; i < sizeof k_cards / sizeof k_cards[0]; i++) {
        squash(k_cards[i].name, have, sizeof have);
        if (strcmp(want, have) == 0)
            return &k_cards[i];
        /* "4090D" for "RTX 4090D", "RTXA4000" for "A4000", "A100" alone means the 80 GB card */
        snprintf(alt, sizeof alt, "rtx%s", have);
        if (strcmp(want, alt) == 0 || (strncmp(have, "rtx", 3) == 0 && strcmp(want, have + 3) == 0))
            return &k_cards[i];
    }
    if (strcmp(want, "a100") == 0)
        return qr_plan_find_card("A100 80GB");
    if (strcmp(want, "h100") == 0)
        return qr_plan_find_card("H100 SXM");
    return NULL;
}

void qr_plan_opts_default(struct qr_plan_opts *o)
{
    memset(o, 0, sizeof *o);
    o->weight_dtype = QR_DTYPE_BF16;
    o->kv_dtype = QR_DTYPE_BF16;
    o->mem_fraction = 0.90;
    o->overhead_bytes = GIB;
    o->block_size = QR_DEFAULT_BLOCK_SIZE;
    o->prompt_len = 8192;
    o->output_len = 512;
    o->efficiency = 0.60;
}

double qr_plan_params(const struct qr_model_config *c)
{
    double dim = c->hidden_size, hd = c->head_dim, qd = (double)c->num_attention_heads * hd,
           kvd = (double)c->num_key_value_heads * hd, ffn = c->intermediate_size, vocab = c->vocab_size;
    double layer = dim * qd + 2.0 * dim * kvd + qd * dim + 3.0 * dim * ffn + 2.0 * dim;
    if (c->attention_bias)
        layer += qd + 2.0 * kvd;
    if (c->qk_norm)
        layer += 2.0 * hd;
    return vocab * dim * (c->tie_word_embeddings ? 1.0 : 2.0) + c->num_hidden_layers * layer + dim;
}

void qr_plan_qwen3_4b_config(struct qr_model_config *c)
{
    memset(c, 0, sizeof *c);
    c->arch = QR_ARCH_QWEN3;
    c->hidden_size = 2560;
    c->num_hidden_layers = 36;
    c->num_attention_heads = 32;
    c->num_key_value_heads = 8;
    c->head_dim = 128;
    c->intermediate_size = 9728;
    c->vocab_size = 151936;
    c->max_position_embeddings = 262144;
    c->rope_theta = 5000000.0;
    c->rms_norm_eps = 1e-6;
    c->tie_word_embeddings = true;
    c->qk_norm = true;
    c->dtype = QR_DTYPE_BF16;
    c->bos_token_id = 151643;
    c->eos_token_ids[0] = 151645;
    c->n_eos = 1;
}

qr_status qr_plan_compute(const struct qr_model_config *cfg, const struct qr_plan_opts *o, double vram_gib,
                          double bandwidth_gbs, double fp16_tflops, struct qr_plan *out)
{
    if (!cfg || !o || !out || !(vram_gib > 0) || o->block_size <= 0 || !(o->mem_fraction > 0) ||
        o->mem_fraction > 1 || o->prompt_len < 0 || o->output_len < 0 || o->prompt_len + o->output_len <= 0)
        return qr_set_error(QR_E_INVALID_ARG, "qr_plan_compute: bad arguments");
    size_t wsz = qr_dtype_size(o->weight_dtype), ksz = qr_dtype_size(o->kv_dtype);
    if (!wsz || !ksz)
        return qr_set_error(QR_E_INVALID_ARG, "qr_plan_compute: unknown dtype");
    struct qr_plan p;
    memset(&p, 0, sizeof p);
    p.params = qr_plan_params(cfg);
    p.weight_bytes = p.params * (double)wsz;
    p.kv_bytes_per_token =
        (double)cfg->num_hidden_layers * 2.0 * cfg->num_key_value_heads * cfg->head_dim * (double)ksz;
    p.usable_bytes = floor(vram_gib * GIB * o->mem_fraction);
    p.kv_budget_bytes = p.usable_bytes - p.weight_bytes - o->overhead_bytes;
    p.weights_fit = p.kv_budget_bytes > 0;
    if (p.weights_fit) {
        long long tokens = (long long)floor(p.kv_budget_bytes / p.kv_bytes_per_token);
        long long blocks = tokens / o->block_size;
        p.kv_tokens = blocks * o->block_size;
        p.max_context = p.kv_tokens < cfg->max_position_embeddings ? p.kv_tokens : cfg->max_position_embeddings;
        long long per_req = (o->prompt_len + o->output_len + o->block_size - 1) / o->block_size;
        long long conc = blocks / per_req;
        p.max_concurrency = conc > 1000000 ? 1000000 : (int)conc;
        if (o->prompt_len + o->output_len > cfg->max_position_embeddings)
            p.max_concurrency = 0;
    }
    if (bandwidth_gbs > 0 && o->efficiency > 0) {
        double ctx = o->prompt_len + o->output_len / 2.0;
        double bytes = p.weight_bytes + p.kv_bytes_per_token * ctx;
        p.decode_tok_s = bandwidth_gbs * 1e9 * o->efficiency / bytes;
        p.decode_ms = 1000.0 / p.decode_tok_s;
    }
    if (fp16_tflops > 0)
        p.prefill_tok_s = fp16_tflops * 1e12 * 0.5 / (2.0 * p.params);
    *out = p;
    return QR_OK;
}
