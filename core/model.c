/* model.c - open a Hugging Face Qwen2/Qwen3 model directory (qr_model.h):
 * config.json, generation_config.json, and model.safetensors or the shards
 * named by model.safetensors.index.json, each mmapped read-only and validated
 * by qr_st_parse; then every tensor is checked against the config.
 *
 * Decisions (documented for the runtime and for users):
 *  - Each tensor may be F32, F16 or BF16 independently (norms in F32 next to
 *    BF16 matrices are common); qr_tensor_info.dtype records it and the runtime
 *    converts.  Any other dtype is refused, naming the tensor.
 *  - Every tensor the architecture needs must be present with the exact shape
 *    (HF order, [out, in] for linear weights).  Extra tensors are refused,
 *    except "*.self_attn.rotary_emb.inv_freq" (old checkpoints store the rope
 *    buffer; qrun computes it) and "lm_head.weight" in a tied model (checked
 *    for shape, then ignored as transformers ignores it: a warning is logged).
 *  - Qwen3 with attention_bias true (o_proj bias as well) is refused: no Qwen3
 *    checkpoint uses it and the op graph has no o_proj bias.
 *  - With an index, every weight_map entry must be found in the shard it
 *    names and every tensor of every shard must be listed; shard names must be
 *    plain file names in the model directory.  metadata.total_size, when it
 *    disagrees with the sum of tensor bytes, only logs a warning (some
 *    exporters count it differently). */
#include "qrun/qr_model.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SHARDS 4096

/* from config.c */
qr_status qr_config_read_json_object(const char *path, cJSON **root);

struct model_file {
    char *name;                  /* file name inside the model directory */
    void *map;
    size_t size;
    struct qr_st_file *st;
};

struct model_priv {
    struct model_file *files;
    int n_files;
    int *by_name;                /* tensor indices sorted by name */
    int *file_of;                /* tensor index -> file index */
    int *st_index;               /* tensor index -> index inside its file */
    unsigned char *used;
    void **copies;               /* aligned copies of misaligned tensors */
    int n_copies;
};

/* ---- helpers ---- */

static void shape_str(const int64_t *shape, int n, char *buf, size_t cap)
{
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < n && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (k < cap)
        snprintf(buf + k, cap - k, "]");
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

static bool file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static _Thread_local const struct qr_tensor_info *t_sort_tensors;

static int cmp_by_name(const void *a, const void *b)
{
    return strcmp(t_sort_tensors[*(const int *)a].name, t_sort_tensors[*(const int *)b].name);
}

static int find_tensor(const struct qr_model *m, const char *name)
{
    const struct model_priv *p = m->priv;
    int lo = 0, hi = m->n_tensors - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(m->tensors[p->by_name[mid]].name, name);
        if (c == 0)
            return p->by_name[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

const struct qr_tensor_info *qr_model_tensor(const struct qr_model *m, const char *name)
{
    if (!m || !name || !m->priv)
        return NULL;
    int i = find_tensor(m, name);
    return i >= 0 ? &m->tensors[i] : NULL;
}

/* ---- files ---- */

static qr_status map_file(const char *dir, struct model_file *f)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, f->name) >= sizeof path)
        return qr_set_error(QR_E_INVALID_ARG, "%s: path too long", f->name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return qr_set_error(errno == ENOENT ? QR_E_NOT_FOUND : QR_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return qr_set_error(QR_E_IO, "%s: not a regular file", path);
    }
    f->size = (size_t)sb.st_size;
    if (f->size == 0) {
        close(fd);
        return qr_set_error(QR_E_FORMAT, "%s: file is empty (truncated?)", path);
    }
    void *map = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    close(fd);
    if (map == MAP_FAILED)
        return qr_set_error(QR_E_IO, "%s: mmap of %zu bytes failed: %s", path, f->size, strerror(err));
    f->map = map;
    return qr_st_parse(f->map, f->size, path, &f->st);
}

static qr_status add_file(struct model_priv *p, const char *name)
{
    for (int i = 0; i < p->n_files; i++)
        if (strcmp(p->files[i].name, name) == 0)
            return QR_OK;
    if (p->n_files >= MAX_SHARDS)
        return qr_set_error(QR_E_FORMAT, "model.safetensors.index.json: more than %d shard files", MAX_SHARDS);
    if ((p->n_files & 15) == 0) {
        struct model_file *nf = realloc(p->files, sizeof *nf * (size_t)(p->n_files + 16));
        if (!nf)
            return qr_set_error(QR_E_OOM_HOST, "out of memory");
        p->files = nf;
    }
    struct model_file *f = &p->files[p->n_files];
    memset(f, 0, sizeof *f);
    if (!(f->name = strdup(name)))
        return qr_set_error(QR_E_OOM_HOST, "out of memory");
    p->n_files++;
    return QR_OK;
}

/* Reads the index: fills the file list; returns the parsed weight_map in *wm_root. */
static qr_status read_index(const char *dir, const char *path, struct model_priv *p, cJSON **wm_root)
{
    cJSON *root = NULL;
    qr_status st = qr_config_read_json_object(path, &root);
    if (st != QR_OK)
        return st;
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(wm) || !wm->child) {
        cJSON_Delete(root);
        return qr_set_error(QR_E_FORMAT, "%s: \"weight_map\" is missing or empty", path);
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, wm) {
        if (!cJSON_IsString(it)) {
            st = qr_set_error(QR_E_FORMAT, "%s: weight_map entry '%.200s' is not a file name", path,
                              it->string ? it->string : "?");
            cJSON_Delete(root);
            return st;
        }
        const char *fn = it->valuestring;
        if (!fn[0] || strchr(fn, '/') || fn[0] == '.' || !ends_with(fn, ".safetensors") || strlen(fn) > 255) {
            st = qr_set_error(QR_E_FORMAT,
                              "%s: weight_map maps '%.200s' to \"%.200s\", which is not a .safetensors file name in "
                              "the model directory",
                              path, it->string ? it->string : "?", fn);
            cJSON_Delete(root);
            return st;
        }
        if ((st = add_file(p, fn)) != QR_OK) {
            cJSON_Delete(root);
            return st;
        }
    }
    (void)dir;
    *wm_root = root;
    return QR_OK;
}

