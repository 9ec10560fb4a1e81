/* cli_ppl.c - `qrun ppl [--backend B] --model DIR [--json] text.txt`
 *
 * Perplexity of a text: tokenized as is (no chat template), run through the
 * runtime directly in windows of at most the context length (each window
 * starts fresh, like llama.cpp's perplexity), every position's logits read
 * back, NLL = logsumexp(logits) - logits[next token].  --json prints the
 * per-token NLL so the numbers can be compared with transformers. */
#include "cli.h"
#include "qrun/qr_registry.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: qrun ppl [--backend B] --model DIR [--json] [--ctx N] [--batch N] text.txt\n"
               "  --json      print {\"ppl\", \"n_tokens\", \"nll\": [...], \"ids\": [...]} to stdout\n"
               "  --ctx N     window length in tokens (default: min(max model length, 2048))\n"
               "  --batch N   tokens per step (default 128)\n");
    qr_cli_engine_usage(f);
}

static double row_nll(const float *x, int vocab, int target)
{
    float mx = -INFINITY;
    for (int j = 0; j < vocab; j++)
        if (x[j] > mx)
            mx = x[j];
    double z = 0;
    for (int j = 0; j < vocab; j++)
        z += exp((double)(x[j] - mx));
    return (double)mx + log(z) - (double)x[target];
}

