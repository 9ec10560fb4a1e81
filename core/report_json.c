/* report_json.c - report.json of `qrun bench report`: writing and parsing
 * (the layout is documented in docs/report-schema.json), and the small
 * statistics helpers the measurement uses. */
#include "qrun/qr_report.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void qr_report_init(struct qr_report *r)
{
    memset(r, 0, sizeof *r);
    snprintf(r->schema, sizeof r->schema, "%s", QR_REPORT_SCHEMA);
}

double qr_report_mean(const double *v, int n)
{
    if (n <= 0)
        return 0;
    double s = 0;
    for (int i = 0; i < n; i++)
        s += v[i];
    return s / n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double qr_report_percentile(double *v, int n, double p)
{
    if (n <= 0)
        return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    /* nearest rank: the smallest value with at least p % of the data at or below it */
    int rank = (int)ceil(p / 100.0 * n);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return v[rank - 1];
}

/* ---- writing ---- */

static void add_num(cJSON *o, const char *k, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

static cJSON *report_obj(const struct qr_report *r)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "schema", r->schema[0] ? r->schema : QR_REPORT_SCHEMA);
    cJSON_AddStringToObject(o, "label", r->label);
    cJSON_AddStringToObject(o, "created", r->created);
    cJSON_AddBoolToObject(o, "quick", r->quick);
    cJSON *env = cJSON_AddObjectToObject(o, "environment");
    cJSON_AddStringToObject(env, "device", r->device);
    cJSON_AddStringToObject(env, "driver", r->driver);
    cJSON_AddStringToObject(env, "backend", r->backend);
    cJSON_AddStringToObject(env, "commit", r->commit);
    cJSON_AddStringToObject(env, "host", r->host);
    cJSON *m = cJSON_AddObjectToObject(o, "model");
    cJSON_AddStringToObject(m, "dir", r->model_dir);
    cJSON_AddStringToObject(m, "arch", r->arch);
    cJSON_AddStringToObject(m, "dtype", r->dtype);
    add_num(m, "num_hidden_layers", r->layers);
    add_num(m, "hidden_size", r->hidden);
    add_num(m, "num_attention_heads", r->heads);
    add_num(m, "num_key_value_heads", r->kv_heads);
    add_num(m, "head_dim", r->head_dim);
    add_num(m, "intermediate_size", r->ffn);
    add_num(m, "vocab_size", r->vocab);
    add_num(m, "max_position_embeddings", r->model_max_pos);
    add_num(m, "params", r->params);
    cJSON *e = cJSON_AddObjectToObject(o, "engine");
    cJSON_AddStringToObject(e, "kv_dtype", r->kv_dtype);
    add_num(e, "max_model_len", r->max_model_len);
    add_num(e, "kv_blocks", r->kv_blocks);
    add_num(e, "block_size", r->block_size);
    add_num(e, "kv_tokens", (double)r->kv_blocks * r->block_size);
    add_num(e, "kv_bytes_per_token", r->kv_bytes_per_token);
    add_num(e, "max_num_seqs", r->max_num_seqs);
    add_num(e, "max_num_batched_tokens", r->max_batched_tokens);
    if (r->copy_bw_gbs > 0)
        add_num(o, "copy_bandwidth_gbs", r->copy_bw_gbs);
    else
        cJSON_AddNullToObject(o, "copy_bandwidth_gbs");
    cJSON *mem = cJSON_AddObjectToObject(o, "memory");
    add_num(mem, "weights", r->mem_weights);
    add_num(mem, "kv_pool", r->mem_kv);
    add_num(mem, "activations", r->mem_activations);
    add_num(mem, "overhead", r->mem_overhead);
    add_num(mem, "device_total", r->mem_device_total);
    add_num(mem, "peak_used", r->mem_peak_used);
    cJSON *sa = cJSON_AddArrayToObject(o, "single");
    for (int i = 0; i < r->n_single; i++) {
        const struct qr_report_single *s = &r->single[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddItemToArray(sa, x);
        add_num(x, "prompt", s->prompt);
        add_num(x, "gen", s->gen);
        cJSON_AddBoolToObject(x, "ran", s->ran);
        add_num(x, "ttft_ms", s->ttft_ms);
        add_num(x, "decode_tok_s", s->decode_tok_s);
        add_num(x, "effective_gbs", s->eff_gbs);
        if (r->copy_bw_gbs > 0 && s->ran)
            add_num(x, "bandwidth_fraction", s->eff_gbs / r->copy_bw_gbs);
        else
            cJSON_AddNullToObject(x, "bandwidth_fraction");
        add_num(x, "bytes_per_token", s->bytes_per_token);
        add_num(x, "peak_vram_bytes", s->peak_vram_bytes);
        add_num(x, "vram_needed_bytes", s->vram_needed_bytes);
        cJSON_AddStringToObject(x, "note", s->note);
    }
    cJSON *sw = cJSON_AddObjectToObject(o, "sweep");
    add_num(sw, "prompt", r->sweep_prompt);
    add_num(sw, "gen", r->sweep_gen);
    add_num(sw, "max_concurrency_ttft_under_1s", r->max_conc_ttft_1s);
    cJSON_AddStringToObject(sw, "note", r->sweep_note);
    cJSON *pts = cJSON_AddArrayToObject(sw, "points");
    for (int i = 0; i < r->n_sweep; i++) {
        const struct qr_report_sweep *p = &r->sweep[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddItemToArray(pts, x);
        add_num(x, "concurrency", p->conc);
        add_num(x, "prompt", p->prompt);
        add_num(x, "gen", p->gen);
        add_num(x, "ttft_mean_ms", p->ttft_mean_ms);
        add_num(x, "ttft_p99_ms", p->ttft_p99_ms);
        add_num(x, "tpot_mean_ms", p->tpot_mean_ms);
        add_num(x, "tpot_p99_ms", p->tpot_p99_ms);
        add_num(x, "total_tok_s", p->total_tok_s);
        add_num(x, "output_tok_s", p->output_tok_s);
        add_num(x, "wall_s", p->wall_s);
    }
    cJSON *la = cJSON_AddObjectToObject(o, "context_ladder");
    add_num(la, "longest_fit", r->longest_context_fits);
    cJSON *rungs = cJSON_AddArrayToObject(la, "rungs");
    for (int i = 0; i < r->n_ladder; i++) {
        const struct qr_report_ctx *c = &r->ladder[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddItemToArray(rungs, x);
        add_num(x, "context", c->context);
        cJSON_AddBoolToObject(x, "fits", c->fits);
        cJSON_AddBoolToObject(x, "timed", c->timed);
        add_num(x, "prompt", c->prompt);
        add_num(x, "gen", c->gen);
        add_num(x, "ttft_ms", c->ttft_ms);
        add_num(x, "decode_tok_s", c->decode_tok_s);
        add_num(x, "total_s", c->total_s);
        cJSON_AddStringToObject(x, "note", c->note);
    }
    add_num(o, "total_time_s", r->total_time_s);
    return o;
}

qr_status qr_report_to_json(const struct qr_report *reps, int n, char **out)
{
    if (!reps || n < 1 || !out)
        return qr_set_error(QR_E_INVALID_ARG, "report: no reports to write");
    cJSON *root;
    if (n == 1) {
        root = report_obj(&reps[0]);
    } else {
        root = cJSON_CreateObject();
        if (root) {
            cJSON_AddStringToObject(root, "schema", QR_REPORT_SCHEMA);
            cJSON_AddBoolToObject(root, "comparison", 1);
            cJSON *arr = cJSON_AddArrayToObject(root, "reports");
            for (int i = 0; i < n; i++)
                cJSON_AddItemToArray(arr, report_obj(&reps[i]));
        }
    }
    if (!root)
        return qr_set_error(QR_E_OOM_HOST, "report: out of memory");
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    if (!s)
        return qr_set_error(QR_E_OOM_HOST, "report: out of memory");
    *out = s;
    return QR_OK;
}

/* ---- parsing ---- */

struct jctx {
    const char *where;
    qr_status st;
};

static cJSON *jget(struct jctx *c, const cJSON *o, const char *k, const char *path)
{
    cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!x && c->st == QR_OK)
        c->st = qr_set_error(QR_E_FORMAT, "%s: missing field %s.%s", c->where, path, k);
    return x;
}

static double jnum(struct jctx *c, const cJSON *o, const char *k, const char *path)
{
    cJSON *x = jget(c, o, k, path);
    if (!x)
        return 0;
    if (cJSON_IsNull(x))
        return 0;
    if (!cJSON_IsNumber(x)) {
        if (c->st == QR_OK)
            c->st = qr_set_error(QR_E_FORMAT, "%s: field %s.%s is not a number", c->where, path, k);
        return 0;
    }
    return x->valuedouble;
}

static int jint(struct jctx *c, const cJSON *o, const char *k, const char *path)
{
    double v = jnum(c, o, k, path);
    if (v > 2e9 || v < -2e9) {
        if (c->st == QR_OK)
            c->st = qr_set_error(QR_E_FORMAT, "%s: field %s.%s is out of range", c->where, path, k);
        return 0;
    }
    return (int)v;
}

static bool jbool(struct jctx *c, const cJSON *o, const char *k, const char *path)
{
    cJSON *x = jget(c, o, k, path);
    if (x && !cJSON_IsBool(x) && c->st == QR_OK)
        c->st = qr_set_error(QR_E_FORMAT, "%s: field %s.%s is not a boolean", c->where, path, k);
    return x && cJSON_IsTrue(x);
}

static void jstr(struct jctx *c, const cJSON *o, const char *k, const char *path, char *dst, size_t cap)
{
    cJSON *x = jget(c, o, k, path);
    dst[0] = 0;
    if (!x)
        return;
    if (!cJSON_IsString(x)) {
        if (c->st == QR_OK)
            c->st = qr_set_error(QR_E_FORMAT, "%s: field %s.%s is not a string", c->where, path, k);
        return;
    }
    snprintf(dst, cap, "%s", x->valuestring);
}

static cJSON *jobj(struct jctx *c, const cJSON *o, const char *k, const char *path, bool array)
{
    cJSON *x = jget(c, o, k, path);
    if (x && (array ? !cJSON_IsArray(x) : !cJSON_IsObject(x))) {
        if (c->st == QR_OK)
            c->st = qr_set_error(QR_E_FORMAT, "%s: field %s.%s is not an %s", c->where, path, k,
                                 array ? "array" : "object");
        return NULL;
    }
    return x;
}

static qr_status parse_one(const cJSON *o, struct qr_report *r, int idx)
{
    char where[48];
    snprintf(where, sizeof where, "report.json (report %d)", idx);
    struct jctx c = {where, QR_OK};
    qr_report_init(r);
    if (!cJSON_IsObject(o))
        return qr_set_error(QR_E_FORMAT, "%s: not an object", where);
    jstr(&c, o, "schema", "", r->schema, sizeof r->schema);
    if (c.st == QR_OK && strcmp(r->schema, QR_REPORT_SCHEMA))
        return qr_set_error(QR_E_FORMAT, "%s: schema '%s' (expected '%s')", where, r->schema, QR_REPORT_SCHEMA);
    jstr(&c, o, "label", "", r->label, sizeof r->label);
    jstr(&c, o, "created", "", r->created, sizeof r->created);
    r->quick = jbool(&c, o, "quick", "");
    const cJSON *env = jobj(&c, o, "environment", "", false);
    if (env) {
        jstr(&c, env, "device", "environment", r->device, sizeof r->device);
        jstr(&c, env, "driver", "environment", r->driver, sizeof r->driver);
        jstr(&c, env, "backend", "environment", r->backend, sizeof r->backend);
        jstr(&c, env, "commit", "environment", r->commit, sizeof r->commit);
        jstr(&c, env, "host", "environment", r->host, sizeof r->host);
    }
    const cJSON *m = jobj(&c, o, "model", "", false);
    if (m) {
        jstr(&c, m, "dir", "model", r->model_dir, sizeof r->model_dir);
        jstr(&c, m, "arch", "model", r->arch, sizeof r->arch);
        jstr(&c, m, "dtype", "model", r->dtype, sizeof r->dtype);
        r->layers = jint(&c, m, "num_hidden_layers", "model");
        r->hidden = jint(&c, m, "hidden_size", "model");
        r->heads = jint(&c, m, "num_attention_heads", "model");
        r->kv_heads = jint(&c, m, "num_key_value_heads", "model");
        r->head_dim = jint(&c, m, "head_dim", "model");
        r->ffn = jint(&c, m, "intermediate_size", "model");
        r->vocab = jint(&c, m, "vocab_size", "model");
        r->model_max_pos = jint(&c, m, "max_position_embeddings", "model");
        r->params = jnum(&c, m, "params", "model");
    }
    const cJSON *e = jobj(&c, o, "engine", "", false);
    if (e) {
        jstr(&c, e, "kv_dtype", "engine", r->kv_dtype, sizeof r->kv_dtype);
        r->max_model_len = jint(&c, e, "max_model_len", "engine");
        r->kv_blocks = jint(&c, e, "kv_blocks", "engine");
        r->block_size = jint(&c, e, "block_size", "engine");
        r->kv_bytes_per_token = jnum(&c, e, "kv_bytes_per_token", "engine");
        r->max_num_seqs = jint(&c, e, "max_num_seqs", "engine");
        r->max_batched_tokens = jint(&c, e, "max_num_batched_tokens", "engine");
    }
    r->copy_bw_gbs = jnum(&c, o, "copy_bandwidth_gbs", "");
    const cJSON *mem = jobj(&c, o, "memory", "", false);
    if (mem) {
        r->mem_weights = jnum(&c, mem, "weights", "memory");
        r->mem_kv = jnum(&c, mem, "kv_pool", "memory");
        r->mem_activations = jnum(&c, mem, "activations", "memory");
        r->mem_overhead = jnum(&c, mem, "overhead", "memory");
        r->mem_device_total = jnum(&c, mem, "device_total", "memory");
        r->mem_peak_used = jnum(&c, mem, "peak_used", "memory");
    }
    const cJSON *sa = jobj(&c, o, "single", "", true), *x;
    if (sa)
        cJSON_ArrayForEach(x, sa)
        {
            if (r->n_single >= QR_REPORT_MAX_SINGLE)
                break;
            struct qr_report_single *s = &r->single[r->n_single++];
            s->prompt = jint(&c, x, "prompt", "single[]");
            s->gen = jint(&c, x, "gen", "single[]");
            s->ran = jbool(&c, x, "ran", "single[]");
            s->ttft_ms = jnum(&c, x, "ttft_ms", "single[]");
            s->decode_tok_s = jnum(&c, x, "decode_tok_s", "single[]");
            s->eff_gbs = jnum(&c, x, "effective_gbs", "single[]");
            s->bytes_per_token = jnum(&c, x, "bytes_per_token", "single[]");
            s->peak_vram_bytes = jnum(&c, x, "peak_vram_bytes", "single[]");
            /* added after the first reports: optional when reading */
            if (cJSON_GetObjectItemCaseSensitive(x, "vram_needed_bytes"))
                s->vram_needed_bytes = jnum(&c, x, "vram_needed_bytes", "single[]");
            jstr(&c, x, "note", "single[]", s->note, sizeof s->note);
        }
    const cJSON *sw = jobj(&c, o, "sweep", "", false);
    if (sw) {
        r->sweep_prompt = jint(&c, sw, "prompt", "sweep");
        r->sweep_gen = jint(&c, sw, "gen", "sweep");
        r->max_conc_ttft_1s = jint(&c, sw, "max_concurrency_ttft_under_1s", "sweep");
        jstr(&c, sw, "note", "sweep", r->sweep_note, sizeof r->sweep_note);
        const cJSON *pts = jobj(&c, sw, "points", "sweep", true);
        if (pts)
            cJSON_ArrayForEach(x, pts)
            {
                if (r->n_sweep >= QR_REPORT_MAX_SWEEP)
                    break;
                struct qr_report_sweep *p = &r->sweep[r->n_sweep++];
                p->conc = jint(&c, x, "concurrency", "sweep.points[]");
                p->prompt = jint(&c, x, "prompt", "sweep.points[]");
                p->gen = jint(&c, x, "gen", "sweep.points[]");
                p->ttft_mean_ms = jnum(&c, x, "ttft_mean_ms", "sweep.points[]");
                p->ttft_p99_ms = jnum(&c, x, "ttft_p99_ms", "sweep.points[]");
                p->tpot_mean_ms = jnum(&c, x, "tpot_mean_ms", "sweep.points[]");
                p->tpot_p99_ms = jnum(&c, x, "tpot_p99_ms", "sweep.points[]");
                p->total_tok_s = jnum(&c, x, "total_tok_s", "sweep.points[]");
                p->output_tok_s = jnum(&c, x, "output_tok_s", "sweep.points[]");
                p->wall_s = jnum(&c, x, "wall_s", "sweep.points[]");
            }
    }
    const cJSON *la = jobj(&c, o, "context_ladder", "", false);
    if (la) {
        r->longest_context_fits = jint(&c, la, "longest_fit", "context_ladder");
        const cJSON *rungs = jobj(&c, la, "rungs", "context_ladder", true);
        if (rungs)
            cJSON_ArrayForEach(x, rungs)
            {
                if (r->n_ladder >= QR_REPORT_MAX_LADDER)
                    break;
                struct qr_report_ctx *q = &r->ladder[r->n_ladder++];
                q->context = jint(&c, x, "context", "context_ladder.rungs[]");
                q->fits = jbool(&c, x, "fits", "context_ladder.rungs[]");
                q->timed = jbool(&c, x, "timed", "context_ladder.rungs[]");
                q->prompt = jint(&c, x, "prompt", "context_ladder.rungs[]");
                q->gen = jint(&c, x, "gen", "context_ladder.rungs[]");
                q->ttft_ms = jnum(&c, x, "ttft_ms", "context_ladder.rungs[]");
                q->decode_tok_s = jnum(&c, x, "decode_tok_s", "context_ladder.rungs[]");
                q->total_s = jnum(&c, x, "total_s", "context_ladder.rungs[]");
                jstr(&c, x, "note", "context_ladder.rungs[]", q->note, sizeof q->note);
            }
    }
    r->total_time_s = jnum(&c, o, "total_time_s", "");
    return c.st;
}

qr_status qr_report_from_json(const char *json, size_t len, struct qr_report **out, int *n)
{
    if (!json || !out || !n)
        return qr_set_error(QR_E_INVALID_ARG, "report: no JSON to parse");
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root)
        return qr_set_error(QR_E_FORMAT, "report.json: not valid JSON");
    qr_status st = QR_OK;
    struct qr_report *reps = NULL;
    int count = 0;
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "reports");
    if (cJSON_IsObject(root) && arr) {
        if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) < 1) {
            st = qr_set_error(QR_E_FORMAT, "report.json: 'reports' must be a non-empty array");
            goto out;
        }
        count = cJSON_GetArraySize(arr);
        reps = calloc((size_t)count, sizeof *reps);
        if (!reps) {
            st = qr_set_error(QR_E_OOM_HOST, "report: out of memory");
            goto out;
        }
        int i = 0;
        const cJSON *x;
        cJSON_ArrayForEach(x, arr)
        {
            if ((st = parse_one(x, &reps[i], i)) != QR_OK)
                goto out;
            i++;
        }
    } else {
        count = 1;
        reps = calloc(1, sizeof *reps);
        if (!reps) {
            st = qr_set_error(QR_E_OOM_HOST, "report: out of memory");
            goto out;
        }
        if ((st = parse_one(root, &reps[0], 0)) != QR_OK)
            goto out;
    }
out:
    cJSON_Delete(root);
    if (st != QR_OK) {
        free(reps);
        return st;
    }
    *out = reps;
    *n = count;
    return QR_OK;
}
