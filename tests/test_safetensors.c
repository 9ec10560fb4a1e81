/* test_safetensors.c - the safetensors parser and the model loader's checks on
 * bad input: each case must fail with the right status and a message naming
 * the problem (never crash).  Files are built in memory (qr_st_parse) and on
 * disk (qr_model_open over a hand-written tiny model directory).
 * Run under ASan/UBSan: cmake -DQR_SANITIZE=ON ... && ctest -R test_safetensors */
#include "qrun/qr_model.h"
#include "testutil.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_warn[1024];   /* the last warning logged */

static void quiet(enum qr_log_level lvl, const char *msg, void *user)
{
    (void)user;
    if (lvl == QR_LOG_WARN)
        snprintf(g_warn, sizeof g_warn, "%s", msg);
}

static bool has(const char *needle) { return strstr(qr_last_error(), needle) != NULL; }

/* ---- in-memory files ---- */

/* 8-byte LE header size + header + data_size bytes (value i & 0xff) */
static unsigned char *mk(const char *hdr, size_t data_size, uint64_t lie_size, size_t *out_size)
{
    size_t hn = strlen(hdr);
    size_t n = 8 + hn + data_size;
    unsigned char *b = malloc(n ? n : 1);
    uint64_t hv = lie_size ? lie_size : hn;
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(hv >> (8 * i));
    memcpy(b + 8, hdr, hn);
    for (size_t i = 0; i < data_size; i++)
        b[8 + hn + i] = (unsigned char)i;
    *out_size = n;
    return b;
}

static qr_status parse_case(const char *hdr, size_t data_size, uint64_t lie, size_t truncate_to,
                            struct qr_st_file **out)
{
    size_t n;
    unsigned char *b = mk(hdr, data_size, lie, &n);
    if (truncate_to && truncate_to < n)
        n = truncate_to;
    /* copy into an exact-size buffer so ASan sees any read past the end */
    unsigned char *exact = malloc(n ? n : 1);
    memcpy(exact, b, n);
    free(b);
    struct qr_st_file *f = NULL;
    qr_status st = qr_st_parse(exact, n, "t.safetensors", &f);
    if (out)
        *out = f;              /* metadata only: the data pointers dangle once exact is freed */
    else
        qr_st_free(f);
    free(exact);
    return st;
}

#define BAD(hdr, size, lie, trunc, needle)                                                        \
    do {                                                                                          \
        qr_status st_ = parse_case(hdr, size, lie, trunc, NULL);                                  \
        CHECKF(st_ == QR_E_FORMAT || st_ == QR_E_UNSUPPORTED, "status %d for %s", st_, hdr);       \
        CHECKF(has(needle), "message '%s' lacks '%s'", qr_last_error(), needle);                  \
    } while (0)

static void test_parse_ok(void)
{
    const char *hdr = "{\"__metadata__\":{\"format\":\"pt\"},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[4,28]},"
                      "\"a\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]},"
                      "\"s\":{\"dtype\":\"F16\",\"shape\":[],\"data_offsets\":[28,30]},"
                      "\"e\":{\"dtype\":\"I8\",\"shape\":[0,5],\"data_offsets\":[30,30]},"
                      "\"\xc3\xa9\xe4\xb8\x96\xf0\x9f\x98\x80\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[30,30]}}   ";
    size_t n;
    unsigned char *b = mk(hdr, 30, 0, &n);
    struct qr_st_file *f = NULL;
    CHECK(qr_st_parse(b, n, "ok.safetensors", &f) == QR_OK);
    CHECK(qr_st_count(f) == 5);
    int seen = 0;
    for (int i = 0; i < qr_st_count(f); i++) {
        const struct qr_tensor_info *t = qr_st_tensor(f, i);
        const unsigned char *data = b + 8 + strlen(hdr);
        if (strcmp(t->name, "b") == 0) {
            seen++;
            CHECK(t->dtype == QR_DTYPE_F32 && t->n_dims == 2 && t->shape[0] == 2 && t->shape[1] == 3);
            CHECK(t->nbytes == 24 && (const unsigned char *)t->data == data + 4);
            CHECK(((const unsigned char *)t->data)[0] == 4);
        } else if (strcmp(t->name, "a") == 0) {
            seen++;
            CHECK(t->dtype == QR_DTYPE_BF16 && t->n_dims == 1 && t->nbytes == 4 && t->data == data);
        } else if (strcmp(t->name, "s") == 0) {
            seen++;
            CHECK(t->dtype == QR_DTYPE_F16 && t->n_dims == 0 && t->nbytes == 2);
        } else if (strcmp(t->name, "e") == 0) {
            seen++;
            CHECK(t->dtype == QR_DTYPE_COUNT && t->nbytes == 0 && strcmp(qr_st_dtype_name(f, i), "I8") == 0);
        }
    }
    CHECK(seen == 4);
    CHECK(qr_st_tensor(f, 5) == NULL && qr_st_tensor(f, -1) == NULL);
    qr_st_free(f);
    free(b);
    /* empty header object with no data is a valid (empty) file */
    CHECK(parse_case("{}", 0, 0, 0, NULL) == QR_OK);
}

