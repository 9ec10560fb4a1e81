/* cuda_backend.c - the CUDA backend: registry, device, buffers, streams and
 * step capture (CUDA Graphs).  The ops are in cuda_ops.c, the device code in
 * the kernels/ .cu files.
 *
 * Errors never abort: every CUDA / cuBLAS call goes through CUDA_TRY /
 * CUBLAS_TRY, which log the statement, file, line and device and return a
 * status.  A sticky error (illegal address, launch failure, device lost)
 * sets dev->dead; every later call on the device fails with
 * QR_E_DEVICE_LOST. */
#include "cuda_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CUDA_ALIGN 256

/* ---- errors ---- */

static bool is_sticky(cudaError_t e)
{
    switch (e) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorECCUncorrectable:
    case cudaErrorAssert:
    case cudaErrorLaunchTimeout:
    case cudaErrorDevicesUnavailable:
    case cudaErrorUnknown:
        return true;
    default:
        return false;
    }
}

qr_status cuda_fail(struct qr_device *d, cudaError_t e, const char *stmt, const char *file, int line)
{
    int idx = d ? cuda_dev(d)->index : -1;
    qr_status st = QR_E_INTERNAL;
    if (e == cudaErrorMemoryAllocation)
        st = QR_E_OOM_DEVICE;
    else if (e == cudaErrorInvalidValue)
        st = QR_E_INVALID_ARG;
    if (is_sticky(e)) {
        st = QR_E_DEVICE_LOST;
        if (d)
            d->dead = true;
    }
    if (e != cudaErrorMemoryAllocation && e != cudaErrorInvalidValue)
        (void)cudaGetLastError();   /* clear a non-sticky error so the next call starts clean */
    return qr_set_error(st, "cuda: %s failed: %s (%s) at %s:%d, device %d%s", stmt, cudaGetErrorName(e),
                        cudaGetErrorString(e), file, line, idx, st == QR_E_DEVICE_LOST ? "; device marked dead" : "");
}

static const char *cublas_name(cublasStatus_t e)
{
    switch (e) {
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "CUBLAS_STATUS_?";
    }
}

qr_status cublas_fail(struct qr_device *d, cublasStatus_t e, const char *stmt, const char *file, int line)
{
    qr_status st = e == CUBLAS_STATUS_ALLOC_FAILED ? QR_E_OOM_DEVICE
                   : e == CUBLAS_STATUS_NOT_SUPPORTED || e == CUBLAS_STATUS_ARCH_MISMATCH ? QR_E_UNSUPPORTED
                                                                                         : QR_E_INTERNAL;
    if (e == CUBLAS_STATUS_EXECUTION_FAILED) {
        cudaError_t ce = cudaGetLastError();
        if (is_sticky(ce) && d) {
            d->dead = true;
            st = QR_E_DEVICE_LOST;
        }
    }
    return qr_set_error(st, "cuda: %s failed: %s at %s:%d, device %d", stmt, cublas_name(e), file, line,
                        d ? cuda_dev(d)->index : -1);
}

qr_status cuda_enter(struct qr_device *d)
{
    if (d->dead)
        return qr_set_error(QR_E_DEVICE_LOST, "cuda: device %d is dead after an earlier error", cuda_dev(d)->index);
    if (cuda_dev(d)->index != 0)
        CUDA_TRY(d, cudaSetDevice(cuda_dev(d)->index));
    return QR_OK;
}

/* ---- registry helpers ---- */

static char g_why[256];

static int cuda_device_count(void)
{
    int drv = 0, rt = 0, n = 0;
    cudaDriverGetVersion(&drv);
    cudaRuntimeGetVersion(&rt);
    if (drv == 0) {
        snprintf(g_why, sizeof g_why, "no NVIDIA driver found (libcuda.so is not installed or not loadable)");
        return 0;
    }
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e == cudaErrorInsufficientDriver || (e != cudaSuccess && drv < rt)) {
        snprintf(g_why, sizeof g_why, "NVIDIA driver too old: it supports CUDA %d.%d, qrun was built with CUDA %d.%d",
                 drv / 1000, drv % 1000 / 10, rt / 1000, rt % 1000 / 10);
        (void)cudaGetLastError();
        return 0;
    }
    if (e != cudaSuccess || n <= 0) {
        snprintf(g_why, sizeof g_why, "no CUDA device (%s)", e == cudaSuccess ? "none found" : cudaGetErrorString(e));
        (void)cudaGetLastError();
        return 0;
    }
    g_why[0] = 0;
    return n;
}

static const char *cuda_unavailable_reason(void) { return g_why[0] ? g_why : NULL; }

static qr_status fill_props(int idx, struct qr_device_props *p)
{
    struct cudaDeviceProp dp;
    CUDA_TRY(NULL, cudaGetDeviceProperties(&dp, idx));
    int cur = 0;
    CUDA_TRY(NULL, cudaGetDevice(&cur));
    CUDA_TRY(NULL, cudaSetDevice(idx));
    size_t fr = 0, tot = 0;
    cudaError_t e = cudaMemGetInfo(&fr, &tot);
    cudaSetDevice(cur);
    CUDA_TRY(NULL, e);
    int drv = 0, rt = 0;
    cudaDriverGetVersion(&drv);
    cudaRuntimeGetVersion(&rt);
    int cc = dp.major * 10 + dp.minor;
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%.127s", dp.name);
    snprintf(p->description, sizeof p->description,
             "compute capability %d.%d, %d SMs, driver CUDA %d.%d, runtime %d.%d%s", dp.major, dp.minor,
             dp.multiProcessorCount, drv / 1000, drv % 1000 / 10, rt / 1000, rt % 1000 / 10,
             cc < 80 ? "; no native BF16 (BF16 weights should be loaded as F16)" : "");
    p->mem_total = tot;
    p->mem_free = fr;
    p->max_alloc = tot;
    p->alignment = CUDA_ALIGN;
    p->caps = QR_CAP_F16 | QR_CAP_GRAPH_REPLAY | QR_CAP_COOPMAT | (cc >= 80 ? QR_CAP_BF16 : 0);
    return QR_OK;
}

