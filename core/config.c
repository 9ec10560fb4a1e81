/* config.c - config.json (struct qr_model_config) and generation_config.json
 * (struct qr_gen_defaults) of a Hugging Face Qwen2/Qwen3 model directory.
 * Reference: transformers Qwen2Config / Qwen3Config defaults, REFERENCE.md 1.1,
 * 1.3 (YaRN fields) and 3.2 (generation_config).
 *
 * Decisions:
 *  - The architecture comes from architectures[0] (Qwen3ForCausalLM /
 *    Qwen2ForCausalLM), else from model_type ("qwen3" / "qwen2").
 *  - Required: hidden_size, num_hidden_layers, num_attention_heads,
 *    intermediate_size, vocab_size.  Defaults as in transformers otherwise:
 *    num_key_value_heads = heads, head_dim = hidden/heads (must divide),
 *    max_position_embeddings 32768, rope_theta 10000, rms_norm_eps 1e-6,
 *    tie_word_embeddings false, attention_bias false (qwen3; qwen2 always has
 *    q/k/v bias), torch_dtype (or "dtype") absent -> BF16.  cfg.dtype only
 *    describes the checkpoint: each tensor's own dtype is in qr_tensor_info.
 *  - rope_scaling null/absent/"default" -> none; "yarn" reads factor,
 *    original_max_position_embeddings, beta_fast (32), beta_slow (1); any other
 *    rope type is refused.  rope_parameters (newer transformers) is read too.
 *  - use_sliding_window true is refused (all supported models have it false).
 *  - Sizes are bounded so that products used later cannot overflow. */
#include "qrun/qr_model.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CFG "config.json"

static char *read_text_file(const char *path, size_t *len, qr_status *st)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        *st = qr_set_error(errno == ENOENT ? QR_E_NOT_FOUND : QR_E_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 65536 + 1 > cap) {
            if (cap > (size_t)64 << 20) {
                fclose(f);
                free(buf);
                *st = qr_set_error(QR_E_FORMAT, "%s: larger than 64 MiB; not a config file", path);
                return NULL;
            }
            size_t nc = cap ? cap * 2 : 65536 * 2;
            char *nb = realloc(buf, nc);
            if (!nb) {
                fclose(f);
                free(buf);
                *st = qr_set_error(QR_E_OOM_HOST, "%s: out of memory", path);
                return NULL;
            }
            buf = nb;
            cap = nc;
        }
        size_t k = fread(buf + n, 1, cap - n - 1, f);
        n += k;
        if (k == 0)
            break;
    }
    bool err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        *st = qr_set_error(QR_E_IO, "%s: read error", path);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    *st = QR_OK;
    return buf;
}

/* Reads a JSON file whose top level must be an object (shared with model.c
 * through a private declaration there); the caller owns *root. */
qr_status qr_config_read_json_object(const char *path, cJSON **root);
qr_status qr_config_read_json_object(const char *path, cJSON **root)
{
    size_t len = 0;
    qr_status st;
    *root = NULL;
    char *text = read_text_file(path, &len, &st);
    if (!text)
        return st;
    cJSON *r = cJSON_ParseWithLength(text, len);
    free(text);
    if (!cJSON_IsObject(r)) {
        cJSON_Delete(r);
        return qr_set_error(QR_E_FORMAT, "%s: not a valid JSON object", path);
    }
    *root = r;
    return QR_OK;
}

/* Re-sets the thread's last error with a prefix (copying it first: the
 * message buffer is the one qr_set_error writes). */
static qr_status prefix_error(qr_status st, const char *prefix)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", qr_last_error());
    return qr_set_error(st, "%s/%s", prefix, tmp);
}

/* ---- field readers: each returns QR_OK, or sets an error naming the field ---- */

static qr_status get_int(const cJSON *root, const char *key, bool required, long lo, long hi, int dflt, int *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!it || cJSON_IsNull(it)) {
        if (required)
            return qr_set_error(QR_E_FORMAT, CFG ": field \"%s\" is missing", key);
        *out = dflt;
        return QR_OK;
    }
    if (!cJSON_IsNumber(it))
        return qr_set_error(QR_E_FORMAT, CFG ": field \"%s\" must be an integer", key);
    double d = it->valuedouble;
    if (d != floor(d) || d < (double)lo || d > (double)hi)
        return qr_set_error(QR_E_FORMAT, CFG ": field \"%s\" is %g; expected an integer in [%ld, %ld]", key, d, lo, hi);
    *out = (int)d;
    return QR_OK;
}

