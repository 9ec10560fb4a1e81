/* vk_stream.c - streams: the pending primary command buffer that ops record
 * into, staging uploads/readbacks, copies, and graph_exec, which records a
 * step once into a secondary command buffer per key and replays it with
 * vkCmdExecuteCommands (never op by op).
 *
 * Submission model: work accumulates in the pending primary buffer and is
 * submitted (and waited for) by read, synchronize, a full staging buffer or
 * stream destruction.  Every command is followed by a global barrier, and
 * every primary buffer begins with one, so submissions are ordered. */
#include <stdlib.h>
#include <string.h>
#include "vk_internal.h"
#include "pc/copy.h"

#define VK_STAGING_SIZE ((size_t)64 << 20)
#define VK_MAX_GRAPHS 64

static void rec_free_tmp(struct vk_rec *r) {
    struct vk_tmpbufs *t = &r->tmp;
    for (int i = 0; i < t->n; i++) t->bufs[i]->dev->vt->buf_free(t->bufs[i]);
    t->n = 0;
    r->part = NULL;
    r->part_size = 0;
}

qr_status vk_rec_tmp_alloc(struct vk_stream *s, size_t size, struct qr_buf **out) {
    struct vk_tmpbufs *t = &s->cur->tmp;
    if (t->n == t->cap) {
        int nc = t->cap ? t->cap * 2 : 8;
        struct qr_buf **nb = realloc(t->bufs, (size_t)nc * sizeof *nb);
        if (!nb) return qr_set_error(QR_E_OOM_HOST, "vulkan: out of host memory");
        t->bufs = nb;
        t->cap = nc;
    }
    qr_status st = s->d->pub.vt->buf_alloc(&s->d->pub, size, QR_BUF_SCRATCH, out);
    if (st != QR_OK) return st;
    t->bufs[t->n++] = *out;
    return QR_OK;
}

qr_status vk_stream_begin(struct vk_stream *s) {
    if (s->cur != &s->pending || s->recording) return QR_OK;
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    VK_TRY(s->d, vkBeginCommandBuffer(s->pending.cb, &bi));
    if (s->qpool) vkCmdResetQueryPool(s->pending.cb, s->qpool, 0, 2 * VK_PROF_PAIRS);
    vk_cmd_barrier(s->pending.cb);
    s->recording = true;
    s->pending.n_cmds = 0;
    return QR_OK;
}

/* submit the pending buffer and wait for it */
static qr_status vk_flush(struct vk_stream *s) {
    struct vk_dev *d = s->d;
    if (d->pub.dead) return qr_set_error(QR_E_DEVICE_LOST, "vulkan: device %d is lost", d->index);
    if (!s->recording) return QR_OK;
    s->recording = false;
    vk_cmd_barrier(s->pending.cb);   /* make every write available to transfers and the host */
    VK_TRY(d, vkEndCommandBuffer(s->pending.cb));
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1,
                       .pCommandBuffers = &s->pending.cb};
    pthread_mutex_lock(&d->lock);   /* vkQueueSubmit needs external sync of the queue */
    VkResult r = vkQueueSubmit(d->queue, 1, &si, s->fence);
    pthread_mutex_unlock(&d->lock);
    if (r != VK_SUCCESS) return vk_fail(d, r, "vkQueueSubmit", __func__, __FILE__, __LINE__);
    VK_TRY(d, vkWaitForFences(d->dev, 1, &s->fence, VK_TRUE, UINT64_MAX));
    VK_TRY(d, vkResetFences(d->dev, 1, &s->fence));
    vk_prof_collect(s);
    VK_TRY(d, vkResetCommandBuffer(s->pending.cb, 0));
    vk_dpools_reset(d, &s->pending.dp);
    rec_free_tmp(&s->pending);
    s->staging_used = 0;
    return QR_OK;
}

static qr_status vk_staging_ensure(struct vk_stream *s) {
    if (s->staging) return QR_OK;
    size_t sz = VK_STAGING_SIZE;
    if (sz > s->d->max_alloc) sz = s->d->max_alloc;
    qr_status st = vk_mem_alloc(s->d, &s->staging, &s->staging_mem, &s->staging_map, sz, true, false);
    if (st != QR_OK) return st;
    if (!s->staging_map) return qr_set_error(QR_E_INTERNAL, "vulkan: staging memory is not mappable");
    s->staging_size = sz;
    s->staging_used = 0;
    return QR_OK;
}