static qr_status cuda_device_describe(int idx, struct qr_device_props *p)
{
    int n = cuda_device_count();
    if (idx < 0 || idx >= n || !p)
        return qr_set_error(QR_E_INVALID_ARG, "cuda: no device %d (%d found)", idx, n);
    return fill_props(idx, p);
}

/* ---- buffers ---- */

static qr_status cuda_buf_alloc(struct qr_device *d, size_t size, unsigned usage, struct qr_buf **out)
{
    qr_status st = cuda_enter(d);
    if (st != QR_OK)
        return st;
    struct qr_buf *b = calloc(1, sizeof *b);
    if (!b)
        return qr_set_error(QR_E_OOM_HOST, "cuda: out of memory");
    void *p = NULL;
    size_t n = size ? size : 1;
    cudaError_t e = cudaMalloc(&p, n);
    if (e != cudaSuccess) {
        free(b);
        (void)cudaGetLastError();
        if (e == cudaErrorMemoryAllocation) {
            size_t fr = 0, tot = 0;
            cudaMemGetInfo(&fr, &tot);
            return qr_set_error(QR_E_OOM_DEVICE, "cuda: out of device memory allocating %zu bytes (%zu of %zu free)",
                                size, fr, tot);
        }
        return cuda_fail(d, e, "cudaMalloc", __FILE__, __LINE__);
    }
    /* zeroed like the CPU backend's buffers (no stale NaN in never-written KV slots) */
    e = cudaMemset(p, 0, n);
    if (e != cudaSuccess) {
        cudaFree(p);
        free(b);
        return cuda_fail(d, e, "cudaMemset", __FILE__, __LINE__);
    }
    b->dev = d;
    b->size = size;
    b->ptr = p;
    b->ctx = (void *)(uintptr_t)usage;   /* cuda_buf_usage(): the fusions look for QR_BUF_TRANSIENT */
    *out = b;
    return QR_OK;
}

static void cuda_buf_free(struct qr_buf *b)
{
    if (!b)
        return;
    if (b->ptr) {
        if (cuda_dev(b->dev)->index != 0)
            cudaSetDevice(cuda_dev(b->dev)->index);
        cudaError_t e = cudaFree(b->ptr);
        if (e != cudaSuccess) {
            (void)cudaGetLastError();
            qr_log(QR_LOG_WARN, "cuda: cudaFree failed: %s", cudaGetErrorString(e));
        }
    }
    free(b);
}

/* ---- streams ---- */

static void aux_release(cudaStream_t st, cudaEvent_t fork, cudaEvent_t join)
{
    if (st) {
        cudaStreamSynchronize(st);
        cudaStreamDestroy(st);
    }
    if (fork)
        cudaEventDestroy(fork);
    if (join)
        cudaEventDestroy(join);
}

static void stream_release(struct cuda_stream *cs)
{
    if (cs->cs)
        cudaStreamSynchronize(cs->cs);
    for (int i = 0; i < cs->n_graphs; i++)
        if (cs->graphs[i].exec)
            cudaGraphExecDestroy(cs->graphs[i].exec);
    free(cs->graphs);
    for (int i = 0; i < cs->n_retired; i++)
        cudaFree(cs->retired[i]);
    free(cs->retired);
    if (cs->scratch)
        cudaFree(cs->scratch);
    if (cs->counters)
        cudaFree(cs->counters);
    cuda_gemm_tune_free(cs);
    aux_release(cs->side, cs->ev_fork, cs->ev_join);
    aux_release(cs->pf, cs->pf_fork, cs->pf_join);
    if (cs->blas)
        cublasDestroy(cs->blas);
    if (cs->blas_ws)
        cudaFree(cs->blas_ws);
    if (cs->cs)
        cudaStreamDestroy(cs->cs);
    (void)cudaGetLastError();
    free(cs);
}

static qr_status cuda_stream_create(struct qr_device *d, struct qr_stream **out)
{
    qr_status st = cuda_enter(d);
    if (st != QR_OK)
        return st;
    struct cuda_stream *cs = calloc(1, sizeof *cs);
    if (!cs)
        return qr_set_error(QR_E_OOM_HOST, "cuda: out of memory");
    cs->s.dev = d;
    cs->s.ctx = cs;
#define TRY_OR_CLEAN(stmt, kind)                                                                                   \
    do {                                                                                                           \
        qr_status s_ = (stmt);                                                                                     \
        if (s_ != QR_OK) {                                                                                         \
            stream_release(cs);                                                                                    \
            return s_;                                                                                             \
        }                                                                                                          \
    } while (0)
    cudaError_t e = cudaStreamCreateWithFlags(&cs->cs, cudaStreamNonBlocking);
    TRY_OR_CLEAN(e == cudaSuccess ? QR_OK : cuda_fail(d, e, "cudaStreamCreateWithFlags", __FILE__, __LINE__), 0);
    cublasStatus_t be = cublasCreate(&cs->blas);
    if (be != CUBLAS_STATUS_SUCCESS)
        cs->blas = NULL;
    TRY_OR_CLEAN(be == CUBLAS_STATUS_SUCCESS ? QR_OK : cublas_fail(d, be, "cublasCreate", __FILE__, __LINE__), 0);
    be = cublasSetStream(cs->blas, cs->cs);
    TRY_OR_CLEAN(be == CUBLAS_STATUS_SUCCESS ? QR_OK : cublas_fail(d, be, "cublasSetStream", __FILE__, __LINE__), 0);
    /* a fixed workspace: cuBLAS then allocates nothing while a graph is being captured */
    e = cudaMalloc(&cs->blas_ws, CUDA_BLAS_WS_BYTES);
    if (e != cudaSuccess)
        cs->blas_ws = NULL;
    TRY_OR_CLEAN(e == cudaSuccess ? QR_OK : cuda_fail(d, e, "cudaMalloc(cublas workspace)", __FILE__, __LINE__), 0);
    be = cublasSetWorkspace(cs->blas, cs->blas_ws, CUDA_BLAS_WS_BYTES);
    TRY_OR_CLEAN(be == CUBLAS_STATUS_SUCCESS ? QR_OK : cublas_fail(d, be, "cublasSetWorkspace", __FILE__, __LINE__),
                 0);
#undef TRY_OR_CLEAN
    *out = &cs->s;
    return QR_OK;
}

