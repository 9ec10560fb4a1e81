/* report_measure.c - the measurement phases of `qrun bench report`.
 *
 * Everything goes through the engine API: random-token prompts (ignore_eos,
 * greedy) are added with qr_engine_add and the engine is stepped in this
 * thread with qr_engine_step, so device memory can be sampled between steps.
 *   single requests   512/128, 8192/512, 32K/512 (quick: scaled to max_model_len)
 *   concurrency sweep 1, 2, 4, ... at 8192/512 until mean TTFT >= 1 s (quick: 1, 2, 4)
 *   context ladder    32K, 64K, 128K, 256K: fits? and one timed request each (64 out)
 *   memory            qr_rt_mem, and the device's in-use peak from qr_dev_props
 *   environment       qr_dev_props, backend, git commit, model config */
#include "report_measure.h"
#include "cli.h"
#include "qrun/qr_registry.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- phase progress (a bar on a TTY, one line per phase otherwise) ---- */

struct phases {
    int done, total;
    double t0;
};

static void phase_begin(struct phases *ph, const char *what)
{
    if (isatty(2)) {
        int w = 30, fill = ph->total ? ph->done * w / ph->total : 0;
        fprintf(stderr, "\r\033[Kreport [");
        for (int i = 0; i < w; i++)
            fputc(i < fill ? '#' : ' ', stderr);
        fprintf(stderr, "] %d/%d %s", ph->done, ph->total, what);
    } else {
        fprintf(stderr, "report: [%d/%d] %s\n", ph->done + 1, ph->total, what);
    }
    fflush(stderr);
}

static void phase_end(struct phases *ph, const char *result)
{
    ph->done++;
    if (isatty(2))
        fprintf(stderr, "\r\033[K  %s\n", result);
    else
        fprintf(stderr, "report:        %s\n", result);
    fflush(stderr);
}

/* ---- requests ---- */

struct rq {
    double t_arrival, t_first, t_last;
    int n_gen;
    bool done;
    enum qr_finish_reason finish;
    char err[160];
};

static void on_token(const struct qr_token_event *ev, void *user)
{
    struct rq *q = user;
    if (ev->token >= 0) {
        if (q->n_gen == 0)
            q->t_first = ev->t_first_token > 0 ? ev->t_first_token : ev->t_now;
        q->n_gen++;
        q->t_last = ev->t_now;
    }
    q->t_arrival = ev->t_arrival;
    if (ev->finish != QR_FINISH_NONE) {
        q->done = true;
        q->finish = ev->finish;
        if (ev->finish == QR_FINISH_ERROR)
            snprintf(q->err, sizeof q->err, "%s", ev->error ? ev->error : "error");
    }
}

struct ctx {
    struct qr_engine *e;
    struct qr_device *dev;
    const struct qr_model *m;
    bool host_mem;
    double peak_used;          /* device bytes in use, max over samples */
    size_t weight_read;        /* bytes of weights one decode step reads */
    double kv_per_token;
    int max_len, kv_tokens;
    uint64_t seed;
};

static void sample_mem(struct ctx *c)
{
    struct qr_device_props p;
    if (c->host_mem) {
        /* host memory: the device's free figure is the system's; count what the runtime holds */
        struct qr_mem_report mr;
        qr_rt_mem(qr_engine_runtime(c->e), &mr);
        double used = (double)mr.weights + mr.kv + mr.activations + mr.overhead;
        if (used > c->peak_used)
            c->peak_used = used;
        return;
    }
    if (qr_dev_props(c->dev, &p) == QR_OK && p.mem_total >= p.mem_free) {
        double used = (double)(p.mem_total - p.mem_free);
        if (used > c->peak_used)
            c->peak_used = used;
    }
}

