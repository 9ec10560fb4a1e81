/* vk_pipeline.c - descriptor set layouts, compute pipelines (one per shader
 * variant, created on first use), descriptor pools and the dispatch helper
 * that records one shader invocation plus its barrier. */
#include <stdlib.h>
#include <string.h>
#include "vk_internal.h"
#include "vk_shaders.h"

int vk_pipe_find(const char *name) {
    for (int i = 0; qr_spv_table[i].name; i++)
        if (strcmp(qr_spv_table[i].name, name) == 0) return i;
    return -1;
}

qr_status vk_pipelines_init(struct vk_dev *d) {
    uint32_t lim = d->props.limits.maxPerStageDescriptorStorageBuffers;
    if (lim > d->props.limits.maxDescriptorSetStorageBuffers) lim = d->props.limits.maxDescriptorSetStorageBuffers;
    d->max_bind = lim < VK_MAX_BINDINGS ? (int)lim : VK_MAX_BINDINGS;
    if (d->max_bind < 8)
        return qr_set_error(QR_E_UNSUPPORTED, "vulkan: the device binds %u storage buffers per shader; qrun needs 8",
                            lim);
    for (int nb = 1; nb <= d->max_bind; nb++) {
        VkDescriptorSetLayoutBinding b[VK_MAX_BINDINGS];
        for (int i = 0; i < nb; i++)
            b[i] = (VkDescriptorSetLayoutBinding){.binding = (uint32_t)i,
                                                  .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                                  .descriptorCount = 1,
                                                  .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
        VkDescriptorSetLayoutCreateInfo li = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
                                              .bindingCount = (uint32_t)nb, .pBindings = b};
        VK_TRY(d, vkCreateDescriptorSetLayout(d->dev, &li, NULL, &d->dsl[nb]));
        VkPushConstantRange pr = {.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .offset = 0, .size = 128};
        VkPipelineLayoutCreateInfo pi = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO, .setLayoutCount = 1,
                                         .pSetLayouts = &d->dsl[nb], .pushConstantRangeCount = 1,
                                         .pPushConstantRanges = &pr};
        VK_TRY(d, vkCreatePipelineLayout(d->dev, &pi, NULL, &d->plo[nb]));
    }
    int n = 0;
    while (qr_spv_table[n].name) n++;
    d->pipes = calloc((size_t)n + 1, sizeof *d->pipes);
    d->prof_ms = calloc((size_t)n + 1, sizeof *d->prof_ms);
    d->prof_n = calloc((size_t)n + 1, sizeof *d->prof_n);
    if (!d->pipes || !d->prof_ms || !d->prof_n) return qr_set_error(QR_E_OOM_HOST, "vulkan: out of host memory");
    d->n_pipes = n;
    return QR_OK;
}

void vk_pipelines_destroy(struct vk_dev *d) {
    for (int i = 0; i < d->n_pipes; i++)
        if (d->pipes[i].pipe) vkDestroyPipeline(d->dev, d->pipes[i].pipe, NULL);
    vk_prof_report(d);
    free(d->pipes);
    free(d->prof_ms);
    free(d->prof_n);
    d->pipes = NULL;
    for (int nb = 1; nb <= VK_MAX_BINDINGS; nb++) {
        if (d->plo[nb]) vkDestroyPipelineLayout(d->dev, d->plo[nb], NULL);
        if (d->dsl[nb]) vkDestroyDescriptorSetLayout(d->dev, d->dsl[nb], NULL);
    }
}

