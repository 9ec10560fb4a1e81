#define _GNU_SOURCE
/* vk_device.c - physical device enumeration, description, device open/close,
 * properties and buffers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "vk_internal.h"

#define VK_MAX_PDEV 16

/* the order devices are numbered in: discrete GPUs, integrated, virtual, other, then devices emulated on the CPU
 * (lavapipe), each kind in the loader's order -- so device 0 is the real GPU where the machine has both */
static int type_rank(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 0;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 1;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return 4;
    default: return 3;
    }
}

static const char *type_name(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete GPU";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated GPU";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual GPU";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "emulated on the CPU";
    default: return "other device type";
    }
}

/* physical devices usable by qrun: Vulkan >= 1.2 with a compute queue, GPUs first (type_rank) */
static int vk_list(VkPhysicalDevice *out, int max) {
    VkInstance inst = vk_instance_get();
    if (!inst) return 0;
    uint32_t n = 0;
    if (vkEnumeratePhysicalDevices(inst, &n, NULL) != VK_SUCCESS || n == 0) return 0;
    VkPhysicalDevice all[VK_MAX_PDEV];
    if (n > VK_MAX_PDEV) n = VK_MAX_PDEV;
    VkResult r = vkEnumeratePhysicalDevices(inst, &n, all);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) return 0;
    int k = 0;
    for (uint32_t i = 0; i < n && k < max; i++) {
        VkPhysicalDeviceProperties p;
        vkGetPhysicalDeviceProperties(all[i], &p);
        if (p.apiVersion < VK_API_VERSION_1_2) continue;
        uint32_t nq = 0;
        vkGetPhysicalDeviceQueueFamilyProperties(all[i], &nq, NULL);
        VkQueueFamilyProperties qf[32];
        if (nq > 32) nq = 32;
        vkGetPhysicalDeviceQueueFamilyProperties(all[i], &nq, qf);
        bool ok = false;
        for (uint32_t q = 0; q < nq; q++) ok |= (qf[q].queueFlags & VK_QUEUE_COMPUTE_BIT) != 0;
        if (!ok) continue;
        /* insertion after every device of the same or a better rank (stable) */
        int j = k++;
        for (; j > 0; j--) {
            VkPhysicalDeviceProperties q;
            vkGetPhysicalDeviceProperties(out[j - 1], &q);
            if (type_rank(q.deviceType) <= type_rank(p.deviceType)) break;
            out[j] = out[j - 1];
        }
        out[j] = all[i];
    }
    return k;
}

int vk_device_count(void) {
    VkPhysicalDevice pd[VK_MAX_PDEV];
    return vk_list(pd, VK_MAX_PDEV);
}

static bool has_ext(const VkExtensionProperties *e, uint32_t n, const char *name) {
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(e[i].extensionName, name) == 0) return true;
    return false;
}

struct vk_info {
    VkPhysicalDeviceProperties props;
    VkPhysicalDeviceDriverProperties drv;
    VkPhysicalDeviceSubgroupProperties sg;
    VkPhysicalDeviceMemoryProperties mem;
    bool fp16, s16, coop_nv, coop_khr, budget, maint3, wgmem;
    bool khr_16x8;   /* VK_KHR_cooperative_matrix lists the 16 x 8 x 16 fragments of matmul_cm3k / attn_cm2k */
    size_t max_alloc, max_range, heap_size;
    uint32_t heap;
};

static bool coop_khr_16x8x16(VkPhysicalDevice pd);

static void vk_query(VkPhysicalDevice pd, struct vk_info *in) {
    memset(in, 0, sizeof *in);
    in->drv.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES;
    in->sg.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES;
    in->sg.pNext = &in->drv;
    VkPhysicalDeviceMaintenance3Properties m3 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES,
                                                 .pNext = &in->sg};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &m3};
    vkGetPhysicalDeviceProperties2(pd, &p2);
    in->props = p2.properties;
    VkPhysicalDeviceVulkan11Features f11 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
    VkPhysicalDeviceVulkan12Features f12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
                                            .pNext = &f11};
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f12};
    vkGetPhysicalDeviceFeatures2(pd, &f2);
    in->fp16 = f12.shaderFloat16;
    in->s16 = f11.storageBuffer16BitAccess;
    uint32_t ne = 0;
    vkEnumerateDeviceExtensionProperties(pd, NULL, &ne, NULL);
    VkExtensionProperties *ext = calloc(ne ? ne : 1, sizeof *ext);
    if (ext && vkEnumerateDeviceExtensionProperties(pd, NULL, &ne, ext) == VK_SUCCESS) {
        in->coop_nv = has_ext(ext, ne, VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME);
        in->wgmem = has_ext(ext, ne, VK_KHR_WORKGROUP_MEMORY_EXPLICIT_LAYOUT_EXTENSION_NAME);
        in->coop_khr = has_ext(ext, ne, "VK_KHR_cooperative_matrix");
        in->budget = has_ext(ext, ne, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);
    }
    free(ext);
    in->khr_16x8 = in->coop_khr && coop_khr_16x8x16(pd);
    vkGetPhysicalDeviceMemoryProperties(pd, &in->mem);
    in->max_alloc = (size_t)m3.maxMemoryAllocationSize;
    VkPhysicalDeviceMaintenance4Properties m4 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_4_PROPERTIES};
    if (in->props.apiVersion >= VK_API_VERSION_1_3) {
        VkPhysicalDeviceProperties2 q2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &m4};
        vkGetPhysicalDeviceProperties2(pd, &q2);
        if (m4.maxBufferSize && (size_t)m4.maxBufferSize < in->max_alloc) in->max_alloc = (size_t)m4.maxBufferSize;
    }
    in->max_range = in->props.limits.maxStorageBufferRange;
    /* the largest device-local heap */
    for (uint32_t h = 0; h < in->mem.memoryHeapCount; h++)
        if ((in->mem.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) &&
            in->mem.memoryHeaps[h].size > in->heap_size) {
            in->heap_size = in->mem.memoryHeaps[h].size;
            in->heap = h;
        }
    if (in->heap_size == 0 && in->mem.memoryHeapCount > 0) {
        in->heap = 0;
        in->heap_size = in->mem.memoryHeaps[0].size;
    }
}