static qr_status check_range(struct qr_buf *b, size_t off, size_t n, const char *what) {
    if (!b || off > b->size || n > b->size - off)
        return qr_set_error(QR_E_INVALID_ARG, "vulkan: %s of %zu bytes at %zu is outside the buffer (%zu bytes)", what,
                            n, off, b ? b->size : 0);
    return QR_OK;
}

static qr_status vk_write(struct qr_stream *qs, struct qr_buf *dst, size_t off, const void *src, size_t n) {
    struct vk_stream *s = vk_stream_of(qs);
    qr_status st = check_range(dst, off, n, "write");
    if (st != QR_OK || n == 0) return st;
    struct vk_buf *b = vk_buf_of(dst);
    if (b->map && !s->recording) {   /* nothing queued on this stream: write directly */
        memcpy((char *)b->map + off, src, n);
        return QR_OK;
    }
    if ((st = vk_staging_ensure(s)) != QR_OK) return st;
    const char *p = src;
    while (n > 0) {
        if (s->staging_used >= s->staging_size && (st = vk_flush(s)) != QR_OK) return st;
        size_t chunk = s->staging_size - s->staging_used;
        if (chunk > n) chunk = n;
        if ((st = vk_stream_begin(s)) != QR_OK) return st;
        memcpy((char *)s->staging_map + s->staging_used, p, chunk);
        VkBufferCopy c = {.srcOffset = s->staging_used, .dstOffset = off, .size = chunk};
        vk_cmd_barrier(s->pending.cb);
        vkCmdCopyBuffer(s->pending.cb, s->staging, b->buf, 1, &c);
        vk_cmd_barrier(s->pending.cb);
        s->staging_used = (s->staging_used + chunk + 15) & ~(size_t)15;
        p += chunk;
        off += chunk;
        n -= chunk;
    }
    return QR_OK;
}

static qr_status vk_read(struct qr_stream *qs, struct qr_buf *src, size_t off, void *dst, size_t n) {
    struct vk_stream *s = vk_stream_of(qs);
    qr_status st = check_range(src, off, n, "read");
    if (st != QR_OK) return st;
    struct vk_buf *b = vk_buf_of(src);
    if ((st = vk_flush(s)) != QR_OK) return st;
    if (n == 0) return QR_OK;
    if (b->map) {
        memcpy(dst, (const char *)b->map + off, n);
        return QR_OK;
    }
    if ((st = vk_staging_ensure(s)) != QR_OK) return st;
    char *p = dst;
    while (n > 0) {
        size_t chunk = n < s->staging_size ? n : s->staging_size;
        if ((st = vk_stream_begin(s)) != QR_OK) return st;
        VkBufferCopy c = {.srcOffset = off, .dstOffset = 0, .size = chunk};
        vk_cmd_barrier(s->pending.cb);
        vkCmdCopyBuffer(s->pending.cb, b->buf, s->staging, 1, &c);
        vk_cmd_barrier(s->pending.cb);
        if ((st = vk_flush(s)) != QR_OK) return st;
        memcpy(p, s->staging_map, chunk);
        p += chunk;
        off += chunk;
        n -= chunk;
    }
    return QR_OK;
}

/* the copy as copy.comp dispatches (16-byte aligned offsets and size), in chunks one binding covers */
static qr_status copy_shader(struct vk_stream *s, struct qr_buf *dst, size_t doff, struct qr_buf *src, size_t soff,
                             size_t n, int pipe) {
    struct vk_dev *d = s->d;
    size_t chunk = (d->max_range - d->align) & ~(size_t)15;
    if (chunk > ((size_t)1 << 30)) chunk = (size_t)1 << 30;   /* word counts stay within int */
    vk_cmd_barrier(s->pending.cb);
    for (size_t done = 0; done < n;) {
        size_t c = n - done < chunk ? n - done : chunk;
        size_t da = (doff + done) - (doff + done) % d->align, sa = (soff + done) - (soff + done) % d->align;
        struct vk_binding b[2] = {{.buf = vk_buf_of(dst)->buf, .off = da, .range = (doff + done - da) + c},
                                  {.buf = vk_buf_of(src)->buf, .off = sa, .range = (soff + done - sa) + c}};
        struct qr_pc_copy pc = {.n = (int)(c / 16), .d_off = (int)((doff + done - da) / 16),
                                .s_off = (int)((soff + done - sa) / 16)};
        uint32_t groups = (uint32_t)((c / 16 + 255) / 256);
        if (groups > 8192) groups = 8192;
        qr_status st = vk_dispatch(s, pipe, 2, b, &pc, sizeof pc, groups, 1, 1);
        if (st != QR_OK) return st;
        done += c;
    }
    vk_cmd_barrier(s->pending.cb);
    return QR_OK;
}

