/* qr_registry.h - finding, loading and opening backends (dlopen + backends.ini). */
#ifndef QRUN_QR_REGISTRY_H
#define QRUN_QR_REGISTRY_H

#include "qr_backend.h"

#ifdef __cplusplus
extern "C" {
#endif

struct qr_config_ini;   /* parsed backends.ini */

/* Load the config: explicit path, else $QRUN_CONFIG, else ./backends.ini,
 * else the install location.  *out may be an empty config if none is found
 * (defaults apply); a malformed file is an error. */
qr_status qr_ini_load(const char *explicit_path, struct qr_config_ini **out);
void qr_ini_free(struct qr_config_ini *ini);
const char *qr_ini_path(const struct qr_config_ini *ini);          /* NULL if none */
const char *qr_ini_get(const struct qr_config_ini *ini, const char *section, const char *key);
const char *qr_ini_default_model_dir(const struct qr_config_ini *ini);

struct qr_backend_info {
    char name[32];
    char lib_path[512];
    int priority;
    bool loaded;                 /* library loaded and api_version matched */
    char why[256];               /* when unavailable: library missing, no device, driver too old */
    int n_devices;
    const struct qr_backend_reg *reg;
};

/* Enumerate the configured backends (cpu, cuda, vulkan): tries to load each. */
qr_status qr_backends_list(const struct qr_config_ini *ini, struct qr_backend_info *out, int max, int *n);

/* Open a device of backend `name` ("cpu", "cuda", "vulkan" or "auto": highest
 * priority available).  opts_override may set device_index / mem_fraction /
 * n_threads (negative / 0 = from ini). */
qr_status qr_backend_open(const struct qr_config_ini *ini, const char *name,
                          const struct qr_backend_opts *opts_override, struct qr_device **out);
void qr_device_close(struct qr_device *d);
/* Calls every loaded backend's shutdown(); only after all its devices are
 * closed.  Libraries stay loaded; a later open re-initialises them. */
void qr_backends_shutdown(void);

/* Checked wrappers: validate arguments, handle dead devices, supply defaults
 * for optional entries.  The core and the tests call these, never the vtables. */
qr_status qr_dev_props(struct qr_device *d, struct qr_device_props *p);
qr_status qr_buf_alloc(struct qr_device *d, size_t size, unsigned usage, struct qr_buf **out);
void qr_buf_free(struct qr_buf *b);
qr_status qr_stream_create(struct qr_device *d, struct qr_stream **out);
void qr_stream_destroy(struct qr_stream *s);
qr_status qr_stream_write(struct qr_stream *s, struct qr_buf *dst, size_t off, const void *src, size_t n);
qr_status qr_stream_read(struct qr_stream *s, struct qr_buf *src, size_t off, void *dst, size_t n);
qr_status qr_stream_memset0(struct qr_stream *s, struct qr_buf *dst, size_t off, size_t n);
qr_status qr_stream_sync(struct qr_stream *s);
/* device -> device copy on one device (bounds-checked) */
qr_status qr_stream_copy(struct qr_stream *s, struct qr_buf *dst, size_t doff, struct qr_buf *src, size_t soff,
                         size_t n);
/* wraps host memory (e.g. an mmapped weight file) without copying where the
 * backend can (CPU); otherwise allocates a device buffer and uploads it */
qr_status qr_buf_from_host(struct qr_device *d, void *ptr, size_t size, struct qr_buf **out);
/* whether the device runs op with weight dtype wtype (QR_DTYPE_COUNT: any);
 * for kv_store/attn wtype is the KV dtype.  false on a dead device. */
bool qr_dev_supports(struct qr_device *d, enum qr_op op, enum qr_dtype wtype);
/* runs a graph: graph_exec if the backend has one, else node by node */
qr_status qr_graph_run(struct qr_stream *s, const struct qr_graph *g);
/* runs one node through the ops table */
qr_status qr_node_run(struct qr_stream *s, const struct qr_node *n);

#ifdef __cplusplus
}
#endif
#endif