static void cuda_stream_destroy(struct qr_stream *s)
{
    if (!s)
        return;
    if (cuda_dev(s->dev)->index != 0)
        cudaSetDevice(cuda_dev(s->dev)->index);
    stream_release(cuda_st(s));
    if (cuda_prof_enabled())
        cuda_prof_report();
}

/* replace the stream block *cur (NULL at first) by a new one of want bytes; a captured graph may still point at the
 * old block, so it is kept until the stream goes */
static qr_status stream_block_grow(struct qr_stream *s, void **cur, size_t want, bool zero)
{
    struct cuda_stream *cs = cuda_st(s);
    void *p = NULL;
    CUDA_TRY(s->dev, cudaMalloc(&p, want));
    if (zero) {   /* stream ordered: the kernels that use the block run on this stream */
        cudaError_t e = cudaMemsetAsync(p, 0, want, cs->cs);
        if (e != cudaSuccess) {
            cudaFree(p);
            return cuda_fail(s->dev, e, "cudaMemsetAsync", __FILE__, __LINE__);
        }
    }
    if (*cur) {
        if (cs->n_retired == cs->cap_retired) {
            int nc = cs->cap_retired ? 2 * cs->cap_retired : 8;
            void **r = realloc(cs->retired, (size_t)nc * sizeof *r);
            if (!r) {
                cudaFree(p);
                return qr_set_error(QR_E_OOM_HOST, "cuda: out of memory");
            }
            cs->retired = r;
            cs->cap_retired = nc;
        }
        cs->retired[cs->n_retired++] = *cur;
    }
    *cur = p;
    return QR_OK;
}

qr_status cuda_scratch(struct qr_stream *s, size_t n, void **out)
{
    struct cuda_stream *cs = cuda_st(s);
    if (n > cs->scratch_n || !cs->scratch) {
        size_t want = n + n / 4 + (1u << 20);
        qr_status st = stream_block_grow(s, &cs->scratch, want, false);
        if (st != QR_OK)
            return st;
        cs->scratch_n = want;
    }
    *out = cs->scratch;
    return QR_OK;
}

qr_status cuda_counters(struct qr_stream *s, size_t n, int **out)
{
    struct cuda_stream *cs = cuda_st(s);
    if (n > cs->counters_n || !cs->counters) {
        size_t want = (n < 1024 ? 1024 : n + n / 2) * sizeof(int);
        void *p = cs->counters;
        qr_status st = stream_block_grow(s, &p, want, true);
        if (st != QR_OK)
            return st;
        cs->counters = p;
        cs->counters_n = want / sizeof(int);
    }
    *out = (int *)cs->counters;
    return QR_OK;
}

static qr_status cuda_write(struct qr_stream *s, struct qr_buf *dst, size_t off, const void *src, size_t n)
{
    qr_status st = cuda_enter(s->dev);
    if (st != QR_OK)
        return st;
    if (off > dst->size || n > dst->size - off)
        return qr_set_error(QR_E_INVALID_ARG, "cuda write: %zu bytes at %zu outside a buffer of %zu", n, off,
                            dst->size);
    if (n == 0)
        return QR_OK;
    CUDA_TRY(s->dev, cudaMemcpyAsync((char *)dst->ptr + off, src, n, cudaMemcpyHostToDevice, cuda_st(s)->cs));
    return QR_OK;
}

static qr_status cuda_read(struct qr_stream *s, struct qr_buf *src, size_t off, void *dst, size_t n)
{
    qr_status st = cuda_enter(s->dev);
    if (st != QR_OK)
        return st;
    if (off > src->size || n > src->size - off)
        return qr_set_error(QR_E_INVALID_ARG, "cuda read: %zu bytes at %zu outside a buffer of %zu", n, off,
                            src->size);
    if (n)
        CUDA_TRY(s->dev, cudaMemcpyAsync(dst, (const char *)src->ptr + off, n, cudaMemcpyDeviceToHost, cuda_st(s)->cs));
    CUDA_TRY(s->dev, cudaStreamSynchronize(cuda_st(s)->cs));
    return QR_OK;
}

static qr_status cuda_copy(struct qr_stream *s, struct qr_buf *dst, size_t doff, struct qr_buf *src, size_t soff,
                           size_t n)
{
    qr_status st = cuda_enter(s->dev);
    if (st != QR_OK)
        return st;
    if (doff > dst->size || n > dst->size - doff || soff > src->size || n > src->size - soff)
        return qr_set_error(QR_E_INVALID_ARG, "cuda copy: %zu bytes outside a buffer", n);
    if (n)
        CUDA_TRY(s->dev, cudaMemcpyAsync((char *)dst->ptr + doff, (const char *)src->ptr + soff, n,
                                         cudaMemcpyDeviceToDevice, cuda_st(s)->cs));
    return QR_OK;
}

