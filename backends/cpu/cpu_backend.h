/* cpu_backend.h - private to the CPU backend: the device, its thread pool and
 * the reference ops (cpu_ref_ops.c).  Nothing here is exported from the .so. */
#ifndef QRUN_CPU_BACKEND_H
#define QRUN_CPU_BACKEND_H

#include "qrun/qr_backend.h"
#include "qrun/qr_pool.h"

#include <pthread.h>
#include <stdatomic.h>

struct cpu_device {
    struct qr_device dev;          /* first: (struct qr_device *) == (struct cpu_device *) */
    struct qr_pool *pool;
    int index;
    bool no_bf16;   /* ini `no_bf16 = 1`: act like a device without BF16 (tests the runtime's F16 conversion) */
    /* per-thread scratch of the ops (grown on demand, kept between ops so a
     * decode step does not mmap/munmap megabytes per matmul) */
    pthread_mutex_t scratch_mu;
    float *scratch;
    size_t scratch_n;
};

static inline struct qr_pool *cpu_pool_of(struct qr_stream *s)
{
    return ((struct cpu_device *)s->dev)->pool;
}

/* Locks the device scratch and returns at least n floats of it (NULL: out of
 * memory, unlocked).  Release with cpu_scratch_release(). */
float *cpu_scratch_acquire(struct qr_stream *s, size_t n);
void cpu_scratch_release(struct qr_stream *s);



extern const struct qr_ops cpu_ref_ops;

#endif
