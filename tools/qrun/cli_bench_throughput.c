/* cli_bench_throughput.c - `qrun bench throughput`, like `vllm bench throughput`:
 * N requests submitted at once (random token ids of fixed or random lengths,
 * or prompts from a JSONL file), EOS ignored, run to completion through the
 * engine; prints requests/s, total tokens/s and output tokens/s, and writes
 * JSON with --json-out.  Sampling is greedy unless --temperature is given
 * (greedy lets the device return argmax ids instead of full logits rows). */
#include "cli.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qrun bench throughput [engine options] [--num-prompts N] [--input-len I] [--output-len O]\n"
            "                             [--random-range R] [--dataset FILE.jsonl] [--json-out F] [--seed S]\n"
            "  --num-prompts N     requests, all submitted at once (default 1000)\n"
            "  --input-len I       prompt tokens (random ids; default 1024)\n"
            "  --output-len O      generated tokens per request, EOS ignored (default 128)\n"
            "  --random-range R    lengths uniform in [L*(1-R), L*(1+R)], R in [0, 1) (default 0: fixed)\n"
            "  --dataset F         JSONL with {\"prompt\": \"...\"} per line instead of random ids\n"
            "  --temperature T     sampling temperature (default 0: greedy)\n"
            "  --top-k K           with --temperature: sample among the K best (default 0: all; 1..256 sample on\n"
            "                      the device where the backend can)\n"
            "  --top-p P           with --temperature: nucleus sampling (default 1: off)\n"
            "  --repetition-penalty R, --presence-penalty P\n"
            "                      with --temperature: penalties (default 1 / 0: off)\n"
            "  --json-out F        write the results as JSON\n"
            "  --seed S            seed for the random prompts and lengths (default 0)\n");
    qr_cli_engine_usage(f);
}

struct bench {
    int n_total, n_done, n_err;
    long long out_tokens;
    bool tty;
    double t0;
    char first_err[256];
};

static void progress(struct bench *b, bool final)
{
    if (!b->tty)
        return;
    int w = 40, fill = b->n_total ? b->n_done * w / b->n_total : w;
    double dt = qr_time_s() - b->t0;
    fprintf(stderr, "\rrequests [");
    for (int i = 0; i < w; i++)
        fputc(i < fill ? '#' : ' ', stderr);
    fprintf(stderr, "] %d/%d  %.0f out tok/s ", b->n_done, b->n_total, dt > 0 ? (double)b->out_tokens / dt : 0.0);
    if (final)
        fputc('\n', stderr);
    fflush(stderr);
}

static void on_event(const struct qr_token_event *ev, void *user)
{
    struct bench *b = user;
    if (ev->finish == QR_FINISH_NONE)
        return;
    b->n_done++;
    b->out_tokens += ev->n_gen_tokens;
    if (ev->finish == QR_FINISH_ERROR || ev->finish == QR_FINISH_CANCELLED) {
        if (!b->n_err++)
            snprintf(b->first_err, sizeof b->first_err, "%s", ev->error ? ev->error : qr_finish_reason_str(ev->finish));
    }
    if (b->n_done == b->n_total || b->n_done % 8 == 0)
        progress(b, false);
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int rand_len(uint64_t *s, int len, double range)
{
    if (range <= 0)
        return len;
    int lo = (int)floor(len * (1 - range)), hi = (int)ceil(len * (1 + range));
    if (lo < 1)
        lo = 1;
    if (hi < lo)
        hi = lo;
    return lo + (int)(rng_next(s) % (uint64_t)(hi - lo + 1));
}

/* reads up to n prompts from a JSONL file (cycling when it has fewer) and tokenizes them */
static int load_dataset(const char *path, const struct qr_tokenizer *tok, int n, int32_t ***ids, int **lens)
{
    size_t len;
    char *txt = qr_cli_read_file(path, &len);
    if (!txt)
        return -1;
    int cap = 0, cnt = 0;
    char **prompts = NULL;
    for (char *line = strtok(txt, "\n"); line; line = strtok(NULL, "\n")) {
        while (*line == ' ' || *line == '\t' || *line == '\r')
            line++;
        if (!*line)
            continue;
        cJSON *j = cJSON_Parse(line);
        cJSON *p = j ? cJSON_GetObjectItem(j, "prompt") : NULL;
        if (!cJSON_IsString(p)) {
            fprintf(stderr, "qrun bench: %s line %d: expected {\"prompt\": \"...\"}\n", path, cnt + 1);
            cJSON_Delete(j);
            free(txt);
            for (int i = 0; i < cnt; i++)
                free(prompts[i]);
            free(prompts);
            return -1;
        }
        if (cnt == cap) {
            cap = cap ? cap * 2 : 64;
            prompts = realloc(prompts, (size_t)cap * sizeof *prompts);
        }
        prompts[cnt++] = strdup(p->valuestring);
        cJSON_Delete(j);
        if (cnt >= n)
            break;
    }
    free(txt);
    if (cnt == 0) {
        fprintf(stderr, "qrun bench: %s holds no prompts\n", path);
        free(prompts);
        return -1;
    }
    *ids = calloc((size_t)n, sizeof **ids);
    *lens = calloc((size_t)n, sizeof **lens);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        const char *s = prompts[i % cnt];
        if (qr_tok_encode(tok, s, strlen(s), false, &(*ids)[i], &(*lens)[i]) != QR_OK) {
            fprintf(stderr, "qrun bench: cannot tokenize prompt %d: %s\n", i % cnt + 1, qr_last_error());
            rc = -1;
        }
    }
    for (int i = 0; i < cnt; i++)
        free(prompts[i]);
    free(prompts);
    return rc;
}