static void vk_fill_props(const struct vk_info *in, bool use_coop, struct qr_device_props *p) {
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%.127s", in->props.deviceName);
    const char *coop = in->coop_khr && in->coop_nv ? (in->khr_16x8 ? "coopmat KHR16x8+NV" : "coopmat KHR+NV")
                       : in->coop_khr ? "coopmat KHR" : in->coop_nv ? "coopmat NV" : "no coopmat";
    char d[512];   /* composed long, kept to the first 255 bytes */
    snprintf(d, sizeof d,
             "%s, driver %.32s %.40s, Vulkan %u.%u, subgroup %u%s, %s%s%s (%s), bind %zu MiB, alloc %zu MiB, "
             "shared %u KiB",
             type_name(in->props.deviceType), in->drv.driverName, in->drv.driverInfo,
             VK_API_VERSION_MAJOR(in->props.apiVersion),
             VK_API_VERSION_MINOR(in->props.apiVersion), in->sg.subgroupSize,
             (in->sg.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT) ? " (arith)" : "",
             in->fp16 ? "fp16, " : "", in->s16 ? "16-bit storage, " : "", coop,
             use_coop ? (in->khr_16x8 && in->wgmem ? "GEMM+attn on KHR" : "used by GEMM") : "unused",
             in->max_range >> 20, in->max_alloc >> 20, in->props.limits.maxComputeSharedMemorySize >> 10);
    snprintf(p->description, sizeof p->description, "%.255s", d);
    p->mem_total = in->heap_size;
    p->mem_free = in->heap_size;
    /* the largest buffer qrun allocates: one VkDeviceMemory allocation
     * (maxMemoryAllocationSize, maxBufferSize) that one storage-buffer binding
     * can still cover whole (maxStorageBufferRange: 128 MiB on lavapipe, 4 GiB
     * on NVIDIA), so every op works on any buffer; the matmuls and the
     * embedding also bind row ranges of views */
    p->max_alloc = in->max_alloc < in->max_range ? in->max_alloc : in->max_range;
    p->max_alloc &= ~(size_t)255;
    p->alignment = 256;
    p->caps = QR_CAP_GRAPH_REPLAY | (in->fp16 ? QR_CAP_F16 : 0) | (use_coop ? QR_CAP_COOPMAT : 0) |
              (in->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU ? QR_CAP_SOFTWARE : 0);
}

/* the fragment shapes VK_NV_cooperative_matrix offers with fp16 inputs (logged at info level on open: the
 * matmul_cm* shaders use 16 x 16 x 16 with f32 accumulators) */
static void log_coop_nv(VkPhysicalDevice pd) {
    PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV get = (PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV)
        vkGetInstanceProcAddr(vk_instance_get(), "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV");
    uint32_t n = 0;
    if (!get || get(pd, &n, NULL) != VK_SUCCESS || n == 0) return;
    VkCooperativeMatrixPropertiesNV pr[64];
    if (n > 64) n = 64;
    for (uint32_t i = 0; i < n; i++)
        pr[i] = (VkCooperativeMatrixPropertiesNV){.sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV};
    if (get(pd, &n, pr) != VK_SUCCESS && n == 0) return;
    char line[1024];
    size_t o = 0;
    for (uint32_t i = 0; i < n && o + 48 < sizeof line; i++)
        if (pr[i].AType == VK_COMPONENT_TYPE_FLOAT16_NV)
            o += (size_t)snprintf(line + o, sizeof line - o, " %ux%ux%u%s", pr[i].MSize, pr[i].NSize, pr[i].KSize,
                                  pr[i].DType == VK_COMPONENT_TYPE_FLOAT32_NV ? "/f32" : "/f16");
    qr_log(QR_LOG_INFO, "vulkan: NV cooperative matrix shapes (M x N x K/accumulator, fp16 inputs):%s",
           o ? line : " none");
}

/* VK_KHR_cooperative_matrix, declared here: Debian 12's Vulkan headers (1.3.239) predate it */
#define QR_STYPE_COOPMAT_FEATURES_KHR ((VkStructureType)1000506000)
#define QR_STYPE_COOPMAT_PROPERTIES_KHR ((VkStructureType)1000506001)
struct qr_coopmat_features_khr {
    VkStructureType sType;
    void *pNext;
    VkBool32 cooperativeMatrix, cooperativeMatrixRobustBufferAccess;
};
struct qr_coopmat_props_khr {
    VkStructureType sType;
    void *pNext;
    uint32_t MSize, NSize, KSize, AType, BType, CType, ResultType;
    VkBool32 saturatingAccumulation;
    uint32_t scope;
};
typedef VkResult(VKAPI_PTR *qr_pfn_coopmat_props_khr)(VkPhysicalDevice, uint32_t *, struct qr_coopmat_props_khr *);

/* whether the KHR extension offers the fragments of the matmul_cm3k_* shaders (tool/spv_nv2khr.c rewrites them
 * from NV): 16 x 8 x 16, fp16 A and B, f32 C and result, subgroup scope */
static bool coop_khr_16x8x16(VkPhysicalDevice pd) {
    qr_pfn_coopmat_props_khr get = (qr_pfn_coopmat_props_khr)vkGetInstanceProcAddr(
        vk_instance_get(), "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR");
    uint32_t n = 0;
    if (!get || get(pd, &n, NULL) != VK_SUCCESS || n == 0) return false;
    struct qr_coopmat_props_khr pr[64];
    if (n > 64) n = 64;
    for (uint32_t i = 0; i < n; i++) pr[i] = (struct qr_coopmat_props_khr){.sType = QR_STYPE_COOPMAT_PROPERTIES_KHR};
    VkResult r = get(pd, &n, pr);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) return false;
    for (uint32_t i = 0; i < n; i++)   /* component types: 0 fp16, 1 fp32; scope 3 subgroup */
        if (pr[i].MSize == 16 && pr[i].NSize == 8 && pr[i].KSize == 16 && pr[i].AType == 0 && pr[i].BType == 0 &&
            pr[i].CType == 1 && pr[i].ResultType == 1 && pr[i].scope == 3)
            return true;
    return false;
}