/* n requests of P random tokens, G output tokens each, added at once; runs to completion */
static int run_batch(struct ctx *c, int n, int P, int G, struct rq *q, double *wall)
{
    const struct qr_model_config *cfg = &c->m->cfg;
    int V = cfg->vocab_size < 151643 ? cfg->vocab_size : 151643;
    int32_t *toks = malloc(sizeof(int32_t) * (size_t)P);
    if (!toks) {
        fprintf(stderr, "qrun: out of memory\n");
        return -1;
    }
    struct qr_request_params rp;
    qr_request_params_default(c->m, &rp);
    rp.sampling.temperature = 0;
    rp.sampling.top_k = 0;
    rp.sampling.top_p = 1;
    rp.sampling.min_p = 0;
    rp.sampling.repetition_penalty = 1;
    rp.sampling.presence_penalty = 0;
    rp.sampling.frequency_penalty = 0;
    rp.max_tokens = G;
    rp.ignore_eos = true;
    rp.n_stop = 0;
    rp.n_stop_ids = 0;
    rp.logprobs = -1;
    memset(q, 0, sizeof *q * (size_t)n);
    double t0 = qr_time_s();
    for (int i = 0; i < n; i++) {
        uint64_t x = ++c->seed * 0x9E3779B97F4A7C15ull;
        for (int k = 0; k < P; k++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            toks[k] = (int32_t)((x >> 33) % (uint64_t)V);
        }
        uint64_t id;
        if (qr_engine_add(c->e, toks, P, &rp, on_token, &q[i], &id) != QR_OK) {
            fprintf(stderr, "qrun: request %d in / %d out: %s\n", P, G, qr_last_error());
            free(toks);
            /* drain what was added */
            (void)qr_engine_run_until_idle(c->e);
            return -1;
        }
    }
    free(toks);
    sample_mem(c);
    for (int step = 0;; step++) {
        int left = 0;
        if (qr_engine_step(c->e, &left) != QR_OK) {
            fprintf(stderr, "qrun: engine step: %s\n", qr_last_error());
            (void)qr_engine_run_until_idle(c->e);
            return -1;
        }
        if (step % 8 == 0)
            sample_mem(c);
        if (left == 0)
            break;
    }
    *wall = qr_time_s() - t0;
    sample_mem(c);
    for (int i = 0; i < n; i++) {
        if (!q[i].done || q[i].finish == QR_FINISH_ERROR || q[i].finish == QR_FINISH_CANCELLED) {
            fprintf(stderr, "qrun: request %d in / %d out did not finish: %s\n", P, G,
                    q[i].err[0] ? q[i].err : qr_finish_reason_str(q[i].finish));
            return -1;
        }
    }
    return 0;
}

static double ttft_ms(const struct rq *q)
{
    return (q->t_first - q->t_arrival) * 1e3;
}

static double tpot_ms(const struct rq *q)
{
    return q->n_gen > 1 ? (q->t_last - q->t_first) * 1e3 / (q->n_gen - 1) : 0;
}

/* device copy bandwidth in GB/s (bytes read + written per second); 0 if it cannot be measured */
static double copy_bandwidth(struct qr_device *dev, size_t n) { return qr_cli_copy_bandwidth(dev, n) / 1e9; }

void qr_report_commit(char *buf, size_t cap)
{
    char dirs[2][4096] = {".", ""};
    ssize_t k = readlink("/proc/self/exe", dirs[1], sizeof dirs[1] - 1);
    if (k > 0) {
        dirs[1][k] = 0;
        char *sl = strrchr(dirs[1], '/');
        if (sl)
            *sl = 0;
    }
    const char *env = getenv("QRUN_COMMIT");
    if (env && *env) {
        snprintf(buf, cap, "%s", env);
        return;
    }
    for (int i = 0; i < 2; i++) {
        if (!dirs[i][0] || strchr(dirs[i], '\'') )
            continue;
        char cmd[8400];
        snprintf(cmd, sizeof cmd, "git -C '%s' describe --always --dirty --abbrev=12 2>/dev/null", dirs[i]);
        FILE *p = popen(cmd, "r");
        if (!p)
            continue;
        char line[128] = "";
        bool got = fgets(line, sizeof line, p) != NULL;
        int rc = pclose(p);
        if (got && rc == 0) {
            line[strcspn(line, "\r\n")] = 0;
            if (line[0]) {
                snprintf(buf, cap, "%s", line);
                return;
            }
        }
    }
    snprintf(buf, cap, "unknown");
}