int qr_cli_bench_throughput(int argc, char **argv)
{
    struct qr_engine_opts eo;
    qr_engine_opts_default(&eo);
    eo.progress = qr_cli_progress;
    eo.progress_user = "loading";
    long long num = 1000, in_len = 1024, out_len = 128, seed = 0;
    double range = 0, temp = 0, top_p = 1, rep_pen = 1, pres_pen = 0;
    long long top_k = 0;
    const char *dataset = NULL, *json_out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int used = qr_cli_engine_flag(&eo, argc, argv, i);
        if (used < 0)
            return 2;
        if (used > 0) {
            i += used - 1;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!v) {
            fprintf(stderr, "qrun bench throughput: unknown option or missing value: %s\n", a);
            usage(stderr);
            return 2;
        }
        if (!strcmp(a, "--num-prompts")) {
            if (qr_cli_parse_int(a, v, 1, 10000000, &num)) return 2;
        } else if (!strcmp(a, "--input-len")) {
            if (qr_cli_parse_int(a, v, 1, 1 << 30, &in_len)) return 2;
        } else if (!strcmp(a, "--output-len")) {
            if (qr_cli_parse_int(a, v, 1, 1 << 30, &out_len)) return 2;
        } else if (!strcmp(a, "--random-range") || !strcmp(a, "--random-range-ratio")) {
            if (qr_cli_parse_float(a, v, 0, 0.999, &range)) return 2;
        } else if (!strcmp(a, "--temperature")) {
            if (qr_cli_parse_float(a, v, 0, 100, &temp)) return 2;
        } else if (!strcmp(a, "--top-k")) {
            if (qr_cli_parse_int(a, v, 0, 1 << 30, &top_k)) return 2;
        } else if (!strcmp(a, "--top-p")) {
            if (qr_cli_parse_float(a, v, 1e-6, 1, &top_p)) return 2;
        } else if (!strcmp(a, "--repetition-penalty")) {
            if (qr_cli_parse_float(a, v, 1e-6, 100, &rep_pen)) return 2;
        } else if (!strcmp(a, "--presence-penalty")) {
            if (qr_cli_parse_float(a, v, -2, 2, &pres_pen)) return 2;
        } else if (!strcmp(a, "--seed")) {
            if (qr_cli_parse_int(a, v, 0, (1LL << 62), &seed)) return 2;
        } else if (!strcmp(a, "--dataset")) {
            dataset = v;
        } else if (!strcmp(a, "--json-out")) {
            json_out = v;
        } else {
            fprintf(stderr, "qrun bench throughput: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
        i++;
    }
    if (qr_cli_engine_finish(&eo))
        return 2;
    double t_load = qr_time_s();
    struct qr_engine *e = NULL;
    if (qr_engine_create(&eo, &e) != QR_OK) {
        fprintf(stderr, "qrun bench: %s\n", qr_last_error());
        return 1;
    }
    t_load = qr_time_s() - t_load;
    const struct qr_model *m = qr_engine_model(e);
    const struct qr_tokenizer *tok = qr_engine_tokenizer(e);
    int n = (int)num;
    int32_t **ids = NULL;
    int *lens = NULL, *olens = calloc((size_t)n, sizeof *olens);
    uint64_t rs = (uint64_t)seed * 0x2545f4914f6cdd1dull + 1;
    int rc = 1;
    if (dataset) {
        if (load_dataset(dataset, tok, n, &ids, &lens))
            goto out;
    } else {
        /* random ids over the ordinary (non-special) tokens both the model and tokenizer know */
        int vmax = m->cfg.vocab_size < qr_tok_vocab_size(tok) ? m->cfg.vocab_size : qr_tok_vocab_size(tok);
        ids = calloc((size_t)n, sizeof *ids);
        lens = calloc((size_t)n, sizeof *lens);
        for (int i = 0; i < n; i++) {
            lens[i] = rand_len(&rs, (int)in_len, range);
            ids[i] = malloc((size_t)lens[i] * sizeof(int32_t));
            if (!ids[i]) {
                fprintf(stderr, "qrun bench: out of memory\n");
                goto out;
            }
            for (int j = 0; j < lens[i]; j++) {
                int32_t t;
                do
                    t = (int32_t)(rng_next(&rs) % (uint64_t)vmax);
                while (qr_tok_is_special(tok, t));
                ids[i][j] = t;
            }
        }
    }
    for (int i = 0; i < n; i++)
        olens[i] = rand_len(&rs, (int)out_len, range);

    struct bench b = {.n_total = n, .tty = isatty(2)};
    struct qr_request_params p;
    qr_request_params_default(m, &p);
    p.sampling.temperature = (float)temp;
    p.sampling.top_k = (int)top_k;
    p.sampling.top_p = (float)top_p;
    p.sampling.min_p = 0;
    p.sampling.repetition_penalty = (float)rep_pen;
    p.sampling.presence_penalty = (float)pres_pen;
    p.sampling.frequency_penalty = 0;
    p.ignore_eos = true;
    if (qr_sampler_params_check(&p.sampling, m->cfg.vocab_size) != QR_OK) {
        fprintf(stderr, "qrun bench: %s\n", qr_last_error());
        goto out;
    }
    long long prompt_tokens = 0;
    b.t0 = qr_time_s();
    for (int i = 0; i < n; i++) {
        p.max_tokens = olens[i];
        p.sampling.seed = (uint64_t)seed + (uint64_t)i;
        if (qr_engine_add(e, ids[i], lens[i], &p, on_event, &b, NULL) != QR_OK) {
            fprintf(stderr, "qrun bench: request %d (%d prompt tokens, %d output): %s\n", i, lens[i], olens[i],
                    qr_last_error());
            goto out;
        }
        prompt_tokens += lens[i];
    }
    qr_status st = qr_engine_run_until_idle(e);
    double elapsed = qr_time_s() - b.t0;
    progress(&b, true);
    if (st != QR_OK || b.n_err) {
        fprintf(stderr, "qrun bench: %d requests failed (%s)\n", b.n_err, b.n_err ? b.first_err : qr_last_error());
        goto out;
    }
    struct qr_engine_stats s;
    qr_engine_get_stats(e, &s);
    double rps = n / elapsed, tps = (double)(prompt_tokens + b.out_tokens) / elapsed,
           ops = (double)b.out_tokens / elapsed;
    printf("Throughput: %.2f requests/s, %.2f total tokens/s, %.2f output tokens/s\n", rps, tps, ops);
    printf("Total num prompt tokens:  %lld\n", prompt_tokens);
    printf("Total num output tokens:  %lld\n", b.out_tokens);
    printf("Elapsed: %.2f s (load %.2f s); steps %llu (%llu with the decodes paused for prompts), preemptions %d, "
           "prefix-cache hit tokens %llu\n",
           elapsed, t_load, (unsigned long long)s.steps, (unsigned long long)s.paused_steps, s.n_preempted_total,
           (unsigned long long)s.prefix_hit_tokens_total);
    printf("Steps: %llu decode-only in %.2f s (%.0f tok/s), %llu with prompt tokens in %.2f s (%llu prompt tokens "
           "computed, recomputed ones after preemption included)\n",
           (unsigned long long)s.decode_only_steps, s.decode_only_s,
           s.decode_only_s > 0 ? (double)s.decode_only_tokens / s.decode_only_s : 0.0,
           (unsigned long long)s.prompt_steps, s.prompt_steps_s, (unsigned long long)s.prompt_tokens_computed);
    if (temp > 0)
        printf("Sampling: %llu steps from each row's best k on the device (%llu rows read back whole), %llu from whole "
               "logits rows on the host\n",
               (unsigned long long)s.topk_steps, (unsigned long long)s.topk_rows_refetched,
               (unsigned long long)s.logits_steps);
    if (json_out) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "elapsed_time", elapsed);
        cJSON_AddNumberToObject(j, "num_requests", n);
        cJSON_AddNumberToObject(j, "total_num_tokens", (double)(prompt_tokens + b.out_tokens));
        cJSON_AddNumberToObject(j, "num_prompt_tokens", (double)prompt_tokens);
        cJSON_AddNumberToObject(j, "num_output_tokens", (double)b.out_tokens);
        cJSON_AddNumberToObject(j, "requests_per_second", rps);
        cJSON_AddNumberToObject(j, "tokens_per_second", tps);
        cJSON_AddNumberToObject(j, "output_tokens_per_second", ops);
        cJSON_AddNumberToObject(j, "load_time", t_load);
        cJSON_AddNumberToObject(j, "steps", (double)s.steps);
        cJSON_AddNumberToObject(j, "paused_steps", (double)s.paused_steps);
        cJSON_AddNumberToObject(j, "preemptions", s.n_preempted_total);
        cJSON_AddNumberToObject(j, "decode_only_steps", (double)s.decode_only_steps);
        cJSON_AddNumberToObject(j, "decode_only_tokens", (double)s.decode_only_tokens);
        cJSON_AddNumberToObject(j, "decode_only_time", s.decode_only_s);
        cJSON_AddNumberToObject(j, "prompt_steps", (double)s.prompt_steps);
        cJSON_AddNumberToObject(j, "prompt_steps_time", s.prompt_steps_s);
        cJSON_AddNumberToObject(j, "prompt_tokens_computed", (double)s.prompt_tokens_computed);
        cJSON_AddNumberToObject(j, "prefix_hit_tokens", (double)s.prefix_hit_tokens_total);
        cJSON_AddNumberToObject(j, "kv_blocks_total", s.kv_blocks_total);
        cJSON_AddStringToObject(j, "model", eo.model_dir);
        cJSON_AddStringToObject(j, "backend", eo.backend ? eo.backend : "auto");
        cJSON_AddNumberToObject(j, "input_len", (double)in_len);
        cJSON_AddNumberToObject(j, "output_len", (double)out_len);
        cJSON_AddNumberToObject(j, "random_range", range);
        cJSON_AddNumberToObject(j, "max_num_seqs", eo.max_num_seqs);
        cJSON_AddNumberToObject(j, "max_num_batched_tokens", eo.max_num_batched_tokens);
        cJSON_AddNumberToObject(j, "max_model_len", qr_engine_max_model_len(e));
        cJSON_AddBoolToObject(j, "prefix_caching", eo.enable_prefix_caching);
        if (dataset)
            cJSON_AddStringToObject(j, "dataset", dataset);
        char *txt = cJSON_Print(j);
        FILE *f = fopen(json_out, "w");
        if (!f || !txt || fputs(txt, f) < 0 || fputc('\n', f) < 0) {
            fprintf(stderr, "qrun bench: cannot write %s\n", json_out);
            if (f)
                fclose(f);
            free(txt);
            cJSON_Delete(j);
            goto out;
        }
        fclose(f);
        free(txt);
        cJSON_Delete(j);
    }
    rc = 0;
out:
    qr_engine_destroy(e);
    for (int i = 0; ids && i < n; i++)
        free(ids[i]);
    free(ids);
    free(lens);
    free(olens);
    return rc;
}