static qr_status get_num(const cJSON *root, const char *key, double lo, double hi, double dflt, double *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!it || cJSON_IsNull(it)) {
        *out = dflt;
        return QR_OK;
    }
    if (!cJSON_IsNumber(it))
        return qr_set_error(QR_E_FORMAT, CFG ": field \"%s\" must be a number", key);
    double d = it->valuedouble;
    if (!(d >= lo && d <= hi))
        return qr_set_error(QR_E_FORMAT, CFG ": field \"%s\" is %g; expected a number in [%g, %g]", key, d, lo, hi);
    *out = d;
    return QR_OK;
}

static qr_status get_bool(const cJSON *root, const char *key, bool dflt, bool *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!it || cJSON_IsNull(it)) {
        *out = dflt;
        return QR_OK;
    }
    if (!cJSON_IsBool(it))
        return qr_set_error(QR_E_FORMAT, CFG ": field \"%s\" must be true or false", key);
    *out = cJSON_IsTrue(it);
    return QR_OK;
}

/* eos_token_id: an integer or an array of integers (up to QR_MAX_EOS) */
static qr_status get_ids(const cJSON *root, const char *file, const char *key, int *ids, int *n)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    *n = 0;
    if (!it || cJSON_IsNull(it))
        return QR_OK;
    if (cJSON_IsNumber(it)) {
        double d = it->valuedouble;
        if (d != floor(d) || d < 0 || d > 2147483647.0)
            return qr_set_error(QR_E_FORMAT, "%s: field \"%s\" is %g; expected a token id", file, key, d);
        ids[(*n)++] = (int)d;
        return QR_OK;
    }
    if (!cJSON_IsArray(it))
        return qr_set_error(QR_E_FORMAT, "%s: field \"%s\" must be a token id or a list of token ids", file, key);
    const cJSON *e;
    cJSON_ArrayForEach(e, it) {
        if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) || e->valuedouble < 0 ||
            e->valuedouble > 2147483647.0)
            return qr_set_error(QR_E_FORMAT, "%s: field \"%s\" holds a value that is not a token id", file, key);
        if (*n >= QR_MAX_EOS)
            return qr_set_error(QR_E_FORMAT, "%s: field \"%s\" lists more than %d ids", file, key, QR_MAX_EOS);
        int v = (int)e->valuedouble, dup = 0;
        for (int j = 0; j < *n; j++)
            dup |= ids[j] == v;
        if (!dup)
            ids[(*n)++] = v;
    }
    return QR_OK;
}

static qr_status parse_arch(const cJSON *root, enum qr_arch *arch)
{
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    const char *a = NULL;
    if (cJSON_IsArray(archs) && cJSON_GetArraySize(archs) > 0) {
        const cJSON *a0 = cJSON_GetArrayItem(archs, 0);
        if (!cJSON_IsString(a0))
            return qr_set_error(QR_E_FORMAT, CFG ": \"architectures\"[0] is not a string");
        a = a0->valuestring;
        if (strcmp(a, "Qwen3ForCausalLM") == 0) {
            *arch = QR_ARCH_QWEN3;
            return QR_OK;
        }
        if (strcmp(a, "Qwen2ForCausalLM") == 0) {
            *arch = QR_ARCH_QWEN2;
            return QR_OK;
        }
        return qr_set_error(QR_E_UNSUPPORTED,
                            CFG ": architecture \"%.64s\" is not supported (expected Qwen3ForCausalLM or "
                            "Qwen2ForCausalLM)",
                            a);
    }
    if (archs && !cJSON_IsArray(archs))
        return qr_set_error(QR_E_FORMAT, CFG ": \"architectures\" is not a list");
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (!cJSON_IsString(mt))
        return qr_set_error(QR_E_FORMAT, CFG ": neither \"architectures\" nor \"model_type\" names the architecture");
    if (strcmp(mt->valuestring, "qwen3") == 0) {
        *arch = QR_ARCH_QWEN3;
        return QR_OK;
    }
    if (strcmp(mt->valuestring, "qwen2") == 0) {
        *arch = QR_ARCH_QWEN2;
        return QR_OK;
    }
    return qr_set_error(QR_E_UNSUPPORTED, CFG ": model_type \"%.64s\" is not supported (expected qwen3 or qwen2)",
                        mt->valuestring);
}

