/* thread_pool.c - a small fork-join pool (qr_pool.h): the CPU backend's ops
 * and the engine's per-row sampling run on it. */
#include "qrun/qr_pool.h"
#include "qrun/qr_types.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct qr_pool {
    int n_threads;                 /* including the caller */
    pthread_t *threads;            /* n_threads - 1 workers */
    pthread_mutex_t mu;
    pthread_cond_t cv_start, cv_done;
    pthread_mutex_t run_mu;        /* one job at a time */
    atomic_uint_fast64_t gen;      /* bumped once per job */
    atomic_int n_busy;             /* workers still on the current job */
    atomic_bool quit;
    qr_pool_fn fn;
    void *ctx;
    int64_t n, chunk;
    atomic_llong next;
};

int qr_pool_threads(const struct qr_pool *p) { return p ? p->n_threads : 1; }


static void pool_work(struct qr_pool *p, int tid)
{
    for (;;) {
        int64_t b = atomic_fetch_add(&p->next, p->chunk);
        if (b >= p->n)
            break;
        int64_t e = b + p->chunk < p->n ? b + p->chunk : p->n;
        p->fn(p->ctx, b, e, tid);
    }
}

struct worker_arg {
    struct qr_pool *p;
    int tid;
};

/* Between jobs, workers (and the caller waiting for them) spin for a short
 * while before sleeping: a forward pass is hundreds of small ops in a row and
 * a condition-variable wake-up costs tens of microseconds each. */
#define CPU_SPIN_S 100e-6

static bool spin_until_changed(const atomic_uint_fast64_t *v, uint64_t seen)
{
    double t0 = qr_time_s();
    for (int i = 1;; i++) {
        if (atomic_load_explicit(v, memory_order_acquire) != seen)
            return true;
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
        if ((i & 255) == 0 && qr_time_s() - t0 > CPU_SPIN_S)
            return false;
    }
}

static void *pool_main(void *arg)
{
    struct worker_arg wa = *(struct worker_arg *)arg;
    free(arg);
    struct qr_pool *p = wa.p;
    uint64_t seen = 0;
    for (;;) {
        if (!spin_until_changed(&p->gen, seen)) {
            pthread_mutex_lock(&p->mu);
            while (atomic_load(&p->gen) == seen && !atomic_load(&p->quit))
                pthread_cond_wait(&p->cv_start, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->quit))
            return NULL;
        seen = atomic_load_explicit(&p->gen, memory_order_acquire);
        pool_work(p, wa.tid);
        if (atomic_fetch_sub(&p->n_busy, 1) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->cv_done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

void qr_pool_run(struct qr_pool *p, qr_pool_fn fn, void *ctx, int64_t n, int64_t min_chunk)
{
    if (n <= 0)
        return;
    if (min_chunk < 1)
        min_chunk = 1;
    pthread_mutex_lock(&p->run_mu);
    int nt = p->n_threads;
    if (nt <= 1 || n <= min_chunk) {
        fn(ctx, 0, n, 0);
        pthread_mutex_unlock(&p->run_mu);
        return;
    }
    /* about 4 chunks per thread for balance, never below min_chunk */
    int64_t chunk = (n + 4 * (int64_t)nt - 1) / (4 * (int64_t)nt);
    if (chunk < min_chunk)
        chunk = min_chunk;
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    p->chunk = chunk;
    atomic_store(&p->next, 0);
    atomic_store(&p->n_busy, nt - 1);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv_start);
    pthread_mutex_unlock(&p->mu);
    pool_work(p, 0);
    double t0 = qr_time_s();
    for (int i = 1; atomic_load_explicit(&p->n_busy, memory_order_acquire) > 0; i++) {
        if ((i & 255) == 0 && qr_time_s() - t0 > CPU_SPIN_S) {
            pthread_mutex_lock(&p->mu);
            while (atomic_load(&p->n_busy) > 0)
                pthread_cond_wait(&p->cv_done, &p->mu);
            pthread_mutex_unlock(&p->mu);
            break;
        }
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }
    pthread_mutex_unlock(&p->run_mu);
}

void qr_pool_destroy(struct qr_pool *p)
{
    if (!p)
        return;
    if (p->threads) {
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->quit, true);
        pthread_cond_broadcast(&p->cv_start);
        pthread_mutex_unlock(&p->mu);
        for (int i = 0; i < p->n_threads - 1; i++)
            pthread_join(p->threads[i], NULL);
        free(p->threads);
        p->threads = NULL;
    }
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->run_mu);
    pthread_cond_destroy(&p->cv_start);
    pthread_cond_destroy(&p->cv_done);
    free(p);
}

qr_status qr_pool_create(int n_threads, const char *who, struct qr_pool **out)
{
    struct qr_pool *p = calloc(1, sizeof *p);
    *out = NULL;
    if (!p)
        return qr_set_error(QR_E_OOM_HOST, "%s: out of memory for the thread pool", who);
    *out = p;
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->run_mu, NULL);
    pthread_cond_init(&p->cv_start, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    p->n_threads = 1;
    if (n_threads <= 1)
        return QR_OK;
    p->threads = calloc((size_t)n_threads - 1, sizeof *p->threads);
    if (!p->threads)
        return qr_set_error(QR_E_OOM_HOST, "%s: out of memory for the thread pool", who);
    for (int i = 0; i < n_threads - 1; i++) {
        struct worker_arg *wa = malloc(sizeof *wa);
        int rc = wa ? 0 : ENOMEM;
        if (wa) {
            wa->p = p;
            wa->tid = i + 1;
            rc = pthread_create(&p->threads[i], NULL, pool_main, wa);
            if (rc)
                free(wa);
        }
        if (rc) {
            p->n_threads = i + 1;   /* the i workers started so far, plus the caller */
            qr_log(QR_LOG_WARN, "%s: could only start %d of %d threads (%s)", who, i + 1, n_threads, strerror(rc));
            return QR_OK;
        }
        p->n_threads = i + 2;
    }
    return QR_OK;
}

