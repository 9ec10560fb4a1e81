/* cuda_gemm_tune.c - the prompt GEMMs through cublasLt with the fastest algorithm its heuristic offers for the
 * shape (on by default; backends.ini [backend.cuda] gemm_tune = 0 or QR_CUDA_GEMM_TUNE=0 turn it off).
 *
 * Why: `cuda_kernel_lab --gemm-tune` on the H100 (random data, twelfth session) found cublasLt algorithms 2-7 %
 * faster than cublasGemmEx's default for the qkv, o_proj and down shapes at M = 8192 and 512 (for gate_up the
 * default was the best); end to end TTFT(8192) went 143.3 / 142.4 -> 140.8 / 140.7 ms (thirteenth session).  How:
 * a shape (N, K, row strides, types, accumulate or not) and a power-of-two bucket of M (M rounded down, so a prompt
 * of 8192 tokens and one with a few decodes beside it share one) is tuned once, the first time it runs outside a
 * graph capture: cublasGemmEx's default and up to TUNE_ALGOS (gemm_tune_algos) heuristic algorithms run on the real
 * inputs into a scratch output (an accumulating GEMM cannot be timed in place), each timed over three runs after one; the fastest
 * algorithm is kept where it beats the default by 2 %.  Later calls of the bucket run it when cublasLt accepts it
 * for their M; anything else (tuning off, a capture before tuning, no memory for the scratch output, an algorithm
 * refused) falls back to cublasGemmEx.  The choice is timed: two processes may pick different algorithms, whose
 * results agree within rounding but not always bit for bit.
 *
 * Batch sizes of serving and offline decoding (twenty-eighth session; opt-in until measured on a GPU):
 * gemm_tune_min_m / QR_CUDA_GEMM_TUNE_MIN_M (default 64) is the smallest M tuned (down to 2: M = 1 runs the GEMV
 * kernels), and gemm_tune_splitk / QR_CUDA_GEMM_TUNE_SPLITK = S (default 0, off) adds, for buckets of M <= S,
 * TUNE_ALGOS_EXT heuristic algorithms and their split-K variants (cuda_lt_algos.c) to the candidates of outputs up
 * to TUNE_EXT_MAX_N wide (not the LM head: its tiles cover the SMs, and its runs would make the tuning long),
 * timed over ten runs after one with the L2 cache flushed before each (at these sizes a GEMM is bound by its weight
 * bytes, which the engine's step never finds in L2).  QR_CUDA_GEMM_TUNE_LOG=1 logs each tuned shape's times and
 * choice.  Tuning runs inline at a bucket's first eager step (~0.1 s a shape with split-K variants, estimated), so
 * a server pays it on its first batches of each size -- once per machine: every choice goes to a cache file per
 * device (core/tune_cache.c; gemm_tune_cache / QR_CUDA_GEMM_TUNE_CACHE = 0 off, auto (default) under
 * $QRUN_CACHE_DIR, $XDG_CACHE_HOME/qrun or ~/.cache/qrun, or a directory), which later processes read instead of
 * timing again, so they also run the same algorithms (the same bits).  The file is keyed by the GPU, cublasLt's
 * version and TUNE_VERSION; a cached algorithm still goes through cublasLtMatmulAlgoCheck before every new M. */
#include "cuda_internal.h"
#include "cuda_lt_algos.h"

#include "qrun/qr_tune_cache.h"

#include <cublasLt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TUNE_MAX 96     /* shapes x M buckets per stream */
#define TUNE_ALGOS 8       /* heuristic candidates timed (gemm_tune_algos / QR_CUDA_GEMM_TUNE_ALGOS: up to 32) */
#define TUNE_ALGOS_EXT 16  /* ... at least, where split-K variants join them (M <= gemm_tune_splitk) */
#define TUNE_ALGOS_MAX 32
#define TUNE_CANDS 96      /* candidates timed at most: heuristic algorithms + their split-K variants */
#define TUNE_REPS_EXT 10   /* timed runs of each candidate where split-K variants join */
#define TUNE_EXT_MAX_N 32768   /* ... and only for outputs up to this wide (the LM head has blocks for every SM) */