qr_status vk_device_describe(int idx, struct qr_device_props *p) {
    VkPhysicalDevice pd[VK_MAX_PDEV];
    int n = vk_list(pd, VK_MAX_PDEV);
    if (idx < 0 || idx >= n) return qr_set_error(QR_E_NOT_FOUND, "vulkan: no device %d (%d found)", idx, n);
    struct vk_info in;
    vk_query(pd[idx], &in);
    vk_fill_props(&in, in.coop_nv && in.fp16 && in.sg.subgroupSize == 32, p);
    return QR_OK;
}

static uint32_t find_mem_type(const VkPhysicalDeviceMemoryProperties *mp, uint32_t bits, VkMemoryPropertyFlags want,
                              VkMemoryPropertyFlags avoid) {
    for (uint32_t i = 0; i < mp->memoryTypeCount; i++) {
        VkMemoryPropertyFlags f = mp->memoryTypes[i].propertyFlags;
        if ((bits & (1u << i)) && (f & want) == want && (f & avoid) == 0) return i;
    }
    return UINT32_MAX;
}

qr_status vk_mem_alloc(struct vk_dev *d, VkBuffer *buf, VkDeviceMemory *mem, void **map, size_t size, bool host,
                       bool count) {
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = size,
                             .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                      VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VK_TRY(d, vkCreateBuffer(d->dev, &bi, NULL, buf));
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(d->dev, *buf, &req);
    const VkMemoryPropertyFlags hv = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    uint32_t mt;
    if (host) {
        mt = find_mem_type(&d->memprops, req.memoryTypeBits, hv | VK_MEMORY_PROPERTY_HOST_CACHED_BIT, 0);
        if (mt == UINT32_MAX) mt = find_mem_type(&d->memprops, req.memoryTypeBits, hv, 0);
    } else {
        mt = find_mem_type(&d->memprops, req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT,
                           VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT);
        if (mt == UINT32_MAX) mt = find_mem_type(&d->memprops, req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0);
        if (mt == UINT32_MAX) mt = find_mem_type(&d->memprops, req.memoryTypeBits, 0, 0);
    }
    if (mt == UINT32_MAX) {
        vkDestroyBuffer(d->dev, *buf, NULL);
        return qr_set_error(QR_E_UNSUPPORTED, "vulkan: no memory type for a %s buffer", host ? "host" : "device");
    }
    VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .allocationSize = req.size,
                               .memoryTypeIndex = mt};
    VkResult r = vkAllocateMemory(d->dev, &ai, NULL, mem);
    if (r != VK_SUCCESS) {
        vkDestroyBuffer(d->dev, *buf, NULL);
        if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY)
            return qr_set_error(QR_E_OOM_DEVICE, "vulkan: out of device memory allocating %zu bytes (%zu in use)",
                                size, d->allocated);
        return vk_fail(d, r, "vkAllocateMemory", __func__, __FILE__, __LINE__);
    }
    r = vkBindBufferMemory(d->dev, *buf, *mem, 0);
    *map = NULL;
    if (r == VK_SUCCESS && (d->memprops.memoryTypes[mt].propertyFlags & hv) == hv)
        r = vkMapMemory(d->dev, *mem, 0, VK_WHOLE_SIZE, 0, map);
    if (r != VK_SUCCESS) {
        vkFreeMemory(d->dev, *mem, NULL);
        vkDestroyBuffer(d->dev, *buf, NULL);
        return vk_fail(d, r, "vkBindBufferMemory/vkMapMemory", __func__, __FILE__, __LINE__);
    }
    if (count) d->allocated += req.size;
    return QR_OK;
}

static qr_status vk_buf_alloc(struct qr_device *qd, size_t size, unsigned usage, struct qr_buf **out) {
    struct vk_dev *d = vk_dev_of(qd);
    if (size == 0) size = 16;
    size_t asz = (size + 15) & ~(size_t)15;
    if (asz > d->max_alloc)
        return qr_set_error(QR_E_OOM_DEVICE, "vulkan: buffer of %zu bytes exceeds the device's max allocation %zu",
                            size, d->max_alloc);
    struct vk_buf *b = calloc(1, sizeof *b);
    if (!b) return qr_set_error(QR_E_OOM_HOST, "vulkan: out of host memory");
    pthread_mutex_lock(&d->lock);
    qr_status st = vk_mem_alloc(d, &b->buf, &b->mem, &b->map, asz, false, true);
    pthread_mutex_unlock(&d->lock);
    if (st != QR_OK) {
        free(b);
        return st;
    }
    b->alloc_size = asz;
    b->pub.dev = qd;
    b->pub.size = size;
    b->pub.ptr = NULL;
    b->pub.ctx = b;
    b->usage = usage;
    *out = &b->pub;
    return QR_OK;
}

static void vk_buf_free(struct qr_buf *qb) {
    if (!qb) return;
    struct vk_buf *b = vk_buf_of(qb);
    struct vk_dev *d = vk_dev_of(qb->dev);
    pthread_mutex_lock(&d->lock);
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(d->dev, b->buf, &req);
    d->allocated -= req.size < d->allocated ? req.size : d->allocated;
    pthread_mutex_unlock(&d->lock);
    if (b->map) vkUnmapMemory(d->dev, b->mem);
    vkDestroyBuffer(d->dev, b->buf, NULL);
    vkFreeMemory(d->dev, b->mem, NULL);
    free(b);
}

