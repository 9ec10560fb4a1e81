/* cli_generate.c - `qrun [--backend B] [--model DIR] [flags] prompt.txt`
 *
 * Generates through the engine API (qrun.h): the prompt file is rendered with
 * the model's chat template as one user message (or sent as is with --raw),
 * the text streams to stdout, and the timings go to stderr: load time, prompt
 * tokens, TTFT, prefill and decode tok/s, peak memory (host RSS, device). */
#include "cli.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qrun [--backend cpu|cuda|vulkan|auto] [--model DIR] [options] prompt.txt   (\"-\": stdin)\n"
            "generation options:\n"
            "  -n, --max-tokens N          tokens to generate (default 512, capped by the context)\n"
            "  --temp F                    temperature (0 = greedy; default from generation_config.json)\n"
            "  --top-k N  --top-p F  --min-p F\n"
            "  --repeat-penalty F          HF repetition penalty over prompt + output (1 = off)\n"
            "  --presence-penalty F  --frequency-penalty F   OpenAI penalties over the output, in [-2, 2]\n"
            "  --seed N                    RNG seed (default: from the clock); the same seed gives the same text\n"
            "  --ignore-eos                do not stop at the EOS tokens\n"
            "  --stop STR                  stop string (repeatable, up to 16)\n"
            "  --raw                       send the file as is, without the chat template\n");
    qr_cli_engine_usage(f);
}

struct gen_state {
    double t_first, t_last;
    int n_gen, n_prompt;
    enum qr_finish_reason finish;
    char err[512];
    bool ended_nl;
};

static void on_token(const struct qr_token_event *ev, void *user)
{
    struct gen_state *g = user;
    if (ev->text_len > 0) {
        fwrite(ev->text, 1, ev->text_len, stdout);
        fflush(stdout);
        g->ended_nl = ev->text[ev->text_len - 1] == '\n';
    }
    if (ev->token >= 0) {
        if (g->n_gen == 0)
            g->t_first = ev->t_now;
        g->n_gen = ev->n_gen_tokens > 0 ? ev->n_gen_tokens : g->n_gen + 1;
        g->t_last = ev->t_now;
    }
    if (ev->finish != QR_FINISH_NONE) {
        g->finish = ev->finish;
        if (ev->error)
            snprintf(g->err, sizeof g->err, "%s", ev->error);
    }
}

static int flag_float(const char *flag, const char *v, double lo, double hi, float *out)
{
    double d;
    if (qr_cli_parse_float(flag, v, lo, hi, &d))
        return -1;
    *out = (float)d;
    return 0;
}