/* ---- checking tensors against the config ---- */

struct check_ctx {
    struct qr_model *m;
    const char *dir;
};

static const char *tensor_file(const struct qr_model *m, int i)
{
    const struct model_priv *p = m->priv;
    return p->files[p->file_of[i]].name;
}

/* Finds NAME with the expected shape and a float dtype; marks it used. */
static qr_status expect(struct check_ctx *c, const char *name, int n_dims, int64_t d0, int64_t d1,
                        const struct qr_tensor_info **out)
{
    struct qr_model *m = c->m;
    struct model_priv *p = m->priv;
    int64_t want[2] = {d0, d1};
    char ws[64], gs[128];
    shape_str(want, n_dims, ws, sizeof ws);
    int i = find_tensor(m, name);
    if (i < 0)
        return qr_set_error(QR_E_FORMAT, "%s: tensor '%s' is missing (expected shape %s, F32/F16/BF16); no weight file "
                            "holds it", c->dir, name, ws);
    const struct qr_tensor_info *t = &m->tensors[i];
    if (t->dtype != QR_DTYPE_F32 && t->dtype != QR_DTYPE_F16 && t->dtype != QR_DTYPE_BF16) {
        const char *dn = qr_st_dtype_name(p->files[p->file_of[i]].st, p->st_index[i]);
        return qr_set_error(QR_E_FORMAT, "%s/%s: tensor '%s': expected dtype F32, F16 or BF16, got %s", c->dir,
                            tensor_file(m, i), name, dn);
    }
    bool ok = t->n_dims == n_dims && t->shape[0] == d0 && (n_dims < 2 || t->shape[1] == d1);
    if (!ok) {
        shape_str(t->shape, t->n_dims, gs, sizeof gs);
        return qr_set_error(QR_E_FORMAT, "%s/%s: tensor '%s': expected shape %s, got %s", c->dir, tensor_file(m, i),
                            name, ws, gs);
    }
    p->used[i] = 1;
    *out = t;
    return QR_OK;
}