static qr_status cuda_memset0(struct qr_stream *s, struct qr_buf *dst, size_t off, size_t n)
{
    qr_status st = cuda_enter(s->dev);
    if (st != QR_OK)
        return st;
    if (off > dst->size || n > dst->size - off)
        return qr_set_error(QR_E_INVALID_ARG, "cuda memset0: %zu bytes outside a buffer", n);
    if (n)
        CUDA_TRY(s->dev, cudaMemsetAsync((char *)dst->ptr + off, 0, n, cuda_st(s)->cs));
    return QR_OK;
}

static qr_status cuda_sync(struct qr_stream *s)
{
    qr_status st = cuda_enter(s->dev);
    if (st != QR_OK)
        return st;
    CUDA_TRY(s->dev, cudaStreamSynchronize(cuda_st(s)->cs));
    return QR_OK;
}

/* ---- graphs ---- */

qr_status cuda_run_node(struct qr_stream *s, const struct qr_node *n)
{
    const struct qr_ops *o = &cuda_ops;
    switch (n->op) {
    case QR_OP_EMBED: return o->embed(s, &n->a.embed);
    case QR_OP_MATMUL: return o->matmul(s, &n->a.matmul);
    case QR_OP_RMSNORM: return o->rmsnorm(s, &n->a.rmsnorm);
    case QR_OP_QK_NORM: return o->qk_norm(s, &n->a.rmsnorm);
    case QR_OP_ROPE: return o->rope(s, &n->a.rope);
    case QR_OP_KV_STORE: return o->kv_store(s, &n->a.kv_store);
    case QR_OP_ATTN: return o->attn(s, &n->a.attn);
    case QR_OP_SILU_MUL: return o->silu_mul(s, &n->a.silu_mul);
    case QR_OP_ADD: return o->add(s, &n->a.add);
    case QR_OP_LOGITS: return o->logits(s, &n->a.logits);
    case QR_OP_ARGMAX: return o->argmax(s, &n->a.argmax);
    case QR_OP_TOPK: return o->topk(s, &n->a.topk);
    default: return qr_set_error(QR_E_INVALID_ARG, "cuda: unknown op %d in a graph", (int)n->op);
    }
}

/* ---- decode: weights into L2 ahead of their GEMV (QR_CUDA_L2PF, off by default) ---- */

static bool pf_gemv(const struct qr_node *n)
{
    const struct qr_matmul_args *m = &n->a.matmul;
    return n->op == QR_OP_MATMUL && m->M >= 1 && m->M <= QR_CUDA_GEMV_USE_M && m->w.buf &&
           (m->wtype == QR_DTYPE_BF16 || m->wtype == QR_DTYPE_F16) && m->N > 0 && m->K > 0;
}

/* Before node i: where an attention of one-token rows comes within the next 6 nodes (once per attention; *last is
 * the one served) and a GEMV reads its output right after it, that GEMV's weights, and the first l2pf_next_bytes of
 * the next GEMV's within 3 nodes, are prefetched on the prefetch stream, forked from the stream here (after the ops
 * before node i) and joined at the end of the graph (*forked).  The stream is made outside a capture only (the
 * eager warm-up of a graph key makes it before its capture). */
static qr_status l2pf_ahead(struct qr_stream *s, const struct qr_graph *g, int i, int *last, bool *forked)
{
    struct cuda_device *cd = cuda_dev(s->dev);
    struct cuda_stream *cs = cuda_st(s);
    int a = -1;
    for (int j = i; j < g->n_nodes && j <= i + 6; j++)
        if (g->nodes[j].op == QR_OP_ATTN) {
            a = j;
            break;
        }
    if (a < 0 || a <= *last || a + 1 >= g->n_nodes)
        return QR_OK;
    *last = a;
    if (g->nodes[a].a.attn.n_tokens > QR_CUDA_GEMV_USE_M || !pf_gemv(&g->nodes[a + 1]))
        return QR_OK;
    const struct qr_matmul_args *o = &g->nodes[a + 1].a.matmul;
    const char *wa = (const char *)o->w.buf->ptr + o->w.off;
    size_t na = (size_t)o->N * (size_t)o->K * 2 & ~(size_t)15, nb = 0;
    const char *wb = NULL;
    for (int j = a + 2; cd->l2pf_next_bytes && j < g->n_nodes && j <= a + 4; j++)
        if (pf_gemv(&g->nodes[j])) {
            const struct qr_matmul_args *m = &g->nodes[j].a.matmul;
            size_t all = (size_t)m->N * (size_t)m->K * 2;
            nb = all < cd->l2pf_next_bytes ? all : cd->l2pf_next_bytes;
            wb = (const char *)m->w.buf->ptr + m->w.off;
            break;
        }
    cudaStream_t pf = NULL;
    qr_status st = cuda_aux_stream(s, &cs->pf, &cs->pf_fork, &cs->pf_join, false, &pf);
    if (st != QR_OK || !pf)
        return st;
    CUDA_TRY(s->dev, cudaEventRecord(cs->pf_fork, cs->cs));
    CUDA_TRY(s->dev, cudaStreamWaitEvent(cs->pf, cs->pf_fork, 0));
    *forked = true;
    int e = cuda_launch_l2_prefetch((qr_cuda_stream)cs->pf, wa, na, wb, nb, cd->l2pf_mode, cd->l2pf_blocks);
    if (e != 0)
        return cuda_fail(s->dev, (cudaError_t)e, "cuda_launch_l2_prefetch", __FILE__, __LINE__);
    return QR_OK;
}

static qr_status run_nodes_pf(struct qr_stream *s, const struct qr_graph *g, bool *forked);