static qr_status parse_dtype(const cJSON *root, enum qr_dtype *dt)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, "torch_dtype");
    if (!it || cJSON_IsNull(it))
        it = cJSON_GetObjectItemCaseSensitive(root, "dtype");
    *dt = QR_DTYPE_BF16;
    if (!it || cJSON_IsNull(it))
        return QR_OK;
    if (!cJSON_IsString(it))
        return qr_set_error(QR_E_FORMAT, CFG ": field \"torch_dtype\" must be a string");
    const char *s = it->valuestring;
    if (strcmp(s, "bfloat16") == 0)
        *dt = QR_DTYPE_BF16;
    else if (strcmp(s, "float16") == 0 || strcmp(s, "half") == 0)
        *dt = QR_DTYPE_F16;
    else if (strcmp(s, "float32") == 0 || strcmp(s, "float") == 0)
        *dt = QR_DTYPE_F32;
    else
        return qr_set_error(QR_E_UNSUPPORTED,
                            CFG ": torch_dtype \"%.32s\" is not supported (bfloat16, float16 or float32)", s);
    return QR_OK;
}

static qr_status parse_rope(const cJSON *root, struct qr_model_config *c)
{
    qr_status st;
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(root, "rope_parameters");
    if (params && !cJSON_IsNull(params) && !cJSON_IsObject(params))
        return qr_set_error(QR_E_FORMAT, CFG ": \"rope_parameters\" must be an object");
    if ((st = get_num(root, "rope_theta", 1.0, 1e12, 10000.0, &c->rope_theta)) != QR_OK)
        return st;
    if (!cJSON_GetObjectItemCaseSensitive(root, "rope_theta") && cJSON_IsObject(params))
        if ((st = get_num(params, "rope_theta", 1.0, 1e12, 10000.0, &c->rope_theta)) != QR_OK)
            return st;
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
    if (!rs || cJSON_IsNull(rs))
        rs = cJSON_IsObject(params) ? params : NULL;
    c->rope_yarn_factor = 0;
    c->rope_yarn_orig_max_pos = 0;
    c->rope_yarn_beta_fast = 32.0;
    c->rope_yarn_beta_slow = 1.0;
    if (!rs)
        return QR_OK;
    if (!cJSON_IsObject(rs))
        return qr_set_error(QR_E_FORMAT, CFG ": \"rope_scaling\" must be null or an object");
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
    if (!ty || cJSON_IsNull(ty))
        ty = cJSON_GetObjectItemCaseSensitive(rs, "type");
    if (!ty || cJSON_IsNull(ty) || (cJSON_IsString(ty) && strcmp(ty->valuestring, "default") == 0))
        return QR_OK;
    if (!cJSON_IsString(ty))
        return qr_set_error(QR_E_FORMAT, CFG ": rope_scaling \"rope_type\" must be a string");
    if (strcmp(ty->valuestring, "yarn") != 0)
        return qr_set_error(QR_E_UNSUPPORTED, CFG ": rope_scaling type \"%.32s\" is not supported (only yarn)",
                            ty->valuestring);
    if ((st = get_num(rs, "factor", 1.0, 1024.0, 0.0, &c->rope_yarn_factor)) != QR_OK)
        return st;
    if (c->rope_yarn_factor == 0.0)
        return qr_set_error(QR_E_FORMAT, CFG ": rope_scaling of type yarn needs \"factor\"");
    if ((st = get_int(rs, "original_max_position_embeddings", false, 1, 1 << 30, c->max_position_embeddings,
                      &c->rope_yarn_orig_max_pos)) != QR_OK)
        return st;
    if ((st = get_num(rs, "beta_fast", 0.0, 1e6, 32.0, &c->rope_yarn_beta_fast)) != QR_OK)
        return st;
    if ((st = get_num(rs, "beta_slow", 0.0, 1e6, 1.0, &c->rope_yarn_beta_slow)) != QR_OK)
        return st;
    return QR_OK;
}

