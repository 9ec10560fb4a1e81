/* cpu_backend.h - private to the CPU backend: the device, its thread pool and
 * the reference ops (cpu_ref_ops.c).  Nothing here is exported from the .so. */
#ifndef QRUN_CPU_BACKEND_H
#define QRUN_CPU_BACKEND_H

#include "qrun/qr_backend.h"

#include <pthread.h>
#include <stdatomic.h>

/* A small fork-join pool: cpu_pool_run(p, fn, ctx, n) calls fn(ctx, b, e, tid)
 * over chunks [b, e) of [0, n) on all threads (the caller is thread 0) and
 * returns when every chunk is done.  tid < p->n_threads indexes per-thread
 * scratch.  Calls from several threads are serialised. */
typedef void (*cpu_task_fn)(void *ctx, int64_t begin, int64_t end, int tid);

struct cpu_pool {
    int n_threads;                 /* including the caller */
    pthread_t *threads;            /* n_threads - 1 workers */
    pthread_mutex_t mu;
    pthread_cond_t cv_start, cv_done;
    pthread_mutex_t run_mu;        /* one job at a time */
    atomic_uint_fast64_t gen;      /* bumped once per job */
    atomic_int n_busy;             /* workers still on the current job */
    atomic_bool quit;
    cpu_task_fn fn;
    void *ctx;
    int64_t n, chunk;
    atomic_llong next;
};

struct cpu_device {
    struct qr_device dev;          /* first: (struct qr_device *) == (struct cpu_device *) */
    struct cpu_pool pool;
    int index;
    bool no_bf16;   /* ini `no_bf16 = 1`: act like a device without BF16 (tests the runtime's F16 conversion) */
    /* per-thread scratch of the ops (grown on demand, kept between ops so a
     * decode step does not mmap/munmap megabytes per matmul) */
    pthread_mutex_t scratch_mu;
    float *scratch;
    size_t scratch_n;
};

static inline struct cpu_pool *cpu_pool_of(struct qr_stream *s)
{
    return &((struct cpu_device *)s->dev)->pool;
}

/* Locks the device scratch and returns at least n floats of it (NULL: out of
 * memory, unlocked).  Release with cpu_scratch_release(). */
float *cpu_scratch_acquire(struct qr_stream *s, size_t n);
void cpu_scratch_release(struct qr_stream *s);

/* min_chunk: smallest useful unit of work per chunk (>= 1) */
void cpu_pool_run(struct cpu_pool *p, cpu_task_fn fn, void *ctx, int64_t n, int64_t min_chunk);

extern const struct qr_ops cpu_ref_ops;

#endif