static int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static void fill_environment(struct ctx *c, const struct qr_engine_opts *eo, const struct qr_report_plan_opts *po,
                             struct qr_report *r)
{
    struct qr_device_props p;
    memset(&p, 0, sizeof p);
    (void)qr_dev_props(c->dev, &p);
    snprintf(r->device, sizeof r->device, "%s", p.name);
    snprintf(r->driver, sizeof r->driver, "%s", p.description);
    snprintf(r->backend, sizeof r->backend, "%s", c->dev->reg && c->dev->reg->name ? c->dev->reg->name : "?");
    qr_report_commit(r->commit, sizeof r->commit);
    if (gethostname(r->host, sizeof r->host) != 0)
        snprintf(r->host, sizeof r->host, "unknown");
    r->host[sizeof r->host - 1] = 0;
    time_t now = time(NULL);
    struct tm tmv;
    gmtime_r(&now, &tmv);
    strftime(r->created, sizeof r->created, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    if (po->label && *po->label)
        snprintf(r->label, sizeof r->label, "%s", po->label);
    else
        snprintf(r->label, sizeof r->label, "%.90s / %.30s", r->device, r->backend);
    r->quick = po->quick;
    const struct qr_model *m = c->m;
    const struct qr_model_config *cfg = &m->cfg;
    snprintf(r->model_dir, sizeof r->model_dir, "%s", eo->model_dir ? eo->model_dir : "");
    snprintf(r->arch, sizeof r->arch, "%s", cfg->arch == QR_ARCH_QWEN3 ? "qwen3" : "qwen2");
    snprintf(r->dtype, sizeof r->dtype, "%s", qr_dtype_name(cfg->dtype));
    r->layers = cfg->num_hidden_layers;
    r->hidden = cfg->hidden_size;
    r->heads = cfg->num_attention_heads;
    r->kv_heads = cfg->num_key_value_heads;
    r->head_dim = cfg->head_dim;
    r->ffn = cfg->intermediate_size;
    r->vocab = cfg->vocab_size;
    r->model_max_pos = cfg->max_position_embeddings;
    double params = 0;
    for (int i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].dtype != QR_DTYPE_COUNT && qr_dtype_size(m->tensors[i].dtype))
            params += (double)m->tensors[i].nbytes / (double)qr_dtype_size(m->tensors[i].dtype);
    r->params = params;
}

int qr_report_measure(struct qr_engine *e, const struct qr_engine_opts *eo, const struct qr_report_plan_opts *po,
                      struct qr_report *r)
{
    double t_start = qr_time_s();
    qr_report_init(r);
    struct qr_runtime *rt = qr_engine_runtime(e);
    struct ctx c = {.e = e, .dev = qr_rt_device(rt), .m = qr_engine_model(e), .seed = 1};
    struct qr_device_props props;
    if (qr_dev_props(c.dev, &props) != QR_OK) {
        fprintf(stderr, "qrun: device properties: %s\n", qr_last_error());
        return -1;
    }
    c.host_mem = (props.caps & QR_CAP_HOST_MEMORY) != 0;
    const struct qr_model_config *cfg = &c.m->cfg;
    fill_environment(&c, eo, po, r);