qr_status qr_config_parse(const char *json, size_t len, struct qr_model_config *cfg)
{
    if (!json || !cfg)
        return qr_set_error(QR_E_INVALID_ARG, "qr_config_parse: bad arguments");
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root) {
        size_t at = end && end >= json && end <= json + len ? (size_t)(end - json) : 0;
        return qr_set_error(QR_E_FORMAT, CFG ": not valid JSON (near byte %zu)", at);
    }
    struct qr_model_config c;
    memset(&c, 0, sizeof c);
    qr_status st = QR_OK;
    if (!cJSON_IsObject(root)) {
        st = qr_set_error(QR_E_FORMAT, CFG ": top level is not a JSON object");
        goto done;
    }
    /* duplicate keys are ambiguous (Python keeps the last, cJSON finds the first): refuse them */
    int nkeys = 0;
    for (const cJSON *a = root->child; a; a = a->next, nkeys++) {
        if (nkeys > 4096) {
            st = qr_set_error(QR_E_FORMAT, CFG ": more than 4096 top-level fields");
            goto done;
        }
        for (const cJSON *b = a->next; b; b = b->next)
            if (a->string && b->string && strcmp(a->string, b->string) == 0) {
                st = qr_set_error(QR_E_FORMAT, CFG ": field \"%.64s\" appears twice", a->string);
                goto done;
            }
    }
    if ((st = parse_arch(root, &c.arch)) != QR_OK)
        goto done;
    if ((st = get_int(root, "hidden_size", true, 1, 1 << 16, 0, &c.hidden_size)) != QR_OK ||
        (st = get_int(root, "num_hidden_layers", true, 1, 1024, 0, &c.num_hidden_layers)) != QR_OK ||
        (st = get_int(root, "num_attention_heads", true, 1, 1024, 0, &c.num_attention_heads)) != QR_OK ||
        (st = get_int(root, "num_key_value_heads", false, 1, 1024, c.num_attention_heads, &c.num_key_value_heads)) !=
            QR_OK ||
        (st = get_int(root, "intermediate_size", true, 1, 1 << 20, 0, &c.intermediate_size)) != QR_OK ||
        (st = get_int(root, "vocab_size", true, 1, 1 << 24, 0, &c.vocab_size)) != QR_OK ||
        (st = get_int(root, "max_position_embeddings", false, 1, 1 << 30, 32768, &c.max_position_embeddings)) !=
            QR_OK)
        goto done;
    const cJSON *hd = cJSON_GetObjectItemCaseSensitive(root, "head_dim");
    if (hd && !cJSON_IsNull(hd)) {
        if ((st = get_int(root, "head_dim", true, 2, 1024, 0, &c.head_dim)) != QR_OK)
            goto done;
    } else {
        if (c.hidden_size % c.num_attention_heads != 0) {
            st = qr_set_error(QR_E_FORMAT,
                              CFG ": no \"head_dim\", and hidden_size %d is not a multiple of num_attention_heads %d",
                              c.hidden_size, c.num_attention_heads);
            goto done;
        }
        c.head_dim = c.hidden_size / c.num_attention_heads;
    }
    if (c.head_dim % 2 != 0) {
        st = qr_set_error(QR_E_FORMAT, CFG ": head_dim %d is odd; rotary embeddings need an even head_dim", c.head_dim);
        goto done;
    }
    if (c.num_attention_heads % c.num_key_value_heads != 0) {
        st = qr_set_error(QR_E_FORMAT, CFG ": num_attention_heads %d is not a multiple of num_key_value_heads %d",
                          c.num_attention_heads, c.num_key_value_heads);
        goto done;
    }
    if ((st = get_num(root, "rms_norm_eps", 0.0, 1.0, 1e-6, &c.rms_norm_eps)) != QR_OK)
        goto done;
    if (c.rms_norm_eps <= 0.0) {
        st = qr_set_error(QR_E_FORMAT, CFG ": rms_norm_eps must be positive");
        goto done;
    }
    if ((st = get_bool(root, "tie_word_embeddings", false, &c.tie_word_embeddings)) != QR_OK)
        goto done;
    if (c.arch == QR_ARCH_QWEN2) {
        c.attention_bias = true;      /* hardcoded in transformers' Qwen2Attention */
        c.qk_norm = false;
    } else {
        if ((st = get_bool(root, "attention_bias", false, &c.attention_bias)) != QR_OK)
            goto done;
        c.qk_norm = true;
    }
    bool sliding = false;
    if ((st = get_bool(root, "use_sliding_window", false, &sliding)) != QR_OK)
        goto done;
    if (sliding) {
        st = qr_set_error(QR_E_UNSUPPORTED, CFG ": use_sliding_window is true; qrun implements full attention only");
        goto done;
    }
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    if (act && !cJSON_IsNull(act) && (!cJSON_IsString(act) || strcmp(act->valuestring, "silu") != 0)) {
        st = qr_set_error(QR_E_UNSUPPORTED, CFG ": hidden_act must be \"silu\"");
        goto done;
    }
    if ((st = parse_dtype(root, &c.dtype)) != QR_OK || (st = parse_rope(root, &c)) != QR_OK)
        goto done;
    int bos[QR_MAX_EOS] = {0}, nb = 0;
    if ((st = get_ids(root, CFG, "bos_token_id", bos, &nb)) != QR_OK)
        goto done;
    c.bos_token_id = nb ? bos[0] : -1;
    if ((st = get_ids(root, CFG, "eos_token_id", c.eos_token_ids, &c.n_eos)) != QR_OK)
        goto done;
    for (int i = 0; i < c.n_eos; i++)
        if (c.eos_token_ids[i] >= c.vocab_size) {
            st = qr_set_error(QR_E_FORMAT, CFG ": eos_token_id %d is not below vocab_size %d", c.eos_token_ids[i],
                              c.vocab_size);
            goto done;
        }
    *cfg = c;