static qr_status vk_copy(struct qr_stream *qs, struct qr_buf *dst, size_t doff, struct qr_buf *src, size_t soff,
                         size_t n) {
    struct vk_stream *s = vk_stream_of(qs);
    qr_status st = check_range(dst, doff, n, "copy destination");
    if (st == QR_OK) st = check_range(src, soff, n, "copy source");
    if (st != QR_OK || n == 0) return st;
    if (s->cur != &s->pending) return qr_set_error(QR_E_INTERNAL, "vulkan: copy inside a graph");
    if ((st = vk_stream_begin(s)) != QR_OK) return st;
    /* a shader copy where the words line up and the two ranges do not overlap (vkCmdCopyBuffer's rule too) */
    int pipe = vk_pipe_find("copy");
    bool overlap = dst == src && doff < soff + n && soff < doff + n;
    if (pipe >= 0 && !overlap && doff % 16 == 0 && soff % 16 == 0 && n % 16 == 0 && s->d->align % 16 == 0 &&
        getenv("QR_VK_COPY_CMD") == NULL)
        return copy_shader(s, dst, doff, src, soff, n, pipe);
    VkBufferCopy c = {.srcOffset = soff, .dstOffset = doff, .size = n};
    vk_cmd_barrier(s->pending.cb);
    vkCmdCopyBuffer(s->pending.cb, vk_buf_of(src)->buf, vk_buf_of(dst)->buf, 1, &c);
    vk_cmd_barrier(s->pending.cb);
    return QR_OK;
}

static qr_status vk_memset0(struct qr_stream *qs, struct qr_buf *dst, size_t off, size_t n) {
    struct vk_stream *s = vk_stream_of(qs);
    qr_status st = check_range(dst, off, n, "memset");
    if (st != QR_OK || n == 0) return st;
    if ((off & 3) || (n & 3)) {   /* vkCmdFillBuffer needs 4-byte alignment */
        static const char zeros[4096];
        while (n > 0) {
            size_t c = n < sizeof zeros ? n : sizeof zeros;
            if ((st = vk_write(qs, dst, off, zeros, c)) != QR_OK) return st;
            off += c;
            n -= c;
        }
        return QR_OK;
    }
    if ((st = vk_stream_begin(s)) != QR_OK) return st;
    vk_cmd_barrier(s->pending.cb);
    vkCmdFillBuffer(s->pending.cb, vk_buf_of(dst)->buf, off, n, 0);
    vk_cmd_barrier(s->pending.cb);
    return QR_OK;
}

static qr_status vk_synchronize(struct qr_stream *qs) { return vk_flush(vk_stream_of(qs)); }

/* ---- graphs ---- */

static qr_status run_node(struct qr_stream *qs, const struct qr_node *n) {
    const struct qr_ops *o = &vk_ops;
    switch (n->op) {
    case QR_OP_EMBED: return o->embed(qs, &n->a.embed);
    case QR_OP_MATMUL: return o->matmul(qs, &n->a.matmul);
    case QR_OP_RMSNORM: return o->rmsnorm(qs, &n->a.rmsnorm);
    case QR_OP_QK_NORM: return o->qk_norm(qs, &n->a.rmsnorm);
    case QR_OP_ROPE: return o->rope(qs, &n->a.rope);
    case QR_OP_KV_STORE: return o->kv_store(qs, &n->a.kv_store);
    case QR_OP_ATTN: return o->attn(qs, &n->a.attn);
    case QR_OP_SILU_MUL: return o->silu_mul(qs, &n->a.silu_mul);
    case QR_OP_ADD: return o->add(qs, &n->a.add);
    case QR_OP_LOGITS: return o->logits(qs, &n->a.logits);
    case QR_OP_ARGMAX: return o->argmax(qs, &n->a.argmax);
    case QR_OP_TOPK: return o->topk(qs, &n->a.topk);
    default: return qr_set_error(QR_E_INVALID_ARG, "vulkan: unknown op %d", (int)n->op);
    }
}