static qr_status vk_pipe_get(struct vk_dev *d, int idx, int n_bind, VkPipeline *out) {
    if (idx < 0 || idx >= d->n_pipes) return qr_set_error(QR_E_INTERNAL, "vulkan: bad pipeline index %d", idx);
    pthread_mutex_lock(&d->lock);
    struct vk_pipe *p = &d->pipes[idx];
    qr_status st = QR_OK;
    if (!p->pipe) {
        if (p->tried) {
            pthread_mutex_unlock(&d->lock);
            return qr_set_error(QR_E_UNSUPPORTED, "vulkan: pipeline %s failed to build", qr_spv_table[idx].name);
        }
        p->tried = true;
        VkShaderModuleCreateInfo mi = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                       .codeSize = *qr_spv_table[idx].size,
                                       .pCode = (const uint32_t *)(const void *)qr_spv_table[idx].code};
        VkShaderModule mod;
        VkResult r = vkCreateShaderModule(d->dev, &mi, NULL, &mod);
        if (r == VK_SUCCESS) {
            /* constant_id 0 = the subgroup size (shaders that size arrays by it); 1 = the vec4 slots of shared
             * memory for one x row (matmul_gemv1wx).  An entry a shader does not declare is ignored */
            uint32_t sc[2] = {d->subgroup_size, d->xsh_v4};
            VkSpecializationMapEntry me[2] = {{.constantID = 0, .offset = 0, .size = sizeof sc[0]},
                                              {.constantID = 1, .offset = sizeof sc[0], .size = sizeof sc[1]}};
            VkSpecializationInfo spec = {.mapEntryCount = 2, .pMapEntries = me, .dataSize = sizeof sc, .pData = sc};
            VkComputePipelineCreateInfo ci = {
                .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
                .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                          .stage = VK_SHADER_STAGE_COMPUTE_BIT, .module = mod, .pName = "main",
                          .pSpecializationInfo = &spec},
                .layout = d->plo[n_bind]};
            r = vkCreateComputePipelines(d->dev, VK_NULL_HANDLE, 1, &ci, NULL, &p->pipe);
            vkDestroyShaderModule(d->dev, mod, NULL);
            if (r != VK_SUCCESS) p->pipe = VK_NULL_HANDLE;
        }
        if (r != VK_SUCCESS) st = vk_fail(d, r, qr_spv_table[idx].name, __func__, __FILE__, __LINE__);
        p->n_bind = n_bind;
    }
    *out = p->pipe;
    pthread_mutex_unlock(&d->lock);
    return st;
}

qr_status vk_dpools_alloc(struct vk_dev *d, struct vk_dpools *dp, VkDescriptorSetLayout l, VkDescriptorSet *out) {
    VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                      .descriptorSetCount = 1, .pSetLayouts = &l};
    if (dp->n > 0) {
        ai.descriptorPool = dp->pools[dp->n - 1];
        VkResult r = vkAllocateDescriptorSets(d->dev, &ai, out);
        if (r == VK_SUCCESS) return QR_OK;
        if (r != VK_ERROR_OUT_OF_POOL_MEMORY && r != VK_ERROR_FRAGMENTED_POOL)
            return vk_fail(d, r, "vkAllocateDescriptorSets", __func__, __FILE__, __LINE__);
    }
    if (dp->n == dp->cap) {
        int nc = dp->cap ? dp->cap * 2 : 4;
        VkDescriptorPool *np = realloc(dp->pools, (size_t)nc * sizeof *np);
        if (!np) return qr_set_error(QR_E_OOM_HOST, "vulkan: out of host memory");
        dp->pools = np;
        dp->cap = nc;
    }
    VkDescriptorPoolSize ps = {.type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, .descriptorCount = 512 * VK_MAX_BINDINGS};
    VkDescriptorPoolCreateInfo pi = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO, .maxSets = 512,
                                     .poolSizeCount = 1, .pPoolSizes = &ps};
    VK_TRY(d, vkCreateDescriptorPool(d->dev, &pi, NULL, &dp->pools[dp->n]));
    dp->n++;
    ai.descriptorPool = dp->pools[dp->n - 1];
    VK_TRY(d, vkAllocateDescriptorSets(d->dev, &ai, out));
    return QR_OK;
}

void vk_dpools_reset(struct vk_dev *d, struct vk_dpools *dp) {
    /* keep the first pool, drop the rest */
    for (int i = 1; i < dp->n; i++) vkDestroyDescriptorPool(d->dev, dp->pools[i], NULL);
    if (dp->n > 0) {
        vkResetDescriptorPool(d->dev, dp->pools[0], 0);
        dp->n = 1;
    }
}

void vk_dpools_destroy(struct vk_dev *d, struct vk_dpools *dp) {
    for (int i = 0; i < dp->n; i++) vkDestroyDescriptorPool(d->dev, dp->pools[i], NULL);
    free(dp->pools);
    memset(dp, 0, sizeof *dp);
}

void vk_cmd_barrier(VkCommandBuffer cb) {
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                                           VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT |
                                           VK_ACCESS_HOST_READ_BIT};
    vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT |
                             VK_PIPELINE_STAGE_HOST_BIT,
                         0, 1, &mb, 0, NULL, 0, NULL);
}

/* between two dispatches: shader writes -> shader reads/writes only (cheap) */
void vk_cmd_barrier_compute(VkCommandBuffer cb) {
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER, .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT};
    vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &mb, 0,
                         NULL, 0, NULL);
}

