/* qr_model.h - a Hugging Face model directory on the host: config.json,
 * generation_config.json and the mmapped safetensors weights, validated. */
#ifndef QRUN_QR_MODEL_H
#define QRUN_QR_MODEL_H

#include "qr_types.h"

#ifdef __cplusplus
extern "C" {
#endif

enum qr_arch { QR_ARCH_QWEN2 = 0, QR_ARCH_QWEN3 };

#define QR_MAX_EOS 8

struct qr_model_config {
    enum qr_arch arch;
    int hidden_size;              /* dim */
    int num_hidden_layers;
    int num_attention_heads;
    int num_key_value_heads;
    int head_dim;                 /* explicit, or hidden/heads */
    int intermediate_size;
    int vocab_size;
    int max_position_embeddings;
    double rope_theta;
    double rms_norm_eps;
    bool tie_word_embeddings;
    bool attention_bias;          /* qkv bias (qwen2: always true) */
    bool qk_norm;                 /* qwen3 */
    enum qr_dtype dtype;          /* torch_dtype of the checkpoint */
    /* rope scaling (YaRN); factor 0 when absent */
    double rope_yarn_factor;
    int rope_yarn_orig_max_pos;
    double rope_yarn_beta_fast, rope_yarn_beta_slow;
    int bos_token_id;             /* -1 if none */
    int eos_token_ids[QR_MAX_EOS];
    int n_eos;
};

/* generation_config.json defaults (absent fields keep their neutral values) */
struct qr_gen_defaults {
    float temperature;            /* 1.0 */
    int top_k;                    /* 0 = off */
    float top_p;                  /* 1.0 */
    float min_p;                  /* 0 */
    float repetition_penalty;     /* 1.0 */
    float presence_penalty;       /* 0 */
    float frequency_penalty;      /* 0 */
    bool do_sample;               /* false -> greedy */
    int eos_token_ids[QR_MAX_EOS];
    int n_eos;
};

/* one tensor as found in a safetensors file (data points into the mmap) */
struct qr_tensor_info {
    char *name;
    enum qr_dtype dtype;
    int n_dims;
    int64_t shape[4];
    const void *data;
    size_t nbytes;
};

/* weights of one decoder layer; NULL where absent (bias on qwen3, norms on qwen2) */
struct qr_layer_weights {
    const struct qr_tensor_info *input_layernorm;    /* (dim) */
    const struct qr_tensor_info *q_proj, *k_proj, *v_proj; /* (n_heads*hd, dim), (n_kv*hd, dim) x2 */
    const struct qr_tensor_info *q_bias, *k_bias, *v_bias; /* qwen2 only */
    const struct qr_tensor_info *q_norm, *k_norm;    /* (head_dim), qwen3 only */
    const struct qr_tensor_info *o_proj;             /* (dim, n_heads*hd) */
    const struct qr_tensor_info *post_attention_layernorm; /* (dim) */
    const struct qr_tensor_info *gate_proj, *up_proj;      /* (ffn, dim) */
    const struct qr_tensor_info *down_proj;          /* (dim, ffn) */
};

struct qr_model {
    char *dir;
    struct qr_model_config cfg;
    struct qr_gen_defaults gen;
    const struct qr_tensor_info *embed_tokens;  /* (vocab, dim) */
    const struct qr_tensor_info *norm;          /* (dim) */
    const struct qr_tensor_info *lm_head;       /* (vocab, dim); == embed_tokens when tied */
    struct qr_layer_weights *layers;            /* (num_hidden_layers) */
    struct qr_tensor_info *tensors;             /* every tensor of every shard */
    int n_tensors;
    size_t weight_bytes;                        /* sum of tensor bytes */
    void *priv;                                 /* mmaps, shards */
};

/* progress callback for loading (done, total bytes) */
typedef void (*qr_progress_fn)(size_t done, size_t total, void *user);

/* Parse config.json only (no weights).  Errors name the file and field. */
qr_status qr_config_load(const char *dir, struct qr_model_config *cfg);
qr_status qr_config_parse(const char *json, size_t len, struct qr_model_config *cfg);
qr_status qr_gen_defaults_load(const char *dir, const struct qr_model_config *cfg, struct qr_gen_defaults *gen);

/* Open a model directory: config, generation config, mmap every shard,
 * enforce the safetensors rules and check each tensor against the config. */
qr_status qr_model_open(const char *dir, struct qr_model **out);
void qr_model_close(struct qr_model *m);

/* Safetensors file parsing, exposed for tests and fuzzing. */
struct qr_st_file;
qr_status qr_st_parse(const void *data, size_t size, const char *fname, struct qr_st_file **out);
int qr_st_count(const struct qr_st_file *f);
const struct qr_tensor_info *qr_st_tensor(const struct qr_st_file *f, int i);
void qr_st_free(struct qr_st_file *f);
/* safetensors spelling of tensor i's dtype ("BF16", "I8", ...); tensors of a
 * dtype qrun does not compute with have qr_tensor_info.dtype == QR_DTYPE_COUNT. */
const char *qr_st_dtype_name(const struct qr_st_file *f, int i);

/* A tensor of an open model by its HF name; NULL if absent. */
const struct qr_tensor_info *qr_model_tensor(const struct qr_model *m, const char *name);

#ifdef __cplusplus
}
#endif
#endif