static void test_parse_bad(void)
{
    const char *one = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    /* truncated files */
    BAD(one, 8, 0, 5, "too short");
    BAD(one, 8, 0, 20, "runs past the end of the file");
    BAD(one, 8, 0, 8 + strlen(one) + 4, "run past the end of the file");
    /* header size lying */
    BAD(one, 8, 1000, 0, "runs past the end");
    BAD(one, 8, 200000000ull, 0, "100,000,000");
    BAD(one, 8, UINT64_MAX, 0, "100,000,000");
    /* not JSON / not an object / bad structure */
    BAD("[1,2]", 0, 0, 0, "begin with '{'");
    BAD("{\"a\":", 0, 0, 0, "not valid JSON");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}} xx", 8, 0, 0, "after the JSON");
    BAD("{\"a\":3}", 0, 0, 0, "not a JSON object");
    BAD("{\"\xff\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0, 0, "not valid UTF-8 (byte 2)");
    BAD("{\"\xed\xa0\x80\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0, 0, "UTF-8");
    BAD("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0, 0, "\"dtype\"");
    BAD("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, 0, 0, "\"shape\"");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, 0, 0, "data_offsets");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, 0, 0, "data_offsets");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, 0, 0, "shape[0]");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, 0, 0, "shape[0]");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-1,8]}}", 8, 0, 0, "data_offsets");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, 0, 0, "end before");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,2],\"data_offsets\":[0,8]}}", 8, 0, 0, "rank 5");
    /* unknown dtype */
    BAD("{\"a\":{\"dtype\":\"Q4_K\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0, 0, "unknown dtype \"Q4_K\"");
    /* duplicate keys */
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
        8, 0, 0, "duplicate tensor 'a'");
    BAD("{\"__metadata__\":{},\"__metadata__\":{}}", 0, 0, 0, "duplicate key \"__metadata__\"");
    /* metadata values must be strings */
    BAD("{\"__metadata__\":{\"format\":1}}", 0, 0, 0, "not a string");
    BAD("{\"__metadata__\":[]}", 0, 0, 0, "__metadata__");
    /* gaps, overlaps, END past the file, trailing bytes */
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
        12, 0, 0, "gap");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, 0, 0, "gap");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
        12, 0, 0, "overlap");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, 0, 0, "run past the end");
    BAD(one, 12, 0, 0, "trailing bytes");
    /* overflowing shapes and shape/bytes mismatch */
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776],\"data_offsets\":[0,8]}}", 8, 0, 0,
        "overflows");
    BAD("{\"a\":{\"dtype\":\"BF16\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8, 0, 0,
        "overflows");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,8]}}", 8, 0, 0, "shape[0]");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, 0, 0, "needs 12 bytes");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,9007199254740993]}}", 8, 0, 0,
        "data_offsets");
    /* the file name is in every message */
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, 0, 0, "t.safetensors");
    /* NULL data with size 0 */
    struct qr_st_file *f = NULL;
    CHECK(qr_st_parse(NULL, 0, "x", &f) == QR_E_FORMAT && f == NULL);
    CHECK(qr_st_parse(NULL, 5, "x", &f) == QR_E_INVALID_ARG);
}

