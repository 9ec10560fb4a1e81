/* cli_plan.c - qrun plan: capacity and speed predictions without a GPU, from
 * config.json (or the built-in Qwen3-4B-Instruct-2507 config) and the card
 * table in core/planner.c.
 *   qrun plan [--model DIR] [--gpu NAME | --vram GiB [--bandwidth GB/s] | --compare A,B,...]
 *             [--dtype bf16|fp16|f32] [--kv-dtype bf16|fp16|f32|fp8] [--prompt N] [--output N]
 *             [--efficiency F] [--gpu-memory-utilization F] [--overhead-gib F] [--list] [--json] */
#include "cli.h"
#include "qrun/qr_planner.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GIB (1024.0 * 1024.0 * 1024.0)

static const long long k_ladder[] = {32768, 65536, 131072, 262144};
static const char *const k_ladder_names[] = {"32K", "64K", "128K", "256K"};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qrun plan [--model DIR] [--gpu NAME | --vram GiB [--bandwidth GB/s] | --compare A,B,...]\n"
            "                 [--dtype bf16|fp16|f32] [--kv-dtype bf16|fp16|f32|fp8] [--prompt N] [--output N]\n"
            "                 [--efficiency F] [--gpu-memory-utilization F] [--overhead-gib F] [--list] [--json]\n"
            "Predicts weight bytes, KV bytes per token, the longest context and the most concurrent requests\n"
            "(--prompt/--output, default 8192/512) that fit, and decode tok/s from memory bandwidth x efficiency\n"
            "(default 0.60; pass the share `qrun bench` measured).  Without --model: Qwen3-4B-Instruct-2507.\n"
            "Without --gpu/--vram/--compare: every built-in card.  --list prints the card table and sources.\n");
}

static int parse_dtype(const char *flag, const char *v, enum qr_dtype *dt)
{
    if (!strcmp(v, "bf16") || !strcmp(v, "bfloat16"))
        *dt = QR_DTYPE_BF16;
    else if (!strcmp(v, "fp16") || !strcmp(v, "f16") || !strcmp(v, "float16"))
        *dt = QR_DTYPE_F16;
    else if (!strcmp(v, "f32") || !strcmp(v, "fp32") || !strcmp(v, "float32"))
        *dt = QR_DTYPE_F32;
    else {
        fprintf(stderr, "qrun plan: %s wants bf16, fp16 or f32, got '%s'\n", flag, v);
        return -1;
    }
    return 0;
}

static const char *fits(const struct qr_plan *p, long long ctx) { return p->max_context >= ctx ? "yes" : "no"; }