static qr_status run_nodes(struct qr_stream *s, const struct qr_graph *g)
{
    struct cuda_stream *cs = cuda_st(s);
    bool forked = false;
    qr_status st = run_nodes_pf(s, g, &forked);
    if (!forked)
        return st;
    /* joined whatever happened, so a capture in progress stays whole */
    cudaError_t e = cudaEventRecord(cs->pf_join, cs->pf);
    if (e == cudaSuccess)
        e = cudaStreamWaitEvent(cs->cs, cs->pf_join, 0);
    if (st != QR_OK)
        return st;
    if (e != cudaSuccess)
        return cuda_fail(s->dev, e, "cudaEventRecord / cudaStreamWaitEvent (prefetch stream join)", __FILE__,
                         __LINE__);
    return QR_OK;
}

static qr_status run_nodes_pf(struct qr_stream *s, const struct qr_graph *g, bool *forked)
{
    bool fuse = cuda_dev(s->dev)->fused, pf = cuda_dev(s->dev)->l2pf_mode != 0;
    int last_attn = -1;
    for (int i = 0; i < g->n_nodes; i++) {
        if (pf) {
            qr_status pst = l2pf_ahead(s, g, i, &last_attn, forked);
            if (pst != QR_OK)
                return pst;
        }
        if (fuse) {
            int r = cuda_fuse_at(s, &g->nodes[i], g->n_nodes - i);
            if (r < 0)
                return (qr_status)r;
            if (r > 0) {
                i += r - 1;
                continue;
            }
        }
        qr_status st = cuda_run_node(s, &g->nodes[i]);
        if (st != QR_OK)
            return st;
    }
    return QR_OK;
}

static qr_status cuda_graph_exec(struct qr_stream *s, const struct qr_graph *g)
{
    qr_status st = cuda_enter(s->dev);
    if (st != QR_OK)
        return st;
    if (cuda_prof_enabled())
        return cuda_prof_run(s, g, cuda_dev(s->dev)->fused);
    if (g->key == 0)
        return run_nodes(s, g);
    struct cuda_stream *cs = cuda_st(s);
    struct cuda_graph_entry *e = NULL;
    for (int i = 0; i < cs->n_graphs; i++)
        if (cs->graphs[i].key == g->key) {
            e = &cs->graphs[i];
            break;
        }
    if (!e) {
        /* first use: warm-up run (sizes scratch, loads cuBLAS kernels), eagerly */
        if (cs->n_graphs == cs->cap_graphs) {
            int nc = cs->cap_graphs ? 2 * cs->cap_graphs : 16;
            struct cuda_graph_entry *ng = realloc(cs->graphs, (size_t)nc * sizeof *ng);
            if (!ng)
                return qr_set_error(QR_E_OOM_HOST, "cuda: out of memory");
            cs->graphs = ng;
            cs->cap_graphs = nc;
        }
        st = run_nodes(s, g);
        if (st == QR_OK)
            cs->graphs[cs->n_graphs++] = (struct cuda_graph_entry){g->key, NULL};
        return st;
    }
    if (!e->exec) {
        /* second use: capture, instantiate, then replay below */
        CUDA_TRY(s->dev, cudaStreamBeginCapture(cs->cs, cudaStreamCaptureModeRelaxed));
        st = run_nodes(s, g);
        cudaGraph_t graph = NULL;
        cudaError_t ce = cudaStreamEndCapture(cs->cs, &graph);
        if (st != QR_OK) {
            if (graph)
                cudaGraphDestroy(graph);
            (void)cudaGetLastError();
            return st;
        }
        if (ce != cudaSuccess) {
            if (graph)
                cudaGraphDestroy(graph);
            return cuda_fail(s->dev, ce, "cudaStreamEndCapture", __FILE__, __LINE__);
        }
        cudaGraphExec_t exec = NULL;
        ce = cudaGraphInstantiate(&exec, graph, 0);
        cudaGraphDestroy(graph);
        if (ce != cudaSuccess)
            return cuda_fail(s->dev, ce, "cudaGraphInstantiate", __FILE__, __LINE__);
        e->exec = exec;
    }
    CUDA_TRY(s->dev, cudaGraphLaunch(e->exec, cs->cs));
    return QR_OK;
}

/* ---- device ---- */

static bool cuda_supports(struct qr_device *d, enum qr_op op, enum qr_dtype wtype)
{
    if ((unsigned)op >= QR_OP_COUNT)
        return false;
    if (wtype == QR_DTYPE_COUNT)
        return true;
    /* FP8 E4M3: KV caches only (kv_store and the fused q/k-norm + RoPE + KV write write it, attention reads it), in
     * f16 math, so sm_75 too; never weights */
    if (wtype == QR_DTYPE_F8E4M3)
        return op == QR_OP_KV_STORE || op == QR_OP_ATTN;
    if (wtype == QR_DTYPE_I32 || (unsigned)wtype >= QR_DTYPE_COUNT)
        return false;
    /* no native BF16 before sm_80: the runtime then converts BF16 weights to
     * F16 at load and the engine picks an F16 KV cache */
    if (wtype == QR_DTYPE_BF16 && cuda_dev(d)->cc < 80)
        return false;
    return true;
}

static qr_status cuda_get_props(struct qr_device *d, struct qr_device_props *p)
{
    qr_status st = cuda_enter(d);
    if (st != QR_OK)
        return st;
    return fill_props(cuda_dev(d)->index, p);
}

static void cuda_close(struct qr_device *d)
{
    if (!d)
        return;
    if (!d->dead) {
        cudaSetDevice(cuda_dev(d)->index);
        cudaDeviceSynchronize();
        (void)cudaGetLastError();
    }
    free(d);
}

static const struct qr_device_vt k_cuda_dev_vt = {
    .close = cuda_close,
    .get_props = cuda_get_props,
    .buf_alloc = cuda_buf_alloc,
    .buf_free = cuda_buf_free,
    .buf_from_host = NULL,
    .stream_create = cuda_stream_create,
    .stream_destroy = cuda_stream_destroy,
    .supports = cuda_supports,
};

