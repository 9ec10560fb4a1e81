/* vk_internal.h - private structures of the Vulkan backend (never installed).
 *
 * Objects: one VkInstance per process (vk_instance.c); a device (struct vk_dev)
 * owns the VkDevice, its queue, pipelines (vk_pipeline.c) and memory info;
 * a buffer (struct vk_buf) is one VkBuffer + VkDeviceMemory (vk_memory.c);
 * a stream (struct vk_stream) owns a primary command buffer that ops record
 * into, a staging buffer, descriptor pools and the cache of recorded graphs
 * (vk_stream.c).  Ops are recorded by vk_ops.c through vk_rec, a recording
 * target: the stream's pending primary buffer, or a graph's secondary one. */
#ifndef QR_VK_INTERNAL_H
#define QR_VK_INTERNAL_H

#include <vulkan/vulkan.h>
#include <pthread.h>
#include "qrun/qr_backend.h"

/* Check a VkResult; on failure log statement/function/file/line and return a
 * status.  VK_ERROR_DEVICE_LOST marks the device dead. */
#define VK_TRY(dev, stmt) do { VkResult vk_r_ = (stmt); \
    if (vk_r_ != VK_SUCCESS) return vk_fail((dev), vk_r_, #stmt, __func__, __FILE__, __LINE__); } while (0)

#define VK_MAX_BINDINGS 13
/* workgroup memory of matmul_cm3.comp: two stages of (128 + 128) rows x 80 bytes */
#define VK_CM3_SMEM 40960u
/* attn_cm2k_w8*'s shared memory: K/V tile 2 x 32 x 136 halves, 8 x (16 x 36 f32 S + 16 x 40 fp16 P), 128 positions,
 * 4 ints */
#define VK_ATTN_W8_SMEM (2u * 32 * 136 * 2 + 8u * (16 * 36 * 4 + 16 * 40 * 2) + 128u * 4 + 16)

struct vk_dev;

/* a compute pipeline for one shader variant (created on first use) */
struct vk_pipe {
    VkPipeline pipe;
    int n_bind;
    bool tried;
};

enum { VK_GEMV_KS_AUTO = -1, VK_GEMV_KS_NARROW = -2 };

struct vk_dev {
    struct qr_device pub;
    int index;
    VkPhysicalDevice pd;
    VkDevice dev;
    VkQueue queue;
    uint32_t qfam;
    VkPhysicalDeviceProperties props;
    VkPhysicalDeviceMemoryProperties memprops;
    uint32_t mt_device;        /* memory type for weights/KV */
    uint32_t mt_host;          /* host-visible coherent type for staging */
    bool device_mappable;      /* mt_device is host visible (lavapipe, ReBAR) */
    uint32_t heap_device;
    size_t max_range;          /* maxStorageBufferRange */
    size_t max_alloc;          /* min(maxMemoryAllocationSize, maxBufferSize) */
    size_t align;              /* minStorageBufferOffsetAlignment */
    uint32_t subgroup_size;
    bool subgroup_arith;
    bool subgroup_shuffle;     /* attn_dec's q.k reduction */
    bool has_fp16, has_16bit_storage, has_coopmat_nv, has_coopmat_khr, has_budget;
    bool use_coopmat;
    bool coop_khr;  /* VK_KHR_cooperative_matrix enabled: the prompt GEMM is matmul_cm3k_* (QR_VK_COOPMAT_KHR=0 off) */
    bool khr_x16;   /* ... reading x converted to fp16 by to_f16 (matmul_cm3hk_*; QR_VK_CM3_X16=0: matmul_cm3k_*) */
    bool khr_group; /* ... with workgroups in groups of 8 row tiles (matmul_cm3hkg_*; QR_VK_CM3_GROUP=0: cm3hk) */
    char attn_khr[32]; /* the KHR prompt attention: attn_cm2k_w8r (QR_VK_ATTN_W8=0 or too little shared memory:
                        * attn_cm2k) */
    bool use_cm2;   /* matmul_cm2 (128 x 256 tiles; QR_VK_CM2=1): needs VK_KHR_workgroup_memory_explicit_layout */
    bool attn_cm2;  /* attn_cm2 (the same extension; QR_VK_ATTN_CM2=0: attn_cm) */
    bool cm_bt;     /* matmul_cm_bt: W staged k-major (opt-in QR_VK_CM_BT=1) */
    int cm3;        /* the pipelined prompt GEMM: 1 matmul_cm3, 2 matmul_cm3b, 3 matmul_cm3h, 4 matmul_cm3hb (x converted
                     * to fp16 first by to_f16; opt-in QR_VK_CM3=1..4); 0 off */
    char mm_pipe[40]; /* GEMM lab (QR_VK_MM_PIPE): this 128 x 128-tile variant prefix for every prompt GEMM; "" off */
    bool gemv_clamp; /* matmul_gemv: unconditional, clamped weight loads (opt-in QR_VK_GEMV_CLAMP=1) */
    bool gemv_wide;  /* one-row GEMV in 256-thread workgroups, matmul_gemv1w (default; QR_VK_GEMV_WG=128: off) */
    char gemv_pipe[40]; /* GEMV lab (QR_VK_GEMV_PIPE): this variant prefix instead of matmul_gemv1w; "" off */
    bool fuse_attn;     /* the q/k norm + RoPE + KV write folded into the decode attention (QR_VK_FUSE_ATTN) */
    bool attn_dec_pipe; /* decode attention with the next tile's K/V loads issued first (attn_dec_h4p) */
    int gemv_ks;        /* one-row GEMV with KS subgroups per row (matmul_gemv1k<KS>): 0 off, VK_GEMV_KS_AUTO,
                         * VK_GEMV_KS_NARROW (auto for N < 512 one-row workgroups only), 2/4/8 fixed */
    int gemv_rows;      /* output rows per subgroup of the one-row GEMV / RMSNorm fold: 1, 2 (default) or 4 */
    bool gemv_nt;       /* one-row GEMVs with Nontemporal weight loads (matmul_gemv1wnt / gemvn1nt; QR_VK_GEMV_NT=1) */
    bool attn_nt;       /* decode attention with Nontemporal K/V loads (attn_dec_h4nt; QR_VK_ATTN_NT=1) */
    uint32_t xsh_v4;    /* specialization constant 1: vec4 slots of shared memory for an x row (matmul_gemv1wx) */
    int attn_dec_hs;    /* decode attention: query heads per workgroup (QR_VK_ATTN_DEC_HS, lab; 0: by G) */
    int attn_dec_short; /* decode attention: two query heads per workgroup up to this many keys (QR_VK_ATTN_DEC_SHORT) */
    int attn_dec_wgs;   /* decode attention: workgroups aimed at by the split count (QR_VK_ATTN_DEC_WGS, lab; 384) */
    int attn_dec_tiles; /* decode attention: at least this many 64-key tiles per split (QR_VK_ATTN_DEC_TILES, lab; 1) */
    int max_bind;              /* storage buffers a dispatch may bind: min(VK_MAX_BINDINGS, the device's per-stage limit) */
    bool fuse_gemv;            /* decode GEMVs with the RMSNorm (and with fuse_glu the SwiGLU) folded in */
    bool fuse_gemv_any;        /* the fold for every row count up to 16 (QR_VK_FUSE_GEMV set); else one-row steps
                                  where the staged form (norm_sh) runs: the only form measured faster */
    bool fuse_glu;             /* with fuse_gemv: gate_up + SwiGLU in one GEMV too (QR_VK_FUSE_GEMV=norm: no) */
    bool fuse_kv;              /* the KV write folded into q/k norm + RoPE (QR_VK_FUSE_KV=0: off) */
    bool fuse_swiglu;          /* SwiGLU folded into down_proj's GEMV (opt-in: QR_VK_FUSE_SWIGLU=1) */
    bool swiglu_sh;            /* ... computed once per workgroup through shared memory (QR_VK_SWIGLU_SH=0: per subgroup) */
    bool norm_sh;              /* the RMSNorm fold staged per workgroup, matmul_gemvn1 (QR_VK_GEMV_NORM_SH=0: off) */
    bool fuse_off;             /* QR_VK_NO_FUSE set: every op runs on its own */
    bool norm_prefetch;        /* rmsnorm loads its weights with x, before the reduction (QR_VK_NORM_PREFETCH=0: after) */
    double mem_fraction;
    size_t allocated;          /* bytes allocated by qrun */
    VkDescriptorSetLayout dsl[VK_MAX_BINDINGS + 1];
    VkPipelineLayout plo[VK_MAX_BINDINGS + 1];
    struct vk_pipe *pipes;     /* one per qr_spv_table entry */
    int n_pipes;
    bool profile;              /* QR_VK_PROFILE=1: GPU time per shader, logged at close */
    double *prof_ms;           /* per pipeline: total GPU ms */
    long *prof_n;              /* per pipeline: dispatches */
    VkBuffer dummy;            /* bound where an op has no buffer (bias, idx) */
    VkDeviceMemory dummy_mem;
    pthread_mutex_t lock;
    char name[128];
    char desc[256];
};

struct vk_buf {
    struct qr_buf pub;
    VkBuffer buf;
    VkDeviceMemory mem;
    void *map;                 /* when host visible */
    size_t alloc_size;
    unsigned usage;            /* QR_BUF_* flags it was allocated with */
};

/* a growable chain of descriptor pools */
struct vk_dpools {
    VkDescriptorPool *pools;
    int n, cap;
};

/* temporary device buffers that live as long as a recording */
struct vk_tmpbufs {
    struct qr_buf **bufs;
    int n, cap;
};

struct vk_rec {
    VkCommandBuffer cb;
    struct vk_dpools dp;
    struct vk_tmpbufs tmp;
    struct qr_buf *part;       /* split-KV partials, shared by the attention nodes of this recording */
    size_t part_size;
    int n_cmds;
};

struct vk_graph {
    uint64_t key;
    struct vk_rec rec;
    int n_nodes;
    uint64_t last_use;
};

struct vk_stream {
    struct qr_stream pub;
    struct vk_dev *d;
    VkCommandPool pool;
    VkFence fence;
    struct vk_rec pending;     /* primary buffer the ops record into */
    bool recording;            /* pending.cb is begun */
    struct vk_rec *cur;        /* where ops record: &pending, or a graph being recorded */
    VkBuffer staging;
    VkDeviceMemory staging_mem;
    void *staging_map;
    size_t staging_size, staging_used;
    struct vk_graph *graphs;
    int n_graphs, cap_graphs;
    VkQueryPool qpool;         /* profiling: timestamp pairs around dispatches */
    int *q_pipe;               /* pipeline of each pair */
    int n_q;
    uint64_t use_counter;
};

/* vk_instance.c */
VkInstance vk_instance_get(void);
qr_status vk_fail(struct vk_dev *d, VkResult r, const char *stmt, const char *fn, const char *file, int line);
const char *vk_result_str(VkResult r);

struct qr_backend_reg *qr_backend_init(void);

/* vk_device.c */
extern const struct qr_device_vt vk_device_vt;
qr_status vk_device_open(int idx, const struct qr_backend_opts *opts, struct qr_device **out);
qr_status vk_device_describe(int idx, struct qr_device_props *p);
int vk_device_count(void);
qr_status vk_mem_alloc(struct vk_dev *d, VkBuffer *buf, VkDeviceMemory *mem, void **map, size_t size,
                       bool host, bool count);

/* vk_pipeline.c */
qr_status vk_pipelines_init(struct vk_dev *d);
void vk_pipelines_destroy(struct vk_dev *d);
int vk_pipe_find(const char *name);   /* index into qr_spv_table, -1 if not built */

struct vk_binding {
    VkBuffer buf;
    VkDeviceSize off, range;
};
qr_status vk_dispatch(struct vk_stream *s, int pipe, int n_bind, const struct vk_binding *b,
                      const void *pc, uint32_t pc_size, uint32_t gx, uint32_t gy, uint32_t gz);
void vk_cmd_barrier(VkCommandBuffer cb);           /* full: compute+transfer+host */
void vk_cmd_barrier_compute(VkCommandBuffer cb);   /* dispatch -> dispatch */
#define VK_PROF_PAIRS 2048
void vk_prof_collect(struct vk_stream *s);
void vk_prof_report(struct vk_dev *d);
qr_status vk_dpools_alloc(struct vk_dev *d, struct vk_dpools *dp, VkDescriptorSetLayout l, VkDescriptorSet *out);
void vk_dpools_reset(struct vk_dev *d, struct vk_dpools *dp);
void vk_dpools_destroy(struct vk_dev *d, struct vk_dpools *dp);

/* vk_stream.c */
extern const struct qr_stream_vt vk_stream_vt;
qr_status vk_stream_create(struct qr_device *qd, struct qr_stream **out);
void vk_stream_destroy(struct qr_stream *s);
qr_status vk_stream_begin(struct vk_stream *s);   /* ensures s->cur is recording */
qr_status vk_rec_tmp_alloc(struct vk_stream *s, size_t size, struct qr_buf **out);

/* vk_ops.c */
extern const struct qr_ops vk_ops;
bool vk_supports(struct qr_device *d, enum qr_op op, enum qr_dtype wtype);
/* the node patterns run as one dispatch, starting at n[0] (vk_ops.c): [QK_NORM x2,] ROPE x2 [, KV_STORE];
 * RMSNORM + MATMUL [+ SILU_MUL]; SILU_MUL + MATMUL (opt-in).  Returns the nodes consumed, 0 if none applies, or a
 * negative status. */
int vk_fuse_at(struct qr_stream *qs, const struct qr_node *n, int n_nodes);

static inline struct vk_dev *vk_dev_of(struct qr_device *d) { return (struct vk_dev *)d->ctx; }
static inline struct vk_stream *vk_stream_of(struct qr_stream *s) { return (struct vk_stream *)s->ctx; }
static inline struct vk_buf *vk_buf_of(struct qr_buf *b) { return (struct vk_buf *)b->ctx; }

#endif