static qr_status check_tensors(struct check_ctx *c)
{
    struct qr_model *m = c->m;
    struct model_priv *p = m->priv;
    const struct qr_model_config *cfg = &m->cfg;
    const int64_t dim = cfg->hidden_size, hd = cfg->head_dim, qd = (int64_t)cfg->num_attention_heads * hd,
                  kvd = (int64_t)cfg->num_key_value_heads * hd, ffn = cfg->intermediate_size, vocab = cfg->vocab_size;
    qr_status st;
    char nm[256];
    if ((st = expect(c, "model.embed_tokens.weight", 2, vocab, dim, &m->embed_tokens)) != QR_OK ||
        (st = expect(c, "model.norm.weight", 1, dim, 0, &m->norm)) != QR_OK)
        return st;
    if (cfg->tie_word_embeddings) {
        m->lm_head = m->embed_tokens;
        int i = find_tensor(m, "lm_head.weight");
        if (i >= 0) {
            const struct qr_tensor_info *ignored;
            if ((st = expect(c, "lm_head.weight", 2, vocab, dim, &ignored)) != QR_OK)
                return st;
            qr_log(QR_LOG_WARN, "%s: tie_word_embeddings is true; lm_head.weight is ignored (embed_tokens is used)",
                   c->dir);
        }
    } else if ((st = expect(c, "lm_head.weight", 2, vocab, dim, &m->lm_head)) != QR_OK) {
        return st;
    }
    for (int l = 0; l < cfg->num_hidden_layers; l++) {
        struct qr_layer_weights *w = &m->layers[l];
#define EXP(field, suffix, nd, a, b)                                                   \
        do {                                                                           \
            snprintf(nm, sizeof nm, "model.layers.%d.%s", l, suffix);                  \
            if ((st = expect(c, nm, nd, a, b, &w->field)) != QR_OK)                    \
                return st;                                                             \
        } while (0)
        EXP(input_layernorm, "input_layernorm.weight", 1, dim, 0);
        EXP(q_proj, "self_attn.q_proj.weight", 2, qd, dim);
        EXP(k_proj, "self_attn.k_proj.weight", 2, kvd, dim);
        EXP(v_proj, "self_attn.v_proj.weight", 2, kvd, dim);
        EXP(o_proj, "self_attn.o_proj.weight", 2, dim, qd);
        if (cfg->attention_bias) {
            EXP(q_bias, "self_attn.q_proj.bias", 1, qd, 0);
            EXP(k_bias, "self_attn.k_proj.bias", 1, kvd, 0);
            EXP(v_bias, "self_attn.v_proj.bias", 1, kvd, 0);
        }
        if (cfg->qk_norm) {
            EXP(q_norm, "self_attn.q_norm.weight", 1, hd, 0);
            EXP(k_norm, "self_attn.k_norm.weight", 1, hd, 0);
        }
        EXP(post_attention_layernorm, "post_attention_layernorm.weight", 1, dim, 0);
        EXP(gate_proj, "mlp.gate_proj.weight", 2, ffn, dim);
        EXP(up_proj, "mlp.up_proj.weight", 2, ffn, dim);
        EXP(down_proj, "mlp.down_proj.weight", 2, dim, ffn);
#undef EXP
    }
    m->weight_bytes = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        if (p->used[i]) {
            if (m->tensors[i].name && !(cfg->tie_word_embeddings && strcmp(m->tensors[i].name, "lm_head.weight") == 0))
                m->weight_bytes += m->tensors[i].nbytes;
            continue;
        }
        if (ends_with(m->tensors[i].name, ".self_attn.rotary_emb.inv_freq"))
            continue;
        return qr_set_error(QR_E_FORMAT,
                            "%s/%s: unexpected tensor '%s': a %s model with %d layers%s%s has no such tensor", c->dir,
                            tensor_file(m, i), m->tensors[i].name,
                            cfg->arch == QR_ARCH_QWEN3 ? "Qwen3ForCausalLM" : "Qwen2ForCausalLM",
                            cfg->num_hidden_layers, cfg->attention_bias ? ", qkv bias" : "",
                            cfg->tie_word_embeddings ? ", tied lm_head" : "");
    }
    return QR_OK;
}