static qr_status vk_get_props(struct qr_device *qd, struct qr_device_props *p) {
    struct vk_dev *d = vk_dev_of(qd);
    struct vk_info in;
    vk_query(d->pd, &in);
    vk_fill_props(&in, d->use_coopmat, p);
    p->alignment = d->align > 256 ? d->align : 256;
    size_t used = d->allocated;
    p->mem_free = p->mem_total > used ? p->mem_total - used : 0;
    if (d->has_budget) {
        VkPhysicalDeviceMemoryBudgetPropertiesEXT bud = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT};
        VkPhysicalDeviceMemoryProperties2 mp2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2,
                                                 .pNext = &bud};
        vkGetPhysicalDeviceMemoryProperties2(d->pd, &mp2);
        size_t b = bud.heapBudget[d->heap_device], u = bud.heapUsage[d->heap_device];
        if (b > 0) p->mem_free = b > u ? b - u : 0;
    }
    return QR_OK;
}

static void vk_close(struct qr_device *qd) {
    if (!qd) return;
    struct vk_dev *d = vk_dev_of(qd);
    if (d->dev) {
        vkDeviceWaitIdle(d->dev);
        vk_pipelines_destroy(d);
        if (d->dummy) vkDestroyBuffer(d->dev, d->dummy, NULL);
        if (d->dummy_mem) vkFreeMemory(d->dev, d->dummy_mem, NULL);
        vkDestroyDevice(d->dev, NULL);
    }
    pthread_mutex_destroy(&d->lock);
    free(d);
}

static qr_status vk_stream_create_fn(struct qr_device *qd, struct qr_stream **out);

/* an on/off environment switch: unset -> dflt; "0", "false", "off" -> off; anything else -> on */
static bool env_switch(const char *name, bool dflt) {
    const char *v = getenv(name);
    if (!v || !*v) return dflt;
    return !(strcmp(v, "0") == 0 || strcasecmp(v, "false") == 0 || strcasecmp(v, "off") == 0);
}
static void vk_stream_destroy_fn(struct qr_stream *s);

static int pick_device(VkPhysicalDevice *pd, int n, int idx, const struct qr_backend_opts *opts) {
    const char *name = opts ? opts->device_name : NULL;
    if ((!name || !*name) && opts && opts->get) {
        const char *v = opts->get(opts, "device");
        if (v && *v && strspn(v, "0123456789 ") != strlen(v)) name = v;
    }
    if (name && *name) {
        for (int i = 0; i < n; i++) {
            VkPhysicalDeviceProperties p;
            vkGetPhysicalDeviceProperties(pd[i], &p);
            if (strcasestr(p.deviceName, name)) return i;
        }
        qr_set_error(QR_E_NOT_FOUND, "vulkan: no device name contains \"%s\"", name);
        return -1;
    }
    int want = opts && opts->device_index >= 0 ? opts->device_index : (idx >= 0 ? idx : 0);
    if (want >= n) {
        qr_set_error(QR_E_NOT_FOUND, "vulkan: no device %d (%d found)", want, n);
        return -1;
    }
    return want;
}

qr_status vk_device_open(int idx, const struct qr_backend_opts *opts, struct qr_device **out) {
    VkPhysicalDevice pds[VK_MAX_PDEV];
    int n = vk_list(pds, VK_MAX_PDEV);
    if (n == 0) return qr_set_error(QR_E_NOT_FOUND, "vulkan: no usable device");
    int sel = pick_device(pds, n, idx, opts);
    if (sel < 0) return QR_E_NOT_FOUND;
    struct vk_dev *d = calloc(1, sizeof *d);
    if (!d) return qr_set_error(QR_E_OOM_HOST, "vulkan: out of host memory");
    pthread_mutex_init(&d->lock, NULL);
    d->index = sel;
    d->pd = pds[sel];
    struct vk_info in;
    vk_query(d->pd, &in);
    d->props = in.props;
    d->memprops = in.mem;
    d->heap_device = in.heap;
    d->max_range = in.max_range;
    d->max_alloc = in.max_alloc;
    if (in.props.limits.maxStorageBufferRange < d->max_range) d->max_range = in.props.limits.maxStorageBufferRange;
    d->align = in.props.limits.minStorageBufferOffsetAlignment;
    if (d->align < 16) d->align = 16;
    d->subgroup_size = in.sg.subgroupSize;
    d->subgroup_arith = (in.sg.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT) != 0;
    d->subgroup_shuffle = (in.sg.supportedOperations & VK_SUBGROUP_FEATURE_SHUFFLE_BIT) != 0;
    d->has_fp16 = in.fp16;
    d->has_16bit_storage = in.s16;
    d->has_coopmat_nv = in.coop_nv;
    d->has_coopmat_khr = in.coop_khr;
    d->has_budget = in.budget;
    const char *prof = getenv("QR_VK_PROFILE");
    d->profile = prof && *prof && strcmp(prof, "0") != 0;
    d->mem_fraction = opts && opts->mem_fraction > 0 ? opts->mem_fraction : 0.9;
    snprintf(d->name, sizeof d->name, "%.127s", in.props.deviceName);
    qr_status st = QR_OK;
    if (!d->subgroup_arith || d->subgroup_size == 0 || d->subgroup_size > 128 || (d->subgroup_size & (d->subgroup_size - 1))) {
        st = qr_set_error(QR_E_UNSUPPORTED, "vulkan: %s lacks subgroup arithmetic (or subgroup size %u)", d->name,
                          d->subgroup_size);
        goto fail;
    }

    uint32_t nq = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(d->pd, &nq, NULL);
    VkQueueFamilyProperties qf[32];
    if (nq > 32) nq = 32;
    vkGetPhysicalDeviceQueueFamilyProperties(d->pd, &nq, qf);
    d->qfam = UINT32_MAX;
    for (uint32_t q = 0; q < nq; q++)   /* prefer a compute+graphics (universal) queue */
        if (qf[q].queueFlags & VK_QUEUE_COMPUTE_BIT) {
            if (d->qfam == UINT32_MAX || (qf[q].queueFlags & VK_QUEUE_GRAPHICS_BIT)) d->qfam = q;
            if (qf[q].queueFlags & VK_QUEUE_GRAPHICS_BIT) break;
        }
    float prio = 1.0f;
    VkDeviceQueueCreateInfo qci = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, .queueFamilyIndex = d->qfam,
                                   .queueCount = 1, .pQueuePriorities = &prio};
    const char *exts[8];
    uint32_t n_ext = 0;
    VkPhysicalDeviceCooperativeMatrixFeaturesNV cmf = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
    VkPhysicalDeviceVulkan11Features f11 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
                                            .storageBuffer16BitAccess = in.s16};
    VkPhysicalDeviceVulkan12Features f12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
                                            .pNext = &f11, .shaderFloat16 = in.fp16};
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f12};
    bool want_coop = false, want_wide = false, want_khr = false;
    struct qr_coopmat_features_khr khrf = {.sType = QR_STYPE_COOPMAT_FEATURES_KHR};
    const bool sw_cm2 = env_switch("QR_VK_CM2", false), sw_attn_cm2 = env_switch("QR_VK_ATTN_CM2", true);
    const char *cm3_env = getenv("QR_VK_CM3");
    const int sw_cm3 = cm3_env && atoi(cm3_env) >= 1 && atoi(cm3_env) <= 4 ? atoi(cm3_env) : 0;
    const char *mm_pipe = getenv("QR_VK_MM_PIPE");
    VkPhysicalDeviceWorkgroupMemoryExplicitLayoutFeaturesKHR wgf = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_WORKGROUP_MEMORY_EXPLICIT_LAYOUT_FEATURES_KHR};