int qr_cli_generate(int argc, char **argv)
{
    struct qr_engine_opts eo;
    qr_engine_opts_default(&eo);
    eo.progress = qr_cli_progress;
    eo.progress_user = "loading";
    /* sampling flags are applied over generation_config.json's defaults once the model is loaded */
    struct {
        bool temp, top_k, top_p, min_p, rep, pres, freq, seed;
    } set = {0};
    struct qr_sampler_params sp = {0};
    long long max_tokens = 512, ll;
    bool raw = false, ignore_eos = false;
    const char *stops[QR_MAX_STOP];
    int n_stop = 0;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        int k = qr_cli_engine_flag(&eo, argc, argv, i);
        if (k < 0)
            return 2;
        if (k > 0) {
            i += k - 1;
            continue;
        }
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool has_v = v != NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--raw")) {
            raw = true;
        } else if (!strcmp(a, "--ignore-eos")) {
            ignore_eos = true;
        } else if ((!strcmp(a, "-n") || !strcmp(a, "--max-tokens")) && has_v) {
            if (qr_cli_parse_int(a, v, 1, 1 << 24, &max_tokens))
                return 2;
            i++;
        } else if (!strcmp(a, "--temp") && has_v) {
            if (flag_float(a, v, 0, 100, &sp.temperature))
                return 2;
            set.temp = true;
            i++;
        } else if (!strcmp(a, "--top-k") && has_v) {
            if (qr_cli_parse_int(a, v, 0, 1 << 24, &ll))
                return 2;
            sp.top_k = (int)ll;
            set.top_k = true;
            i++;
        } else if (!strcmp(a, "--top-p") && has_v) {
            if (flag_float(a, v, 1e-6, 1, &sp.top_p))
                return 2;
            set.top_p = true;
            i++;
        } else if (!strcmp(a, "--min-p") && has_v) {
            if (flag_float(a, v, 0, 1, &sp.min_p))
                return 2;
            set.min_p = true;
            i++;
        } else if (!strcmp(a, "--repeat-penalty") && has_v) {
            if (flag_float(a, v, 1e-3, 100, &sp.repetition_penalty))
                return 2;
            set.rep = true;
            i++;
        } else if (!strcmp(a, "--presence-penalty") && has_v) {
            if (flag_float(a, v, -2, 2, &sp.presence_penalty))
                return 2;
            set.pres = true;
            i++;
        } else if (!strcmp(a, "--frequency-penalty") && has_v) {
            if (flag_float(a, v, -2, 2, &sp.frequency_penalty))
                return 2;
            set.freq = true;
            i++;
        } else if (!strcmp(a, "--seed") && has_v) {
            char *end = NULL;
            unsigned long long s = strtoull(v, &end, 10);
            if (!*v || *end || v[0] == '-') {
                fprintf(stderr, "qrun: --seed expects a non-negative integer, got '%s'\n", v);
                return 2;
            }
            sp.seed = s;
            set.seed = true;
            i++;
        } else if (!strcmp(a, "--stop") && has_v) {
            if (n_stop >= QR_MAX_STOP || !*v) {
                fprintf(stderr, "qrun: --stop takes a non-empty string, at most %d times\n", QR_MAX_STOP);
                return 2;
            }
            stops[n_stop++] = v;
            i++;
        } else if (a[0] == '-' && a[1]) {
            if (!has_v && (!strcmp(a, "-n") || !strncmp(a, "--", 2)))
                fprintf(stderr, "qrun: unknown option or missing value: '%s'\n", a);
            else
                fprintf(stderr, "qrun: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (!path) {
            path = a;
        } else {
            fprintf(stderr, "qrun: more than one prompt file ('%s', '%s')\n", path, a);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "qrun: no prompt file given\n");
        usage(stderr);
        return 2;
    }
    size_t len = 0;
    char *text = qr_cli_read_file(path, &len);
    if (!text)
        return 1;
    if (len == 0) {
        fprintf(stderr, "qrun: the prompt '%s' is empty\n", path);
        free(text);
        return 1;
    }
    if (qr_cli_engine_finish(&eo)) {
        free(text);
        return 2;
    }

    int rc = 1;
    struct qr_engine *e = NULL;
    char *rendered = NULL;
    int32_t *ids = NULL;
    int n_ids = 0;
    double t0 = qr_time_s();
    if (qr_engine_create(&eo, &e) != QR_OK) {
        fprintf(stderr, "qrun: %s\n", qr_last_error());
        goto out;
    }
    double t_load = qr_time_s() - t0;
    const struct qr_model *m = qr_engine_model(e);
    const struct qr_tokenizer *tok = qr_engine_tokenizer(e);
    const char *prompt = text;
    size_t plen = len;
    if (!raw) {
        cJSON *msgs = cJSON_CreateArray(), *msg = cJSON_CreateObject();
        cJSON_AddStringToObject(msg, "role", "user");
        cJSON_AddStringToObject(msg, "content", text);
        cJSON_AddItemToArray(msgs, msg);
        struct qr_chat_opts co = {.add_generation_prompt = true, .enable_thinking = -1};
        qr_status st = qr_chat_render(qr_engine_chat_variant(e), msgs, NULL, &co, &rendered);
        cJSON_Delete(msgs);
        if (st != QR_OK) {
            fprintf(stderr, "qrun: chat template: %s (use --raw to send the file as is)\n", qr_last_error());
            goto out;
        }
        prompt = rendered;
        plen = strlen(rendered);
    }
    if (qr_tok_encode(tok, prompt, plen, true, &ids, &n_ids) != QR_OK) {
        fprintf(stderr, "qrun: cannot tokenize the prompt: %s\n", qr_last_error());
        goto out;
    }
    int ctx = qr_engine_max_model_len(e);
    if (n_ids == 0) {
        fprintf(stderr, "qrun: the prompt '%s' has no tokens\n", path);
        goto out;
    }
    if (n_ids >= ctx) {
        fprintf(stderr, "qrun: the prompt is %d tokens, longer than the context of %d tokens "
                        "(--max-model-len, or a shorter prompt)\n", n_ids, ctx);
        goto out;
    }
    if (max_tokens > ctx - n_ids)
        max_tokens = ctx - n_ids;

    struct qr_request_params rp;
    qr_request_params_default(m, &rp);
    if (set.temp) rp.sampling.temperature = sp.temperature;
    if (set.top_k) rp.sampling.top_k = sp.top_k;
    if (set.top_p) rp.sampling.top_p = sp.top_p;
    if (set.min_p) rp.sampling.min_p = sp.min_p;
    if (set.rep) rp.sampling.repetition_penalty = sp.repetition_penalty;
    if (set.pres) rp.sampling.presence_penalty = sp.presence_penalty;
    if (set.freq) rp.sampling.frequency_penalty = sp.frequency_penalty;
    rp.sampling.seed = set.seed ? sp.seed : (uint64_t)(qr_time_s() * 1e9) ^ (uint64_t)getpid();
    rp.max_tokens = (int)max_tokens;
    rp.ignore_eos = ignore_eos;
    for (int i = 0; i < n_stop; i++)
        rp.stop[i] = stops[i];
    rp.n_stop = n_stop;
    if (qr_sampler_params_check(&rp.sampling, m->cfg.vocab_size) != QR_OK) {
        fprintf(stderr, "qrun: %s\n", qr_last_error());
        goto out;
    }
    struct gen_state g = {.n_prompt = n_ids, .ended_nl = true};
    uint64_t rid;
    double t_start = qr_time_s();
    if (qr_engine_add(e, ids, n_ids, &rp, on_token, &g, &rid) != QR_OK) {
        fprintf(stderr, "qrun: %s\n", qr_last_error());
        goto out;
    }
    if (qr_engine_run_until_idle(e) != QR_OK) {
        fprintf(stderr, "\nqrun: %s\n", qr_last_error());
        goto out;
    }
    if (!g.ended_nl)
        fputc('\n', stdout);
    fflush(stdout);
    if (g.finish == QR_FINISH_ERROR) {
        fprintf(stderr, "qrun: generation failed: %s\n", g.err[0] ? g.err : qr_last_error());
        goto out;
    }
    double ttft = g.n_gen > 0 ? g.t_first - t_start : 0;
    double t_dec = g.t_last - g.t_first;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    struct qr_mem_report mr = {0};
    struct qr_runtime *rt = qr_engine_runtime(e);
    if (rt)
        qr_rt_mem(rt, &mr);
    fprintf(stderr, "\n--- load %.2f s | prompt %d tokens | generated %d tokens (%s)\n", t_load, n_ids, g.n_gen,
            qr_finish_reason_str(g.finish));
    fprintf(stderr, "--- TTFT %.1f ms | prefill %.1f tok/s | decode %.2f tok/s\n", ttft * 1e3,
            ttft > 0 ? n_ids / ttft : 0.0, g.n_gen > 1 && t_dec > 0 ? (g.n_gen - 1) / t_dec : 0.0);
    fprintf(stderr, "--- peak host RSS %.1f MiB | device: weights %.1f MiB, KV %.1f MiB, activations %.1f MiB",
            ru.ru_maxrss / 1024.0, mr.weights / 1048576.0, mr.kv / 1048576.0, mr.activations / 1048576.0);
    if (mr.device_total && mr.device_total >= mr.device_free_after)
        fprintf(stderr, ", in use %.1f of %.1f MiB", (mr.device_total - mr.device_free_after) / 1048576.0,
                mr.device_total / 1048576.0);
    fputc('\n', stderr);
    rc = 0;
out:
    free(ids);
    free(rendered);
    free(text);
    qr_engine_destroy(e);
    return rc;
}