int qr_cli_ppl(int argc, char **argv)
{
    struct qr_engine_opts eo;
    qr_engine_opts_default(&eo);
    bool json = false;
    long long ctx = 0, batch = 128;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        int k = qr_cli_engine_flag(&eo, argc, argv, i);
        if (k < 0)
            return 2;
        if (k > 0) {
            i += k - 1;
            continue;
        }
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--ctx") && i + 1 < argc) {
            if (qr_cli_parse_int(a, argv[++i], 2, 1 << 24, &ctx))
                return 2;
        } else if (!strcmp(a, "--batch") && i + 1 < argc) {
            if (qr_cli_parse_int(a, argv[++i], 1, 1 << 16, &batch))
                return 2;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "qrun ppl: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (!path) {
            path = a;
        } else {
            fprintf(stderr, "qrun ppl: more than one text file ('%s', '%s')\n", path, a);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "qrun ppl: no text file given\n");
        usage(stderr);
        return 2;
    }
    size_t len = 0;
    char *text = qr_cli_read_file(path, &len);
    if (!text)
        return 1;
    if (qr_cli_engine_finish(&eo)) {
        free(text);
        return 2;
    }
    int rc = 1;
    struct qr_config_ini *ini = NULL;
    struct qr_device *dev = NULL;
    struct qr_model *m = NULL;
    struct qr_tokenizer *tok = NULL;
    struct qr_runtime *rt = NULL;
    int32_t *ids = NULL, *pos = NULL, *slots = NULL, *outi = NULL, *bt = NULL;
    float *logits = NULL;
    double *nll = NULL;
    int n = 0;
    double t0 = qr_time_s();
    if (qr_tok_load_dir(eo.model_dir, &tok) != QR_OK || qr_tok_encode(tok, text, len, true, &ids, &n) != QR_OK) {
        fprintf(stderr, "qrun ppl: %s\n", qr_last_error());
        goto out;
    }
    if (n < 2) {
        fprintf(stderr, "qrun ppl: '%s' has %d token%s; perplexity needs at least 2\n", path, n, n == 1 ? "" : "s");
        goto out;
    }
    if (qr_ini_load(eo.config_path, &ini) != QR_OK) {
        fprintf(stderr, "qrun ppl: %s\n", qr_last_error());
        goto out;
    }
    struct qr_backend_opts ov = {.device_index = eo.device_index, .mem_fraction = eo.gpu_mem_util,
                                 .n_threads = eo.n_threads};
    if (qr_backend_open(ini, eo.backend ? eo.backend : "auto", &ov, &dev) != QR_OK ||
        qr_model_open(eo.model_dir, &m) != QR_OK) {
        fprintf(stderr, "qrun ppl: %s\n", qr_last_error());
        goto out;
    }
    int maxlen = eo.max_model_len > 0 ? eo.max_model_len : m->cfg.max_position_embeddings;
    int win = ctx > 0 ? (int)ctx : (maxlen < 2048 ? maxlen : 2048);
    if (win > maxlen) {
        fprintf(stderr, "qrun ppl: --ctx %d is over the max model length %d\n", win, maxlen);
        goto out;
    }
    if (win > n)
        win = n;
    int B = (int)batch < win ? (int)batch : win;
    int bs = eo.block_size > 0 ? eo.block_size : 16;
    int nblk = (win + bs - 1) / bs;
    struct qr_runtime_opts ro = {.kv_dtype = eo.kv_dtype, .block_size = bs, .num_blocks = nblk,
                                 .mem_fraction = eo.gpu_mem_util, .max_model_len = win, .max_batch_tokens = B,
                                 .max_seqs = 1, .max_out = B};
    if (ro.kv_dtype == QR_DTYPE_COUNT) {
        bool cpu = dev->reg && !strcmp(dev->reg->name, "cpu");
        ro.kv_dtype = !cpu && qr_dev_supports(dev, QR_OP_ATTN, QR_DTYPE_BF16) ? QR_DTYPE_BF16 : QR_DTYPE_F32;
    }
    if (qr_rt_create(m, dev, &ro, qr_cli_progress, "loading", &rt) != QR_OK) {
        fprintf(stderr, "qrun ppl: %s\n", qr_last_error());
        goto out;
    }
    double t_load = qr_time_s() - t0;
    int V = m->cfg.vocab_size;
    pos = malloc(sizeof(int32_t) * (size_t)B);
    slots = malloc(sizeof(int32_t) * (size_t)B);
    outi = malloc(sizeof(int32_t) * (size_t)B);
    bt = malloc(sizeof(int32_t) * (size_t)nblk);
    logits = malloc(sizeof(float) * (size_t)B * (size_t)V);
    nll = malloc(sizeof(double) * (size_t)n);
    if (!pos || !slots || !outi || !bt || !logits || !nll) {
        fprintf(stderr, "qrun ppl: out of memory\n");
        goto out;
    }
    for (int i = 0; i < nblk; i++)
        bt[i] = i;
    for (int i = 0; i < n; i++)
        nll[i] = NAN;
    double t1 = qr_time_s();
    int n_scored = 0, n_win = 0;
    double sum = 0;
    /* windows [w0, w0 + win) overlapping by one token so every token but the first is scored */
    for (int w0 = 0; w0 + 1 < n; w0 += win - 1) {
        int wl = n - w0 < win ? n - w0 : win;
        n_win++;
        for (int c0 = 0; c0 < wl; c0 += B) {
            int q = wl - c0 < B ? wl - c0 : B;
            for (int j = 0; j < q; j++) {
                int p = c0 + j;
                pos[j] = p;
                slots[j] = bt[p / bs] * bs + p % bs;
                outi[j] = j;
            }
            int32_t qs[2] = {0, q}, sl[1] = {c0 + q};
            struct qr_batch b = {.n_tokens = q, .tokens = ids + w0 + c0, .positions = pos, .slots = slots,
                                 .n_seqs = 1, .q_start = qs, .seq_lens = sl, .block_tables = bt,
                                 .max_blocks_per_seq = nblk, .n_out = q, .out_idx = outi};
            if (qr_rt_forward(rt, &b, logits, NULL) != QR_OK) {
                fprintf(stderr, "qrun ppl: %s\n", qr_last_error());
                goto out;
            }
            for (int j = 0; j < q; j++) {
                int t = w0 + c0 + j; /* logits at t predict t + 1 */
                if (c0 + j + 1 >= wl || !isnan(nll[t + 1]))
                    continue;
                nll[t + 1] = row_nll(logits + (size_t)j * V, V, ids[t + 1]);
                sum += nll[t + 1];
                n_scored++;
            }
        }
        if (w0 + wl >= n)
            break;
    }
    double dt = qr_time_s() - t1;
    double ppl = exp(sum / n_scored);
    if (json) {
        printf("{\"ppl\": %.10g, \"n_tokens\": %d, \"n_scored\": %d, \"ctx\": %d, \"nll\": [", ppl, n, n_scored, win);
        for (int i = 1; i < n; i++)
            printf("%s%.9g", i > 1 ? ", " : "", nll[i]);
        printf("], \"ids\": [");
        for (int i = 0; i < n; i++)
            printf("%s%d", i ? ", " : "", ids[i]);
        printf("]}\n");
    } else {
        printf("perplexity: %.4f over %d tokens (%d window%s of up to %d)\n", ppl, n_scored, n_win,
               n_win == 1 ? "" : "s", win);
    }
    fprintf(stderr, "load %.2f s, %d tokens in %.2f s (%.1f tok/s) on %s\n", t_load, n, dt, n / (dt > 0 ? dt : 1e-9),
            dev->reg ? dev->reg->name : "?");
    rc = 0;
out:
    free(text);
    free(ids);
    free(pos);
    free(slots);
    free(outi);
    free(bt);
    free(logits);
    free(nll);
    qr_rt_destroy(rt);
    qr_model_close(m);
    qr_tok_free(tok);
    if (dev)
        qr_device_close(dev);
    qr_ini_free(ini);
    return rc;
}