static void print_one(const char *model, const struct qr_model_config *cfg, const struct qr_plan_opts *o,
                      const char *card, double vram, double bw, const char *source, const struct qr_plan *p)
{
    printf("model      %s (%s, %d layers, hidden %d, %d/%d heads x %d, vocab %d%s)\n", model,
           cfg->arch == QR_ARCH_QWEN3 ? "Qwen3" : "Qwen2", cfg->num_hidden_layers, cfg->hidden_size,
           cfg->num_attention_heads, cfg->num_key_value_heads, cfg->head_dim, cfg->vocab_size,
           cfg->tie_word_embeddings ? ", tied" : "");
    printf("weights    %.3f GB (%.3f B params, %s)\n", p->weight_bytes / 1e9, p->params / 1e9,
           qr_dtype_name(o->weight_dtype));
    printf("KV cache   %.1f KiB/token (%s); %lld tokens (max_position_embeddings) = %.2f GiB\n",
           p->kv_bytes_per_token / 1024.0, qr_dtype_name(o->kv_dtype), (long long)cfg->max_position_embeddings,
           p->kv_bytes_per_token * cfg->max_position_embeddings / GIB);
    printf("card       %s: %.0f GiB, %.0f GB/s%s%s\n", card, vram, bw, source ? "\n           source: " : "",
           source ? source : "");
    printf("memory     usable %.2f GiB (x%.2f) = weights %.2f GiB + overhead %.2f GiB + KV %.2f GiB\n",
           p->usable_bytes / GIB, o->mem_fraction, p->weight_bytes / GIB, o->overhead_bytes / GIB,
           p->kv_budget_bytes > 0 ? p->kv_budget_bytes / GIB : 0.0);
    if (!p->weights_fit) {
        printf("verdict    does NOT fit: the weights and overhead need %.2f GiB, %.2f GiB usable\n",
               (p->weight_bytes + o->overhead_bytes) / GIB, p->usable_bytes / GIB);
        return;
    }
    printf("context    KV pool %lld tokens; max context %lld\n", p->kv_tokens, p->max_context);
    printf("ladder    ");
    for (int i = 0; i < 4; i++)
        printf(" %s:%s", k_ladder_names[i], fits(p, k_ladder[i]));
    printf("\nconcurrency %d requests of %d in / %d out\n", p->max_concurrency, o->prompt_len, o->output_len);
    if (p->decode_tok_s > 0)
        printf("decode     ~%.0f tok/s (%.2f ms/token) at %.0f%% of %.0f GB/s, context %d\n", p->decode_tok_s,
               p->decode_ms, o->efficiency * 100, bw, o->prompt_len + o->output_len / 2);
    if (p->prefill_tok_s > 0)
        printf("prefill    ~%.0f tok/s (GEMMs at half the dense tensor rate; attention not counted)\n",
               p->prefill_tok_s);
}

static void print_table_head(void)
{
    printf("%-18s %6s %7s %9s %9s %4s %4s %5s %5s %6s %8s %9s\n", "card", "VRAM", "GB/s", "KV tokens", "max ctx",
           "32K", "64K", "128K", "256K", "conc", "decode", "prefill");
}

static void print_table_row(const char *card, double vram, double bw, const struct qr_plan *p)
{
    if (!p->weights_fit) {
        printf("%-18s %4.0fGi %7.0f %9s %9s %4s %4s %5s %5s %6s %8s %9s\n", card, vram, bw, "-", "no fit", "no",
               "no", "no", "no", "0", "-", "-");
        return;
    }
    char dec[32] = "-", pre[32] = "-";
    if (p->decode_tok_s > 0)
        snprintf(dec, sizeof dec, "%.0f t/s", p->decode_tok_s);
    if (p->prefill_tok_s > 0)
        snprintf(pre, sizeof pre, "%.0fk t/s", p->prefill_tok_s / 1000);
    printf("%-18s %4.0fGi %7.0f %9lld %9lld %4s %4s %5s %5s %6d %8s %9s\n", card, vram, bw, p->kv_tokens,
           p->max_context, fits(p, k_ladder[0]), fits(p, k_ladder[1]), fits(p, k_ladder[2]), fits(p, k_ladder[3]),
           p->max_concurrency, dec, pre);
}

static cJSON *plan_json(const char *card, double vram, double bw, const struct qr_plan *p)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "card", card);
    cJSON_AddNumberToObject(o, "vram_gib", vram);
    cJSON_AddNumberToObject(o, "bandwidth_gbs", bw);
    cJSON_AddNumberToObject(o, "weight_bytes", p->weight_bytes);
    cJSON_AddNumberToObject(o, "params", p->params);
    cJSON_AddNumberToObject(o, "kv_bytes_per_token", p->kv_bytes_per_token);
    cJSON_AddNumberToObject(o, "usable_bytes", p->usable_bytes);
    cJSON_AddNumberToObject(o, "kv_budget_bytes", p->kv_budget_bytes);
    cJSON_AddBoolToObject(o, "fits", p->weights_fit);
    cJSON_AddNumberToObject(o, "kv_tokens", (double)p->kv_tokens);
    cJSON_AddNumberToObject(o, "max_context", (double)p->max_context);
    cJSON *l = cJSON_AddObjectToObject(o, "context_fits");
    for (int i = 0; i < 4; i++)
        cJSON_AddBoolToObject(l, k_ladder_names[i], p->max_context >= k_ladder[i]);
    cJSON_AddNumberToObject(o, "max_concurrency", p->max_concurrency);
    cJSON_AddNumberToObject(o, "decode_tok_s", p->decode_tok_s);
    cJSON_AddNumberToObject(o, "prefill_tok_s", p->prefill_tok_s);
    return o;
}