struct tune_entry {
    int n, k, ldx, ldy, mb;
    cudaDataType_t wt, yt;
    bool acc, use_lt;
    cublasLtMatmulAlgo_t algo;
    int ok_m;   /* the last M cublasLt accepted the algorithm for (0: none yet) */
};

/* the persistent cache of choices (qr_tune_cache.h): records keyed (N, K, ldx, ldy, M bucket, wt, yt, accumulate,
 * split-K candidates or not, heuristic algorithms asked for) holding (use_lt, the algorithm's 8 words); bump TUNE_VERSION when the candidates or
 * the timing change, so that older choices are not reused */
#define TUNE_VERSION 2
#define TUNE_CACHE_MAX 1024
#define TC_NKEY 10
#define TC_NVAL 9

struct cuda_gemm_tune {
    cublasLtHandle_t lt;
    struct tune_entry e[TUNE_MAX];
    int n;
    bool broken;   /* cublasLtCreate failed or the table is full: the default from then on */
    struct qr_tc_rec *cache;   /* the cache file's records (NULL: no cache) */
    int n_cache;
    bool cache_write;          /* new choices are appended to cache_path */
    char cache_path[4096], device[QR_TC_DEVICE_MAX + 1];
};

/* the largest power of two times min_m <= m (m >= min_m) */
static int m_bucket(int m, int min_m)
{
    int b = min_m;
    while (b <= m / 2)
        b <<= 1;
    return b;
}

void cuda_gemm_tune_free(struct cuda_stream *cs)
{
    if (cs->tune) {
        if (cs->tune->lt)
            cublasLtDestroy(cs->tune->lt);
        free(cs->tune->cache);
        free(cs->tune);
        cs->tune = NULL;
    }
}

/* the matmul and layout descriptors of y (N x M, ldy) = W^T (K x N, ld K) . x (K x M, ldx); false on failure */
struct lt_call {
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, lc;
};
static void lt_call_free(struct lt_call *c)
{
    if (c->lc)
        cublasLtMatrixLayoutDestroy(c->lc);
    if (c->lb)
        cublasLtMatrixLayoutDestroy(c->lb);
    if (c->la)
        cublasLtMatrixLayoutDestroy(c->la);
    if (c->op)
        cublasLtMatmulDescDestroy(c->op);
}
static bool lt_call_make(struct lt_call *c, cudaDataType_t wt, cudaDataType_t yt, int M, int N, int K, int ldx,
                         int ldy)
{
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    *c = (struct lt_call){0};
    bool ok = cublasLtMatmulDescCreate(&c->op, CUBLAS_COMPUTE_32F, CUDA_R_32F) == CUBLAS_STATUS_SUCCESS &&
              cublasLtMatmulDescSetAttribute(c->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta) ==
                  CUBLAS_STATUS_SUCCESS &&
              cublasLtMatmulDescSetAttribute(c->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb) ==
                  CUBLAS_STATUS_SUCCESS &&
              cublasLtMatrixLayoutCreate(&c->la, wt, (uint64_t)K, (uint64_t)N, K) == CUBLAS_STATUS_SUCCESS &&
              cublasLtMatrixLayoutCreate(&c->lb, wt, (uint64_t)K, (uint64_t)M, ldx) == CUBLAS_STATUS_SUCCESS &&
              cublasLtMatrixLayoutCreate(&c->lc, yt, (uint64_t)N, (uint64_t)M, ldy) == CUBLAS_STATUS_SUCCESS;
    if (!ok)
        lt_call_free(c);
    return ok;
}

/* how a candidate is timed: reps runs after one, each between its own pair of events (ev[2 r], ev[2 r + 1]), with
 * flush_n bytes of flush written before each where flush is not NULL (the L2 cache then holds none of the operands) */
#define TUNE_REPS_MAX 10
struct timing {
    cudaStream_t st;
    cudaEvent_t ev[2 * TUNE_REPS_MAX];
    int reps;
    void *flush;
    size_t flush_n;
};