    struct qr_mem_report mr;
    qr_rt_mem(rt, &mr);
    int nb = qr_rt_num_blocks(rt), bs = qr_rt_block_size(rt);
    c.max_len = qr_engine_max_model_len(e);
    c.kv_tokens = nb * bs;
    c.kv_per_token = c.kv_tokens > 0 ? (double)mr.kv / c.kv_tokens : 0;
    /* a decode step reads every matmul weight and lm_head; an untied embedding
     * table is read one row per token, so it does not count */
    size_t embed = c.m->embed_tokens ? c.m->embed_tokens->nbytes : 0;
    c.weight_read = !cfg->tie_word_embeddings && mr.weights > embed ? mr.weights - embed : mr.weights;
    if (mr.weights == 0)
        c.weight_read = c.m->weight_bytes;
    int elems = cfg->num_hidden_layers * 2 * cfg->num_key_value_heads * cfg->head_dim;
    int kv_elt = elems > 0 ? (int)lround(c.kv_per_token / elems) : 0;
    enum qr_dtype kvt = eo->kv_dtype;
    if (kvt != QR_DTYPE_F32 && kvt != QR_DTYPE_F16 && kvt != QR_DTYPE_BF16)
        kvt = c.host_mem ? QR_DTYPE_F32 : QR_DTYPE_BF16;
    if (kv_elt == 4)
        kvt = QR_DTYPE_F32;
    snprintf(r->kv_dtype, sizeof r->kv_dtype, "%s", qr_dtype_name(kvt));
    r->max_model_len = c.max_len;
    r->kv_blocks = nb;
    r->block_size = bs;
    r->kv_bytes_per_token = c.kv_per_token;
    r->max_num_seqs = po->max_num_seqs;
    r->max_batched_tokens = po->max_batched_tokens;
    r->mem_weights = (double)mr.weights;
    r->mem_kv = (double)mr.kv;
    r->mem_activations = (double)mr.activations;
    r->mem_overhead = (double)mr.overhead;
    r->mem_device_total = (double)(mr.device_total ? mr.device_total : props.mem_total);

    /* the plan */
    int L = c.max_len < c.kv_tokens ? c.max_len : c.kv_tokens;
    int sp[3], sg[3], n_sp;
    int sweep_p, sweep_g, ladder[QR_REPORT_MAX_LADDER], n_lad = 4, lad_gen = 64;
    if (po->quick) {
        sp[0] = clampi(L / 16, 16, 512);
        sg[0] = clampi(sp[0] / 4, 4, 128);
        sp[1] = clampi(L / 4, 32, 8192);
        sg[1] = clampi(sp[1] / 16, 8, 512);
        n_sp = 2;
        sweep_p = sp[1];
        sweep_g = sg[1];
        for (int i = 0; i < 4; i++)
            ladder[i] = L >> (3 - i);   /* L/8, L/4, L/2, L */
        lad_gen = clampi(ladder[0] / 8, 4, 64);
    } else {
        int fp[3] = {512, 8192, 32768}, fg[3] = {128, 512, 512};
        memcpy(sp, fp, sizeof fp);
        memcpy(sg, fg, sizeof fg);
        n_sp = 3;
        sweep_p = 8192;
        sweep_g = 512;
        for (int i = 0; i < 4; i++)
            ladder[i] = 32768 << i;
    }
    int conc_max = po->max_num_seqs > 0 ? po->max_num_seqs : 256;
    if (conc_max > 1 << (QR_REPORT_MAX_SWEEP - 1))
        conc_max = 1 << (QR_REPORT_MAX_SWEEP - 1);
    int n_conc_plan = 0;
    for (int k = 1; k <= conc_max && n_conc_plan < (po->quick ? 3 : QR_REPORT_MAX_SWEEP); k *= 2)
        n_conc_plan++;
    struct phases ph = {0, 2 + n_sp + n_conc_plan + n_lad, t_start};
    char msg[256];

    /* warm-up (first-call costs: kernels, graph capture) and copy bandwidth */
    phase_begin(&ph, "warm-up");
    {
        struct rq q;
        double wall;
        int wp = clampi(L / 8, 1, 64), wg = clampi(L / 16, 1, 8);
        if (wp + wg > L)
            wp = L - wg > 0 ? L - wg : 1;
        if (run_batch(&c, 1, wp, wg, &q, &wall))
            return -1;
        snprintf(msg, sizeof msg, "warm-up: %d in / %d out in %.2f s", wp, wg, wall);
        phase_end(&ph, msg);
    }
    phase_begin(&ph, "device copy bandwidth");
    r->copy_bw_gbs = copy_bandwidth(c.dev, po->quick && c.host_mem ? (size_t)32 << 20 : (size_t)256 << 20);
    if (r->copy_bw_gbs > 0)
        snprintf(msg, sizeof msg, "copy bandwidth: %.1f GB/s (read + write)", r->copy_bw_gbs);
    else
        snprintf(msg, sizeof msg, "copy bandwidth: n/a");
    phase_end(&ph, msg);

