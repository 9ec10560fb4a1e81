/* cli_bench_latency.c - `qrun bench latency [engine flags] [--prompt-lens 512,8192]
 *                         [--gen 128] [--long-run 8192,512] [--cached-prefix P] [--json-out F]`
 *
 * Single-sequence latency on the runtime directly (no scheduler in the way):
 * random-token prompts, prefilled in steps of --max-num-batched-tokens, then
 * greedy decode with the argmax on the device.  Reports per prompt length:
 * TTFT, decode tok/s at batch 1, and the effective bandwidth of decode
 * (weights read per token + the KV cache read at the mean context, over the
 * time per token) against the device's measured copy bandwidth; peak device
 * memory; and the 8192-in / 512-out run. */
#include "cli.h"
#include "qrun/qr_registry.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LENS 16

static void usage(FILE *f)
{
    fprintf(f, "usage: qrun bench latency [engine options] [--prompt-lens 512,8192] [--gen 128]\n"
               "                          [--long-run IN,OUT (default 8192,512; 0 = skip)] [--warmup N]\n"
               "                          [--cached-prefix P (each --prompt-lens run follows P tokens already in\n"
               "                          the KV cache, as a prefix-cache hit leaves them: TTFT of the new tokens)]\n"
               "                          [--json-out FILE]\n");
    qr_cli_engine_usage(f);
}

static int parse_list(const char *flag, const char *s, long long *out, int max, int *n)
{
    *n = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (*n >= max) {
            fprintf(stderr, "qrun: %s takes at most %d values\n", flag, max);
            return -1;
        }
        if (qr_cli_parse_int(flag, t, 0, 1 << 24, &out[(*n)++]))
            return -1;
    }
    if (*n == 0) {
        fprintf(stderr, "qrun: %s needs values\n", flag);
        return -1;
    }
    return 0;
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

struct run_result {
    int prompt, gen, cached;
    double ttft_s, decode_tok_s, eff_gbs, bytes_per_tok;
};

struct bench {
    struct qr_runtime *rt;
    int bs, nblk, max_step, vocab;
    int32_t *bt, *pos, *slots, *toks;
    size_t weight_read, kv_per_token;
};

/* one sequence: `cached` random tokens prefilled untimed (the KV a prefix-cache hit would leave), then `prompt`
 * more prefilled (TTFT), then `gen` decoded greedily */
static qr_status run_one(struct bench *B, int cached, int prompt, int gen, uint64_t seed, struct run_result *r)
{
    uint64_t x = seed * 6364136223846793005ull + 1442695040888963407ull;
    int V = B->vocab < 151643 ? B->vocab : 151643;
    const int end = cached + prompt;
    for (int i = 0; i < end; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        B->toks[i] = (int32_t)((x >> 33) % (uint64_t)V);
    }
    qr_status st;
    double t0 = qr_time_s();
    int32_t next = -1;
    /* chunks of at most max_step tokens; the timed part starts at a chunk boundary of its own */
    for (int c0 = 0; c0 < end;) {
        const int stop = c0 < cached ? cached : end;
        int q = stop - c0 < B->max_step ? stop - c0 : B->max_step;
        if (c0 == cached)
            t0 = qr_time_s();
        for (int j = 0; j < q; j++) {
            int p = c0 + j;
            B->pos[j] = p;
            B->slots[j] = B->bt[p / B->bs] * B->bs + p % B->bs;
        }
        int32_t qs[2] = {0, q}, sl[1] = {c0 + q}, oi[1] = {q - 1};
        bool last = c0 + q >= end;
        struct qr_batch b = {.n_tokens = q, .tokens = B->toks + c0, .positions = B->pos, .slots = B->slots,
                             .n_seqs = 1, .q_start = qs, .seq_lens = sl, .block_tables = B->bt,
                             .max_blocks_per_seq = B->nblk, .n_out = last ? 1 : 0, .out_idx = oi};
        if ((st = qr_rt_forward(B->rt, &b, NULL, last ? &next : NULL)) != QR_OK)
            return st;
        c0 += q;
    }
    double t1 = qr_time_s();
    B->toks[end] = next;
    for (int k = 1; k < gen; k++) {
        int p = end + k - 1;
        int32_t pos = p, slot = B->bt[p / B->bs] * B->bs + p % B->bs, qs[2] = {0, 1}, sl[1] = {p + 1}, oi[1] = {0};
        struct qr_batch b = {.n_tokens = 1, .tokens = B->toks + p, .positions = &pos, .slots = &slot, .n_seqs = 1,
                             .q_start = qs, .seq_lens = sl, .block_tables = B->bt, .max_blocks_per_seq = B->nblk,
                             .n_out = 1, .out_idx = oi};
        if ((st = qr_rt_forward(B->rt, &b, NULL, &next)) != QR_OK)
            return st;
        B->toks[p + 1] = next;
    }
    double t2 = qr_time_s();
    r->prompt = prompt;
    r->gen = gen;
    r->cached = cached;
    r->ttft_s = t1 - t0;
    r->decode_tok_s = gen > 1 ? (gen - 1) / (t2 - t1) : 0;
    double mean_ctx = end + gen / 2.0;
    r->bytes_per_tok = (double)B->weight_read + mean_ctx * (double)B->kv_per_token;
    r->eff_gbs = r->bytes_per_tok * r->decode_tok_s / 1e9;
    return QR_OK;
}

