/* kv_cache.c - the KV block pool, its LRU free queue, the prefix cache (chained
 * block hashes confirmed by token comparison) and per-sequence block tables.
 * Concepts from vLLM v1 (kv_cache_utils.py / block_pool.py / kv_cache_manager.py);
 * see qr_kv.h for the contract. */
#include "qrun/qr_kv.h"

#include <stdlib.h>
#include <string.h>

struct qr_kv_pool {
    int nb, bs;
    bool prefix;
    qr_kv_hash_fn hash_fn;
    int32_t *ref;          /* (nb) reference counts */
    int32_t *prev, *next;  /* (nb + 2) free queue links; nb = head sentinel, nb + 1 = tail sentinel */
    int n_free;
    /* prefix cache */
    uint8_t *cached;       /* (nb) registered under hash[] */
    uint64_t *hash;        /* (nb) chain hash */
    int32_t *parent;       /* (nb) parent block id when registered, -1 for a first block */
    uint32_t *parent_gen;  /* (nb) parent's generation when registered */
    uint32_t *gen;         /* (nb) bumped at every registration */
    int32_t *hnext;        /* (nb) bucket chain */
    int32_t *buckets;      /* (nbuckets) */
    uint64_t bmask;
    int32_t *tokens;       /* (nb, bs) tokens of registered blocks */
    int n_cached, n_cached_free;
};

/* ---- hashing ---- */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

uint64_t qr_kv_hash_block(uint64_t parent, const int32_t *tokens, int n)
{
    uint64_t h = mix64(parent ^ 0x9e3779b97f4a7c15ull);
    for (int i = 0; i < n; i++)
        h = mix64(h ^ ((uint64_t)(uint32_t)tokens[i] * 0x100000001b3ull + (uint64_t)i));
    return mix64(h ^ (uint64_t)n);
}

/* ---- free queue ---- */

static void fq_unlink(struct qr_kv_pool *p, int32_t id)
{
    int32_t a = p->prev[id], b = p->next[id];
    p->next[a] = b;
    p->prev[b] = a;
    p->prev[id] = p->next[id] = -1;
    p->n_free--;
}

static void fq_push_tail(struct qr_kv_pool *p, int32_t id)
{
    int32_t tail = p->nb + 1, last = p->prev[tail];
    p->next[last] = id;
    p->prev[id] = last;
    p->next[id] = tail;
    p->prev[tail] = id;
    p->n_free++;
}

/* ---- hash index ---- */

static void hidx_remove(struct qr_kv_pool *p, int32_t id)
{
    int32_t *pp = &p->buckets[p->hash[id] & p->bmask];
    while (*pp >= 0 && *pp != id)
        pp = &p->hnext[*pp];
    QR_ASSERT(*pp == id);
    *pp = p->hnext[id];
    p->hnext[id] = -1;
    p->cached[id] = 0;
    p->n_cached--;
}

static void hidx_insert(struct qr_kv_pool *p, int32_t id, uint64_t h)
{
    p->hash[id] = h;
    p->cached[id] = 1;
    int32_t *head = &p->buckets[h & p->bmask];
    p->hnext[id] = *head;
    *head = id;
    p->n_cached++;
}

/* ---- pool ---- */