/* ---- config.json ---- */

/* the base config (qwen3, 1 layer, hidden 8, heads 2x4, kv 1, ffn 16, vocab 32, tied); fields named in
 * EXTRA (",\"key\":value...") replace the base ones, so no key appears twice */
static const char *const k_cfg_base[][2] = {
    {"architectures", "[\"Qwen3ForCausalLM\"]"}, {"hidden_size", "8"}, {"num_hidden_layers", "1"},
    {"num_attention_heads", "2"}, {"num_key_value_heads", "1"}, {"head_dim", "4"}, {"intermediate_size", "16"},
    {"vocab_size", "32"}, {"max_position_embeddings", "128"}, {"rope_theta", "10000.0"}, {"rms_norm_eps", "1e-6"},
    {"tie_word_embeddings", "true"}, {"torch_dtype", "\"bfloat16\""}, {"bos_token_id", "30"}, {"eos_token_id", "31"},
};

static void make_cfg(const char *extra, char *buf, size_t cap)
{
    size_t k = (size_t)snprintf(buf, cap, "{");
    int first = 1;
    for (size_t i = 0; i < sizeof k_cfg_base / sizeof k_cfg_base[0]; i++) {
        char key[80];
        snprintf(key, sizeof key, "\"%s\"", k_cfg_base[i][0]);
        if (strstr(extra, key))
            continue;
        k += (size_t)snprintf(buf + k, cap - k, "%s%s:%s", first ? "" : ",", key, k_cfg_base[i][1]);
        first = 0;
    }
    snprintf(buf + k, cap - k, "%s}", extra);
}

static qr_status cfg_case(const char *extra, struct qr_model_config *c)
{
    char buf[4096];
    make_cfg(extra, buf, sizeof buf);
    return qr_config_parse(buf, strlen(buf), c);
}

static qr_status cfg_raw(const char *json, struct qr_model_config *c) { return qr_config_parse(json, strlen(json), c); }