    /* single requests */
    for (int i = 0; i < n_sp; i++) {
        struct qr_report_single *s = &r->single[r->n_single++];
        s->prompt = sp[i];
        s->gen = sg[i];
        snprintf(msg, sizeof msg, "single request %d in / %d out", sp[i], sg[i]);
        phase_begin(&ph, msg);
        if (sp[i] + sg[i] > L) {
            snprintf(s->note, sizeof s->note, "skipped: over the context limit %d", L);
            snprintf(msg, sizeof msg, "single %d/%d: %s", sp[i], sg[i], s->note);
            phase_end(&ph, msg);
            continue;
        }
        struct rq q;
        double wall;
        c.peak_used = 0;
        if (run_batch(&c, 1, sp[i], sg[i], &q, &wall))
            return -1;
        s->ran = true;
        s->ttft_ms = ttft_ms(&q);
        s->decode_tok_s = q.n_gen > 1 && q.t_last > q.t_first ? (q.n_gen - 1) / (q.t_last - q.t_first) : 0;
        s->bytes_per_token = (double)c.weight_read + (sp[i] + sg[i] / 2.0) * c.kv_per_token;
        s->eff_gbs = s->bytes_per_token * s->decode_tok_s / 1e9;
        s->peak_vram_bytes = c.peak_used;
        int blocks = (sp[i] + sg[i] + bs - 1) / bs;
        s->vram_needed_bytes = (double)mr.weights + mr.activations + mr.overhead + (double)blocks * bs * c.kv_per_token;
        if (c.peak_used > r->mem_peak_used)
            r->mem_peak_used = c.peak_used;
        snprintf(msg, sizeof msg, "single %d/%d: TTFT %.1f ms, decode %.1f tok/s, %.1f GB/s effective", sp[i], sg[i],
                 s->ttft_ms, s->decode_tok_s, s->eff_gbs);
        phase_end(&ph, msg);
    }

    /* concurrency sweep */
    r->sweep_prompt = sweep_p;
    r->sweep_gen = sweep_g;
    int planned = 0;
    for (int conc = 1; planned < n_conc_plan; conc *= 2, planned++) {
        snprintf(msg, sizeof msg, "concurrency %d at %d in / %d out", conc, sweep_p, sweep_g);
        phase_begin(&ph, msg);
        if (sweep_p + sweep_g > L) {
            snprintf(r->sweep_note, sizeof r->sweep_note, "Skipped: %d + %d tokens are over the context limit %d.",
                     sweep_p, sweep_g, L);
            phase_end(&ph, r->sweep_note);
            ph.done += n_conc_plan - planned - 1;
            break;
        }
        if ((double)conc * (sweep_p + sweep_g) > (double)c.kv_tokens) {
            snprintf(r->sweep_note, sizeof r->sweep_note,
                     "Stopped before concurrency %d: the KV pool holds %d tokens, fewer than %d x %d.", conc,
                     c.kv_tokens, conc, sweep_p + sweep_g);
            phase_end(&ph, r->sweep_note);
            ph.done += n_conc_plan - planned - 1;
            break;
        }
        struct rq *q = calloc((size_t)conc, sizeof *q);
        double *v = calloc((size_t)conc, sizeof *v);
        if (!q || !v) {
            free(q);
            free(v);
            fprintf(stderr, "qrun: out of memory\n");
            return -1;
        }
        double wall;
        c.peak_used = 0;
        if (run_batch(&c, conc, sweep_p, sweep_g, q, &wall)) {
            free(q);
            free(v);
            return -1;
        }
        if (c.peak_used > r->mem_peak_used)
            r->mem_peak_used = c.peak_used;
        struct qr_report_sweep *p = &r->sweep[r->n_sweep++];
        p->conc = conc;
        p->prompt = sweep_p;
        p->gen = sweep_g;
        p->wall_s = wall;
        double out_tok = 0;
        for (int i = 0; i < conc; i++) {
            v[i] = ttft_ms(&q[i]);
            out_tok += q[i].n_gen;
        }
        p->ttft_mean_ms = qr_report_mean(v, conc);
        p->ttft_p99_ms = qr_report_percentile(v, conc, 99);
        for (int i = 0; i < conc; i++)
            v[i] = tpot_ms(&q[i]);
        p->tpot_mean_ms = qr_report_mean(v, conc);
        p->tpot_p99_ms = qr_report_percentile(v, conc, 99);
        p->output_tok_s = wall > 0 ? out_tok / wall : 0;
        p->total_tok_s = wall > 0 ? (out_tok + (double)conc * sweep_p) / wall : 0;
        free(q);
        free(v);
        if (p->ttft_mean_ms < 1000)
            r->max_conc_ttft_1s = conc;
        snprintf(msg, sizeof msg, "concurrency %d: TTFT mean %.1f / p99 %.1f ms, TPOT %.2f ms, %.1f tok/s total", conc,
                 p->ttft_mean_ms, p->ttft_p99_ms, p->tpot_mean_ms, p->total_tok_s);
        phase_end(&ph, msg);
        if (!po->quick && p->ttft_mean_ms >= 1000) {
            snprintf(r->sweep_note, sizeof r->sweep_note, "Stopped at concurrency %d: mean TTFT reached 1 s.", conc);
            ph.done += n_conc_plan - planned - 1;
            break;
        }
        if (2 * conc > conc_max && planned + 1 < n_conc_plan) {
            snprintf(r->sweep_note, sizeof r->sweep_note, "Stopped at concurrency %d: --max-num-seqs is %d.", conc,
                     conc_max);
            ph.done += n_conc_plan - planned - 1;
            break;
        }
    }

