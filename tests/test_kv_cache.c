/* test_kv_cache.c - the KV block pool and the prefix cache (pure C, no model):
 * ref counts and free counts, LRU order of the free queue, the hash chain, a
 * hit confirmed by comparing tokens (forced collisions), the parent check after
 * eviction, hits capped at n-1 tokens, append-only tables, all free at the end. */
#include "qrun/qr_kv.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

static uint64_t collide_hash(uint64_t parent, const int32_t *tokens, int n)
{
    (void)parent;
    (void)tokens;
    (void)n;
    return 42;   /* every block collides: only the token/parent comparison keeps hits right */
}

static struct qr_kv_pool *mkpool(int nb, int bs, bool prefix, qr_kv_hash_fn fn)
{
    struct qr_kv_pool_opts o = {.num_blocks = nb, .block_size = bs, .enable_prefix_caching = prefix, .hash_fn = fn};
    struct qr_kv_pool *p = NULL;
    CHECK(qr_kv_pool_create(&o, &p) == QR_OK);
    return p;
}

static void test_pool_basics(void)
{
    struct qr_kv_pool *p = mkpool(8, 4, false, NULL);
    CHECK(qr_kv_pool_num_free(p) == 8 && qr_kv_pool_num_used(p) == 0);
    int32_t ids[8];
    for (int i = 0; i < 8; i++) {
        ids[i] = qr_kv_block_alloc(p);
        CHECK(ids[i] == i);               /* initial order 0..7 */
        CHECK(qr_kv_block_ref_cnt(p, ids[i]) == 1);
    }
    CHECK(qr_kv_block_alloc(p) == -1);
    CHECK(qr_kv_pool_num_free(p) == 0 && qr_kv_pool_num_used(p) == 8);
    CHECK(qr_kv_pool_check(p) == QR_OK);
    /* LRU: freed blocks queue at the tail in free order */
    qr_kv_block_free(p, 3);
    qr_kv_block_free(p, 1);
    qr_kv_block_free(p, 5);
    int32_t order[8];
    int n = qr_kv_pool_free_order(p, order, 8);
    CHECK(n == 3 && order[0] == 3 && order[1] == 1 && order[2] == 5);
    /* a second reference keeps a block out of the queue until both are dropped */
    qr_kv_block_touch(p, 6);
    CHECK(qr_kv_block_ref_cnt(p, 6) == 2);
    qr_kv_block_free(p, 6);
    CHECK(qr_kv_block_ref_cnt(p, 6) == 1 && qr_kv_pool_num_free(p) == 3);
    /* touching a free block takes it out of the middle of the queue (O(1) unlink) */
    qr_kv_block_touch(p, 1);
    n = qr_kv_pool_free_order(p, order, 8);
    CHECK(n == 2 && order[0] == 3 && order[1] == 5);
    CHECK(qr_kv_pool_check(p) == QR_OK);
    CHECK(qr_kv_block_alloc(p) == 3);     /* head first */
    for (int i = 0; i < 8; i++)
        if (qr_kv_block_ref_cnt(p, i) > 0)
            qr_kv_block_free(p, i);
    CHECK(qr_kv_pool_num_free(p) == 8);
    CHECK(qr_kv_pool_check(p) == QR_OK);
    qr_kv_pool_destroy(p);
}

static void test_seq_tables(void)
{
    struct qr_kv_pool *p = mkpool(6, 4, false, NULL);
    struct qr_kv_seq a, b;
    qr_kv_seq_init(&a);
    qr_kv_seq_init(&b);
    CHECK(qr_kv_seq_blocks_needed(p, &a, 10) == 3);
    CHECK(qr_kv_seq_alloc(p, &a, 10, NULL));
    CHECK(a.n_blocks == 3);
    CHECK(qr_kv_seq_slot(p, &a, 0) == a.blocks[0] * 4);
    CHECK(qr_kv_seq_slot(p, &a, 9) == a.blocks[2] * 4 + 1);
    CHECK(qr_kv_seq_slot(p, &a, 12) == -1);
    int32_t first = a.blocks[0];
    CHECK(qr_kv_seq_alloc(p, &a, 12, NULL) && a.n_blocks == 3);   /* still fits */
    CHECK(qr_kv_seq_alloc(p, &a, 13, NULL) && a.n_blocks == 4);
    CHECK(a.blocks[0] == first);                                  /* append-only */
    /* not enough free blocks: false, nothing changes */
    CHECK(!qr_kv_seq_alloc(p, &b, 12, NULL));
    CHECK(b.n_blocks == 0 && qr_kv_pool_num_free(p) == 2);
    CHECK(qr_kv_seq_alloc(p, &b, 8, NULL) && qr_kv_pool_num_free(p) == 0);
    int32_t last_a = a.blocks[3];
    qr_kv_seq_free(p, &a);
    /* freed in reverse: the table's tail is at the queue head, evicted first */
    int32_t order[8];
    int n = qr_kv_pool_free_order(p, order, 8);
    CHECK(n == 4 && order[0] == last_a && order[3] == first);
    qr_kv_seq_free(p, &b);
    CHECK(qr_kv_pool_num_free(p) == 6);
    CHECK(qr_kv_pool_check(p) == QR_OK);
    qr_kv_seq_release(&a);
    qr_kv_seq_release(&b);
    qr_kv_pool_destroy(p);
}