static void test_config(void)
{
    struct qr_model_config c;
    CHECK(cfg_case("", &c) == QR_OK);
    CHECK(c.arch == QR_ARCH_QWEN3 && c.qk_norm && !c.attention_bias && c.hidden_size == 8 && c.head_dim == 4);
    CHECK(c.tie_word_embeddings && c.dtype == QR_DTYPE_BF16 && c.bos_token_id == 30 && c.n_eos == 1 &&
          c.eos_token_ids[0] == 31 && c.rope_yarn_factor == 0 && c.rope_theta == 10000.0);
    /* qwen2: bias on, no qk norm, head_dim from hidden/heads, eos list */
    CHECK(cfg_raw("{\"model_type\":\"qwen2\",\"hidden_size\":12,\"num_hidden_layers\":2,\"num_attention_heads\":3,"
                  "\"intermediate_size\":5,\"vocab_size\":40,\"eos_token_id\":[1,2,1],\"bos_token_id\":null}",
                  &c) == QR_OK);
    CHECK(c.arch == QR_ARCH_QWEN2 && c.attention_bias && !c.qk_norm && c.head_dim == 4 && c.num_key_value_heads == 3);
    CHECK(c.n_eos == 2 && c.eos_token_ids[0] == 1 && c.eos_token_ids[1] == 2 && c.bos_token_id == -1);
    CHECK(!c.tie_word_embeddings && c.rms_norm_eps == 1e-6 && c.max_position_embeddings == 32768);
    /* yarn */
    CHECK(cfg_case(",\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":4.0,\"original_max_position_embeddings\":32}",
                   &c) == QR_OK);
    CHECK(c.rope_yarn_factor == 4.0 && c.rope_yarn_orig_max_pos == 32 && c.rope_yarn_beta_fast == 32.0 &&
          c.rope_yarn_beta_slow == 1.0);
    CHECK(cfg_case(",\"rope_scaling\":{\"type\":\"yarn\",\"factor\":2.0,\"beta_fast\":16}", &c) == QR_OK);
    CHECK(c.rope_yarn_factor == 2.0 && c.rope_yarn_orig_max_pos == 128 && c.rope_yarn_beta_fast == 16.0);
    CHECK(cfg_case(",\"rope_scaling\":null", &c) == QR_OK && c.rope_yarn_factor == 0);
    /* bad configs: each names the field */
    struct {
        const char *json;
        const char *needle;
    } bad[] = {
        {"", "not valid JSON"},
        {"{\"hidden_size\":8", "not valid JSON"},
        {"[]", "not a JSON object"},
        {"{\"architectures\":[\"LlamaForCausalLM\"]}", "LlamaForCausalLM"},
        {"{\"hidden_size\":8}", "model_type"},
        {"{\"model_type\":\"qwen3\"}", "\"hidden_size\" is missing"},
        {"{\"model_type\":\"qwen3\",\"hidden_size\":\"8\"}", "\"hidden_size\" must be an integer"},
        {"{\"model_type\":\"qwen3\",\"hidden_size\":-8}", "\"hidden_size\" is -8"},
        {"{\"model_type\":\"qwen3\",\"hidden_size\":8.5}", "\"hidden_size\""},
        {"{\"model_type\":\"qwen3\",\"hidden_size\":8,\"num_hidden_layers\":1,\"num_attention_heads\":3,"
         "\"intermediate_size\":4,\"vocab_size\":4}",
         "not a multiple of num_attention_heads"},
        {"{\"model_type\":\"qwen3\",\"hidden_size\":8,\"num_hidden_layers\":1,\"num_attention_heads\":4,"
         "\"num_key_value_heads\":3,\"intermediate_size\":4,\"vocab_size\":4}",
         "num_key_value_heads"},
        {"{\"model_type\":\"qwen3\",\"hidden_size\":8,\"num_hidden_layers\":1,\"num_attention_heads\":2,"
         "\"intermediate_size\":4}",
         "\"vocab_size\" is missing"},
        {"{\"model_type\":\"qwen3\",\"hidden_size\":9,\"num_hidden_layers\":1,\"num_attention_heads\":3,"
         "\"intermediate_size\":4,\"vocab_size\":4}",
         "odd"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        qr_status st = cfg_raw(bad[i].json, &c);
        CHECKF(st == QR_E_FORMAT || st == QR_E_UNSUPPORTED, "config case %zu accepted", i);
        CHECKF(has(bad[i].needle), "config case %zu: '%s' lacks '%s'", i, qr_last_error(), bad[i].needle);
        CHECKF(has("config.json"), "config case %zu: '%s' lacks the file name", i, qr_last_error());
    }
    const char *bad_extra[][2] = {
        {",\"rope_scaling\":{\"rope_type\":\"linear\",\"factor\":2}", "linear"},
        {",\"rope_scaling\":{\"rope_type\":\"yarn\"}", "factor"},
        {",\"rope_scaling\":7", "rope_scaling"},
        {",\"use_sliding_window\":true", "use_sliding_window"},
        {",\"hidden_act\":\"gelu\"", "hidden_act"},
        {",\"torch_dtype\":\"int8\"", "int8"},
        {",\"tie_word_embeddings\":1", "tie_word_embeddings"},
        {",\"rms_norm_eps\":\"x\"", "rms_norm_eps"},
    };
    for (size_t i = 0; i < sizeof bad_extra / sizeof bad_extra[0]; i++) {
        qr_status st = cfg_case(bad_extra[i][0], &c);
        CHECKF(st == QR_E_FORMAT || st == QR_E_UNSUPPORTED, "config extra case %zu accepted", i);
        CHECKF(has(bad_extra[i][1]), "config extra %zu: '%s' lacks '%s'", i, qr_last_error(), bad_extra[i][1]);
    }
    /* eos out of the vocabulary; duplicate keys */
    CHECK(cfg_case(",\"eos_token_id\":99", &c) == QR_E_FORMAT && has("eos_token_id 99"));
    CHECK(cfg_raw("{\"model_type\":\"qwen3\",\"model_type\":\"qwen2\"}", &c) == QR_E_FORMAT && has("twice"));
}

/* ---- a hand-written tiny model on disk ---- */

struct tdesc {
    char name[96];
    const char *dtype;
    int nd;
    long d0, d1;
};

static struct tdesc g_td[64];
static int g_ntd;

static void td_add(const char *name, const char *dt, int nd, long d0, long d1)
{
    struct tdesc *t = &g_td[g_ntd++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = dt;
    t->nd = nd;
    t->d0 = d0;
    t->d1 = d1;
}

/* the tensors of k_cfg_base (qwen3, 1 layer, hidden 8, heads 2x4, kv 1, ffn 16, vocab 32, tied) */
static void td_qwen3(void)
{
    g_ntd = 0;
    td_add("model.embed_tokens.weight", "BF16", 2, 32, 8);
    td_add("model.norm.weight", "F32", 1, 8, 0);
    td_add("model.layers.0.input_layernorm.weight", "F32", 1, 8, 0);
    td_add("model.layers.0.self_attn.q_proj.weight", "BF16", 2, 8, 8);
    td_add("model.layers.0.self_attn.k_proj.weight", "BF16", 2, 4, 8);
    td_add("model.layers.0.self_attn.v_proj.weight", "F16", 2, 4, 8);
    td_add("model.layers.0.self_attn.o_proj.weight", "BF16", 2, 8, 8);
    td_add("model.layers.0.self_attn.q_norm.weight", "BF16", 1, 4, 0);
    td_add("model.layers.0.self_attn.k_norm.weight", "BF16", 1, 4, 0);
    td_add("model.layers.0.post_attention_layernorm.weight", "BF16", 1, 8, 0);
    td_add("model.layers.0.mlp.gate_proj.weight", "F32", 2, 16, 8);
    td_add("model.layers.0.mlp.up_proj.weight", "BF16", 2, 16, 8);
    td_add("model.layers.0.mlp.down_proj.weight", "BF16", 2, 8, 16);
}

static struct tdesc *td_find(const char *name)
{
    for (int i = 0; i < g_ntd; i++)
        if (strcmp(g_td[i].name, name) == 0)
            return &g_td[i];
    return NULL;
}

static void td_remove(const char *name)
{
    struct tdesc *t = td_find(name);
    if (t)
        *t = g_td[--g_ntd];
}

static size_t dt_size(const char *dt)
{
    return strcmp(dt, "F32") == 0 || strcmp(dt, "I32") == 0 ? 4 : strcmp(dt, "F64") == 0 ? 8 : 2;
}

/* writes tensors [from, to) of g_td into path */
static void write_st(const char *path, int from, int to)
{
    char hdr[16384];
    size_t k = (size_t)snprintf(hdr, sizeof hdr, "{");
    size_t off = 0;
    for (int i = from; i < to; i++) {
        struct tdesc *t = &g_td[i];
        size_t nb = (size_t)t->d0 * (size_t)(t->nd > 1 ? t->d1 : 1) * dt_size(t->dtype);
        if (t->nd == 2)
            k += (size_t)snprintf(hdr + k, sizeof hdr - k, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%ld,%ld],"
                                  "\"data_offsets\":[%zu,%zu]}", i > from ? "," : "", t->name, t->dtype, t->d0, t->d1,
                                  off, off + nb);
        else
            k += (size_t)snprintf(hdr + k, sizeof hdr - k, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%ld],"
                                  "\"data_offsets\":[%zu,%zu]}", i > from ? "," : "", t->name, t->dtype, t->d0, off,
                                  off + nb);
        off += nb;
    }
    k += (size_t)snprintf(hdr + k, sizeof hdr - k, "}");
    FILE *f = fopen(path, "wb");
    uint64_t hn = k;
    fwrite(&hn, 8, 1, f);   /* little-endian host */
    fwrite(hdr, 1, k, f);
    for (size_t i = 0; i < off; i++)
        fputc(0x3f, f);
    fclose(f);
}