#ifdef QR_GLSLC_HAS_COOPMAT_NV
    const char *no_cm = getenv("QR_VK_NO_COOPMAT");
    const char *opt_cm = opts && opts->get ? opts->get(opts, "coopmat") : NULL;
    want_coop = in.coop_nv && in.fp16 && d->subgroup_size == 32 && !(no_cm && *no_cm && strcmp(no_cm, "0") != 0) &&
                !(opt_cm && (strcmp(opt_cm, "0") == 0 || strcasecmp(opt_cm, "false") == 0));
    if (want_coop) {
        VkPhysicalDeviceWorkgroupMemoryExplicitLayoutFeaturesKHR qw = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_WORKGROUP_MEMORY_EXPLICIT_LAYOUT_FEATURES_KHR};
        VkPhysicalDeviceCooperativeMatrixFeaturesNV q = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV, .pNext = in.wgmem ? &qw : NULL};
        VkPhysicalDeviceFeatures2 qf2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &q};
        vkGetPhysicalDeviceFeatures2(d->pd, &qf2);
        want_coop = q.cooperativeMatrix;
        /* the wide GEMM (matmul_cm2) stages its tiles through a second, vector view of workgroup memory */
        want_wide = qw.workgroupMemoryExplicitLayout && qw.workgroupMemoryExplicitLayout16BitAccess &&
                    (sw_cm2 || sw_attn_cm2 || sw_cm3 || (mm_pipe && *mm_pipe) || in.coop_khr);
        /* the KHR path for the prompt GEMM (matmul_cm3k_*, rewritten from NV at build time): NVIDIA's driver runs
         * the NV extension's MMAs at ~32 TFLOP/s on the H100; QR_VK_COOPMAT_KHR=0 keeps the NV shaders */
        want_khr = want_coop && want_wide && in.coop_khr && env_switch("QR_VK_COOPMAT_KHR", true) &&
                   vk_pipe_find("matmul_cm3k_bf16") >= 0 && in.khr_16x8;
    }
    if (want_coop) {
        log_coop_nv(d->pd);
        exts[n_ext++] = VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME;
        cmf.cooperativeMatrix = VK_TRUE;
        f11.pNext = &cmf;
        if (want_wide) {
            exts[n_ext++] = VK_KHR_WORKGROUP_MEMORY_EXPLICIT_LAYOUT_EXTENSION_NAME;
            wgf.workgroupMemoryExplicitLayout = VK_TRUE;
            wgf.workgroupMemoryExplicitLayout16BitAccess = VK_TRUE;
            cmf.pNext = &wgf;
            if (want_khr) {
                exts[n_ext++] = "VK_KHR_cooperative_matrix";
                khrf.cooperativeMatrix = VK_TRUE;
                wgf.pNext = &khrf;
            }
        }
    }