/* mean time of t->reps runs after 1 (ms), or -1 if a run failed; run() returns false on failure */
typedef bool (*run_fn)(void *arg, void *y);
static float time_runs(const struct timing *t, run_fn run, void *arg, void *y)
{
    if (!run(arg, y))
        return -1.0f;
    for (int r = 0; r < t->reps; r++) {
        if (t->flush && cudaMemsetAsync(t->flush, r & 0xff, t->flush_n, t->st) != cudaSuccess)
            return -1.0f;
        if (cudaEventRecord(t->ev[2 * r], t->st) != cudaSuccess || !run(arg, y) ||
            cudaEventRecord(t->ev[2 * r + 1], t->st) != cudaSuccess)
            return -1.0f;
    }
    if (cudaEventSynchronize(t->ev[2 * t->reps - 1]) != cudaSuccess)
        return -1.0f;
    float sum = 0.0f;
    for (int r = 0; r < t->reps; r++) {
        float ms = 0.0f;
        if (cudaEventElapsedTime(&ms, t->ev[2 * r], t->ev[2 * r + 1]) != cudaSuccess)
            return -1.0f;
        sum += ms;
    }
    return sum / (float)t->reps;
}

struct tune_args {
    struct cuda_stream *cs;
    struct cuda_gemm_tune *t;
    struct lt_call *c;
    const cublasLtMatmulAlgo_t *algo;
    const void *x, *w;
    cudaDataType_t wt, yt;
    int M, N, K, ldx, ldy;
    float beta;
};
static bool run_default(void *arg, void *y)
{
    const struct tune_args *a = arg;
    const float alpha = 1.0f;
    return cublasGemmEx(a->cs->blas, CUBLAS_OP_T, CUBLAS_OP_N, a->N, a->M, a->K, &alpha, a->w, a->wt, a->K, a->x, a->wt,
                        a->ldx, &a->beta, y, a->yt, a->ldy, CUBLAS_COMPUTE_32F,
                        CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS;
}
static bool run_lt(void *arg, void *y)
{
    const struct tune_args *a = arg;
    const float alpha = 1.0f;
    return cublasLtMatmul(a->t->lt, a->c->op, &alpha, a->w, a->c->la, a->x, a->c->lb, &a->beta, y, a->c->lc, y,
                          a->c->lc, a->algo, a->cs->blas_ws, CUDA_BLAS_WS_BYTES, a->cs->cs) == CUBLAS_STATUS_SUCCESS;
}

/* heuristic algorithms asked for (gemm_tune_algos; at least TUNE_ALGOS_EXT where split-K variants join them) */
static int heur_count(const struct cuda_device *cd, bool ext)
{
    int n = cd->tune_algos < 1 ? TUNE_ALGOS : cd->tune_algos > TUNE_ALGOS_MAX ? TUNE_ALGOS_MAX : cd->tune_algos;
    return ext && n < TUNE_ALGOS_EXT ? TUNE_ALGOS_EXT : n;
}

/* the candidates: up to nh heuristic algorithms, then (ext) their split-K variants that cublasLt accepts for this
 * call within the workspace; returns the count, *n_heur the heuristic ones among them */
static int candidates(const struct tune_args *a, const struct lt_call *c, bool ext, cublasLtMatmulAlgo_t *out,
                      int *n_heur)
{
    const int nh = heur_count(cuda_dev(a->cs->s.dev), ext);
    const size_t wsz = CUDA_BLAS_WS_BYTES;
    cublasLtMatmulHeuristicResult_t res[TUNE_ALGOS_MAX];
    cublasLtMatmulPreference_t pref = NULL;
    int nres = 0, n = 0;
    *n_heur = 0;
    if (cublasLtMatmulPreferenceCreate(&pref) != CUBLAS_STATUS_SUCCESS)
        return 0;
    if (cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsz, sizeof wsz) !=
            CUBLAS_STATUS_SUCCESS ||
        cublasLtMatmulAlgoGetHeuristic(a->t->lt, c->op, c->la, c->lb, c->lc, c->lc, pref, nh, res, &nres) !=
            CUBLAS_STATUS_SUCCESS)
        nres = 0;
    cublasLtMatmulPreferenceDestroy(pref);
    for (int i = 0; i < nres && n < TUNE_CANDS; i++)
        if (res[i].state == CUBLAS_STATUS_SUCCESS)
            out[n++] = res[i].algo;
    *n_heur = n;
    for (int i = 0; ext && i < *n_heur && n < TUNE_CANDS; i++) {
        cublasLtMatmulAlgo_t v[16];
        const int nv = cuda_lt_splitk_variants(&out[i], a->K, a->yt == CUDA_R_32F, v, 16);
        for (int j = 0; j < nv && n < TUNE_CANDS; j++) {
            cublasLtMatmulHeuristicResult_t chk;
            if (cublasLtMatmulAlgoCheck(a->t->lt, c->op, c->la, c->lb, c->lc, c->lc, &v[j], &chk) ==
                    CUBLAS_STATUS_SUCCESS &&
                chk.workspaceSize <= CUDA_BLAS_WS_BYTES)
                out[n++] = v[j];
        }
    }
    return n;
}