done:
    cJSON_Delete(root);
    return st;
}

qr_status qr_config_load(const char *dir, struct qr_model_config *cfg)
{
    if (!dir || !cfg)
        return qr_set_error(QR_E_INVALID_ARG, "qr_config_load: bad arguments");
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/config.json", dir) >= sizeof path)
        return qr_set_error(QR_E_INVALID_ARG, "model directory path is too long");
    size_t len = 0;
    qr_status st;
    char *text = read_text_file(path, &len, &st);
    if (!text) {
        if (st == QR_E_NOT_FOUND)
            return qr_set_error(st, "%s: config.json is missing; is this a Hugging Face model directory?", dir);
        return st;
    }
    st = qr_config_parse(text, len, cfg);
    free(text);
    if (st != QR_OK)
        return prefix_error(st, dir);
    return QR_OK;
}

/* ---- generation_config.json ---- */

static qr_status gen_num(const cJSON *root, const char *key, double lo, double hi, float *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!it || cJSON_IsNull(it))
        return QR_OK;
    if (!cJSON_IsNumber(it) || !(it->valuedouble >= lo && it->valuedouble <= hi))
        return qr_set_error(QR_E_FORMAT, "generation_config.json: field \"%s\" must be a number in [%g, %g]", key, lo,
                            hi);
    *out = (float)it->valuedouble;
    return QR_OK;
}

qr_status qr_gen_defaults_load(const char *dir, const struct qr_model_config *cfg, struct qr_gen_defaults *gen)
{
    if (!dir || !gen)
        return qr_set_error(QR_E_INVALID_ARG, "qr_gen_defaults_load: bad arguments");
    struct qr_gen_defaults g = {
        .temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .repetition_penalty = 1.0f,
        .presence_penalty = 0.0f, .frequency_penalty = 0.0f, .do_sample = false, .n_eos = 0,
    };
    if (cfg) {
        g.n_eos = cfg->n_eos;
        memcpy(g.eos_token_ids, cfg->eos_token_ids, sizeof g.eos_token_ids);
    }
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/generation_config.json", dir) >= sizeof path)
        return qr_set_error(QR_E_INVALID_ARG, "model directory path is too long");
    struct stat sb;
    if (stat(path, &sb) != 0 && errno == ENOENT) {
        *gen = g;                      /* optional file: neutral defaults */
        return QR_OK;
    }
    cJSON *root = NULL;
    qr_status st = qr_config_read_json_object(path, &root);
    if (st != QR_OK)
        return st;
    float tk = 0.0f;
    const cJSON *ds = cJSON_GetObjectItemCaseSensitive(root, "do_sample");
    if ((st = gen_num(root, "temperature", 0.0, 100.0, &g.temperature)) != QR_OK ||
        (st = gen_num(root, "top_p", 0.0, 1.0, &g.top_p)) != QR_OK ||
        (st = gen_num(root, "min_p", 0.0, 1.0, &g.min_p)) != QR_OK ||
        (st = gen_num(root, "top_k", 0.0, 1e9, &tk)) != QR_OK ||
        (st = gen_num(root, "repetition_penalty", 0.01, 100.0, &g.repetition_penalty)) != QR_OK ||
        (st = gen_num(root, "presence_penalty", -2.0, 2.0, &g.presence_penalty)) != QR_OK ||
        (st = gen_num(root, "frequency_penalty", -2.0, 2.0, &g.frequency_penalty)) != QR_OK)
        goto done;
    g.top_k = (int)tk;
    if (ds && !cJSON_IsNull(ds)) {
        if (!cJSON_IsBool(ds)) {
            st = qr_set_error(QR_E_FORMAT, "generation_config.json: field \"do_sample\" must be true or false");
            goto done;
        }
        g.do_sample = cJSON_IsTrue(ds);
    }
    int ids[QR_MAX_EOS] = {0}, n = 0;
    if ((st = get_ids(root, "generation_config.json", "eos_token_id", ids, &n)) != QR_OK)
        goto done;
    if (n > 0) {
        g.n_eos = n;
        memcpy(g.eos_token_ids, ids, sizeof ids);
    }
    *gen = g;
done:
    cJSON_Delete(root);
    if (st != QR_OK)
        return prefix_error(st, dir);
    return QR_OK;
}