static const struct qr_stream_vt k_cuda_stream_vt = {
    .write = cuda_write,
    .read = cuda_read,
    .copy = cuda_copy,
    .memset0 = cuda_memset0,
    .synchronize = cuda_sync,
    .graph_exec = cuda_graph_exec,
};

static struct qr_backend_reg k_cuda_reg;

static qr_status cuda_device_open(int idx, const struct qr_backend_opts *opts, struct qr_device **out)
{
    int n = cuda_device_count();
    if (n <= 0)
        return qr_set_error(QR_E_NOT_FOUND, "cuda: %s", g_why[0] ? g_why : "no CUDA device");
    if (idx < 0) {
        idx = 0;
        if (opts && opts->device_index >= 0)
            idx = opts->device_index;
        if (opts && opts->device_name) {
            for (int i = 0; i < n; i++) {
                struct cudaDeviceProp dp;
                if (cudaGetDeviceProperties(&dp, i) == cudaSuccess && strstr(dp.name, opts->device_name)) {
                    idx = i;
                    break;
                }
            }
        }
    }
    if (idx >= n)
        return qr_set_error(QR_E_INVALID_ARG, "cuda: no device %d (%d found)", idx, n);
    struct cudaDeviceProp dp;
    CUDA_TRY(NULL, cudaGetDeviceProperties(&dp, idx));
    CUDA_TRY(NULL, cudaSetDevice(idx));
    CUDA_TRY(NULL, cudaFree(0));   /* create the context now: errors surface here */
    struct cuda_device *cd = calloc(1, sizeof *cd);
    if (!cd)
        return qr_set_error(QR_E_OOM_HOST, "cuda: out of memory");
    cd->index = idx;
    cd->cc = dp.major * 10 + dp.minor;
    cd->n_sm = dp.multiProcessorCount;
    snprintf(cd->name, sizeof cd->name, "%.127s", dp.name);
    cd->dev.vt = &k_cuda_dev_vt;
    cd->dev.svt = &k_cuda_stream_vt;
    cd->dev.ops = &cuda_ops;
    cd->dev.reg = &k_cuda_reg;
    cd->dev.ctx = cd;
    if (cd->cc < 75)
        qr_log(QR_LOG_WARN, "cuda: %s has compute capability %d.%d; qrun's kernels target 7.5 and newer", dp.name,
               dp.major, dp.minor);
    if (cd->cc < 80)
        qr_log(QR_LOG_WARN, "cuda: %s has no native BF16: BF16 checkpoints are converted to F16 at load and the KV "
                            "cache is F16",
               dp.name);
    {
        /* the fused path (graph fusions, decode attention v2, PDL): on unless backends.ini says fused_kernels = 0 or
         * $QRUN_CUDA_FUSED=0; validated on the H100 (parity, e2e, engine tests; docs/PERF.md) */
        const char *fv = getenv("QRUN_CUDA_FUSED");
        if (!(fv && *fv) && opts && opts->get)
            fv = opts->get(opts, "fused_kernels");
        cd->fused = !(fv && *fv && (!strcmp(fv, "0") || !strcmp(fv, "false") || !strcmp(fv, "no")));
        /* programmatic dependent launch of the decode kernels: Hopper and newer, and only if the kernels that
         * run were compiled for sm_90+ (a build without arch 90 runs sm_80 PTX, which has no griddepcontrol.wait) */
        cuda_kernels_set_pdl(cd->fused && cd->cc >= 90 && cuda_kernels_ptx_version() >= 90);
        /* the wgmma prompt attention: needs the sm_90a build of the kernels on a cc 9.0 device; QR_CUDA_ATTN_WG=0
         * keeps the mma.sync kernel (attn.cu) */
        const char *wv = getenv("QR_CUDA_ATTN_WG");
        cd->wg_attn = !(wv && wv[0] == '0') && cd->cc == 90 && cuda_attn_prefill_wg_available();
        /* its A/B variants, first match wins: one
         * tile at a time (QR_CUDA_ATTN_WG_OVL=0; pipelined measured 202.5 vs 213.9 ms TTFT(8192)), one warpgroup per
         * block (QR_CUDA_ATTN_WG_HPB=1, slower), 64-key tiles (QR_CUDA_ATTN_WG_BK=64, slower), the gather outside
         * the softmax (QR_CUDA_ATTN_WG_MIX=0, 1434 vs 1403 us); else 128-key tiles with the gather inside it */
        const char *bk = getenv("QR_CUDA_ATTN_WG_BK"), *hpb = getenv("QR_CUDA_ATTN_WG_HPB");
        /* K/V tiles by TMA: by default for KV blocks of 64 rows or more; QR_CUDA_ATTN_WG_TMA=1 for every block size
         * >= 8 (slower at 16), =0 never, =pp the warpgroups taking turns, =64 64-key tiles (both slower) */
        const char *tma = getenv("QR_CUDA_ATTN_WG_TMA");
        /* variants of the TMA kernel (QR_CUDA_ATTN_TMA_FL=n, kernels/attn_prefill_tma.cu's FL bits); by default 129
         * (split K/V barriers, no basic-block boundary before the P V wait) where no other switch picks a kernel:
         * 1151-1168 us against 1182-1204 for FL 0 at 8192 causal in every lab round of three H100 calls (twenty-third
         * and twenty-fourth sessions); QR_CUDA_ATTN_TMA_FL=0 runs the earlier default */
        const char *tfl = getenv("QR_CUDA_ATTN_TMA_FL");
        bool other = tma || !cuda_env_switch("QR_CUDA_ATTN_WG_OVL", true) || (hpb && atoi(hpb) == 1) ||
                     (bk && atoi(bk) == 64) || !cuda_env_switch("QR_CUDA_ATTN_WG_MIX", true);
        int fl = tfl ? atoi(tfl) : other ? 0 : 129;
        if (fl && !cuda_attn_prefill_tma_fl_built(fl)) {
            qr_log(QR_LOG_WARN,
                   "cuda: QR_CUDA_ATTN_TMA_FL=%s: no such variant (0, 1, 2, 3, 7, 8, 9, 11, 128, 129, 137, 256, 257, "
                   "385, 512, 513, 641, 1024, 1025, 1152, 1153); ignored",
                   tfl);
            fl = 0;
        }
        cd->wg_variant = fl > 0                                          ? QK_WG_TMA_FL0 + fl
                         : tma && !strcmp(tma, "pp")                     ? QK_WG_TMA_PP
                         : tma && !strcmp(tma, "1")                      ? QK_WG_TMA
                         : tma && !strcmp(tma, "0")                      ? QK_WG_NOTMA
                         : !cuda_env_switch("QR_CUDA_ATTN_WG_OVL", true) ? QK_WG_SERIAL
                         : hpb && atoi(hpb) == 1                         ? QK_WG_1WG
                         : bk && atoi(bk) == 64                          ? QK_WG_BK64
                         : !cuda_env_switch("QR_CUDA_ATTN_WG_MIX", true) ? QK_WG_NOMIX
                                                                         : QK_WG_DEFAULT;
        cd->decode_tc = cuda_env_switch("QR_CUDA_DECODE_TC", true);
        /* measured on the H100 (docs/PERF.md, sixth session): TTFT(8192) 185.6 -> 181.8 ms, TTFT(512) 20.3 -> 18.6 */
        cd->gu16 = cuda_env_switch("QR_CUDA_GU16", true);
        /* the same for the prompt qkv GEMM, whose k and v rows then go to the caches only (cuda_graph_fuse.c);
         * QR_CUDA_QKV16=0 keeps f32 */
        cd->qkv16 = cuda_env_switch("QR_CUDA_QKV16", true);
        /* the one-token q/k-norm + RoPE + KV write folded into the qkv GEMV's last block per head (gemv_norm.cu) */
        cd->qkv_fold = cuda_env_switch("QR_CUDA_QKV_FOLD", false);
        /* a mixed batch's decode attention (memory-bound) on a higher-priority side stream, beside the prompt
         * attention (compute-bound), joined before the o_proj: measured nothing on the H100 (thirteenth session,
         * a serve burst's steps 143-147 ms either way: the prompt kernel's blocks leave no room), so opt-in
         * (QR_CUDA_ATTN_SIDE=1) */
        cd->attn_side = cuda_env_switch("QR_CUDA_ATTN_SIDE", false);
        /* the decode L2 prefetch of o_proj's weights (l2pf_ahead above): written in the sixteenth session as an A/B,
         * off until measured (QR_CUDA_L2PF=1|2|3, QR_CUDA_L2PF_BLOCKS, QR_CUDA_L2PF_NEXT_MB) */
        const char *pfm = getenv("QR_CUDA_L2PF"), *pfb = getenv("QR_CUDA_L2PF_BLOCKS"),
                   *pfn = getenv("QR_CUDA_L2PF_NEXT_MB");
        long pm = pfm && *pfm ? strtol(pfm, NULL, 10) : 0, pb = pfb && *pfb ? strtol(pfb, NULL, 10) : 32,
             pn = pfn && *pfn ? strtol(pfn, NULL, 10) : 0;
        cd->l2pf_mode = cd->fused && pm >= 1 && pm <= 3 ? (int)pm : 0;
        cd->l2pf_blocks = pb < 1 ? 1 : pb > 1024 ? 1024 : (int)pb;
        cd->l2pf_next_bytes = pn <= 0 ? 0 : (size_t)(pn > 48 ? 48 : pn) << 20;
        /* short prompt chunks after a long context on the split-KV chunk kernel (attn_chunk.cu; cuda_ops.c says
         * when): on by default since the fourteenth session (H100: TTFT of 16 new tokens after 8192 cached 14.3 ->
         * 10.1 ms, after 32768 31.5 -> 11.2); QR_CUDA_ATTN_CHUNK=0 off, =force for every launch it supports (tests) */
        const char *ck = getenv("QR_CUDA_ATTN_CHUNK");
        cd->attn_chunk = ck && !strcmp(ck, "force") ? 2 : cuda_env_switch("QR_CUDA_ATTN_CHUNK", true) ? 1 : 0;
        /* its version and the longest chunk the heuristic sends to it.  Defaults: the second version (two m-tiles
         * per warp past 8 m-tiles, splits by waves; attn_chunk.cu) up to 128 tokens, measured in the fifteenth
         * session (H200, kernel lab: 64 tokens after 32768 keys 380 -> 230 us against the first version, 128 after
         * 8192 141 us against the prompt kernel's 156; at 256 the prompt kernel wins, 165 vs 231).
         * QR_CUDA_ATTN_CHUNK_V=0 the first version (one m-tile per warp), QR_CUDA_ATTN_CHUNK_QMAX=N (2 ..
         * QR_CUDA_ATTN_CHUNK_QMAX = 256) the longest chunk */
        cd->attn_chunk_v = cuda_env_switch("QR_CUDA_ATTN_CHUNK_V", true) ? 1 : 0;
        const char *cq = getenv("QR_CUDA_ATTN_CHUNK_QMAX");
        long cqv = cq && *cq ? strtol(cq, NULL, 10) : 128;
        cd->attn_chunk_qmax = cqv < 2 ? 2 : cqv > QR_CUDA_ATTN_CHUNK_QMAX ? QR_CUDA_ATTN_CHUNK_QMAX : (int)cqv;
        cd->keep_intermediates = cuda_env_switch("QR_CUDA_KEEP_INTERMEDIATES", false);
        /* 16-byte loads/stores in the prompt RMSNorm and SwiGLU passes that write the GEMM input (same bits);
         * written without a GPU in the seventh session, QR_CUDA_PREFILL_VEC=0 is the A/B */
        cd->prefill_vec = cuda_env_switch("QR_CUDA_PREFILL_VEC", true);
        /* split decode attention merged by its last block instead of a merge kernel: slower on the H100 (kernel
         * lab, ctx 512: 10.9 -> 13.4 us; decode 269.7 -> 265.1 tok/s with it), so opt-in (QR_CUDA_ATTN_LASTMERGE=1) */
        cd->attn_lastmerge = cuda_env_switch("QR_CUDA_ATTN_LASTMERGE", false);
        /* decode attention's first K/V gathers before the PDL wait (H100, eighth session: decode 266.3 -> 272.9
         * tok/s at 512); QR_CUDA_ATTN_EARLY=0 waits first */
        cd->attn_early = cuda_env_switch("QR_CUDA_ATTN_EARLY", true);
        /* FP8 prompts on the Hopper TMA kernel (tiles converted to f16 in shared memory): on the H100 (twelfth
         * session, dev_s23.sh) test_backend_ops 180/180 with it, TTFT(8192) 165.0 ms against 209.3 on the mma.sync
         * kernel; QR_CUDA_ATTN_F8_TMA=0 keeps FP8 prompts on mma.sync */
        cd->f8_tma = cuda_env_switch("QR_CUDA_ATTN_F8_TMA", true);
        /* prompt GEMMs on the cublasLt algorithm tuned per shape (cuda_gemm_tune.c): on the H100 (thirteenth
         * session, dev_s29.sh) TTFT(8192) 143.3 / 142.4 -> 140.8 / 140.7 ms, parity and e2e unchanged.  The choice
         * is timed, so two processes may pick different algorithms (same results within rounding, not always the
         * same bits): backends.ini gemm_tune = 0 or $QR_CUDA_GEMM_TUNE=0 keep cublasGemmEx's default */
        const char *gt = getenv("QR_CUDA_GEMM_TUNE");
        if (!(gt && *gt) && opts && opts->get)
            gt = opts->get(opts, "gemm_tune");
        cd->gemm_tune = !(gt && *gt && (!strcmp(gt, "0") || !strcmp(gt, "false") || !strcmp(gt, "no")));
        /* tuning at the batch sizes of serving and offline decoding (cuda_gemm_tune.c): opt-in until measured */
        cd->tune_algos = cuda_opt_int(opts, "QR_CUDA_GEMM_TUNE_ALGOS", "gemm_tune_algos", 8, 1, 32);
        cd->tune_min_m = cuda_opt_int(opts, "QR_CUDA_GEMM_TUNE_MIN_M", "gemm_tune_min_m", 64, 2, 1 << 20);
        cd->tune_splitk_m = cuda_opt_int(opts, "QR_CUDA_GEMM_TUNE_SPLITK", "gemm_tune_splitk", 0, 0, 1 << 20);
        cd->tune_log = cuda_env_switch("QR_CUDA_GEMM_TUNE_LOG", false);
        cd->tune_force_splitk = cuda_env_switch("QR_CUDA_GEMM_TUNE_FORCE_SPLITK", false);
        /* the tuner's choices kept per device, so a later process reuses them (same bits, no timing) */
        const char *tc = getenv("QR_CUDA_GEMM_TUNE_CACHE");
        if (!(tc && *tc) && opts && opts->get)
            tc = opts->get(opts, "gemm_tune_cache");
        cd->tune_cache = !(tc && (!strcmp(tc, "0") || !strcmp(tc, "off") || !strcmp(tc, "false") || !strcmp(tc, "no")));
        cd->tune_cache_dir[0] = '\0';
        if (cd->tune_cache && tc && *tc && strcmp(tc, "auto") && strcmp(tc, "1")) {
            if (strlen(tc) >= sizeof cd->tune_cache_dir) {
                qr_log(QR_LOG_WARN, "cuda: gemm_tune_cache directory longer than %zu bytes: no tuning cache",
                       sizeof cd->tune_cache_dir - 1);
                cd->tune_cache = false;
            } else {
                snprintf(cd->tune_cache_dir, sizeof cd->tune_cache_dir, "%s", tc);
            }
        }
    }
    qr_log(QR_LOG_INFO, "cuda: opened device %d: %s (cc %d.%d, %d SMs)%s%s", idx, dp.name, dp.major, dp.minor,
           dp.multiProcessorCount, cd->fused ? "" : "; fused kernels off (fused_kernels = 0)",
           !cd->wg_attn                       ? ""
           : cd->wg_variant == QK_WG_DEFAULT ? "; prompt attention on wgmma (K/V by TMA for blocks of 64+ tokens)"
                                             : "; prompt attention on wgmma (an A/B variant: QR_CUDA_ATTN_WG_*)");
    *out = &cd->dev;
    return QR_OK;
}

static void cuda_shutdown(void) {}

static struct qr_backend_reg k_cuda_reg = {
    .api_version = QR_BACKEND_API_VERSION,
    .name = "cuda",
    .device_count = cuda_device_count,
    .device_describe = cuda_device_describe,
    .device_open = cuda_device_open,
    .unavailable_reason = cuda_unavailable_reason,
    .get_proc = NULL,
    .shutdown = cuda_shutdown,
};

__attribute__((visibility("default"))) struct qr_backend_reg *qr_backend_init(void) { return &k_cuda_reg; }

/* 1 even without a device, so that `qrun backends` shows unavailable_reason() */
__attribute__((visibility("default"))) int qr_backend_score(void) { return cuda_device_count() > 0 ? 100 : 1; }