/* whether a bucket's candidates include split-K variants (gemm_tune_splitk) */
static bool ext_mode(const struct cuda_device *cd, int mb, int N)
{
    return mb <= cd->tune_splitk_m && N <= TUNE_EXT_MAX_N;
}

/* fills e (use_lt, algo); every failure leaves use_lt false */
static void tune(struct tune_args *a, struct tune_entry *e, const struct cuda_device *cd)
{
    e->use_lt = false;
    const size_t ysz = a->yt == CUDA_R_32F ? 4 : 2;
    const bool ext = ext_mode(cd, e->mb, a->N);
    void *ys = NULL;
    struct timing tm = {.st = a->cs->cs, .reps = ext ? TUNE_REPS_EXT : 3};
    int n_ev = 0, n_heur = 0, n = 0, best_i = -1;
    struct lt_call c;
    if (!lt_call_make(&c, a->wt, a->yt, a->M, a->N, a->K, a->ldx, a->ldy))
        return;
    a->c = &c;
    cublasLtMatmulAlgo_t *cand = malloc(TUNE_CANDS * sizeof *cand);
    float t_def = -1.0f, t_heur = -1.0f, t_split = -1.0f, best = -1.0f;
    if (!cand)
        goto out;
    if (cudaMalloc(&ys, ((size_t)(a->M - 1) * (size_t)a->ldy + (size_t)a->N) * ysz) != cudaSuccess) {
        ys = NULL;
        goto out;
    }
    for (; n_ev < 2 * tm.reps; n_ev++)
        if (cudaEventCreate(&tm.ev[n_ev]) != cudaSuccess)
            goto out;
    if (ext) {
        /* twice the L2 cache; without it (no memory) the candidates are timed with warm caches */
        int l2 = 0;
        if (cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, cd->index) == cudaSuccess && l2 > 0 &&
            cudaMalloc(&tm.flush, 2 * (size_t)l2) == cudaSuccess)
            tm.flush_n = 2 * (size_t)l2;
        else
            tm.flush = NULL;
    }
    n = candidates(a, &c, ext, cand, &n_heur);
    t_def = time_runs(&tm, run_default, a, ys);
    if (t_def <= 0.0f)
        goto out;
    best = t_def * 0.98f;   /* an algorithm must beat the default by 2 % */
    if (cd->tune_force_splitk && n > n_heur)
        best = 1e30f;       /* tests: the fastest split-K variant whatever its time */
    for (int i = cd->tune_force_splitk && n > n_heur ? n_heur : 0; i < n; i++) {
        a->algo = &cand[i];
        const float ms = time_runs(&tm, run_lt, a, ys);
        if (ms <= 0.0f)
            continue;
        float *kind_best = i < n_heur ? &t_heur : &t_split;
        if (*kind_best < 0.0f || ms < *kind_best)
            *kind_best = ms;
        if (ms < best) {
            best = ms;
            best_i = i;
        }
    }
    if (best_i >= 0) {
        e->algo = cand[best_i];
        e->use_lt = true;
    }
    if (cd->tune_log) {
        char desc[160];
        cuda_lt_algo_desc(best_i >= 0 ? &cand[best_i] : NULL, desc, sizeof desc);
        qr_log(QR_LOG_INFO,
               "cuda: gemm tune N %d K %d M %d (bucket %d)%s: default %.1f us, best of %d heuristic %.1f us, best of "
               "%d split-K %.1f us%s -> %s",
               a->N, a->K, a->M, e->mb, e->acc ? " +=" : "", 1e3f * t_def, n_heur, 1e3f * t_heur, n - n_heur,
               1e3f * t_split, tm.flush ? " (L2 flushed)" : "", desc);
    }