#endif
    if (in.budget) exts[n_ext++] = VK_EXT_MEMORY_BUDGET_EXTENSION_NAME;
    VkDeviceCreateInfo dci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .pNext = &f2, .queueCreateInfoCount = 1,
                              .pQueueCreateInfos = &qci, .enabledExtensionCount = n_ext,
                              .ppEnabledExtensionNames = exts};
    VkResult r = vkCreateDevice(d->pd, &dci, NULL, &d->dev);
    if (r != VK_SUCCESS) {
        d->dev = VK_NULL_HANDLE;
        st = vk_fail(d, r, "vkCreateDevice", __func__, __FILE__, __LINE__);
        goto fail;
    }
    vkGetDeviceQueue(d->dev, d->qfam, 0, &d->queue);
    if ((st = vk_pipelines_init(d)) != QR_OK) goto fail;
    d->use_coopmat = want_coop && vk_pipe_find("matmul_cm_bf16") >= 0;
    d->coop_khr = d->use_coopmat && want_khr && d->props.limits.maxComputeSharedMemorySize >= VK_CM3_SMEM;
    /* fp16 x (to_f16 once per GEMM, then half the x bytes and no conversion per column tile): the KHR prompt GEMM
     * went from 96-100 to 138-164 TFLOP/s on the H100 (M = 4096, same checksums) and TTFT(8192) from 998 to 796 ms
     * (docs/PERF.md, twentieth session); QR_VK_CM3_X16=0 keeps the conversion inside the GEMM (matmul_cm3k) */
    d->khr_x16 = d->coop_khr && env_switch("QR_VK_CM3_X16", true) && vk_pipe_find("to_f16") >= 0 &&
                 vk_pipe_find("matmul_cm3hk_bf16") >= 0;
    /* ... and its workgroups in groups of 16 row tiles down one column of W tiles (a wave shares W tiles in L2):
     * 5690 -> 5187 us per layer of prompt GEMMs at M = 4096 with groups of 8 (gate_up 2945 -> 2505), 5247 -> 5055
     * with 16 (4: 5290), same checksums (twentieth session); QR_VK_CM3_GROUP=0: row-major order */
    d->khr_group = d->khr_x16 && env_switch("QR_VK_CM3_GROUP", true) && vk_pipe_find("matmul_cm3hkg_bf16") >= 0;
    if (want_coop)
        qr_log(QR_LOG_INFO, "vulkan: prompt GEMM on %s cooperative matrices",
               d->coop_khr ? (d->khr_group ? "KHR (matmul_cm3hkg, fp16 x, groups of 16 row tiles)"
                              : d->khr_x16 ? "KHR (matmul_cm3hk, fp16 x)" : "KHR (matmul_cm3k)") : "NV");
    /* the KHR prompt attention: 8 subgroups (128 rows per workgroup, each K/V tile staged for twice the rows) with the
     * query tiles taken longest first: 10.06 -> 5.42 ms per layer at 8192 tokens on the H100 (same checksums),
     * TTFT(8192) 791 -> 620 ms (twentieth session).  QR_VK_ATTN_W8=0 (or < 46 KiB of shared memory): attn_cm2k */
    snprintf(d->attn_khr, sizeof d->attn_khr, "%s",
             env_switch("QR_VK_ATTN_W8", true) && d->props.limits.maxComputeSharedMemorySize >= VK_ATTN_W8_SMEM &&
                     d->props.limits.maxComputeWorkGroupSize[0] >= 256 &&
                     d->props.limits.maxComputeWorkGroupInvocations >= 256 && vk_pipe_find("attn_cm2k_w8r") >= 0
                 ? "attn_cm2k_w8r"
                 : "attn_cm2k");
    /* the wide GEMM lost at 512 tokens and gained little at 8192 on the H100 (docs/PERF.md, eighth session):
     * opt-in with QR_VK_CM2=1; the accumulator-resident prompt attention is the default where the device has
     * VK_KHR_workgroup_memory_explicit_layout (QR_VK_ATTN_CM2=0 keeps attn_cm) */
    d->use_cm2 = d->use_coopmat && want_wide && sw_cm2 &&
                 vk_pipe_find("matmul_cm2_bf16") >= 0;
    /* decode GEMV loads clamped instead of branched (matmul_gemv.comp): written without a GPU, QR_VK_GEMV_CLAMP=1 */
    d->gemv_clamp = env_switch("QR_VK_GEMV_CLAMP", false);
    /* the one-row decode GEMV in 256-thread workgroups (8 rows each with 32-lane subgroups, as the CUDA GEMV's blocks;
     * half the workgroups to launch): decode 170.78 -> 174.25 tok/s on the H100 (docs/PERF.md, eleventh session), so
     * the default; QR_VK_GEMV_WG=128 keeps the 128-thread workgroups */
    {
        const char *wg = getenv("QR_VK_GEMV_WG");
        d->gemv_wide = !(wg && atoi(wg) == 128);
    }
    /* the GEMV lab: QR_VK_GEMV_PIPE=<variant prefix> (matmul_gemv1wr: x and weights restrict; matmul_gemv1wx: the x
     * row staged once per workgroup in shared memory) replaces matmul_gemv1w for one-row, 16-byte aligned GEMVs.
     * Same sums in the same order; written in the seventeenth session to find why the decode GEMVs run at ~1.8 TB/s */
    {
        uint32_t shm = d->props.limits.maxComputeSharedMemorySize;
        d->xsh_v4 = (shm < 49152 ? shm : 49152) / 16;
        const char *gp = getenv("QR_VK_GEMV_PIPE");
        if (gp && *gp) {
            char full[64];
            snprintf(full, sizeof full, "%s_bf16", gp);
            if (strlen(gp) < sizeof d->gemv_pipe && vk_pipe_find(full) >= 0 && d->gemv_wide &&
                d->props.limits.maxComputeWorkGroupSize[0] >= 256)
                snprintf(d->gemv_pipe, sizeof d->gemv_pipe, "%s", gp);
            qr_log(QR_LOG_WARN, "vulkan: QR_VK_GEMV_PIPE=%s: %s", gp,
                   d->gemv_pipe[0] ? "used for the one-row decode GEMVs" : "no such variant (or QR_VK_GEMV_WG=128)");
        }
    }
    /* the split one-row GEMV (matmul_gemv1k<KS>): QR_VK_GEMV_KSPLIT=auto picks KS per K (one round of loads per
     * lane: o_proj KS 2, down_proj KS 8 on Qwen3-4B), =narrow the same for GEMVs of few workgroups only (o_proj,
     * down_proj), =2|4|8 fixes it; off by default: on the H100 narrow took down_proj alone from 37.4 to 28.0 us
     * (qr-step-bench --ops), the whole step -4 % on one machine and +2.5 % on another, bench latency +0-3 % after
     * 512 and -1-2 % at 8192 (twenty-first session) */
    {
        const char *t = getenv("QR_VK_GEMV_KSPLIT");
        int v = !t || !*t                     ? 0
                : strcasecmp(t, "auto") == 0   ? VK_GEMV_KS_AUTO
                : strcasecmp(t, "narrow") == 0 ? VK_GEMV_KS_NARROW
                                               : atoi(t);
        d->gemv_ks = v == VK_GEMV_KS_AUTO || v == VK_GEMV_KS_NARROW || v == 0 || v == 2 || v == 4 || v == 8 ? v : 0;
        if (t && *t && d->gemv_ks != v)
            qr_log(QR_LOG_WARN, "vulkan: QR_VK_GEMV_KSPLIT=%s is not auto, narrow, 0, 2, 4 or 8; off", t);
    }
    /* the streaming hint on the decode GEMVs' weight loads / decode attention's K/V loads (SPIR-V Nontemporal, set
     * after compilation: tool/spv_nontemporal.c), so that the x row (read by every output row) stays in L1: lab
     * switches (the GEMV one with QR_VK_GEMV_ROWS=1); the H100 driver ran them in the same GPU time (twentieth
     * session, docs/PERF.md) */
    d->gemv_nt = env_switch("QR_VK_GEMV_NT", false);
    /* output rows per subgroup in the one-row GEMV and the staged RMSNorm fold (four / two loads of each row in
     * flight, one x or g * x read for all; same sums, same bits): two (matmul_gemv1w2u4, gemvn1r2) took the decode
     * step from 185.4 to 204.0 tok/s on the H100 and bench latency from 178.6-180.4 to 197.8-198.9 (the fold 38.48 ->
     * 33.93 us per dispatch; twentieth session, docs/PERF.md): the default.  QR_VK_GEMV_ROWS=1: one row (gemv1w,
     * gemvn1), =4: four (gemv1w4u2, gemvn1r4) */
    {
        const char *t = getenv("QR_VK_GEMV_ROWS");
        int v = t && *t ? atoi(t) : 2;
        d->gemv_rows = v == 1 || v == 2 || v == 4 ? v : 2;
        if (t && *t && d->gemv_rows != v)
            qr_log(QR_LOG_WARN, "vulkan: QR_VK_GEMV_ROWS=%s is not 1, 2 or 4; using 2", t);
    }
    d->attn_nt = env_switch("QR_VK_ATTN_NT", false);
    /* decode attention with the next tile's K/V loads issued before this tile's math, unconditional (attn_dec_h4p,
     * same sums): QR_VK_ATTN_DEC_PIPE=1 */
    d->attn_dec_pipe = env_switch("QR_VK_ATTN_DEC_PIPE", false);
    /* the one-token q/k RMSNorm + RoPE + KV write folded in front of the decode attention (attn_dec_h2q / h4q: one
     * dispatch less per layer) where the qkv rows are transient: bench latency on the H100 191.1 / 196.3 against
     * 196.1 tok/s after 512 and 144.2 / 146.6 against 170.6 at 8192 (every key split redoes the q norm; twenty-first
     * session, docs/PERF.md), so opt-in: QR_VK_FUSE_ATTN=1 */
    d->fuse_attn = env_switch("QR_VK_FUSE_ATTN", false);
    /* decode attention splits: QR_VK_ATTN_DEC_TILES=N (1..64) gives every split at least N 64-key tiles (fewer
     * workgroups and partials to combine; a lab switch for the short-context decode, where attn_dec + attn_combine
     * cost ~24 us per layer on the H100) */
    {
        const char *t = getenv("QR_VK_ATTN_DEC_TILES");
        int v = t ? atoi(t) : 1;
        d->attn_dec_tiles = v >= 1 && v <= 64 ? v : 1;
        if (t && v != d->attn_dec_tiles)
            qr_log(QR_LOG_WARN, "vulkan: QR_VK_ATTN_DEC_TILES=%s is not in 1..64; using 1", t);
    }
    /* decode attention (twenty-first session): QR_VK_ATTN_DEC_HS=1|2|4|8 query heads per workgroup (fewer: more
     * workgroups, each K/V tile read by G / HS of them; lab), QR_VK_ATTN_DEC_WGS=N workgroups aimed at (64..4096;
     * 384; lab), QR_VK_ATTN_DEC_SHORT=N: two heads per workgroup up to N keys (1024; 0 off) */
    {
        const char *t = getenv("QR_VK_ATTN_DEC_HS"), *w = getenv("QR_VK_ATTN_DEC_WGS");
        const char *sh = getenv("QR_VK_ATTN_DEC_SHORT");   /* keys; 0: never two heads by length */
        int v = t ? atoi(t) : 0, n = w ? atoi(w) : 384, k = sh ? atoi(sh) : 1024;
        d->attn_dec_short = k >= 0 ? k : 1024;
        d->attn_dec_hs = v == 1 || v == 2 || v == 4 || v == 8 ? v : 0;
        d->attn_dec_wgs = n >= 64 && n <= 4096 ? n : 384;
        if ((t && v != d->attn_dec_hs) || (w && n != d->attn_dec_wgs))
            qr_log(QR_LOG_WARN, "vulkan: QR_VK_ATTN_DEC_HS=%s / QR_VK_ATTN_DEC_WGS=%s out of range; defaults used",
                   t ? t : "-", w ? w : "-");
    }
    /* matmul_cm with W staged k-major (no transposed fragment loads): written without a GPU, QR_VK_CM_BT=1 */
    d->cm_bt = d->use_coopmat && env_switch("QR_VK_CM_BT", false) && vk_pipe_find("matmul_cm_bt_bf16") >= 0;
    d->attn_cm2 = d->use_coopmat && want_wide && sw_attn_cm2 && vk_pipe_find("attn_cm2") >= 0;
    /* the software-pipelined prompt GEMM (two shared stages, one barrier per K slice; written without a GPU):
     * QR_VK_CM3=1 matmul_cm3 (8 subgroups of 64 x 32), QR_VK_CM3=2 matmul_cm3b (4 subgroups of 64 x 64).  Both need
     * the explicit workgroup layout (aliased stages) and 40 KiB of shared memory; otherwise matmul_cm stays */
    if (sw_cm3) {
        static const char *const cm3_names[] = {"", "matmul_cm3_bf16", "matmul_cm3b_bf16", "matmul_cm3h_bf16",
                                                "matmul_cm3hb_bf16"};
        const char *v = cm3_names[sw_cm3];
        d->cm3 = d->use_coopmat && want_wide && vk_pipe_find(v) >= 0 && (sw_cm3 < 3 || vk_pipe_find("to_f16") >= 0) &&
                 d->props.limits.maxComputeSharedMemorySize >= VK_CM3_SMEM ? sw_cm3 : 0;
        qr_log(QR_LOG_INFO, "vulkan: QR_VK_CM3=%d: prompt GEMM %s", sw_cm3,
               d->cm3 ? v : !d->use_coopmat ? "matmul_cm* unused (no cooperative matrices)"
                          : "matmul_cm (no workgroup explicit layout, shared memory or variant)");
    }
    /* the GEMM lab: QR_VK_MM_PIPE=<variant prefix> (e.g. matmul_cm3lab3, timing-only) replaces every prompt GEMM's
     * 128 x 128-tile pipeline; a prefix containing "cm3h" reads x through to_f16 */
    if (mm_pipe && *mm_pipe && d->use_coopmat && want_wide) {
        char full[64];
        snprintf(full, sizeof full, "%s_bf16", mm_pipe);
        if (strlen(mm_pipe) < sizeof d->mm_pipe && vk_pipe_find(full) >= 0)
            snprintf(d->mm_pipe, sizeof d->mm_pipe, "%s", mm_pipe);
        qr_log(QR_LOG_WARN, "vulkan: QR_VK_MM_PIPE=%s: %s", mm_pipe,
               d->mm_pipe[0] ? "used for the prompt GEMMs" : "no such variant");
    }
    /* A/B switches of the decode fusions, read once here (QR_VK_NO_FUSE turns every fusion off) */
    /* the RMSNorm / SwiGLU folds into the decode GEMV lost on the H100 in the eighth session (decode 170.6 -> 155.7
     * tok/s with both; the gate_up + SwiGLU fold was the one slower per dispatch: 43.4 vs 31.1 us).  The RMSNorm fold
     * alone, with g * x staged per workgroup (QR_VK_GEMV_NORM_SH, below), won in the nineteenth session (decode step
     * 7.52 -> 6.97 ms, bench latency 176.1 -> 178.1 tok/s at 512 and 155.7 -> 161.9 at 8192; docs/PERF.md) and is the
     * default for one-token steps (the staged form; two dispatches fewer per layer).  QR_VK_FUSE_GEMV=norm folds the
     * RMSNorm at every row count up to 16 (the per-word form above one row: unmeasured), =1 adds the SwiGLU fold to
     * gate_up (one row: matmul_gemvn1g, the staged fold with the gate and up rows of a column in one subgroup,
     * written in the twentieth session and unmeasured; tools/bench/dev_s61.sh), =0 turns both off */
    const char *fg = getenv("QR_VK_FUSE_GEMV");
    d->fuse_gemv = env_switch("QR_VK_FUSE_GEMV", true) && d->max_bind >= 11 && d->subgroup_arith &&
                   vk_pipe_find("matmul_gemvf1_bf16") >= 0;
    d->fuse_glu = d->fuse_gemv && fg && *fg && strcasecmp(fg, "norm") != 0;
    d->fuse_gemv_any = d->fuse_gemv && fg && *fg;
    d->fuse_kv = env_switch("QR_VK_FUSE_KV", true) && vk_pipe_find("qk_norm_rope_kv") >= 0;
    /* SwiGLU folded into the down_proj GEMV recomputes the activation for every output row: on the H100 it took
     * 60 us against 35 us for the plain GEMV plus ~6 us for silu_mul (qr-step-bench --ops), so it is opt-in
     * (ctest runs test_graph_fusion with it) */
    const char *sw = getenv("QR_VK_FUSE_SWIGLU");
    d->fuse_swiglu = sw && atoi(sw) == 1;
    /* the fold's one-row GEMV computes silu(gate) * up once per workgroup and round into shared memory (matmul_gemvs1)
     * instead of once per subgroup (exp + rcp for every weight); unmeasured.  QR_VK_SWIGLU_SH=0: per subgroup */
    d->swiglu_sh = env_switch("QR_VK_SWIGLU_SH", true);
    /* the RMSNorm fold with g * x staged in shared memory once per 256-thread workgroup while the first weight round
     * is in flight (matmul_gemvn1, one row, K <= 4096): the fold's per-word norm-weight loads and x^2 sums gone.  On
     * by default since the nineteenth session (with it the fold wins, above); QR_VK_GEMV_NORM_SH=0: the per-word
     * form (matmul_gemvf1) */
    d->norm_sh = env_switch("QR_VK_GEMV_NORM_SH", true) && d->subgroup_size <= 64 && d->subgroup_size >= 4 &&
                 d->props.limits.maxComputeSharedMemorySize >= 4096 * 4 + 64 * 4 &&
                 d->props.limits.maxComputeWorkGroupSize[0] >= 256 && vk_pipe_find("matmul_gemvn1_bf16") >= 0;
    d->fuse_off = getenv("QR_VK_NO_FUSE") != NULL;
    /* a decode RMSNorm is one row (pure latency): loading the norm weights with x, before the reduction, takes one
     * dependent memory round trip out of it; same arithmetic, same bits (QR_VK_NORM_PREFETCH=0: the old order) */
    d->norm_prefetch = env_switch("QR_VK_NORM_PREFETCH", true);
    void *dmap;
    if ((st = vk_mem_alloc(d, &d->dummy, &d->dummy_mem, &dmap, 256, false, false)) != QR_OK) goto fail;
    {
        struct qr_device_props p;
        vk_fill_props(&in, d->use_coopmat, &p);
        memcpy(d->desc, p.description, sizeof d->desc);
    }
    d->pub.vt = &vk_device_vt;
    d->pub.svt = &vk_stream_vt;
    d->pub.ops = &vk_ops;
    d->pub.reg = qr_backend_init();
    d->pub.ctx = d;
    d->pub.dead = false;
    qr_log(QR_LOG_INFO, "vulkan: opened device %d: %s (%s)", sel, d->name, d->desc);
    *out = &d->pub;
    return QR_OK;
fail:
    vk_close(&d->pub);
    return st;
}

const struct qr_device_vt vk_device_vt = {
    .close = vk_close,
    .get_props = vk_get_props,
    .buf_alloc = vk_buf_alloc,
    .buf_free = vk_buf_free,
    .buf_from_host = NULL,
    .stream_create = vk_stream_create_fn,
    .stream_destroy = vk_stream_destroy_fn,
    .supports = vk_supports,
};

/* stream entry points live in vk_stream.c */
static qr_status vk_stream_create_fn(struct qr_device *qd, struct qr_stream **out) { return vk_stream_create(qd, out); }
static void vk_stream_destroy_fn(struct qr_stream *s) { vk_stream_destroy(s); }
