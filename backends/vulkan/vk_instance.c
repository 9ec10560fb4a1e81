/* vk_instance.c - the process-wide VkInstance, the plugin's registry entry
 * points, and VkResult -> qr_status mapping. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "vk_internal.h"

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static VkInstance g_inst;
static bool g_tried;
static char g_why[256];

const char *vk_result_str(VkResult r) {
    switch (r) {
    case VK_SUCCESS: return "VK_SUCCESS";
    case VK_NOT_READY: return "VK_NOT_READY";
    case VK_TIMEOUT: return "VK_TIMEOUT";
    case VK_INCOMPLETE: return "VK_INCOMPLETE";
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED";
    case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
    case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
    case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
    case VK_ERROR_FORMAT_NOT_SUPPORTED: return "VK_ERROR_FORMAT_NOT_SUPPORTED";
    case VK_ERROR_FRAGMENTED_POOL: return "VK_ERROR_FRAGMENTED_POOL";
    case VK_ERROR_OUT_OF_POOL_MEMORY: return "VK_ERROR_OUT_OF_POOL_MEMORY";
    default: return "VK_ERROR_(other)";
    }
}

qr_status vk_fail(struct vk_dev *d, VkResult r, const char *stmt, const char *fn, const char *file, int line) {
    qr_status st = QR_E_INTERNAL;
    if (r == VK_ERROR_DEVICE_LOST) {
        st = QR_E_DEVICE_LOST;
        if (d) d->pub.dead = true;
    } else if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY) {
        st = QR_E_OOM_DEVICE;
    } else if (r == VK_ERROR_OUT_OF_HOST_MEMORY) {
        st = QR_E_OOM_HOST;
    }
    return qr_set_error(st, "vulkan: %s failed: %s in %s (%s:%d) on device %d%s%s", stmt, vk_result_str(r), fn,
                        file, line, d ? d->index : -1, d ? " " : "", d ? d->name : "");
}

VkInstance vk_instance_get(void) {
    pthread_mutex_lock(&g_lock);
    if (!g_tried) {
        g_tried = true;
        uint32_t ver = VK_API_VERSION_1_0;
        PFN_vkEnumerateInstanceVersion ev =
            (PFN_vkEnumerateInstanceVersion)vkGetInstanceProcAddr(NULL, "vkEnumerateInstanceVersion");
        if (ev) ev(&ver);
        if (ver < VK_API_VERSION_1_2) {
            snprintf(g_why, sizeof g_why, "Vulkan loader is %u.%u; qrun needs 1.2", VK_API_VERSION_MAJOR(ver),
                     VK_API_VERSION_MINOR(ver));
        } else {
            VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO, .pApplicationName = "qrun",
                                     .pEngineName = "qrun", .apiVersion = VK_API_VERSION_1_2};
            VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pApplicationInfo = &app};
            VkResult r = vkCreateInstance(&ci, NULL, &g_inst);
            if (r != VK_SUCCESS) {
                g_inst = VK_NULL_HANDLE;
                snprintf(g_why, sizeof g_why, "vkCreateInstance failed: %s (no Vulkan driver?)", vk_result_str(r));
            }
        }
    }
    VkInstance i = g_inst;
    pthread_mutex_unlock(&g_lock);
    return i;
}

static const char *vk_unavailable_reason(void) {
    VkInstance i = vk_instance_get();
    if (!i) return g_why;
    if (vk_device_count() == 0) return "no Vulkan 1.2 device with a compute queue";
    return NULL;
}

static void vk_shutdown(void) {
    pthread_mutex_lock(&g_lock);
    if (g_inst) vkDestroyInstance(g_inst, NULL);
    g_inst = VK_NULL_HANDLE;
    g_tried = false;
    pthread_mutex_unlock(&g_lock);
}

static struct qr_backend_reg g_reg = {
    .api_version = QR_BACKEND_API_VERSION,
    .name = "vulkan",
    .device_count = vk_device_count,
    .device_describe = vk_device_describe,
    .device_open = vk_device_open,
    .unavailable_reason = vk_unavailable_reason,
    .get_proc = NULL,
    .shutdown = vk_shutdown,
};

__attribute__((visibility("default"))) struct qr_backend_reg *qr_backend_init(void) { return &g_reg; }

__attribute__((visibility("default"))) int qr_backend_score(void) {
    return vk_device_count() > 0 ? 50 : 0;
}