out:
    if (tm.flush || ys)
        cudaStreamSynchronize(a->cs->cs);   /* the timed runs wrote into them */
    if (tm.flush)
        cudaFree(tm.flush);
    for (int i = 0; i < n_ev; i++)
        cudaEventDestroy(tm.ev[i]);
    if (ys)
        cudaFree(ys);
    free(cand);
    lt_call_free(&c);
    (void)cudaGetLastError();   /* a failed timing run is not the step's error */
}

/* the cache file of this device (gemm_tune_cache; off in the split-K-forcing test mode): its records loaded, new
 * choices appended; a file that cannot be read or is another device's is left alone, logged once */
static void cache_open(struct cuda_gemm_tune *t, const struct cuda_device *cd)
{
    if (!cd->tune_cache || cd->tune_force_splitk)
        return;
    snprintf(t->device, sizeof t->device, "%s|sm%d|%d SMs|cublasLt %zu|qrun gemm tune %d", cd->name, cd->cc, cd->n_sm,
             cublasLtGetVersion(), TUNE_VERSION);
    if (qr_tc_path(cd->tune_cache_dir[0] ? cd->tune_cache_dir : NULL, "cuda-gemm", t->device, t->cache_path,
                   sizeof t->cache_path) != QR_OK) {
        qr_log(QR_LOG_INFO, "cuda: no GEMM tuning cache (%s)", qr_last_error());
        return;
    }
    t->cache = calloc(TUNE_CACHE_MAX, sizeof *t->cache);
    if (!t->cache)
        return;
    int n_bad = 0;
    qr_status st = qr_tc_load(t->cache_path, t->device, t->cache, TUNE_CACHE_MAX, &t->n_cache, &n_bad);
    if (st != QR_OK) {
        qr_log(QR_LOG_WARN, "cuda: GEMM tuning cache not used: %s", qr_last_error());
        free(t->cache);
        t->cache = NULL;
        t->n_cache = 0;
        return;
    }
    t->cache_write = true;
    qr_log(n_bad ? QR_LOG_WARN : t->n_cache ? QR_LOG_INFO : QR_LOG_DEBUG, "cuda: GEMM tuning cache %s: %d choices%s",
           t->cache_path, t->n_cache, n_bad ? " (malformed lines skipped)" : "");
}

static void cache_key(const struct tune_entry *e, bool ext, int nh, int64_t key[TC_NKEY])
{
    const int64_t k[TC_NKEY] = {e->n, e->k, e->ldx, e->ldy, e->mb, (int64_t)e->wt, (int64_t)e->yt, e->acc, ext, nh};
    memcpy(key, k, sizeof k);
}

/* e's choice from the cache; false where it holds none */
static bool cache_get(struct cuda_gemm_tune *t, struct tune_entry *e, bool ext, int nh)
{
    int64_t key[TC_NKEY];
    cache_key(e, ext, nh, key);
    const int i = qr_tc_find(t->cache, t->n_cache, key, TC_NKEY);
    if (i < 0 || t->cache[i].n_val != TC_NVAL || t->cache[i].val[0] > 1)
        return false;
    e->use_lt = t->cache[i].val[0] == 1;
    memcpy(e->algo.data, &t->cache[i].val[1], sizeof e->algo.data);
    return true;
}

static void cache_put(struct cuda_gemm_tune *t, const struct tune_entry *e, bool ext, int nh)
{
    if (!t->cache_write)
        return;
    struct qr_tc_rec r = {.n_key = TC_NKEY, .n_val = TC_NVAL};
    cache_key(e, ext, nh, r.key);
    r.val[0] = e->use_lt ? 1 : 0;
    memcpy(&r.val[1], e->algo.data, sizeof e->algo.data);
    if (qr_tc_append(t->cache_path, t->device, &r) != QR_OK) {
        qr_log(QR_LOG_WARN, "cuda: GEMM tuning cache not written: %s", qr_last_error());
        t->cache_write = false;
    }
}