qr_status qr_kv_pool_create(const struct qr_kv_pool_opts *o, struct qr_kv_pool **out)
{
    if (!o || !out || o->num_blocks <= 0 || o->block_size <= 0 || o->num_blocks > (1 << 30) ||
        o->block_size > (1 << 20))
        return qr_set_error(QR_E_INVALID_ARG, "kv pool: need num_blocks > 0 and block_size > 0 (got %d, %d)",
                            o ? o->num_blocks : 0, o ? o->block_size : 0);
    struct qr_kv_pool *p = calloc(1, sizeof *p);
    if (!p)
        return qr_set_error(QR_E_OOM_HOST, "kv pool: out of host memory");
    int nb = o->num_blocks;
    p->nb = nb;
    p->bs = o->block_size;
    p->prefix = o->enable_prefix_caching;
    p->hash_fn = o->hash_fn ? o->hash_fn : qr_kv_hash_block;
    uint64_t nbuckets = 16;
    while (nbuckets < (uint64_t)nb * 2)
        nbuckets <<= 1;
    p->bmask = nbuckets - 1;
    p->ref = calloc((size_t)nb, sizeof *p->ref);
    p->prev = malloc((size_t)(nb + 2) * sizeof *p->prev);
    p->next = malloc((size_t)(nb + 2) * sizeof *p->next);
    p->cached = calloc((size_t)nb, 1);
    p->hash = calloc((size_t)nb, sizeof *p->hash);
    p->parent = malloc((size_t)nb * sizeof *p->parent);
    p->parent_gen = calloc((size_t)nb, sizeof *p->parent_gen);
    p->gen = calloc((size_t)nb, sizeof *p->gen);
    p->hnext = malloc((size_t)nb * sizeof *p->hnext);
    p->buckets = malloc((size_t)nbuckets * sizeof *p->buckets);
    p->tokens = p->prefix ? malloc((size_t)nb * (size_t)p->bs * sizeof *p->tokens) : NULL;
    if (!p->ref || !p->prev || !p->next || !p->cached || !p->hash || !p->parent || !p->parent_gen || !p->gen ||
        !p->hnext || !p->buckets || (p->prefix && !p->tokens)) {
        qr_kv_pool_destroy(p);
        return qr_set_error(QR_E_OOM_HOST, "kv pool: out of host memory for %d blocks", nb);
    }
    for (uint64_t i = 0; i < nbuckets; i++)
        p->buckets[i] = -1;
    int32_t head = nb, tail = nb + 1;
    p->next[head] = tail;
    p->prev[tail] = head;
    p->prev[head] = p->next[tail] = -1;
    for (int32_t i = 0; i < nb; i++) {
        p->hnext[i] = -1;
        p->parent[i] = -1;
        fq_push_tail(p, i);
    }
    *out = p;
    return QR_OK;
}

void qr_kv_pool_destroy(struct qr_kv_pool *p)
{
    if (!p)
        return;
    free(p->ref);
    free(p->prev);
    free(p->next);
    free(p->cached);
    free(p->hash);
    free(p->parent);
    free(p->parent_gen);
    free(p->gen);
    free(p->hnext);
    free(p->buckets);
    free(p->tokens);
    free(p);
}

int qr_kv_pool_num_blocks(const struct qr_kv_pool *p) { return p->nb; }
int qr_kv_pool_block_size(const struct qr_kv_pool *p) { return p->bs; }
bool qr_kv_pool_prefix_caching(const struct qr_kv_pool *p) { return p->prefix; }
int qr_kv_pool_num_free(const struct qr_kv_pool *p) { return p->n_free; }
int qr_kv_pool_num_cached_free(const struct qr_kv_pool *p) { return p->n_cached_free; }
int qr_kv_pool_num_used(const struct qr_kv_pool *p) { return p->nb - p->n_free; }
int qr_kv_pool_num_cached(const struct qr_kv_pool *p) { return p->n_cached; }

int32_t qr_kv_block_alloc(struct qr_kv_pool *p)
{
    int32_t id = p->next[p->nb];
    if (id == p->nb + 1)
        return -1;
    fq_unlink(p, id);
    if (p->cached[id]) {            /* lazy eviction */
        hidx_remove(p, id);
        p->n_cached_free--;
    }
    p->parent[id] = -1;
    p->ref[id] = 1;
    return id;
}

void qr_kv_block_free(struct qr_kv_pool *p, int32_t id)
{
    QR_ASSERT(id >= 0 && id < p->nb && p->ref[id] > 0);
    if (--p->ref[id] == 0) {
        fq_push_tail(p, id);
        if (p->cached[id])
            p->n_cached_free++;
    }
}

void qr_kv_block_touch(struct qr_kv_pool *p, int32_t id)
{
    QR_ASSERT(id >= 0 && id < p->nb);
    if (p->ref[id] == 0) {
        fq_unlink(p, id);
        if (p->cached[id])
            p->n_cached_free--;
    }
    p->ref[id]++;
}

int qr_kv_block_ref_cnt(const struct qr_kv_pool *p, int32_t id)
{
    return id >= 0 && id < p->nb ? p->ref[id] : -1;
}

bool qr_kv_block_is_cached(const struct qr_kv_pool *p, int32_t id)
{
    return id >= 0 && id < p->nb && p->cached[id];
}

int qr_kv_pool_free_order(const struct qr_kv_pool *p, int32_t *ids, int max)
{
    int n = 0;
    for (int32_t id = p->next[p->nb]; id != p->nb + 1 && n < max; id = p->next[id])
        ids[n++] = id;
    return n;
}

/* ---- prefix cache ---- */