static char g_dir[256];

static void write_file(const char *name, const char *text)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", g_dir, name);
    FILE *f = fopen(p, "wb");
    fputs(text, f);
    fclose(f);
}

static void clean_dir(void)
{
    static const char *const names[] = {"config.json", "generation_config.json", "model.safetensors",
                                        "model.safetensors.index.json", "model-00001-of-00002.safetensors",
                                        "model-00002-of-00002.safetensors"};
    char p[512];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", g_dir, names[i]);
        unlink(p);
    }
}

/* config with an optional extra field; the current g_td as model.safetensors */
static qr_status open_case(const char *cfg_extra, struct qr_model **out)
{
    clean_dir();
    char cfg[4096];
    make_cfg(cfg_extra, cfg, sizeof cfg);
    write_file("config.json", cfg);
    char p[512];
    snprintf(p, sizeof p, "%s/model.safetensors", g_dir);
    write_st(p, 0, g_ntd);
    struct qr_model *m = NULL;
    qr_status st = qr_model_open(g_dir, &m);
    if (out)
        *out = m;
    else
        qr_model_close(m);
    return st;
}

#define OPEN_BAD(extra, ...)                                                                      \
    do {                                                                                          \
        qr_status st_ = open_case(extra, NULL);                                                   \
        CHECKF(st_ != QR_OK, "accepted a bad model at line %d", __LINE__);                        \
        const char *needles_[] = {__VA_ARGS__};                                                   \
        for (size_t i_ = 0; i_ < sizeof needles_ / sizeof needles_[0]; i_++)                      \
            CHECKF(has(needles_[i_]), "'%s' lacks '%s'", qr_last_error(), needles_[i_]);          \
    } while (0)

