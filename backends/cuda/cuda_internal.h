/* cuda_internal.h - private to the CUDA backend (the backends/cuda/ .c files). */
#ifndef QRUN_CUDA_INTERNAL_H
#define QRUN_CUDA_INTERNAL_H

#include "qrun/qr_backend.h"
#include "qr_kernels.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

struct cuda_device {
    struct qr_device dev;   /* first: a qr_device * is a cuda_device * */
    int index;
    int cc;                 /* compute capability, e.g. 90 */
    int n_sm;
    bool fused;             /* fused decode kernels, decode attention v2, PDL (backends.ini fused_kernels, default on) */
    bool wg_attn;           /* Hopper prompt attention on wgmma (attn_prefill_wg.cu): sm_90a code present, not disabled */
    int wg_variant;         /* its enum qk_wg_variant (QR_CUDA_ATTN_WG_* A/B switches) */
    /* A/B switches read from the environment at open (README): decode attention on tensor cores
     * (QR_CUDA_DECODE_TC), 16-bit gate_up output at prompt sizes (QR_CUDA_GU16), every prompt-step f32
     * intermediate written (QR_CUDA_KEEP_INTERMEDIATES) */
    bool decode_tc, gu16, qkv16, qkv_fold, keep_intermediates, prefill_vec, attn_lastmerge, attn_early, f8_tma;
    bool gemm_tune;   /* prompt GEMMs on tuned cublasLt algorithms (cuda_gemm_tune.c; gemm_tune = 0 turns off) */
    int tune_algos;   /* heuristic algorithms timed per shape (gemm_tune_algos / QR_CUDA_GEMM_TUNE_ALGOS, default 8) */
    int tune_min_m;   /* the smallest M tuned (gemm_tune_min_m / QR_CUDA_GEMM_TUNE_MIN_M, default 64, >= 2) */
    int tune_splitk_m;   /* buckets of M up to it also time split-K variants (gemm_tune_splitk, 0: off, default) */
    bool tune_log;       /* each tuned shape's times and choice logged (QR_CUDA_GEMM_TUNE_LOG=1) */
    bool tune_cache;     /* choices kept in a file per device (gemm_tune_cache / QR_CUDA_GEMM_TUNE_CACHE: 0 off,
                          * auto (default) $QRUN_CACHE_DIR or ~/.cache/qrun, else a directory: tune_cache_dir) */
    char tune_cache_dir[512];
    bool tune_force_splitk;   /* tests: the fastest split-K variant wherever there is one
                               * (QR_CUDA_GEMM_TUNE_FORCE_SPLITK=1) */
    bool attn_side;   /* a mixed batch's decode attention on a side stream (opt-in: QR_CUDA_ATTN_SIDE=1) */
    int attn_chunk;   /* short prompt chunks on the split-KV chunk kernel (QR_CUDA_ATTN_CHUNK: 0 off, 1 where the
                       * heuristic in cuda_ops.c says so, force: wherever it is supported; on by default) */
    int attn_chunk_v;       /* its version (QR_CUDA_ATTN_CHUNK_V: 0 the first; 1, the default) */
    int attn_chunk_qmax;    /* the longest chunk the heuristic gives it (QR_CUDA_ATTN_CHUNK_QMAX, default 128) */
    /* decode: the o_proj weights pulled into L2 on a low-priority side stream while the q/k-norm and the attention
     * run (l2_prefetch.cu; QR_CUDA_L2PF: 0 off, the default; 1 prefetch lines, 2 loads, 3 bulk prefetch), by
     * QR_CUDA_L2PF_BLOCKS blocks, plus the first QR_CUDA_L2PF_NEXT_MB MiB of the GEMV after o_proj */
    int l2pf_mode, l2pf_blocks;
    size_t l2pf_next_bytes;
    char name[128];
};

struct cuda_graph_entry {
    uint64_t key;
    cudaGraphExec_t exec;   /* NULL: seen once (warm-up ran eagerly), not captured yet */
};

struct cuda_stream {
    struct qr_stream s;     /* first */
    cudaStream_t cs;
    cublasHandle_t blas;
    void *blas_ws;
    void *scratch;          /* op scratch (stream ordered) */
    size_t scratch_n;
    void *counters;         /* ints that kernels leave at zero (the decode attention's split counts) */
    size_t counters_n;
    void **retired;         /* old scratch blocks a recorded graph may still use; freed at destroy */
    int n_retired, cap_retired;
    struct cuda_graph_entry *graphs;
    int n_graphs, cap_graphs;
    struct cuda_gemm_tune *tune;   /* cuda_gemm_tune.c: NULL until the first tuned GEMM */
    cudaStream_t side;             /* a mixed batch's decode attention beside the prompt kernel (cuda_ops.c) */
    cudaEvent_t ev_fork, ev_join;
    cudaStream_t pf;               /* the L2 prefetches of decode weights (lowest priority; cuda_backend.c) */
    cudaEvent_t pf_fork, pf_join;
};

/* the cuBLAS workspace of a stream (cublasLt shares it: both run in stream order) */
#define CUDA_BLAS_WS_BYTES (32u << 20)

/* a prompt GEMM through cublasLt with the algorithm tuned for its shape (cuda_gemm_tune.c, on unless gemm_tune = 0):
 * y (N x M, ldy, yt) = W^T . x (+ y when beta is 1); false: not taken (run cublasGemmEx), *st the status when true */