int qr_cli_plan(int argc, char **argv)
{
    const char *model = NULL, *gpu = NULL, *compare = NULL;
    double vram = 0, bw = 0;
    bool json = false, list = false;
    struct qr_plan_opts o;
    qr_plan_opts_default(&o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--json")) {
            json = true;
            continue;
        }
        if (!strcmp(a, "--list")) {
            list = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "qrun plan: unknown flag or missing value: %s\n", a);
            usage(stderr);
            return 2;
        }
        const char *v = argv[++i];
        long long n;
        double d;
        if (!strcmp(a, "--model"))
            model = v;
        else if (!strcmp(a, "--gpu"))
            gpu = v;
        else if (!strcmp(a, "--compare"))
            compare = v;
        else if (!strcmp(a, "--vram")) {
            if (qr_cli_parse_float(a, v, 0.1, 1e6, &vram))
                return 2;
        } else if (!strcmp(a, "--bandwidth")) {
            if (qr_cli_parse_float(a, v, 0, 1e6, &bw))
                return 2;
        } else if (!strcmp(a, "--dtype")) {
            if (parse_dtype(a, v, &o.weight_dtype))
                return 2;
        } else if (!strcmp(a, "--kv-dtype")) {
            if (!strcmp(v, "fp8") || !strcmp(v, "fp8_e4m3"))
                o.kv_dtype = QR_DTYPE_F8E4M3;
            else if (parse_dtype(a, v, &o.kv_dtype))
                return 2;
        } else if (!strcmp(a, "--prompt")) {
            if (qr_cli_parse_int(a, v, 0, 1 << 30, &n))
                return 2;
            o.prompt_len = (int)n;
        } else if (!strcmp(a, "--output")) {
            if (qr_cli_parse_int(a, v, 0, 1 << 30, &n))
                return 2;
            o.output_len = (int)n;
        } else if (!strcmp(a, "--efficiency")) {
            if (qr_cli_parse_float(a, v, 0.01, 1.0, &o.efficiency))
                return 2;
        } else if (!strcmp(a, "--gpu-memory-utilization")) {
            if (qr_cli_parse_float(a, v, 0.05, 1.0, &o.mem_fraction))
                return 2;
        } else if (!strcmp(a, "--overhead-gib")) {
            if (qr_cli_parse_float(a, v, 0, 1e4, &d))
                return 2;
            o.overhead_bytes = d * GIB;
        } else {
            fprintf(stderr, "qrun plan: unknown flag %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (o.prompt_len + o.output_len <= 0) {
        fprintf(stderr, "qrun plan: --prompt + --output must be positive\n");
        return 2;
    }
    int ncards = 0;
    const struct qr_gpu_card *cards = qr_plan_cards(&ncards);
    if (list) {
        for (int i = 0; i < ncards; i++)
            printf("%-18s %-6s %-6s %5.0f GiB %7.0f GB/s %7.1f TFLOP/s  %s\n", cards[i].name, cards[i].vendor,
                   cards[i].api, cards[i].vram_gib, cards[i].bandwidth_gbs, cards[i].fp16_tflops, cards[i].source);
        return 0;
    }
    struct qr_model_config cfg;
    const char *model_name = model ? model : "Qwen3-4B-Instruct-2507 (built-in config)";
    if (model) {
        if (qr_config_load(model, &cfg) != QR_OK) {
            fprintf(stderr, "qrun plan: %s\n", qr_last_error());
            return 1;
        }
    } else {
        qr_plan_qwen3_4b_config(&cfg);
    }
    if ((gpu != NULL) + (vram > 0) + (compare != NULL) > 1) {
        fprintf(stderr, "qrun plan: give one of --gpu, --vram and --compare\n");
        return 2;
    }
    struct qr_plan p;
    if (gpu || vram > 0) {
        const struct qr_gpu_card *c = NULL;
        if (gpu && !(c = qr_plan_find_card(gpu))) {
            fprintf(stderr, "qrun plan: unknown card '%s' (qrun plan --list shows the table; or use --vram GiB)\n",
                    gpu);
            return 2;
        }
        double cv = c ? c->vram_gib : vram, cb = c ? c->bandwidth_gbs : bw, ct = c ? c->fp16_tflops : 0;
        const char *name = c ? c->name : "custom";
        if (qr_plan_compute(&cfg, &o, cv, cb, ct, &p) != QR_OK) {
            fprintf(stderr, "qrun plan: %s\n", qr_last_error());
            return 1;
        }
        if (json) {
            cJSON *j = plan_json(name, cv, cb, &p);
            char *s = cJSON_Print(j);
            printf("%s\n", s);
            free(s);
            cJSON_Delete(j);
        } else {
            print_one(model_name, &cfg, &o, name, cv, cb, c ? c->source : NULL, &p);
        }
        return 0;
    }
    /* a table: the --compare list, or every card */
    const struct qr_gpu_card *sel[64];
    int nsel = 0;
    if (compare) {
        char buf[1024];
        snprintf(buf, sizeof buf, "%s", compare);
        for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            const struct qr_gpu_card *c = qr_plan_find_card(tok);
            if (!c) {
                fprintf(stderr, "qrun plan: unknown card '%s' (qrun plan --list shows the table)\n", tok);
                return 2;
            }
            if (nsel < 64)
                sel[nsel++] = c;
        }
    } else {
        for (int i = 0; i < ncards && nsel < 64; i++)
            sel[nsel++] = &cards[i];
    }
    cJSON *arr = json ? cJSON_CreateArray() : NULL;
    if (!json) {
        struct qr_plan p0;
        if (qr_plan_compute(&cfg, &o, 1, 0, 0, &p0) != QR_OK) {
            fprintf(stderr, "qrun plan: %s\n", qr_last_error());
            return 1;
        }
        printf("%s: weights %.3f GB (%s), KV %.1f KiB/token (%s); requests %d in / %d out; decode at %.0f%% of "
               "peak bandwidth\n",
               model_name, p0.weight_bytes / 1e9, qr_dtype_name(o.weight_dtype), p0.kv_bytes_per_token / 1024.0,
               qr_dtype_name(o.kv_dtype), o.prompt_len, o.output_len, o.efficiency * 100);
        print_table_head();
    }
    for (int i = 0; i < nsel; i++) {
        if (qr_plan_compute(&cfg, &o, sel[i]->vram_gib, sel[i]->bandwidth_gbs, sel[i]->fp16_tflops, &p) != QR_OK) {
            fprintf(stderr, "qrun plan: %s\n", qr_last_error());
            cJSON_Delete(arr);
            return 1;
        }
        if (json)
            cJSON_AddItemToArray(arr, plan_json(sel[i]->name, sel[i]->vram_gib, sel[i]->bandwidth_gbs, &p));
        else
            print_table_row(sel[i]->name, sel[i]->vram_gib, sel[i]->bandwidth_gbs, &p);
    }
    if (json) {
        char *s = cJSON_Print(arr);
        printf("%s\n", s);
        free(s);
        cJSON_Delete(arr);
    } else {
        printf("memory: usable = VRAM x %.2f; KV = usable - weights - %.2f GiB overhead; contexts capped at "
               "max_position_embeddings %d\n",
               o.mem_fraction, o.overhead_bytes / GIB, cfg.max_position_embeddings);
    }
    return 0;
}