static void test_model_checks(void)
{
    struct qr_model *m = NULL;
    td_qwen3();
    g_warn[0] = 0;
    CHECK(open_case("", &m) == QR_OK);
    CHECKF(strstr(g_warn, "not aligned") != NULL, "no realign warning: '%s'", g_warn);
    if (m) {
        CHECK(m->n_tensors == 13 && m->lm_head == m->embed_tokens && m->layers[0].q_norm && !m->layers[0].q_bias);
        CHECK(m->layers[0].v_proj->dtype == QR_DTYPE_F16 && m->norm->dtype == QR_DTYPE_F32);
        CHECK(m->gen.temperature == 1.0f && m->gen.n_eos == 1 && m->gen.eos_token_ids[0] == 31);
        CHECK(qr_model_tensor(m, "model.layers.0.mlp.up_proj.weight") == m->layers[0].up_proj);
        CHECK(qr_model_tensor(m, "nope") == NULL);
        CHECK(((const unsigned char *)m->layers[0].up_proj->data)[0] == 0x3f);
        /* the hand-written header is not padded: misaligned tensors are copied to aligned memory */
        CHECK((uintptr_t)m->layers[0].gate_proj->data % 4 == 0 && (uintptr_t)m->norm->data % 4 == 0);
        CHECK((uintptr_t)m->embed_tokens->data % 2 == 0 && (uintptr_t)m->layers[0].v_proj->data % 2 == 0);
        CHECK(((const unsigned char *)m->layers[0].gate_proj->data)[127] == 0x3f);
        size_t want = 32 * 8 * 2 + 8 * 4 + 8 * 4 + 64 * 2 + 32 * 2 + 32 * 2 + 64 * 2 + 4 * 2 + 4 * 2 + 8 * 2 +
                      128 * 4 + 128 * 2 + 128 * 2;
        CHECKF(m->weight_bytes == want, "weight_bytes %zu, want %zu", m->weight_bytes, want);
    }
    qr_model_close(m);
    /* extra rotary buffer is allowed; a tied model may carry lm_head.weight (ignored) */
    td_add("model.layers.0.self_attn.rotary_emb.inv_freq", "F32", 1, 2, 0);
    td_add("lm_head.weight", "BF16", 2, 32, 8);
    CHECK(open_case("", &m) == QR_OK);
    if (m)
        CHECK(m->lm_head == m->embed_tokens && m->n_tensors == 15);
    qr_model_close(m);

    /* missing tensor */
    td_qwen3();
    td_remove("model.layers.0.self_attn.k_norm.weight");
    OPEN_BAD("", "model.layers.0.self_attn.k_norm.weight", "missing", "[4]");
    /* extra tensor */
    td_qwen3();
    td_add("model.layers.1.mlp.up_proj.weight", "BF16", 2, 16, 8);
    OPEN_BAD("", "unexpected tensor 'model.layers.1.mlp.up_proj.weight'", "model.safetensors");
    /* wrong dtype vs what the model needs */
    td_qwen3();
    td_find("model.layers.0.mlp.down_proj.weight")->dtype = "I32";
    OPEN_BAD("", "model.layers.0.mlp.down_proj.weight", "got I32", "model.safetensors");
    td_qwen3();
    td_find("model.norm.weight")->dtype = "F64";
    OPEN_BAD("", "model.norm.weight", "got F64");
    /* wrong shape vs config */
    td_qwen3();
    td_find("model.layers.0.self_attn.q_proj.weight")->d0 = 12;
    OPEN_BAD("", "model.layers.0.self_attn.q_proj.weight", "expected shape [8, 8], got [12, 8]");
    td_qwen3();
    td_find("model.layers.0.self_attn.o_proj.weight")->nd = 1;
    OPEN_BAD("", "o_proj", "expected shape [8, 8], got [8]");
    /* config disagrees: more layers; untied needs lm_head; qwen2 needs biases */
    td_qwen3();
    OPEN_BAD(",\"num_hidden_layers\":2", "model.layers.1.input_layernorm.weight", "missing");
    OPEN_BAD(",\"tie_word_embeddings\":false", "lm_head.weight", "missing", "[32, 8]");
    OPEN_BAD(",\"architectures\":[\"Qwen2ForCausalLM\"]", "q_proj.bias", "missing");
    OPEN_BAD(",\"attention_bias\":true", "attention_bias");
    OPEN_BAD(",\"intermediate_size\":8", "gate_proj", "expected shape [8, 8], got [16, 8]");
    /* malformed / missing config */
    OPEN_BAD(",\"vocab_size\":\"32\"", "config.json", "vocab_size");
    clean_dir();
    struct qr_model *m2 = NULL;
    CHECK(qr_model_open(g_dir, &m2) == QR_E_NOT_FOUND && m2 == NULL && has("config.json"));
    write_file("config.json", "{\"model_type\":");
    CHECK(qr_model_open(g_dir, &m2) == QR_E_FORMAT && has("config.json") && has("not valid JSON"));
    CHECK(qr_model_open("/nonexistent/qrun-model", &m2) == QR_E_NOT_FOUND && has("/nonexistent/qrun-model"));
    /* no weights at all */
    char cfg[4096];
    make_cfg("", cfg, sizeof cfg);
    write_file("config.json", cfg);
    CHECK(qr_model_open(g_dir, &m2) == QR_E_NOT_FOUND && has("model.safetensors"));
    /* malformed generation_config.json */
    td_qwen3();
    write_file("generation_config.json", "{\"temperature\": \"hot\"}");
    char p[512];
    snprintf(p, sizeof p, "%s/model.safetensors", g_dir);
    write_st(p, 0, g_ntd);
    CHECK(qr_model_open(g_dir, &m2) == QR_E_FORMAT && has("generation_config.json") && has("temperature"));
    write_file("generation_config.json", "{\"temperature\":0.5,\"top_k\":7,\"eos_token_id\":[3,4],\"do_sample\":true}");
    CHECK(qr_model_open(g_dir, &m2) == QR_OK);
    if (m2)
        CHECK(m2->gen.temperature == 0.5f && m2->gen.top_k == 7 && m2->gen.n_eos == 2 && m2->gen.do_sample &&
              m2->gen.top_p == 1.0f);
    qr_model_close(m2);
    m2 = NULL;
    /* corrupt safetensors inside a model dir: the message names the file */
    FILE *f = fopen(p, "r+b");
    fseek(f, 8, SEEK_SET);
    fputc('[', f);
    fclose(f);
    CHECK(qr_model_open(g_dir, &m2) == QR_E_FORMAT && has("model.safetensors") && has("'{'"));
    CHECK(truncate(p, 100) == 0);
    CHECK(qr_model_open(g_dir, &m2) == QR_E_FORMAT && has("model.safetensors"));
    CHECK(truncate(p, 0) == 0);
    CHECK(qr_model_open(g_dir, &m2) == QR_E_FORMAT && has("empty"));
    CHECK(m2 == NULL);
}

