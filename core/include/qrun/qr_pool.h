/* qr_pool.h - a small fork-join thread pool.
 * qr_pool_run(p, fn, ctx, n, min_chunk) calls fn(ctx, b, e, tid) over chunks
 * [b, e) of [0, n) on all threads (the caller is thread 0, tid <
 * qr_pool_threads(p) indexes per-thread scratch) and returns when every chunk
 * is done.  Calls from several threads are serialised.  Idle workers spin
 * ~100 us, then sleep on a condition variable. */
#ifndef QRUN_QR_POOL_H
#define QRUN_QR_POOL_H

#include "qrun/qr_types.h"

#include <stdint.h>

struct qr_pool;
typedef void (*qr_pool_fn)(void *ctx, int64_t begin, int64_t end, int tid);

/* n_threads <= 1: no workers, qr_pool_run calls fn inline; who names the owner in messages */
qr_status qr_pool_create(int n_threads, const char *who, struct qr_pool **out);
void qr_pool_run(struct qr_pool *p, qr_pool_fn fn, void *ctx, int64_t n, int64_t min_chunk);
int qr_pool_threads(const struct qr_pool *p);
void qr_pool_destroy(struct qr_pool *p);

#endif