/* the nodes of a graph, with the fusions of vk_ops.c applied */
static qr_status run_nodes(struct qr_stream *qs, const struct qr_node *nodes, int n) {
    for (int i = 0; i < n; i++) {
        int r = vk_fuse_at(qs, &nodes[i], n - i);
        if (r < 0) return (qr_status)r;
        if (r > 0) {
            i += r - 1;
            continue;
        }
        qr_status st = run_node(qs, &nodes[i]);
        if (st != QR_OK) return st;
    }
    return QR_OK;
}

static void graph_free(struct vk_stream *s, struct vk_graph *g) {
    rec_free_tmp(&g->rec);
    free(g->rec.tmp.bufs);
    vk_dpools_destroy(s->d, &g->rec.dp);
    if (g->rec.cb) vkFreeCommandBuffers(s->d->dev, s->pool, 1, &g->rec.cb);
    memset(g, 0, sizeof *g);
}

static qr_status graph_record(struct vk_stream *s, const struct qr_graph *qg, struct vk_graph *g) {
    struct vk_dev *d = s->d;
    memset(g, 0, sizeof *g);
    g->key = qg->key;
    g->n_nodes = qg->n_nodes;
    VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                      .commandPool = s->pool, .level = VK_COMMAND_BUFFER_LEVEL_SECONDARY,
                                      .commandBufferCount = 1};
    VK_TRY(d, vkAllocateCommandBuffers(d->dev, &ai, &g->rec.cb));
    VkCommandBufferInheritanceInfo inh = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_INHERITANCE_INFO};
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO, .pInheritanceInfo = &inh};
    qr_status st = QR_OK;
    VkResult r = vkBeginCommandBuffer(g->rec.cb, &bi);
    if (r != VK_SUCCESS) {
        st = vk_fail(d, r, "vkBeginCommandBuffer", __func__, __FILE__, __LINE__);
        goto fail;
    }
    s->cur = &g->rec;
    st = run_nodes(&s->pub, qg->nodes, qg->n_nodes);
    s->cur = &s->pending;
    r = vkEndCommandBuffer(g->rec.cb);
    if (st != QR_OK) goto fail;
    if (r != VK_SUCCESS) {
        st = vk_fail(d, r, "vkEndCommandBuffer", __func__, __FILE__, __LINE__);
        goto fail;
    }
    return QR_OK;
fail:
    s->cur = &s->pending;
    graph_free(s, g);
    return st;
}

static qr_status vk_graph_exec(struct qr_stream *qs, const struct qr_graph *qg) {
    struct vk_stream *s = vk_stream_of(qs);
    qr_status st;
    if (s->d->pub.dead) return qr_set_error(QR_E_DEVICE_LOST, "vulkan: device %d is lost", s->d->index);
    if (qg->key == 0 || s->qpool) {   /* never cached (or profiling): record the nodes straight into the pending buffer */
        return run_nodes(qs, qg->nodes, qg->n_nodes);
    }
    struct vk_graph *g = NULL;
    for (int i = 0; i < s->n_graphs; i++)
        if (s->graphs[i].key == qg->key && s->graphs[i].n_nodes == qg->n_nodes) g = &s->graphs[i];
    if (!g) {
        if (s->n_graphs == VK_MAX_GRAPHS) {   /* evict the least recently used (after the queue drains) */
            if ((st = vk_flush(s)) != QR_OK) return st;
            int lru = 0;
            for (int i = 1; i < s->n_graphs; i++)
                if (s->graphs[i].last_use < s->graphs[lru].last_use) lru = i;
            graph_free(s, &s->graphs[lru]);
            s->graphs[lru] = s->graphs[--s->n_graphs];
        }
        if (s->n_graphs == s->cap_graphs) {
            int nc = s->cap_graphs ? s->cap_graphs * 2 : 8;
            struct vk_graph *ng = realloc(s->graphs, (size_t)nc * sizeof *ng);
            if (!ng) return qr_set_error(QR_E_OOM_HOST, "vulkan: out of host memory");
            s->graphs = ng;
            s->cap_graphs = nc;
        }
        if ((st = graph_record(s, qg, &s->graphs[s->n_graphs])) != QR_OK) return st;
        g = &s->graphs[s->n_graphs++];
    }
    g->last_use = ++s->use_counter;
    if ((st = vk_stream_begin(s)) != QR_OK) return st;
    vk_cmd_barrier(s->pending.cb);
    vkCmdExecuteCommands(s->pending.cb, 1, &g->rec.cb);
    vk_cmd_barrier(s->pending.cb);
    return QR_OK;
}