/* device copy bandwidth (bytes read + written per second), or 0 */
static double copy_bandwidth(struct qr_device *dev) { return qr_cli_copy_bandwidth(dev, (size_t)256 << 20); }

int qr_cli_bench_latency(int argc, char **argv)
{
    struct qr_engine_opts eo;
    qr_engine_opts_default(&eo);
    long long lens[MAX_LENS] = {512, 8192}, gen = 128, lr[2] = {8192, 512}, warm = 1, cached = 0;
    int n_lens = 2, n_lr = 2;
    const char *json_out = NULL;
    for (int i = 1; i < argc; i++) {
        int k = qr_cli_engine_flag(&eo, argc, argv, i);
        if (k < 0)
            return 2;
        if (k > 0) {
            i += k - 1;
            continue;
        }
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--prompt-lens") && v) {
            if (parse_list(a, v, lens, MAX_LENS, &n_lens))
                return 2;
            for (int j = 0; j < n_lens; j++)
                if (lens[j] < 1) {
                    fprintf(stderr, "qrun: --prompt-lens values must be >= 1\n");
                    return 2;
                }
            i++;
        } else if (!strcmp(a, "--gen") && v) {
            if (qr_cli_parse_int(a, v, 1, 1 << 20, &gen))
                return 2;
            i++;
        } else if (!strcmp(a, "--cached-prefix") && v) {
            if (qr_cli_parse_int(a, v, 0, 1 << 22, &cached))
                return 2;
            i++;
        } else if (!strcmp(a, "--warmup") && v) {
            if (qr_cli_parse_int(a, v, 0, 100, &warm))
                return 2;
            i++;
        } else if (!strcmp(a, "--long-run") && v) {
            if (!strcmp(v, "0")) {
                n_lr = 0;
            } else if (parse_list(a, v, lr, 2, &n_lr) || n_lr != 2 || lr[0] < 1 || lr[1] < 1) {
                fprintf(stderr, "qrun: --long-run takes IN,OUT (or 0)\n");
                return 2;
            }
            i++;
        } else if (!strcmp(a, "--json-out") && v) {
            json_out = v;
            i++;
        } else {
            fprintf(stderr, "qrun bench latency: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (qr_cli_engine_finish(&eo))
        return 2;
    int rc = 1;
    struct qr_config_ini *ini = NULL;
    struct qr_device *dev = NULL;
    struct qr_model *m = NULL;
    struct bench B = {0};
    struct run_result res[MAX_LENS + 1];
    int n_res = 0;
    if (qr_ini_load(eo.config_path, &ini) != QR_OK) {
        fprintf(stderr, "qrun: %s\n", qr_last_error());
        goto out;
    }
    struct qr_backend_opts ov = {.device_index = eo.device_index, .mem_fraction = eo.gpu_mem_util,
                                 .n_threads = eo.n_threads};
    double t0 = qr_time_s();
    if (qr_backend_open(ini, eo.backend ? eo.backend : "auto", &ov, &dev) != QR_OK ||
        qr_model_open(eo.model_dir, &m) != QR_OK) {
        fprintf(stderr, "qrun: %s\n", qr_last_error());
        goto out;
    }
    int longest = 16 + 4;
    for (int i = 0; i < n_lens; i++)
        if (cached + lens[i] + gen > longest)
            longest = (int)(cached + lens[i] + gen);
    if (n_lr == 2 && lr[0] + lr[1] > longest)
        longest = (int)(lr[0] + lr[1]);
    int maxlen = eo.max_model_len > 0 ? eo.max_model_len : m->cfg.max_position_embeddings;
    if (longest > maxlen) {
        fprintf(stderr, "qrun: the longest run needs %d tokens of context, over the max model length %d\n", longest,
                maxlen);
        goto out;
    }
    B.bs = eo.block_size > 0 ? eo.block_size : QR_DEFAULT_BLOCK_SIZE;
    B.nblk = (longest + B.bs - 1) / B.bs;
    int mbt = eo.max_num_batched_tokens > 0 ? eo.max_num_batched_tokens : 8192;
    B.max_step = mbt < longest ? mbt : longest;
    struct qr_runtime_opts ro = {.kv_dtype = eo.kv_dtype, .block_size = B.bs, .num_blocks = B.nblk,
                                 .mem_fraction = eo.gpu_mem_util, .max_model_len = B.nblk * B.bs,
                                 .max_batch_tokens = B.max_step, .max_seqs = 1, .max_out = 1};
    if (ro.kv_dtype == QR_DTYPE_COUNT) {
        bool cpu = dev->reg && !strcmp(dev->reg->name, "cpu");
        ro.kv_dtype = !cpu && qr_dev_supports(dev, QR_OP_ATTN, QR_DTYPE_BF16) ? QR_DTYPE_BF16 : QR_DTYPE_F32;
    }
    if (qr_rt_create(m, dev, &ro, qr_cli_progress, "loading", &B.rt) != QR_OK) {
        fprintf(stderr, "qrun: %s\n", qr_last_error());
        goto out;
    }
    double t_load = qr_time_s() - t0;
    const struct qr_model_config *c = &m->cfg;
    B.vocab = c->vocab_size;
    B.bt = malloc(sizeof(int32_t) * (size_t)B.nblk);
    B.pos = malloc(sizeof(int32_t) * (size_t)B.max_step);
    B.slots = malloc(sizeof(int32_t) * (size_t)B.max_step);
    B.toks = malloc(sizeof(int32_t) * (size_t)(longest + 1));
    if (!B.bt || !B.pos || !B.slots || !B.toks) {
        fprintf(stderr, "qrun: out of memory\n");
        goto out;
    }
    for (int i = 0; i < B.nblk; i++)
        B.bt[i] = i;
    struct qr_mem_report mr;
    qr_rt_mem(B.rt, &mr);
    /* bytes a decode step reads: every matmul weight and lm_head; an untied
     * embedding table is read one row at a time, so it does not count */
    size_t embed_bytes = (size_t)c->vocab_size * c->hidden_size * qr_dtype_size(m->embed_tokens->dtype);
    B.weight_read = mr.weights > embed_bytes && !c->tie_word_embeddings ? mr.weights - embed_bytes : mr.weights;
    if (mr.weights == 0)
        B.weight_read = m->weight_bytes;
    B.kv_per_token = (size_t)c->num_hidden_layers * 2 * c->num_key_value_heads * c->head_dim *
                     qr_dtype_size(ro.kv_dtype);
    double bw = copy_bandwidth(dev);
    struct qr_device_props props;
    qr_dev_props(dev, &props);
    fprintf(stderr, "bench latency on %s (%s): load %.2f s, weights %.1f MiB, KV %s, step %d tokens\n", props.name,
            dev->reg ? dev->reg->name : "?", t_load, mr.weights / 1048576.0, qr_dtype_name(ro.kv_dtype), B.max_step);
    /* warm-up: a short run, then each measured prompt length once (first use of a prompt-size kernel loads its
     * module or builds its pipeline: cuBLAS's lazily loaded GEMMs, Vulkan's cooperative-matrix pipelines) */
    for (int w = 0; w < warm; w++) {
        struct run_result r;
        for (int i = -1; i < n_lens; i++)
            if (run_one(&B, i < 0 ? 0 : (int)cached, i < 0 ? 16 : (int)lens[i], i < 0 ? 4 : 2, 99, &r) != QR_OK) {
                fprintf(stderr, "qrun: warmup: %s\n", qr_last_error());
                goto out;
            }
    }
    size_t min_free = props.mem_free;
    if (cached > 0)
        printf("each prompt below follows a cached prefix of %lld tokens (prefilled untimed, as a prefix-cache hit "
               "leaves it): TTFT of the new tokens only\n",
               cached);
    printf("%-8s %-6s %10s %12s %12s %10s\n", "prompt", "gen", "TTFT ms", "prefill t/s", "decode t/s", "eff GB/s");
    int total_runs = n_lens + (n_lr == 2 ? 1 : 0);
    for (int i = 0; i < total_runs; i++) {
        int P = i < n_lens ? (int)lens[i] : (int)lr[0], G = i < n_lens ? (int)gen : (int)lr[1];
        struct run_result *r = &res[n_res];
        if (run_one(&B, i < n_lens ? (int)cached : 0, P, G, (uint64_t)i + 1, r) != QR_OK) {
            fprintf(stderr, "qrun: run %d in / %d out: %s\n", P, G, qr_last_error());
            goto out;
        }
        n_res++;
        struct qr_device_props p2;
        if (qr_dev_props(dev, &p2) == QR_OK && p2.mem_free < min_free)
            min_free = p2.mem_free;
        printf("%-8d %-6d %10.1f %12.1f %12.2f %10.1f%s\n", P, G, r->ttft_s * 1e3, P / r->ttft_s, r->decode_tok_s,
               r->eff_gbs, i >= n_lens ? "   (long run)" : "");
        fflush(stdout);
    }
    if (bw > 0)
        printf("device copy bandwidth (read + write): %.1f GB/s; decode reaches %.0f%% of it at %d tokens\n", bw / 1e9,
               100.0 * res[0].eff_gbs / (bw / 1e9), res[0].prompt);
    else
        printf("device copy bandwidth: not measured; weights-only figure: %.1f GB/s\n",
               (double)B.weight_read * res[0].decode_tok_s / 1e9);
    size_t peak = props.mem_total > min_free ? props.mem_total - min_free : 0;
    printf("memory: weights %.1f MiB, KV %.1f MiB, activations %.1f MiB; device in use at peak %.1f of %.1f MiB\n",
           mr.weights / 1048576.0, mr.kv / 1048576.0, mr.activations / 1048576.0, peak / 1048576.0,
           props.mem_total / 1048576.0);
    if (json_out) {
        FILE *f = fopen(json_out, "w");
        if (!f) {
            fprintf(stderr, "qrun: cannot write %s\n", json_out);
            goto out;
        }
        fprintf(f, "{\"device\": ");
        json_str(f, props.name);
        fprintf(f, ", \"backend\": ");
        json_str(f, dev->reg ? dev->reg->name : "?");
        fprintf(f, ", \"model\": ");
        json_str(f, eo.model_dir);
        fprintf(f, ", \"kv_dtype\": \"%s\", \"weights_bytes\": %zu, \"kv_bytes\": %zu, \"copy_bw_gbs\": %.3f, "
                   "\"peak_device_bytes\": %zu, \"runs\": [",
                qr_dtype_name(ro.kv_dtype), mr.weights, mr.kv, bw / 1e9, peak);
        for (int i = 0; i < n_res; i++)
            fprintf(f, "%s{\"prompt\": %d, \"cached_prefix\": %d, \"gen\": %d, \"ttft_ms\": %.3f, "
                       "\"decode_tok_s\": %.3f, \"eff_gbs\": %.3f, \"bytes_per_token\": %.0f}",
                    i ? ", " : "", res[i].prompt, res[i].cached, res[i].gen, res[i].ttft_s * 1e3,
                    res[i].decode_tok_s, res[i].eff_gbs, res[i].bytes_per_tok);
        fprintf(f, "]}\n");
        fclose(f);
    }
    rc = 0;
out:
    free(B.bt);
    free(B.pos);
    free(B.slots);
    free(B.toks);
    qr_rt_destroy(B.rt);
    qr_model_close(m);
    if (dev)
        qr_device_close(dev);
    qr_ini_free(ini);
    return rc;
}