/* Every weight_map entry is in the shard it names, every shard tensor is listed. */
static qr_status check_index(struct qr_model *m, const char *dir, const cJSON *root)
{
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    int listed = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, wm) {
        listed++;
        int i = find_tensor(m, it->string ? it->string : "");
        if (i < 0)
            return qr_set_error(QR_E_FORMAT,
                                "%s/model.safetensors.index.json: tensor '%.200s' is mapped to %s, which does not "
                                "hold it",
                                dir, it->string ? it->string : "?", it->valuestring);
        if (strcmp(tensor_file(m, i), it->valuestring) != 0)
            return qr_set_error(QR_E_FORMAT,
                                "%s/model.safetensors.index.json: tensor '%s' is mapped to %s but found in %s", dir,
                                m->tensors[i].name, it->valuestring, tensor_file(m, i));
    }
    if (listed != m->n_tensors) {
        /* names are unique on both sides, so a count mismatch means a shard holds an unlisted tensor */
        for (int i = 0; i < m->n_tensors; i++)
            if (!cJSON_GetObjectItemCaseSensitive(wm, m->tensors[i].name))
                return qr_set_error(QR_E_FORMAT,
                                    "%s/%s: tensor '%s' is not listed in model.safetensors.index.json", dir,
                                    tensor_file(m, i), m->tensors[i].name);
        return qr_set_error(QR_E_FORMAT, "%s/model.safetensors.index.json: weight_map lists a tensor twice", dir);
    }
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(root, "metadata");
    const cJSON *ts = cJSON_IsObject(md) ? cJSON_GetObjectItemCaseSensitive(md, "total_size") : NULL;
    if (cJSON_IsNumber(ts)) {
        double sum = 0;
        for (int i = 0; i < m->n_tensors; i++)
            sum += (double)m->tensors[i].nbytes;
        if (ts->valuedouble != sum)
            qr_log(QR_LOG_WARN, "%s/model.safetensors.index.json: metadata.total_size is %.0f but the tensors hold "
                   "%.0f bytes", dir, ts->valuedouble, sum);
    }
    return QR_OK;
}

/* Tensors whose data is not aligned to their element size (a header length
 * that is not a multiple of 8, odd offsets) are copied to aligned memory, so
 * that zero-copy users (the CPU backend maps weights in place) read aligned
 * elements.  Files written by the reference writer never need this. */
static qr_status realign(struct qr_model *m)
{
    struct model_priv *p = m->priv;
    size_t bytes = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        struct qr_tensor_info *t = &m->tensors[i];
        size_t a = t->dtype < QR_DTYPE_COUNT ? qr_dtype_size(t->dtype) : 1;
        if (!p->used[i] || t->nbytes == 0 || (uintptr_t)t->data % a == 0)
            continue;
        if (!p->copies && !(p->copies = calloc((size_t)m->n_tensors, sizeof *p->copies)))
            return qr_set_error(QR_E_OOM_HOST, "out of memory");
        void *c = aligned_alloc(64, (t->nbytes + 63) / 64 * 64);
        if (!c)
            return qr_set_error(QR_E_OOM_HOST, "%s: out of memory copying misaligned tensor '%s' (%zu bytes)", m->dir,
                                t->name, t->nbytes);
        memcpy(c, t->data, t->nbytes);
        p->copies[p->n_copies++] = c;
        t->data = c;
        bytes += t->nbytes;
    }
    if (bytes)
        qr_log(QR_LOG_WARN, "%s: %d tensors are not aligned in their file; copied %.1f MiB to aligned memory", m->dir,
               p->n_copies, (double)bytes / 1048576.0);
    return QR_OK;
}

/* ---- open / close ---- */

void qr_model_close(struct qr_model *m)
{
    if (!m)
        return;
    struct model_priv *p = m->priv;
    if (p) {
        for (int i = 0; i < p->n_files; i++) {
            qr_st_free(p->files[i].st);
            if (p->files[i].map)
                munmap(p->files[i].map, p->files[i].size);
            free(p->files[i].name);
        }
        free(p->files);
        free(p->by_name);
        free(p->file_of);
        free(p->st_index);
        free(p->used);
        for (int i = 0; i < p->n_copies; i++)
            free(p->copies[i]);
        free(p->copies);
        free(p);
    }
    free(m->tensors);
    free(m->layers);
    free(m->dir);
    free(m);
}