/* a registered block with chain hash h, parent (block id, generation) and these tokens */
static int32_t find_block(const struct qr_kv_pool *p, uint64_t h, int32_t parent, const int32_t *tokens)
{
    for (int32_t b = p->buckets[h & p->bmask]; b >= 0; b = p->hnext[b]) {
        if (p->hash[b] != h || p->parent[b] != parent)
            continue;
        if (parent >= 0 && p->parent_gen[b] != p->gen[parent])
            continue;
        if (memcmp(p->tokens + (size_t)b * p->bs, tokens, (size_t)p->bs * sizeof *tokens) != 0)
            continue;   /* a hash collision: different tokens never share an entry */
        return b;
    }
    return -1;
}

int qr_kv_prefix_lookup(const struct qr_kv_pool *p, const int32_t *tokens, int n, int32_t *blocks, int max)
{
    if (!p->prefix || n <= 1)
        return 0;
    int limit = (n - 1) / p->bs;      /* the last token is always recomputed */
    if (limit > max)
        limit = max;
    uint64_t h = QR_KV_ROOT_HASH;
    int32_t parent = -1;
    int k = 0;
    for (; k < limit; k++) {
        const int32_t *t = tokens + (size_t)k * p->bs;
        h = p->hash_fn(h, t, p->bs);
        int32_t b = find_block(p, h, parent, t);
        if (b < 0)
            break;
        blocks[k] = b;
        parent = b;
    }
    return k;
}

int qr_kv_count_free_among(const struct qr_kv_pool *p, const int32_t *blocks, int n)
{
    int c = 0;
    for (int i = 0; i < n; i++)
        c += p->ref[blocks[i]] == 0;
    return c;
}

/* ---- sequences ---- */

void qr_kv_seq_init(struct qr_kv_seq *s)
{
    memset(s, 0, sizeof *s);
    s->last_hash = QR_KV_ROOT_HASH;
}

void qr_kv_seq_release(struct qr_kv_seq *s)
{
    QR_ASSERT(s->n_blocks == 0);
    free(s->blocks);
    qr_kv_seq_init(s);
}

static bool seq_reserve(struct qr_kv_seq *s, int n)
{
    if (n <= s->cap)
        return true;
    int cap = s->cap ? s->cap : 8;
    while (cap < n)
        cap *= 2;
    int32_t *nb = realloc(s->blocks, (size_t)cap * sizeof *nb);
    if (!nb)
        return false;
    s->blocks = nb;
    s->cap = cap;
    return true;
}

qr_status qr_kv_seq_take_prefix(struct qr_kv_pool *p, struct qr_kv_seq *s, const int32_t *tokens,
                                const int32_t *blocks, int n)
{
    if (s->n_blocks != 0)
        return qr_set_error(QR_E_INTERNAL, "kv: a prefix can only start an empty sequence");
    if (n <= 0)
        return QR_OK;
    if (!seq_reserve(s, n))
        return qr_set_error(QR_E_OOM_HOST, "kv: out of host memory for a block table");
    uint64_t h = QR_KV_ROOT_HASH;
    for (int i = 0; i < n; i++) {
        qr_kv_block_touch(p, blocks[i]);
        s->blocks[i] = blocks[i];
        h = p->hash_fn(h, tokens + (size_t)i * p->bs, p->bs);
    }
    s->n_blocks = n;
    s->n_hashed = n;
    s->last_hash = h;
    return QR_OK;
}

int qr_kv_seq_blocks_needed(const struct qr_kv_pool *p, const struct qr_kv_seq *s, int n_tokens)
{
    int need = (n_tokens + p->bs - 1) / p->bs - s->n_blocks;
    return need > 0 ? need : 0;
}

bool qr_kv_seq_alloc(struct qr_kv_pool *p, struct qr_kv_seq *s, int n_tokens, qr_status *st)
{
    if (st)
        *st = QR_OK;
    int need = qr_kv_seq_blocks_needed(p, s, n_tokens);
    if (need == 0)
        return true;
    if (need > p->n_free)
        return false;
    if (!seq_reserve(s, s->n_blocks + need)) {
        if (st)
            *st = qr_set_error(QR_E_OOM_HOST, "kv: out of host memory for a block table");
        return false;
    }
    for (int i = 0; i < need; i++) {
        int32_t b = qr_kv_block_alloc(p);
        QR_ASSERT(b >= 0);
        s->blocks[s->n_blocks++] = b;
    }
    return true;
}