bool cuda_gemm_tuned(struct qr_stream *s, void *y, cudaDataType_t yt, int ldy, const void *x, int ldx, const void *w,
                     cudaDataType_t wt, int M, int N, int K, float beta, qr_status *st)
{
    struct cuda_stream *cs = cuda_st(s);
    *st = QR_OK;
    const struct cuda_device *cd = cuda_dev(s->dev);
    if (!cd->gemm_tune || M < cd->tune_min_m || !cs->blas_ws)
        return false;
    if (!cs->tune) {
        cs->tune = calloc(1, sizeof *cs->tune);
        if (!cs->tune)
            return false;
        if (cublasLtCreate(&cs->tune->lt) != CUBLAS_STATUS_SUCCESS) {
            cs->tune->lt = NULL;
            cs->tune->broken = true;
        } else {
            cache_open(cs->tune, cd);
        }
    }
    struct cuda_gemm_tune *t = cs->tune;
    if (t->broken)
        return false;
    const int mb = m_bucket(M, cd->tune_min_m);
    const bool acc = beta != 0.0f;
    struct tune_entry *e = NULL;
    for (int i = 0; i < t->n && !e; i++)
        if (t->e[i].n == N && t->e[i].k == K && t->e[i].ldx == ldx && t->e[i].ldy == ldy && t->e[i].mb == mb &&
            t->e[i].wt == wt && t->e[i].yt == yt && t->e[i].acc == acc)
            e = &t->e[i];
    struct tune_args a = {.cs = cs, .t = t, .x = x, .w = w, .wt = wt, .yt = yt, .M = M, .N = N, .K = K, .ldx = ldx,
                          .ldy = ldy, .beta = beta};
    if (!e) {
        if (t->n == TUNE_MAX) {
            t->broken = true;
            return false;
        }
        const bool ext = ext_mode(cd, mb, N);
        struct tune_entry ne = {.n = N, .k = K, .ldx = ldx, .ldy = ldy, .mb = mb, .wt = wt, .yt = yt, .acc = acc};
        const int nh = heur_count(cd, ext);
        if (cache_get(t, &ne, ext, nh)) {
            /* a choice an earlier process made: no timing, so a capture may take it too */
        } else {
            enum cudaStreamCaptureStatus cap = cudaStreamCaptureStatusNone;
            if (cudaStreamIsCapturing(cs->cs, &cap) != cudaSuccess || cap != cudaStreamCaptureStatusNone) {
                (void)cudaGetLastError();
                return false;   /* tuned at its first run outside a capture */
            }
            tune(&a, &ne, cd);
            cache_put(t, &ne, ext, nh);
        }
        e = &t->e[t->n++];
        *e = ne;
        qr_log(QR_LOG_DEBUG, "cuda: gemm N %d K %d M >= %d%s: %s", N, K, mb, acc ? " (+=)" : "",
               e->use_lt ? "a cublasLt algorithm" : "cublasGemmEx's default");
    }
    if (!e->use_lt)
        return false;
    struct lt_call c;
    if (!lt_call_make(&c, wt, yt, M, N, K, ldx, ldy))
        return false;
    cublasLtMatmulHeuristicResult_t chk;
    bool ok = e->ok_m == M ||
              (cublasLtMatmulAlgoCheck(t->lt, c.op, c.la, c.lb, c.lc, c.lc, &e->algo, &chk) == CUBLAS_STATUS_SUCCESS &&
               chk.workspaceSize <= CUDA_BLAS_WS_BYTES);
    if (ok) {
        const float alpha = 1.0f;
        cublasStatus_t r = cublasLtMatmul(t->lt, c.op, &alpha, w, c.la, x, c.lb, &beta, y, c.lc, y, c.lc, &e->algo,
                                          cs->blas_ws, CUDA_BLAS_WS_BYTES, cs->cs);
        if (r != CUBLAS_STATUS_SUCCESS)
            *st = cublas_fail(s->dev, r, "cublasLtMatmul", __FILE__, __LINE__);
        else
            e->ok_m = M;
    }
    lt_call_free(&c);
    return ok;
}