qr_status qr_model_open(const char *dir, struct qr_model **out)
{
    if (!dir || !out)
        return qr_set_error(QR_E_INVALID_ARG, "qr_model_open: bad arguments");
    struct qr_model *m = calloc(1, sizeof *m);
    struct model_priv *p = calloc(1, sizeof *p);
    cJSON *index = NULL;
    qr_status st = QR_OK;
    if (!m || !p || !(m->dir = strdup(dir))) {
        free(p);
        qr_model_close(m);
        return qr_set_error(QR_E_OOM_HOST, "out of memory");
    }
    m->priv = p;
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        st = qr_set_error(QR_E_NOT_FOUND, "%s: model directory not found", dir);
        goto fail;
    }
    if ((st = qr_config_load(dir, &m->cfg)) != QR_OK || (st = qr_gen_defaults_load(dir, &m->cfg, &m->gen)) != QR_OK)
        goto fail;
    if (m->cfg.arch == QR_ARCH_QWEN3 && m->cfg.attention_bias) {
        st = qr_set_error(QR_E_UNSUPPORTED, "%s/config.json: Qwen3 with attention_bias true (o_proj bias) is not "
                          "supported", dir);
        goto fail;
    }

    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    if (file_exists(path)) {
        if ((st = read_index(dir, path, p, &index)) != QR_OK)
            goto fail;
    } else {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        if (!file_exists(path)) {
            st = qr_set_error(QR_E_NOT_FOUND, "%s: no model.safetensors and no model.safetensors.index.json", dir);
            goto fail;
        }
        if ((st = add_file(p, "model.safetensors")) != QR_OK)
            goto fail;
    }
    int total = 0;
    for (int i = 0; i < p->n_files; i++) {
        if ((st = map_file(dir, &p->files[i])) != QR_OK)
            goto fail;
        int n = qr_st_count(p->files[i].st);
        if (n > (1 << 24) - total) {
            st = qr_set_error(QR_E_FORMAT, "%s: too many tensors", dir);
            goto fail;
        }
        total += n;
    }
    m->tensors = calloc((size_t)total + 1, sizeof *m->tensors);
    p->by_name = calloc((size_t)total + 1, sizeof *p->by_name);
    p->file_of = calloc((size_t)total + 1, sizeof *p->file_of);
    p->st_index = calloc((size_t)total + 1, sizeof *p->st_index);
    p->used = calloc((size_t)total + 1, 1);
    m->layers = calloc((size_t)m->cfg.num_hidden_layers, sizeof *m->layers);
    if (!m->tensors || !p->by_name || !p->file_of || !p->st_index || !p->used || !m->layers) {
        st = qr_set_error(QR_E_OOM_HOST, "out of memory");
        goto fail;
    }
    for (int f = 0; f < p->n_files; f++)
        for (int k = 0; k < qr_st_count(p->files[f].st); k++) {
            m->tensors[m->n_tensors] = *qr_st_tensor(p->files[f].st, k);
            p->file_of[m->n_tensors] = f;
            p->st_index[m->n_tensors] = k;
            p->by_name[m->n_tensors] = m->n_tensors;
            m->n_tensors++;
        }
    t_sort_tensors = m->tensors;
    qsort(p->by_name, (size_t)m->n_tensors, sizeof *p->by_name, cmp_by_name);
    for (int i = 1; i < m->n_tensors; i++) {
        int a = p->by_name[i - 1], b = p->by_name[i];
        if (strcmp(m->tensors[a].name, m->tensors[b].name) == 0) {
            st = qr_set_error(QR_E_FORMAT, "%s: tensor '%s' appears in both %s and %s", dir, m->tensors[a].name,
                              tensor_file(m, a), tensor_file(m, b));
            goto fail;
        }
    }
    if (index && (st = check_index(m, dir, index)) != QR_OK)
        goto fail;
    struct check_ctx c = {.m = m, .dir = dir};
    if ((st = check_tensors(&c)) != QR_OK)
        goto fail;
    if ((st = realign(m)) != QR_OK)
        goto fail;
    cJSON_Delete(index);
    qr_log(QR_LOG_DEBUG, "%s: %d tensors in %d file(s), %zu weight bytes", dir, m->n_tensors, p->n_files,
           m->weight_bytes);
    *out = m;
    return QR_OK;
fail:
    cJSON_Delete(index);
    qr_model_close(m);
    return st;
}