bool cuda_gemm_tuned(struct qr_stream *s, void *y, cudaDataType_t yt, int ldy, const void *x, int ldx, const void *w,
                     cudaDataType_t wt, int M, int N, int K, float beta, qr_status *st);
void cuda_gemm_tune_free(struct cuda_stream *cs);

static inline struct cuda_device *cuda_dev(struct qr_device *d) { return (struct cuda_device *)d; }
static inline struct cuda_stream *cuda_st(struct qr_stream *s) { return (struct cuda_stream *)s; }

/* Turn a failed CUDA call into a status: logs statement, file, line and device;
 * sticky errors (illegal address, launch failure, ...) mark the device dead. */
qr_status cuda_fail(struct qr_device *d, cudaError_t e, const char *stmt, const char *file, int line);
qr_status cublas_fail(struct qr_device *d, cublasStatus_t e, const char *stmt, const char *file, int line);

#define CUDA_TRY(d, stmt)                                                                                          \
    do {                                                                                                           \
        cudaError_t e_ = (stmt);                                                                                   \
        if (e_ != cudaSuccess)                                                                                     \
            return cuda_fail((d), e_, #stmt, __FILE__, __LINE__);                                                  \
    } while (0)

#define CUBLAS_TRY(d, stmt)                                                                                        \
    do {                                                                                                           \
        cublasStatus_t e_ = (stmt);                                                                                \
        if (e_ != CUBLAS_STATUS_SUCCESS)                                                                           \
            return cublas_fail((d), e_, #stmt, __FILE__, __LINE__);                                                \
    } while (0)

/* launchers return a cudaError_t as int */
#define LAUNCH_TRY(d, call) CUDA_TRY(d, (cudaError_t)(call))

/* entry check of every device call: dead device -> QR_E_DEVICE_LOST; selects the device */
qr_status cuda_enter(struct qr_device *d);

/* stream scratch of at least n bytes (grown, never shrunk while a graph may use it) */
qr_status cuda_scratch(struct qr_stream *s, size_t n, void **out);
/* n zeroed ints of the stream that the kernels using them leave at zero (grown like the scratch) */
qr_status cuda_counters(struct qr_stream *s, size_t n, int **out);

extern const struct qr_ops cuda_ops;

/* cuBLAS on an input already converted to the weight dtype (contiguous rows of K), then the bias pass */
qr_status cuda_gemm_prepared(struct qr_stream *s, float *y, const void *xh, const void *w, enum qr_dtype wtype,
                             const void *bias, enum qr_dtype btype, int M, int N, int K, int ldy, int accumulate);

/* cuBLAS with the output in the weight dtype (BF16/F16; ldy in elements): no bias, no accumulate */
qr_status cuda_gemm_prepared16(struct qr_stream *s, void *yh, const void *xh, const void *w, enum qr_dtype wtype, int M,
                               int N, int K, int ldy);

/* prompt attention whose output goes straight to the o_proj GEMM's 16-bit input (out_h, rows of
 * n_heads * head_dim), and to a->out as well where f32_out; only where cuda_attn_prompt_only() (the prompt
 * kernel runs: a query longer than one token, head_dim 64/128, aligned KV).  In a mixed batch the one-token
 * sequences still go to the decode kernel, which also writes their f32 rows to a->out */
bool cuda_attn_prompt_only(struct qr_stream *s, const struct qr_attn_args *a);
/* the device scratch bytes cuda_attn_prompt_half needs for a mixed batch's decode kernel and the chunk kernel's
 * partials (scr; 0: none); the caller takes them together with out_h (cuda_scratch grows and moves the one stream
 * scratch) */
size_t cuda_attn_prompt_half_scratch(struct qr_stream *s, const struct qr_attn_args *a);
qr_status cuda_attn_prompt_half(struct qr_stream *s, const struct qr_attn_args *a, bool f32_out, void *out_h,
                                enum qr_dtype ht, void *scr);

/* an A/B switch from the environment: dflt where NAME is unset or empty, off for "0", on for anything else */
bool cuda_env_switch(const char *name, bool dflt);
/* an integer option: $env, else backends.ini key, else dflt; a value that is not an integer in [lo, hi] is logged
 * and dflt used */
int cuda_opt_int(const struct qr_backend_opts *opts, const char *env, const char *key, int dflt, int lo, int hi);
/* an auxiliary stream of s and its fork/join events, made at first use outside a capture (cuda_ops.c) */
qr_status cuda_aux_stream(struct qr_stream *s, cudaStream_t *st, cudaEvent_t *fork, cudaEvent_t *join, bool highest,
                          cudaStream_t *out);

/* graph fusions at nodes nd[0..n): the nodes consumed (0: none), or a negative qr_status */
int cuda_fuse_at(struct qr_stream *s, const struct qr_node *nd, int n);

/* one node through the op table (no fusion) */
qr_status cuda_run_node(struct qr_stream *s, const struct qr_node *n);

/* QR_CUDA_PROFILE=1: steps run eagerly with an event between nodes; totals per node kind
 * printed (stderr) when a stream is destroyed */
bool cuda_prof_enabled(void);
qr_status cuda_prof_run(struct qr_stream *s, const struct qr_graph *g, bool fuse);
void cuda_prof_report(void);

#endif