/* runs tokens through a fresh sequence: prefix hit, alloc, commit everything; returns the hit blocks */
static int run_seq(struct qr_kv_pool *p, struct qr_kv_seq *s, const int32_t *t, int n)
{
    int32_t hit[64];
    qr_kv_seq_init(s);
    int nh = qr_kv_prefix_lookup(p, t, n, hit, 64);
    CHECK(qr_kv_seq_take_prefix(p, s, t, hit, nh) == QR_OK);
    CHECK(qr_kv_seq_alloc(p, s, n, NULL));
    qr_kv_seq_commit(p, s, t, n);
    return nh;
}

static void test_prefix_cache(qr_kv_hash_fn fn)
{
    const int bs = 4;
    struct qr_kv_pool *p = mkpool(16, bs, true, fn);
    int32_t A[21], B[21], hit[16];
    for (int i = 0; i < 21; i++) {
        A[i] = 100 + i;
        B[i] = 100 + i;
    }
    B[9] = 7;   /* B differs from A in block 2 */
    struct qr_kv_seq sa, sb;
    CHECK(run_seq(p, &sa, A, 20) == 0);
    CHECK(qr_kv_pool_num_cached(p) == 5);        /* 20 tokens = 5 full blocks */
    /* hits are capped at n-1 tokens: 20 tokens can reuse only 4 blocks */
    CHECK(qr_kv_prefix_lookup(p, A, 20, hit, 16) == 4);
    CHECK(qr_kv_prefix_lookup(p, A, 21, hit, 16) == 5);
    CHECK(qr_kv_prefix_lookup(p, A, 17, hit, 16) == 4);
    CHECK(qr_kv_prefix_lookup(p, A, 16, hit, 16) == 3);
    CHECK(qr_kv_prefix_lookup(p, A, 4, hit, 16) == 0);
    CHECK(qr_kv_prefix_lookup(p, A, 5, hit, 16) == 1 && hit[0] == sa.blocks[0]);
    /* the chain: B matches blocks 0-1 only, even though its blocks 3-4 hold A's tokens */
    CHECK(qr_kv_prefix_lookup(p, B, 21, hit, 16) == 2);
    /* a block's tokens at another position (another parent) never hit */
    int32_t C[9];
    memcpy(C, A + 4, 8 * sizeof *C);   /* A's block 1 then block 2 as blocks 0-1 */
    C[8] = 1;
    CHECK(qr_kv_prefix_lookup(p, C, 9, hit, 16) == 0);
    /* shared blocks: B runs on A's first two blocks, with references */
    CHECK(run_seq(p, &sb, B, 21) == 2);
    CHECK(sb.blocks[0] == sa.blocks[0] && sb.blocks[1] == sa.blocks[1]);
    CHECK(qr_kv_block_ref_cnt(p, sa.blocks[0]) == 2 && qr_kv_block_ref_cnt(p, sa.blocks[2]) == 1);
    CHECK(qr_kv_pool_check(p) == QR_OK);
    int32_t a_blocks[5], b_blocks[5];
    memcpy(a_blocks, sa.blocks, sizeof a_blocks);
    memcpy(b_blocks, sb.blocks, sizeof b_blocks);
    qr_kv_seq_free(p, &sa);
    /* A's private blocks are cached-free; its shared blocks stay in use by B */
    CHECK(qr_kv_pool_num_cached_free(p) == 3);
    CHECK(qr_kv_block_ref_cnt(p, a_blocks[0]) == 1);
    CHECK(qr_kv_prefix_lookup(p, A, 21, hit, 16) == 5);   /* still hits after the free */
    qr_kv_seq_free(p, &sb);
    CHECK(qr_kv_pool_num_free(p) == 16);
    /* a hit takes cached-free blocks out of the queue */
    struct qr_kv_seq sc;
    CHECK(run_seq(p, &sc, A, 21) == 5);
    CHECK(memcmp(sc.blocks, a_blocks, sizeof a_blocks) == 0);
    CHECK(qr_kv_block_ref_cnt(p, a_blocks[4]) == 1);
    qr_kv_seq_free(p, &sc);
    CHECK(qr_kv_pool_check(p) == QR_OK);
    /* lazy LRU eviction: allocating every never-cached block keeps the cache;
     * the next allocation evicts the least recently freed cached block: B was
     * freed before A's second use, and B's chain tail was freed first */
    int32_t got[16], head;
    int ng = 0;
    while (qr_kv_pool_free_order(p, &head, 1) == 1 && !qr_kv_block_is_cached(p, head))
        got[ng++] = qr_kv_block_alloc(p);
    CHECK(ng == 7);   /* 6 never used + B's partial last block */
    CHECK(qr_kv_prefix_lookup(p, B, 21, hit, 16) == 5);
    got[ng++] = qr_kv_block_alloc(p);
    CHECK(got[ng - 1] == b_blocks[4]);
    CHECK(!qr_kv_block_is_cached(p, got[ng - 1]));
    CHECK(qr_kv_prefix_lookup(p, B, 21, hit, 16) == 4);
    CHECK(qr_kv_prefix_lookup(p, A, 21, hit, 16) == 5);
    got[ng++] = qr_kv_block_alloc(p);
    CHECK(got[ng - 1] == b_blocks[3]);
    CHECK(qr_kv_prefix_lookup(p, B, 21, hit, 16) == 3);
    CHECK(qr_kv_pool_check(p) == QR_OK);
    for (int i = 0; i < ng; i++)
        qr_kv_block_free(p, got[i]);
    qr_kv_seq_release(&sa);
    qr_kv_seq_release(&sb);
    qr_kv_seq_release(&sc);
    CHECK(qr_kv_pool_num_free(p) == 16 && qr_kv_pool_num_used(p) == 0);
    CHECK(qr_kv_pool_check(p) == QR_OK);
    qr_kv_pool_destroy(p);
}