void qr_kv_seq_commit(struct qr_kv_pool *p, struct qr_kv_seq *s, const int32_t *tokens, int n_computed)
{
    if (!p->prefix)
        return;
    int full = n_computed / p->bs;
    if (full > s->n_blocks)
        full = s->n_blocks;
    for (int i = s->n_hashed; i < full; i++) {
        int32_t b = s->blocks[i];
        const int32_t *t = tokens + (size_t)i * p->bs;
        uint64_t h = p->hash_fn(s->last_hash, t, p->bs);
        if (p->cached[b])            /* cannot happen for an owned fresh block; keep the index sane */
            hidx_remove(p, b);
        int32_t parent = i > 0 ? s->blocks[i - 1] : -1;
        p->parent[b] = parent;
        p->parent_gen[b] = parent >= 0 ? p->gen[parent] : 0;
        p->gen[b]++;
        memcpy(p->tokens + (size_t)b * p->bs, t, (size_t)p->bs * sizeof *t);
        hidx_insert(p, b, h);
        s->last_hash = h;
        s->n_hashed = i + 1;
    }
}

void qr_kv_seq_free(struct qr_kv_pool *p, struct qr_kv_seq *s)
{
    for (int i = s->n_blocks - 1; i >= 0; i--)
        qr_kv_block_free(p, s->blocks[i]);
    s->n_blocks = 0;
    s->n_hashed = 0;
    s->last_hash = QR_KV_ROOT_HASH;
}

int32_t qr_kv_seq_slot(const struct qr_kv_pool *p, const struct qr_kv_seq *s, int pos)
{
    if (pos < 0 || pos / p->bs >= s->n_blocks)
        return -1;
    return s->blocks[pos / p->bs] * p->bs + pos % p->bs;
}

/* ---- invariants ---- */

qr_status qr_kv_pool_check(const struct qr_kv_pool *p)
{
    int nb = p->nb;
    uint8_t *seen = calloc((size_t)nb, 1);
    if (!seen)
        return qr_set_error(QR_E_OOM_HOST, "kv check: out of host memory");
    qr_status st = QR_OK;
    int n = 0, n_cf = 0;
    int32_t prev = nb;
    for (int32_t id = p->next[nb]; id != nb + 1; id = p->next[id]) {
        if (id < 0 || id >= nb) { st = qr_set_error(QR_E_INTERNAL, "kv check: bad link %d", id); goto done; }
        if (seen[id]) { st = qr_set_error(QR_E_INTERNAL, "kv check: block %d twice in the free queue", id); goto done; }
        seen[id] = 1;
        if (p->prev[id] != prev) { st = qr_set_error(QR_E_INTERNAL, "kv check: prev link of %d broken", id); goto done; }
        if (p->ref[id] != 0) { st = qr_set_error(QR_E_INTERNAL, "kv check: block %d in free queue with ref %d", id, p->ref[id]); goto done; }
        n_cf += p->cached[id];
        prev = id;
        n++;
    }
    if (p->prev[nb + 1] != prev) { st = qr_set_error(QR_E_INTERNAL, "kv check: tail link broken"); goto done; }
    if (n != p->n_free) { st = qr_set_error(QR_E_INTERNAL, "kv check: free count %d, queue holds %d", p->n_free, n); goto done; }
    if (n_cf != p->n_cached_free) { st = qr_set_error(QR_E_INTERNAL, "kv check: cached-free count %d, found %d", p->n_cached_free, n_cf); goto done; }
    int n_c = 0;
    for (int32_t id = 0; id < nb; id++) {
        if (p->ref[id] < 0) { st = qr_set_error(QR_E_INTERNAL, "kv check: block %d ref %d", id, p->ref[id]); goto done; }
        if (p->ref[id] == 0 && !seen[id]) { st = qr_set_error(QR_E_INTERNAL, "kv check: free block %d not queued", id); goto done; }
        if (!p->cached[id])
            continue;
        n_c++;
        int32_t b = p->buckets[p->hash[id] & p->bmask];
        while (b >= 0 && b != id)
            b = p->hnext[b];
        if (b != id) { st = qr_set_error(QR_E_INTERNAL, "kv check: cached block %d not in its bucket", id); goto done; }
    }
    if (n_c != p->n_cached) { st = qr_set_error(QR_E_INTERNAL, "kv check: cached count %d, found %d", p->n_cached, n_c); goto done; }
done:
    free(seen);
    return st;
}
