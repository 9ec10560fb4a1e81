/* qr_kv.h - the paged KV cache's bookkeeping on the host (vLLM v1 style).
 *
 *  - A pool of num_blocks fixed-size blocks (block_size tokens each), named by
 *    block id 0..num_blocks-1, each with a reference count.
 *  - Blocks with ref_cnt 0 sit in an intrusive doubly-linked free queue in LRU
 *    order: freed blocks go to the tail, allocation pops the head.
 *  - Prefix cache: a full block may be registered under a chained hash of
 *    (parent block's hash, the block's tokens).  Registered blocks stay
 *    registered while free ("cached-free") and are evicted lazily, when the
 *    free queue hands them out again.  A lookup confirms every hit by comparing
 *    the tokens and the parent block, so two different token blocks never share
 *    an entry even when their hashes collide.
 *  - A sequence owns an append-only block table; a prefix hit is capped so the
 *    last token is always recomputed (logits are needed for it).
 *
 * Only the host side lives here: the device KV buffers belong to the runtime.
 * Not thread-safe: the engine thread owns the pool. */
#ifndef QRUN_QR_KV_H
#define QRUN_QR_KV_H

#include "qr_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* hash of one full block given its parent's hash (QR_KV_ROOT_HASH for the first) */
typedef uint64_t (*qr_kv_hash_fn)(uint64_t parent, const int32_t *tokens, int n);
#define QR_KV_ROOT_HASH 0x51a7e2c0ffee1234ull

struct qr_kv_pool_opts {
    int num_blocks;                /* > 0 */
    int block_size;                /* > 0 */
    bool enable_prefix_caching;
    qr_kv_hash_fn hash_fn;         /* NULL: the default (tests pass a colliding one) */
};

struct qr_kv_pool;

/* an append-only block table of one sequence */
struct qr_kv_seq {
    int32_t *blocks;               /* (n_blocks) block ids in order */
    int n_blocks, cap;
    int n_hashed;                  /* leading blocks registered or matched in the prefix cache */
    uint64_t last_hash;            /* chain hash of block n_hashed-1 (ROOT when 0) */
};

qr_status qr_kv_pool_create(const struct qr_kv_pool_opts *o, struct qr_kv_pool **out);
void qr_kv_pool_destroy(struct qr_kv_pool *p);

int qr_kv_pool_num_blocks(const struct qr_kv_pool *p);
int qr_kv_pool_block_size(const struct qr_kv_pool *p);
bool qr_kv_pool_prefix_caching(const struct qr_kv_pool *p);
int qr_kv_pool_num_free(const struct qr_kv_pool *p);         /* ref_cnt == 0 (cached-free included) */
int qr_kv_pool_num_cached_free(const struct qr_kv_pool *p);  /* free and still registered */
int qr_kv_pool_num_used(const struct qr_kv_pool *p);         /* ref_cnt > 0 */
int qr_kv_pool_num_cached(const struct qr_kv_pool *p);       /* registered (used or free) */

/* ---- single blocks ---- */
/* Pops the LRU free block (evicting its prefix-cache entry); -1 when none is free. */
int32_t qr_kv_block_alloc(struct qr_kv_pool *p);
/* Drops one reference; at 0 the block goes to the free queue's tail (stays cached if registered). */
void qr_kv_block_free(struct qr_kv_pool *p, int32_t id);
/* Adds a reference (a prefix hit): a free block leaves the free queue. */
void qr_kv_block_touch(struct qr_kv_pool *p, int32_t id);
int qr_kv_block_ref_cnt(const struct qr_kv_pool *p, int32_t id);
bool qr_kv_block_is_cached(const struct qr_kv_pool *p, int32_t id);
/* free-queue order from head (next to be allocated) to tail; returns the count */
int qr_kv_pool_free_order(const struct qr_kv_pool *p, int32_t *ids, int max);

/* default chained block hash */
uint64_t qr_kv_hash_block(uint64_t parent, const int32_t *tokens, int n);

/* ---- prefix cache ---- */
/* Longest cached prefix of tokens[0..n): full blocks only, capped at n-1
 * tokens.  Writes up to max block ids to blocks (in order) and returns the
 * number of blocks matched (0 with prefix caching off).  Touches nothing. */
int qr_kv_prefix_lookup(const struct qr_kv_pool *p, const int32_t *tokens, int n, int32_t *blocks, int max);
/* how many of blocks[0..n) are free now (a hit on them uses up free blocks) */
int qr_kv_count_free_among(const struct qr_kv_pool *p, const int32_t *blocks, int n);

/* ---- sequences ---- */
void qr_kv_seq_init(struct qr_kv_seq *s);
/* frees the table storage; the seq must hold no blocks (qr_kv_seq_free first) */
void qr_kv_seq_release(struct qr_kv_seq *s);
/* Starts an empty sequence on a prefix hit: touches blocks[0..n) and appends
 * them; they count as registered.  tokens are the sequence's tokens (for the hash chain). */
qr_status qr_kv_seq_take_prefix(struct qr_kv_pool *p, struct qr_kv_seq *s, const int32_t *tokens,
                                const int32_t *blocks, int n);
/* blocks needed on top of the table to hold n_tokens tokens */
int qr_kv_seq_blocks_needed(const struct qr_kv_pool *p, const struct qr_kv_seq *s, int n_tokens);
/* Grows the table so it holds n_tokens tokens.  Returns false (and changes
 * nothing) when the pool lacks free blocks: not an error, the scheduler
 * preempts.  Host allocation failure also returns false with *st set. */
bool qr_kv_seq_alloc(struct qr_kv_pool *p, struct qr_kv_seq *s, int n_tokens, qr_status *st);
/* Registers the full blocks among the first n_computed tokens (their KV is
 * written) in the prefix cache, continuing the hash chain. */
void qr_kv_seq_commit(struct qr_kv_pool *p, struct qr_kv_seq *s, const int32_t *tokens, int n_computed);
/* Releases every block, last first (chain tails are evicted first), and empties the table. */
void qr_kv_seq_free(struct qr_kv_pool *p, struct qr_kv_seq *s);
/* KV slot of position pos (block_id * block_size + offset); -1 if not covered */
int32_t qr_kv_seq_slot(const struct qr_kv_pool *p, const struct qr_kv_seq *s, int pos);

/* Checks the pool's invariants (free queue linked both ways and holding exactly
 * the ref_cnt-0 blocks, counters, hash index).  QR_E_INTERNAL with a message. */
qr_status qr_kv_pool_check(const struct qr_kv_pool *p);

#ifdef __cplusplus
}
#endif
#endif