static void test_shards(void)
{
    td_qwen3();
    clean_dir();
    char cfg[4096], p[512];
    make_cfg("", cfg, sizeof cfg);
    write_file("config.json", cfg);
    snprintf(p, sizeof p, "%s/model-00001-of-00002.safetensors", g_dir);
    write_st(p, 0, 6);
    snprintf(p, sizeof p, "%s/model-00002-of-00002.safetensors", g_dir);
    write_st(p, 6, g_ntd);
    char idx[8192];
    size_t k = (size_t)snprintf(idx, sizeof idx, "{\"metadata\":{\"total_size\":1},\"weight_map\":{");
    for (int i = 0; i < g_ntd; i++)
        k += (size_t)snprintf(idx + k, sizeof idx - k, "%s\"%s\":\"model-0000%d-of-00002.safetensors\"", i ? "," : "",
                              g_td[i].name, i < 6 ? 1 : 2);
    snprintf(idx + k, sizeof idx - k, "}}");
    write_file("model.safetensors.index.json", idx);
    struct qr_model *m = NULL;
    CHECK(qr_model_open(g_dir, &m) == QR_OK);
    if (m)
        CHECK(m->n_tensors == 13 && m->layers[0].down_proj != NULL);
    qr_model_close(m);
    m = NULL;
    /* index points at a missing shard */
    char *q = strstr(idx, "model-00002-of-00002");
    memcpy(q, "model-00002-of-00003", 20);
    write_file("model.safetensors.index.json", idx);
    CHECK(qr_model_open(g_dir, &m) == QR_E_NOT_FOUND && has("model-00002-of-00003.safetensors"));
    /* index maps a tensor to the wrong shard */
    memcpy(q, "model-00001-of-00002", 20);
    write_file("model.safetensors.index.json", idx);
    CHECK(qr_model_open(g_dir, &m) == QR_E_FORMAT && has("mapped to model-00001-of-00002.safetensors"));
    /* shard file name escaping the directory */
    memcpy(q, "../../../etc/passwd.", 20);
    write_file("model.safetensors.index.json", idx);
    CHECK(qr_model_open(g_dir, &m) == QR_E_FORMAT && has("not a .safetensors file name"));
    /* an empty index */
    write_file("model.safetensors.index.json", "{\"weight_map\":{}}");
    CHECK(qr_model_open(g_dir, &m) == QR_E_FORMAT && has("weight_map"));
    /* a tensor in both shards */
    snprintf(p, sizeof p, "%s/model-00002-of-00002.safetensors", g_dir);
    write_st(p, 5, g_ntd);
    k = (size_t)snprintf(idx, sizeof idx, "{\"weight_map\":{");
    for (int i = 0; i < g_ntd; i++)
        k += (size_t)snprintf(idx + k, sizeof idx - k, "%s\"%s\":\"model-0000%d-of-00002.safetensors\"", i ? "," : "",
                              g_td[i].name, i < 6 ? 1 : 2);
    snprintf(idx + k, sizeof idx - k, "}}");
    write_file("model.safetensors.index.json", idx);
    CHECK(qr_model_open(g_dir, &m) == QR_E_FORMAT && has("appears in both"));
    CHECK(m == NULL);
}

int main(void)
{
    qr_log_set_callback(quiet, NULL);
    snprintf(g_dir, sizeof g_dir, "/tmp/qrun-test-st-%d", (int)getpid());
    mkdir(g_dir, 0755);
    test_parse_ok();
    test_parse_bad();
    test_config();
    test_model_checks();
    test_shards();
    clean_dir();
    rmdir(g_dir);
    return qt_summary("test_safetensors");
}