/* an evicted parent block reused for other tokens must not revive the old child */
static void test_parent_generation(void)
{
    const int bs = 4;
    struct qr_kv_pool *p = mkpool(3, bs, true, collide_hash);
    int32_t X[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, Z[9] = {11, 12, 13, 14, 5, 6, 7, 8, 9}, hit[4];
    struct qr_kv_seq a;
    CHECK(run_seq(p, &a, X, 8) == 0);    /* blocks 0 (x) and 1 (y) */
    int32_t bx = a.blocks[0], by = a.blocks[1];
    qr_kv_seq_free(p, &a);
    CHECK(qr_kv_prefix_lookup(p, X, 9, hit, 4) == 2);
    qr_kv_block_touch(p, by);                  /* hold y, then evict x */
    int32_t b2 = qr_kv_block_alloc(p);
    int32_t b0 = qr_kv_block_alloc(p);
    CHECK(b0 == bx && b2 != bx && b2 != by);
    qr_kv_block_free(p, b2);
    struct qr_kv_seq c;                        /* the old x block now holds Z's first block */
    qr_kv_seq_init(&c);
    c.blocks = malloc(sizeof *c.blocks);
    c.blocks[0] = b0;
    c.n_blocks = c.cap = 1;
    qr_kv_seq_commit(p, &c, Z, 4);
    qr_kv_block_free(p, by);
    /* Z's block 1 has y's tokens and y's parent id, but y was computed after x: only 1 hit */
    CHECK(qr_kv_prefix_lookup(p, Z, 9, hit, 4) == 1 && hit[0] == b0);
    CHECK(qr_kv_prefix_lookup(p, X, 9, hit, 4) == 0);
    qr_kv_seq_free(p, &c);
    qr_kv_seq_release(&c);
    qr_kv_seq_release(&a);
    CHECK(qr_kv_pool_num_free(p) == 3);
    CHECK(qr_kv_pool_check(p) == QR_OK);
    qr_kv_pool_destroy(p);
}

static void test_prefix_off(void)
{
    struct qr_kv_pool *p = mkpool(8, 4, false, NULL);
    int32_t A[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, hit[4];
    struct qr_kv_seq a;
    CHECK(run_seq(p, &a, A, 9) == 0);
    CHECK(qr_kv_prefix_lookup(p, A, 9, hit, 4) == 0);
    CHECK(qr_kv_pool_num_cached(p) == 0);
    qr_kv_seq_free(p, &a);
    qr_kv_seq_release(&a);
    CHECK(qr_kv_pool_num_cached_free(p) == 0 && qr_kv_pool_num_free(p) == 8);
    qr_kv_pool_destroy(p);
    struct qr_kv_pool_opts bad = {.num_blocks = 0, .block_size = 16};
    struct qr_kv_pool *q = NULL;
    CHECK(qr_kv_pool_create(&bad, &q) == QR_E_INVALID_ARG && q == NULL);
}

int main(void)
{
    test_pool_basics();
    test_seq_tables();
    test_prefix_cache(NULL);
    test_prefix_cache(collide_hash);
    test_parent_generation();
    test_prefix_off();
    return qt_summary("test_kv_cache");
}