/* ---- lifecycle ---- */

qr_status vk_stream_create(struct qr_device *qd, struct qr_stream **out) {
    struct vk_dev *d = vk_dev_of(qd);
    struct vk_stream *s = calloc(1, sizeof *s);
    if (!s) return qr_set_error(QR_E_OOM_HOST, "vulkan: out of host memory");
    s->d = d;
    s->cur = &s->pending;
    qr_status st = QR_OK;
    VkResult r;
    VkCommandPoolCreateInfo pi = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                  .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                  .queueFamilyIndex = d->qfam};
    if ((r = vkCreateCommandPool(d->dev, &pi, NULL, &s->pool)) != VK_SUCCESS) goto vkfail;
    VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO, .commandPool = s->pool,
                                      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY, .commandBufferCount = 1};
    if ((r = vkAllocateCommandBuffers(d->dev, &ai, &s->pending.cb)) != VK_SUCCESS) goto vkfail;
    VkFenceCreateInfo fi = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    if ((r = vkCreateFence(d->dev, &fi, NULL, &s->fence)) != VK_SUCCESS) goto vkfail;
    if (d->profile) {
        VkQueryPoolCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                    .queryType = VK_QUERY_TYPE_TIMESTAMP, .queryCount = 2 * VK_PROF_PAIRS};
        s->q_pipe = calloc(VK_PROF_PAIRS, sizeof *s->q_pipe);
        if (!s->q_pipe || vkCreateQueryPool(d->dev, &qi, NULL, &s->qpool) != VK_SUCCESS) s->qpool = VK_NULL_HANDLE;
    }
    s->pub.dev = qd;
    s->pub.ctx = s;
    *out = &s->pub;
    return QR_OK;
vkfail:
    st = vk_fail(d, r, "stream setup", __func__, __FILE__, __LINE__);
    vk_stream_destroy(&s->pub);
    return st;
}

void vk_stream_destroy(struct qr_stream *qs) {
    if (!qs) return;
    struct vk_stream *s = vk_stream_of(qs);
    struct vk_dev *d = s->d;
    if (s->recording && vk_flush(s) != QR_OK) vkDeviceWaitIdle(d->dev);
    for (int i = 0; i < s->n_graphs; i++) graph_free(s, &s->graphs[i]);
    free(s->graphs);
    rec_free_tmp(&s->pending);
    free(s->pending.tmp.bufs);
    vk_dpools_destroy(d, &s->pending.dp);
    if (s->staging) {
        vkUnmapMemory(d->dev, s->staging_mem);
        vkDestroyBuffer(d->dev, s->staging, NULL);
        vkFreeMemory(d->dev, s->staging_mem, NULL);
    }
    if (s->qpool) vkDestroyQueryPool(d->dev, s->qpool, NULL);
    free(s->q_pipe);
    if (s->fence) vkDestroyFence(d->dev, s->fence, NULL);
    if (s->pool) vkDestroyCommandPool(d->dev, s->pool, NULL);
    free(s);
}

const struct qr_stream_vt vk_stream_vt = {
    .write = vk_write,
    .read = vk_read,
    .copy = vk_copy,
    .memset0 = vk_memset0,
    .synchronize = vk_synchronize,
    .graph_exec = vk_graph_exec,
};
