/* cuda_gemm_tune.c - the prompt GEMMs through cublasLt with the fastest algorithm its heuristic offers for the
 * shape (on by default; backends.ini [backend.cuda] gemm_tune = 0 or QR_CUDA_GEMM_TUNE=0 turn it off).
 *
 * Why: `cuda_kernel_lab --gemm-tune` on the H100 (random data, twelfth session) found cublasLt algorithms 2-7 %
 * faster than cublasGemmEx's default for the qkv, o_proj and down shapes at M = 8192 and 512 (for gate_up the
 * default was the best); end to end TTFT(8192) went 143.3 / 142.4 -> 140.8 / 140.7 ms (thirteenth session).  How:
 * a shape (N, K, row strides, types, accumulate or not) and a power-of-two bucket of M (M rounded down, so a prompt
 * of 8192 tokens and one with a few decodes beside it share one) is tuned once, the first time it runs outside a
 * graph capture: cublasGemmEx's default and up to TUNE_ALGOS heuristic algorithms run on the real inputs into a
 * scratch output (an accumulating GEMM cannot be timed in place), each timed over three runs after one; the fastest
 * algorithm is kept where it beats the default by 2 %.  Later calls of the bucket run it when cublasLt accepts it
 * for their M; anything else (tuning off, a capture before tuning, no memory for the scratch output, an algorithm
 * refused) falls back to cublasGemmEx.  The choice is timed: two processes may pick different algorithms, whose
 * results agree within rounding but not always bit for bit.
 *
 * Batch sizes of serving and offline decoding (twenty-eighth session; opt-in until measured on a GPU):
 * gemm_tune_min_m / QR_CUDA_GEMM_TUNE_MIN_M (default 64) is the smallest M tuned (down to 2: M = 1 runs the GEMV
 * kernels), and gemm_tune_splitk / QR_CUDA_GEMM_TUNE_SPLITK = S (default 0, off) adds, for buckets of M <= S,
 * TUNE_ALGOS_EXT heuristic algorithms and their split-K variants (cuda_lt_algos.c) to the candidates, timed over
 * ten runs after one with the L2 cache flushed before each (at these sizes a GEMM is bound by its weight bytes,
 * which the engine's step never finds in L2).  QR_CUDA_GEMM_TUNE_LOG=1 logs each tuned shape's times and choice. */
#include "cuda_internal.h"
#include "cuda_lt_algos.h"

#include <cublasLt.h>
#include <stdlib.h>

#define TUNE_MAX 96     /* shapes x M buckets per stream */
#define TUNE_ALGOS 8       /* heuristic candidates timed */
#define TUNE_ALGOS_EXT 16  /* ... where split-K variants join them (M <= gemm_tune_splitk) */
#define TUNE_CANDS 96      /* candidates timed at most: heuristic algorithms + their split-K variants */
#define TUNE_REPS_EXT 10   /* timed runs of each candidate where split-K variants join */

struct tune_entry {
    int n, k, ldx, ldy, mb;
    cudaDataType_t wt, yt;
    bool acc, use_lt;
    cublasLtMatmulAlgo_t algo;
    int ok_m;   /* the last M cublasLt accepted the algorithm for (0: none yet) */
};

struct cuda_gemm_tune {
    cublasLtHandle_t lt;
    struct tune_entry e[TUNE_MAX];
    int n;
    bool broken;   /* cublasLtCreate failed or the table is full: the default from then on */
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

/* the candidates: up to nh heuristic algorithms, then (ext) their split-K variants that cublasLt accepts for this
 * call within the workspace; returns the count, *n_heur the heuristic ones among them */
static int candidates(const struct tune_args *a, const struct lt_call *c, bool ext, cublasLtMatmulAlgo_t *out,
                      int *n_heur)
{
    const int nh = ext ? TUNE_ALGOS_EXT : TUNE_ALGOS;
    const size_t wsz = CUDA_BLAS_WS_BYTES;
    cublasLtMatmulHeuristicResult_t res[TUNE_ALGOS_EXT];
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

/* fills e (use_lt, algo); every failure leaves use_lt false */
static void tune(struct tune_args *a, struct tune_entry *e, const struct cuda_device *cd)
{
    e->use_lt = false;
    const size_t ysz = a->yt == CUDA_R_32F ? 4 : 2;
    const bool ext = e->mb <= cd->tune_splitk_m;
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
        enum cudaStreamCaptureStatus cap = cudaStreamCaptureStatusNone;
        if (cudaStreamIsCapturing(cs->cs, &cap) != cudaSuccess || cap != cudaStreamCaptureStatusNone) {
            (void)cudaGetLastError();
            return false;   /* tuned at its first run outside a capture */
        }
        if (t->n == TUNE_MAX) {
            t->broken = true;
            return false;
        }
        e = &t->e[t->n++];
        *e = (struct tune_entry){.n = N, .k = K, .ldx = ldx, .ldy = ldy, .mb = mb, .wt = wt, .yt = yt, .acc = acc};
        tune(&a, e, cd);
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