qr_status vk_dispatch(struct vk_stream *s, int pipe, int n_bind, const struct vk_binding *b, const void *pc,
                      uint32_t pc_size, uint32_t gx, uint32_t gy, uint32_t gz) {
    struct vk_dev *d = s->d;
    if (gx == 0 || gy == 0 || gz == 0) return QR_OK;
    if (n_bind < 1 || n_bind > d->max_bind || pc_size > 128)
        return qr_set_error(QR_E_INTERNAL, "vulkan: bad dispatch (%d bindings, %u pc bytes)", n_bind, pc_size);
    const uint32_t *lim = d->props.limits.maxComputeWorkGroupCount;
    if (gx > lim[0] || gy > lim[1] || gz > lim[2])
        return qr_set_error(QR_E_UNSUPPORTED, "vulkan: grid %ux%ux%u exceeds the device limit", gx, gy, gz);
    VkPipeline p = VK_NULL_HANDLE;
    qr_status st = vk_pipe_get(d, pipe, n_bind, &p);
    if (st != QR_OK) return st;
    if ((st = vk_stream_begin(s)) != QR_OK) return st;
    struct vk_rec *rec = s->cur;
    VkDescriptorSet set;
    if ((st = vk_dpools_alloc(d, &rec->dp, d->dsl[n_bind], &set)) != QR_OK) return st;
    VkDescriptorBufferInfo bi[VK_MAX_BINDINGS];
    VkWriteDescriptorSet w[VK_MAX_BINDINGS];
    for (int i = 0; i < n_bind; i++) {
        bi[i] = (VkDescriptorBufferInfo){.buffer = b[i].buf ? b[i].buf : d->dummy, .offset = b[i].buf ? b[i].off : 0,
                                         .range = b[i].buf ? b[i].range : 256};
        w[i] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET, .dstSet = set,
                                      .dstBinding = (uint32_t)i, .descriptorCount = 1,
                                      .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, .pBufferInfo = &bi[i]};
    }
    vkUpdateDescriptorSets(d->dev, (uint32_t)n_bind, w, 0, NULL);
    vkCmdBindPipeline(rec->cb, VK_PIPELINE_BIND_POINT_COMPUTE, p);
    vkCmdBindDescriptorSets(rec->cb, VK_PIPELINE_BIND_POINT_COMPUTE, d->plo[n_bind], 0, 1, &set, 0, NULL);
    vkCmdPushConstants(rec->cb, d->plo[n_bind], VK_SHADER_STAGE_COMPUTE_BIT, 0, pc_size, pc);
    bool prof = s->qpool && rec == &s->pending && s->n_q < VK_PROF_PAIRS;
    if (prof) vkCmdWriteTimestamp(rec->cb, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, s->qpool, (uint32_t)(2 * s->n_q));
    vkCmdDispatch(rec->cb, gx, gy, gz);
    vk_cmd_barrier_compute(rec->cb);
    if (prof) {
        vkCmdWriteTimestamp(rec->cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, s->qpool, (uint32_t)(2 * s->n_q + 1));
        s->q_pipe[s->n_q++] = pipe;
    }
    rec->n_cmds++;
    return QR_OK;
}

/* ---- profiling (QR_VK_PROFILE=1) ---- */
void vk_prof_collect(struct vk_stream *s) {
    struct vk_dev *d = s->d;
    if (!s->qpool || s->n_q == 0) return;
    uint64_t *ts = malloc(sizeof *ts * 2 * (size_t)s->n_q);
    if (ts && vkGetQueryPoolResults(d->dev, s->qpool, 0, (uint32_t)(2 * s->n_q), sizeof *ts * 2 * (size_t)s->n_q, ts,
                                    sizeof *ts, VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT) == VK_SUCCESS) {
        pthread_mutex_lock(&d->lock);
        for (int i = 0; i < s->n_q; i++) {
            d->prof_ms[s->q_pipe[i]] += (double)(ts[2 * i + 1] - ts[2 * i]) * d->props.limits.timestampPeriod * 1e-6;
            d->prof_n[s->q_pipe[i]]++;
        }
        pthread_mutex_unlock(&d->lock);
    }
    free(ts);
    s->n_q = 0;
}

void vk_prof_report(struct vk_dev *d) {
    if (!d->profile || !d->prof_ms) return;
    double tot = 0;
    for (int i = 0; i < d->n_pipes; i++) tot += d->prof_ms[i];
    qr_log(QR_LOG_WARN, "vulkan profile (GPU time per shader, %.3f ms total):", tot);
    for (int i = 0; i < d->n_pipes; i++)
        if (d->prof_n[i])
            qr_log(QR_LOG_WARN, "  %-20s %8ld dispatches %10.3f ms %8.2f us/dispatch %5.1f%%", qr_spv_table[i].name,
                   d->prof_n[i], d->prof_ms[i], 1e3 * d->prof_ms[i] / (double)d->prof_n[i],
                   tot > 0 ? 100.0 * d->prof_ms[i] / tot : 0.0);
}