    /* context ladder */
    for (int i = 0; i < n_lad; i++) {
        struct qr_report_ctx *x = &r->ladder[r->n_ladder++];
        x->context = ladder[i];
        x->fits = ladder[i] >= 2 && ladder[i] <= c.max_len && ladder[i] <= c.kv_tokens;
        snprintf(msg, sizeof msg, "context %d", ladder[i]);
        phase_begin(&ph, msg);
        if (!x->fits) {
            snprintf(x->note, sizeof x->note, "over %s (%d tokens)",
                     ladder[i] > c.max_len ? "max_model_len" : "the KV pool",
                     ladder[i] > c.max_len ? c.max_len : c.kv_tokens);
        } else if (po->quick && ladder[i] > 32768) {
            snprintf(x->note, sizeof x->note, "fits; not timed with --quick");
        } else {
            x->gen = lad_gen < ladder[i] / 2 ? lad_gen : ladder[i] / 2;
            x->prompt = ladder[i] - x->gen;
            struct rq q;
            double wall;
            c.peak_used = 0;
            if (run_batch(&c, 1, x->prompt, x->gen, &q, &wall))
                return -1;
            if (c.peak_used > r->mem_peak_used)
                r->mem_peak_used = c.peak_used;
            x->timed = true;
            x->ttft_ms = ttft_ms(&q);
            x->decode_tok_s = q.n_gen > 1 && q.t_last > q.t_first ? (q.n_gen - 1) / (q.t_last - q.t_first) : 0;
            x->total_s = wall;
            snprintf(x->note, sizeof x->note, "prompt %d + %d output tokens", x->prompt, x->gen);
        }
        if (x->fits && x->context > r->longest_context_fits)
            r->longest_context_fits = x->context;
        if (x->timed)
            snprintf(msg, sizeof msg, "context %d: TTFT %.1f ms, decode %.1f tok/s, %.2f s", x->context, x->ttft_ms,
                     x->decode_tok_s, x->total_s);
        else
            snprintf(msg, sizeof msg, "context %d: %s", x->context, x->note);
        phase_end(&ph, msg);
    }
    if (r->mem_peak_used <= 0)
        r->mem_peak_used = (double)mr.weights + mr.kv + mr.activations + mr.overhead;
    r->total_time_s = qr_time_s() - t_start;
    return 0;
}
