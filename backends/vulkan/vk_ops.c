/* vk_ops.c - the op table: argument checks, range binding and dispatch of
 * the shaders (shaders/<op>.comp, push constants in shaders/pc/<op>.h).
 *
 * Binding: each view is bound at its offset rounded down to
 * minStorageBufferOffsetAlignment; the remainder goes to the shader as an
 * element offset.  A binding never exceeds maxStorageBufferRange: the big
 * matmuls (lm_head) and the embedding table are split into several
 * dispatches over rows; other ops fail with QR_E_UNSUPPORTED if one of their
 * tensors is larger than one binding. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include "vk_internal.h"
#include "pc/embed.h"
#include "pc/matmul.h"
#include "pc/rmsnorm.h"
#include "pc/rope.h"
#include "pc/kv_store.h"
#include "pc/attn.h"
#include "pc/attn_combine.h"
#include "pc/attn_pro.h"
#include "pc/silu_mul.h"
#include "pc/add.h"
#include "pc/argmax.h"
#include "pc/topk.h"
#include "pc/qk_norm_rope.h"

_Static_assert(sizeof(struct qr_pc_embed) == 8 * 4, "pc embed");
_Static_assert(sizeof(struct qr_pc_matmul) == 21 * 4, "pc matmul");
_Static_assert(sizeof(struct qr_pc_rmsnorm) == 10 * 4, "pc rmsnorm");
_Static_assert(sizeof(struct qr_pc_rope) == 8 * 4, "pc rope");
_Static_assert(sizeof(struct qr_pc_kv_store) == 12 * 4, "pc kv_store");
_Static_assert(sizeof(struct qr_pc_attn) == 22 * 4, "pc attn");
_Static_assert(sizeof(struct qr_pc_attn_combine) == 6 * 4, "pc attn_combine");
_Static_assert(offsetof(struct qr_pc_attn_pro, wq_off) == sizeof(struct qr_pc_attn) &&
                   sizeof(struct qr_pc_attn_pro) == 32 * 4,
               "pc attn_pro: qr_pc_attn, then the fold's fields");
_Static_assert(sizeof(struct qr_pc_silu_mul) == 6 * 4, "pc silu_mul");
_Static_assert(sizeof(struct qr_pc_add) == 3 * 4, "pc add");
_Static_assert(sizeof(struct qr_pc_argmax) == 6 * 4, "pc argmax");
_Static_assert(sizeof(struct qr_pc_topk) == 8 * 4, "pc topk");
_Static_assert(sizeof(struct qr_pc_qk_norm_rope) == 21 * 4, "pc qk_norm_rope");
_Static_assert(sizeof(struct qr_pc_attn) <= 128 && sizeof(struct qr_pc_matmul) <= 128, "push constants must fit in 128 bytes");

#define ATTN_HDMAX 128
#define ATTN_ROWS 16

static const char *dt_suffix(enum qr_dtype t) {
    switch (t) {
    case QR_DTYPE_F32: return "f32";
    case QR_DTYPE_F16: return "f16";
    case QR_DTYPE_BF16: return "bf16";
    default: return NULL;
    }
}

static bool is_float_dtype(enum qr_dtype t) { return t == QR_DTYPE_F32 || t == QR_DTYPE_F16 || t == QR_DTYPE_BF16; }

static int pipe_named(const char *fmt, const char *a) {
    char name[64];
    snprintf(name, sizeof name, fmt, a ? a : "");
    return vk_pipe_find(name);
}

/* Bind `need` bytes of view v starting at v->off + extra (need 0: as much as
 * one binding allows).  *eoff receives the element offset (elements of esz
 * bytes) of the view inside the binding. */
static qr_status bind_at(struct vk_dev *d, const struct qr_view *v, size_t extra, size_t esz, size_t need,
                         struct vk_binding *b, int *eoff, const char *what) {
    if (!v->buf) {
        *b = (struct vk_binding){0};
        *eoff = 0;
        return QR_OK;
    }
    if (v->buf->dev != &d->pub) return qr_set_error(QR_E_INVALID_ARG, "vulkan: %s is not a buffer of this device", what);
    struct vk_buf *vb = vk_buf_of(v->buf);
    size_t off = v->off + extra;
    size_t a = off - off % d->align;
    if ((off - a) % esz) return qr_set_error(QR_E_INVALID_ARG, "vulkan: %s offset %zu is not %zu-byte aligned", what, off, esz);
    if (off > v->buf->size || need > v->buf->size - off)
        return qr_set_error(QR_E_INVALID_ARG, "vulkan: %s (%zu bytes at %zu) is outside its buffer (%zu bytes)", what,
                            need, off, v->buf->size);
    size_t range = (off - a) + need;
    if (need == 0) range = vb->alloc_size - a;
    range = (range + 3) & ~(size_t)3;
    if (range > vb->alloc_size - a) range = vb->alloc_size - a;
    if (range > d->max_range) {
        if (need == 0) range = d->max_range & ~(size_t)15;
        else
            return qr_set_error(QR_E_UNSUPPORTED,
                                "vulkan: %s needs a binding of %zu bytes, more than maxStorageBufferRange (%zu)", what,
                                range, d->max_range);
    }
    *b = (struct vk_binding){.buf = vb->buf, .off = a, .range = range};
    *eoff = (int)((off - a) / esz);
    return QR_OK;
}

#define TRY(x) do { qr_status st_ = (x); if (st_ != QR_OK) return st_; } while (0)

static uint32_t cdiv(int64_t a, int64_t b) { return (uint32_t)((a + b - 1) / b); }

static qr_status check_pos(const char *op, int n, const char *what) {
    if (n < 0) return qr_set_error(QR_E_INVALID_ARG, "vulkan: %s: negative %s (%d)", op, what, n);
    return QR_OK;
}

/* ---- embed ---- */
static qr_status vk_embed(struct qr_stream *qs, const struct qr_embed_args *a) {
    struct vk_stream *s = vk_stream_of(qs);
    struct vk_dev *d = s->d;
    TRY(check_pos("embed", a->n_tokens, "n_tokens"));
    if (a->n_tokens == 0 || a->dim <= 0) return QR_OK;
    if (!is_float_dtype(a->wtype) || a->vocab <= 0) return qr_set_error(QR_E_INVALID_ARG, "vulkan: embed: bad table");
    int pipe = pipe_named("embed_%s", dt_suffix(a->wtype));
    size_t wsz = qr_dtype_size(a->wtype), rowb = (size_t)a->dim * wsz;
    struct vk_binding b[3];
    struct qr_pc_embed pc = {.n_tokens = a->n_tokens, .dim = a->dim, .vocab = a->vocab};
    TRY(bind_at(d, &a->out, 0, 4, (size_t)a->n_tokens * a->dim * 4, &b[0], &pc.out_off, "embed out"));
    TRY(bind_at(d, &a->ids, 0, 4, (size_t)a->n_tokens * 4, &b[2], &pc.ids_off, "embed ids"));
    size_t rows_per = (d->max_range - d->align) / rowb;
    if (rows_per == 0) return qr_set_error(QR_E_UNSUPPORTED, "vulkan: embed row larger than one binding");
    for (int lo = 0; lo < a->vocab; lo += (int)rows_per) {
        int hi = lo + (int)rows_per < a->vocab ? lo + (int)rows_per : a->vocab;
        TRY(bind_at(d, &a->table, (size_t)lo * rowb, wsz, (size_t)(hi - lo) * rowb, &b[1], &pc.table_off, "embed table"));
        pc.vocab_lo = lo;
        pc.vocab_hi = hi;
        TRY(vk_dispatch(s, pipe, 3, b, &pc, sizeof pc, cdiv(a->dim, 256), (uint32_t)a->n_tokens, 1));
    }
    return QR_OK;
}

/* ---- matmul / logits ---- */
struct mm_job {
    struct qr_view y, x, w, bias, idx, act;
    enum qr_dtype wtype, btype;
    int M, N, K, ldx, ldy, flags, ld_act;
    /* matmul_gemvf (QR_MM_NORM / QR_MM_GLU): the norm weight and output; the up rows of gate_up (w2: N more rows
     * after w's N, output columns N.. of y) */
    struct qr_view g, h, w2;
    enum qr_dtype gtype;
    int ld_h;
    float eps;
};

static qr_status rec_scratch(struct vk_stream *s, size_t size, struct qr_buf **out);

/* matmul_cm3h*: x (binding 1/2, and 6 for QR_MM_IDX) -> mc compact fp16 rows in scratch by to_f16; the GEMM then
 * reads them through binding 2 (x_off 0, ldx K, no row indices) */
static qr_status mm_x16(struct vk_stream *s, struct qr_pc_matmul *pc, int mc, struct vk_binding *b) {
    struct vk_dev *d = s->d;
    size_t bytes = (size_t)mc * pc->K * 2;
    if (bytes + d->align > d->max_range)
        return qr_set_error(QR_E_INTERNAL, "vulkan: fp16 x of the GEMM exceeds a binding");
    struct qr_buf *t;
    TRY(rec_scratch(s, bytes, &t));
    struct vk_binding cb[7] = {{0}};
    int toff;
    struct qr_view tv = {t, 0};
    TRY(bind_at(d, &tv, 0, 2, bytes, &cb[0], &toff, "fp16 x"));
    cb[2] = b[2];
    cb[6] = b[6];
    struct qr_pc_matmul cp = *pc;
    cp.M = mc;
    cp.y_off = toff;
    TRY(vk_dispatch(s, vk_pipe_find("to_f16"), 7, cb, &cp, sizeof cp, cdiv(pc->K / 8, 256), (uint32_t)mc, 1));
    b[1] = b[2] = cb[0];
    b[6] = (struct vk_binding){0};
    pc->x_off = toff;
    pc->ldx = pc->K;
    pc->flags &= ~QR_MM_IDX;
    return QR_OK;
}

/* subgroups per output row of the split one-row GEMV: the fixed QR_VK_GEMV_KSPLIT, or (auto) the fewest that read
 * the row in one round of 8 16-byte loads per lane, or (narrow) auto's for GEMVs of fewer than 512 one-row workgroups
 * only (N < 512 * 8: o_proj and down_proj of Qwen3-4B, not qkv, gate_up or the LM head); 1 where the workgroup's
 * subgroups do not divide by it */
static int gemv_ksplit(const struct vk_dev *d, int N, int K) {
    int rpw = (int)(256 / d->subgroup_size), ks = d->gemv_ks;
    if (ks == VK_GEMV_KS_NARROW) ks = (long)N < 512L * rpw ? VK_GEMV_KS_AUTO : 1;
    if (ks == VK_GEMV_KS_AUTO) {
        long slots = ((long)K + 8L * d->subgroup_size - 1) / (8L * d->subgroup_size);   /* 16-byte loads per lane */
        for (ks = 1; ks < 8 && slots > 8L * ks; ks *= 2) {}
    }
    return ks >= 1 && rpw % ks == 0 ? ks : 1;
}

static qr_status mm_run(struct vk_stream *s, const struct mm_job *j) {
    struct vk_dev *d = s->d;
    if (j->M < 0 || j->N < 0 || j->K < 0) return qr_set_error(QR_E_INVALID_ARG, "vulkan: matmul: negative size");
    if (j->M == 0 || j->N == 0) return QR_OK;
    if (!is_float_dtype(j->wtype)) return qr_set_error(QR_E_UNSUPPORTED, "vulkan: matmul: weight dtype %s", qr_dtype_name(j->wtype));
    if (j->ldy < j->N || (!(j->flags & QR_MM_IDX) && j->ldx < j->K * ((j->flags & QR_MM_SILU) ? 2 : 1)))
        return qr_set_error(QR_E_INVALID_ARG, "vulkan: matmul: ld smaller than the row");
    const char *sfx = dt_suffix(j->wtype);
    size_t wsz = qr_dtype_size(j->wtype), rowb = (size_t)j->K * wsz;
    bool fused = (j->flags & (QR_MM_NORM | QR_MM_GLU)) != 0, glu = (j->flags & QR_MM_GLU) != 0;
    int kind;   /* 0 gemv, 1 gemm, 2 coopmat */
    int cm = d->use_coopmat ? pipe_named(d->cm_bt ? "matmul_cm_bt_%s" : "matmul_cm_%s", sfx) : -1;
    if (j->M <= 16) kind = 0;
    else if (j->flags & (QR_MM_SILU | QR_MM_NORM | QR_MM_GLU))
        return qr_set_error(QR_E_INTERNAL, "vulkan: a fused GEMV needs M <= 16");
    else if (cm >= 0 && j->M >= 64) kind = 2;
    else kind = 1;
    /* GEMV: the variant with the smallest MR (x rows per workgroup) >= M */
    int mr = j->M <= 1 ? 1 : j->M <= 2 ? 2 : j->M <= 4 ? 4 : 8;
    char gemv[32];
    snprintf(gemv, sizeof gemv, fused ? "matmul_gemvf%d_%%s" : "matmul_gemv%d_%%s", mr);
    int pipe = kind == 0 ? pipe_named(gemv, sfx) : kind == 1 ? pipe_named("matmul_gemm_%s", sfx) : cm;
    if (pipe < 0) return qr_set_error(QR_E_INTERNAL, "vulkan: matmul: no pipeline for %s weights", sfx);
    int tile_n = kind == 0 ? (int)(128 / d->subgroup_size) : kind == 1 ? 64 : 128, tile_m = kind == 0 ? mr : kind == 1 ? 64 : 128;
    if (glu) tile_n /= 2;   /* matmul_gemvf: half the subgroups take the up rows of the others' columns */
    if (tile_n < 1) return qr_set_error(QR_E_INTERNAL, "vulkan: the GLU GEMV needs two subgroups per workgroup");
    unsigned vec_k = j->wtype == QR_DTYPE_F32 ? 4 : 8;
    bool vec = j->K % (int)vec_k == 0 && j->w.off % 16 == 0 && j->x.off % 16 == 0 && j->ldx % 4 == 0;
    if (kind == 2) vec = vec && j->K % 32 == 0;
    if (kind == 2 && vec && d->use_cm2 && !(j->flags & QR_MM_SILU)) {   /* the wide tile: vector path only */
        int p2 = pipe_named("matmul_cm2_%s", sfx);
        if (p2 >= 0) {
            pipe = p2;
            tile_n = 256;
        }
    }
    /* the pipelined GEMM (QR_VK_CM3): same 128 x 128 tiles and vector-path conditions; wins over QR_VK_CM2.
     * 3 and 4 (and lab variants named "cm3h...") read x converted to fp16 by to_f16 first */
    bool x16 = false;
    if (kind == 2 && vec && d->coop_khr && !d->cm3 && !d->mm_pipe[0] && !(j->flags & QR_MM_SILU)) {
        /* KHR cooperative matrices (vk_device.c); fp16 x where the weight type has that variant (bf16, f16) */
        int ph = d->khr_group ? pipe_named("matmul_cm3hkg_%s", sfx) : -1;
        if (ph < 0 && d->khr_x16) ph = pipe_named("matmul_cm3hk_%s", sfx);
        int pk = ph >= 0 ? ph : pipe_named("matmul_cm3k_%s", sfx);
        if (pk >= 0) {
            pipe = pk;
            tile_n = 128;
            x16 = ph >= 0;
        }
    }
    if (kind == 2 && vec && (d->cm3 || d->mm_pipe[0]) && !(j->flags & QR_MM_SILU)) {
        static const char *const cm3_pipes[] = {"", "matmul_cm3_%s", "matmul_cm3b_%s", "matmul_cm3h_%s",
                                                "matmul_cm3hb_%s"};
        char lab[64];
        snprintf(lab, sizeof lab, "%s_%%s", d->mm_pipe);
        int p3 = pipe_named(d->mm_pipe[0] ? lab : cm3_pipes[d->cm3], sfx);
        if (p3 >= 0) {
            pipe = p3;
            tile_n = 128;
            x16 = d->mm_pipe[0] ? strstr(d->mm_pipe, "cm3h") != NULL : d->cm3 >= 3;
        }
    }
    if (fused && !vec) return qr_set_error(QR_E_INTERNAL, "vulkan: a fused GEMV needs 16-byte aligned rows");
    int ks = 1, pg = -1;
    /* SwiGLU folded into one x row: the variant that stages each round's inputs in shared memory (U * SG * 8 floats) */
    if (kind == 0 && (j->flags & QR_MM_SILU) && j->M == 1 && vec && d->swiglu_sh &&
        (size_t)8 * d->subgroup_size * vec_k * 4 <= d->props.limits.maxComputeSharedMemorySize) {
        int ps = pipe_named("matmul_gemvs1_%s", sfx);
        if (ps >= 0) pipe = ps;
    } else if (kind == 0 && glu && (j->flags & QR_MM_NORM) && j->M == 1 && vec && d->norm_sh && j->K <= 4096 &&
               d->gemv_rows >= 2 && (pg = pipe_named("matmul_gemvn1g_%s", sfx)) >= 0) {
        /* the gate_up + SwiGLU fold (QR_VK_FUSE_GEMV=1) staged like matmul_gemvn1, the gate and up rows of one column
         * per subgroup (matmul_gemvn1g): no exchange between subgroups */
        pipe = pg;
        tile_n = (int)(256 / d->subgroup_size);
    } else if (kind == 0 && fused && !glu && j->M == 1 && vec && d->norm_sh && j->K <= 4096) {
        /* the RMSNorm fold with g * x staged once per 256-thread workgroup (matmul_gemvn1; K <= its KMAX); with
         * QR_VK_GEMV_KSPLIT, KS subgroups per output row (matmul_gemvn1k<KS>, KS 2 or 4) */
        int kn = d->gemv_ks ? gemv_ksplit(d, j->N, j->K) : 1, pn = -1;
        if (kn > 1) {
            char name[32];
            snprintf(name, sizeof name, "matmul_gemvn1k%d_%%s", kn);
            pn = pipe_named(name, sfx);
        }
        if (pn >= 0) ks = kn;
        int rows = 1;   /* output rows per subgroup: matmul_gemvn1r<rows> */
        if (pn < 0 && d->gemv_rows > 1) {
            char name[32];
            snprintf(name, sizeof name, "matmul_gemvn1r%d_%%s", d->gemv_rows);
            if ((pn = pipe_named(name, sfx)) >= 0) rows = d->gemv_rows;
        }
        if (pn < 0) pn = pipe_named(d->gemv_nt ? "matmul_gemvn1nt_%s" : "matmul_gemvn1_%s", sfx);
        if (pn < 0) pn = pipe_named("matmul_gemvn1_%s", sfx);
        if (pn >= 0) {
            pipe = pn;
            tile_n = (int)(256 / d->subgroup_size) * rows / ks;
        }
    } else if (kind == 0 && !fused && mr == 1 && d->gemv_wide && d->gemv_ks && vec && !(j->flags & QR_MM_SILU) &&
               (ks = gemv_ksplit(d, j->N, j->K)) > 1) {
        /* KS subgroups per output row (matmul_gemv1k<KS>; QR_VK_GEMV_KSPLIT) */
        char name[32];
        snprintf(name, sizeof name, "matmul_gemv1k%d_%%s", ks);
        int pk = pipe_named(name, sfx);
        if (pk >= 0) {
            pipe = pk;
            tile_n = (int)(256 / d->subgroup_size) / ks;
        }
    } else if (kind == 0 && !fused && mr == 1 && d->gemv_wide) {   /* 256-thread workgroups: RPW rows doubled */
        /* the GEMV lab's variant (QR_VK_GEMV_PIPE): vector path only; gemv1wx holds the x row in shared memory */
        char lab[64];
        bool use_lab = d->gemv_pipe[0] && vec && (!strstr(d->gemv_pipe, "gemv1wx") || (uint32_t)j->K / 4 <= d->xsh_v4);
        if (use_lab) snprintf(lab, sizeof lab, "%s_%%s", d->gemv_pipe);
        /* QR_VK_GEMV_ROWS output rows per subgroup (gemv1w2u4, gemv1w4u2; vector path), Nontemporal loads (lab) */
        const char *plain = vec && d->gemv_rows == 2 ? "matmul_gemv1w2u4_%s"
                            : vec && d->gemv_rows == 4 ? "matmul_gemv1w4u2_%s"
                            : d->gemv_nt               ? "matmul_gemv1wnt_%s"
                                                       : "matmul_gemv1w_%s";
        int pw = pipe_named(use_lab ? lab : plain, sfx);
        int rows = 1;   /* output rows per subgroup: the default's QR_VK_GEMV_ROWS, a lab gemv1w2* / gemv1w4* */
        if (pw >= 0 && use_lab) rows = strstr(d->gemv_pipe, "gemv1w2") ? 2 : strstr(d->gemv_pipe, "gemv1w4") ? 4 : 1;
        else if (pw >= 0 && vec) rows = d->gemv_rows;
        if (pw < 0) pw = pipe_named("matmul_gemv1w_%s", sfx);
        if (pw >= 0) {
            pipe = pw;
            tile_n = (int)(256 / d->subgroup_size) * rows;
        }
    }
    int n_bind = fused ? 11 : 8;
    /* rows of W per dispatch: one binding and the grid limit */
    int64_t nmax = (int64_t)((d->max_range - d->align) / (rowb ? rowb : 1));
    int64_t gmax = (int64_t)d->props.limits.maxComputeWorkGroupCount[0] * tile_n;
    if (gmax < nmax) nmax = gmax;
    if (nmax >= 128) nmax -= nmax % 128;
    if (nmax <= 0) return qr_set_error(QR_E_UNSUPPORTED, "vulkan: matmul: one weight row exceeds a binding");
    if (glu && nmax < j->N) return qr_set_error(QR_E_INTERNAL, "vulkan: the GLU GEMV needs one dispatch");
    /* rows of x/y per dispatch */
    int64_t mmax = (int64_t)((d->max_range - d->align) / ((size_t)j->ldy * 4));
    if (!(j->flags & QR_MM_IDX)) {
        int64_t mx = (int64_t)((d->max_range - d->align) / ((size_t)j->ldx * 4));
        if (mx < mmax) mmax = mx;
    }
    if (x16) {   /* the fp16 copy of the chunk's x rows is one binding too */
        int64_t mh = (int64_t)((d->max_range - d->align) / ((size_t)j->K * 2));
        if (mh < mmax) mmax = mh;
    }
    int64_t gmy = (int64_t)d->props.limits.maxComputeWorkGroupCount[1] * tile_m;
    if (gmy < mmax) mmax = gmy;
    if (mmax <= 0) return qr_set_error(QR_E_UNSUPPORTED, "vulkan: matmul: one row exceeds a binding");
    for (int64_t m0 = 0; m0 < j->M; m0 += mmax) {
        int mc = (int)(j->M - m0 < mmax ? j->M - m0 : mmax);
        struct vk_binding b[11] = {{0}};
        int fl = j->flags | (vec ? QR_MM_VEC : 0) | (kind == 0 && d->gemv_clamp ? QR_MM_CLAMP : 0);
        struct qr_pc_matmul pc = {.M = mc, .K = j->K, .ldx = j->ldx, .ldy = j->ldy, .btype = j->btype,
                                  .flags = fl, .gtype = j->gtype, .eps = j->eps};
        size_t ycols = (size_t)j->N * (glu ? 2 : 1);
        TRY(bind_at(d, &j->y, (size_t)m0 * j->ldy * 4, 4, ((size_t)(mc - 1) * j->ldy + ycols) * 4, &b[0], &pc.y_off, "matmul y"));
        if (j->flags & QR_MM_IDX) {
            TRY(bind_at(d, &j->x, 0, 4, 0, &b[1], &pc.x_off, "matmul x"));
            TRY(bind_at(d, &j->idx, (size_t)m0 * 4, 4, (size_t)mc * 4, &b[6], &pc.idx_off, "logits idx"));
        } else {
            size_t xrow = (size_t)j->K * ((j->flags & QR_MM_SILU) ? 2 : 1);
            TRY(bind_at(d, &j->x, (size_t)m0 * j->ldx * 4, 4, ((size_t)(mc - 1) * j->ldx + xrow) * 4, &b[1], &pc.x_off, "matmul x"));
            b[6] = (struct vk_binding){0};
        }
        b[2] = b[1];
        if (x16) TRY(mm_x16(s, &pc, mc, b));
        b[7] = (struct vk_binding){0};
        if (j->flags & (QR_MM_SILU | QR_MM_GLU)) {
            pc.ld_act = j->ld_act;
            int acols = glu ? j->N : j->K;
            TRY(bind_at(d, &j->act, (size_t)m0 * j->ld_act * 4, 4, ((size_t)(mc - 1) * j->ld_act + acols) * 4, &b[7],
                        &pc.act_off, "swiglu act"));
        }
        if (j->flags & QR_MM_NORM) {
            size_t gsz = qr_dtype_size(j->gtype);
            pc.ld_h = j->ld_h;
            TRY(bind_at(d, &j->g, 0, gsz, (size_t)j->K * gsz, &b[8], &pc.g_off, "norm weight"));
            TRY(bind_at(d, &j->h, (size_t)m0 * j->ld_h * 4, 4, ((size_t)(mc - 1) * j->ld_h + j->K) * 4, &b[9],
                        &pc.h_off, "norm out"));
            if (pc.g_off % (int)(16 / gsz))
                return qr_set_error(QR_E_INTERNAL, "vulkan: fused norm weight not 16-byte aligned");
        }
        if (j->bias.buf) {
            if (!is_float_dtype(j->btype)) return qr_set_error(QR_E_UNSUPPORTED, "vulkan: matmul: bias dtype");
            size_t bsz = qr_dtype_size(j->btype);
            TRY(bind_at(d, &j->bias, 0, bsz, ycols * bsz, &b[5], &pc.b_off, "matmul bias"));
            pc.flags |= QR_MM_BIAS;
        } else {
            b[5] = (struct vk_binding){0};
        }
        for (int64_t n0 = 0; n0 < j->N; n0 += nmax) {
            int nc = (int)(j->N - n0 < nmax ? j->N - n0 : nmax);
            pc.N = nc;
            pc.n0 = (int)n0;
            TRY(bind_at(d, &j->w, (size_t)n0 * rowb, wsz, (size_t)nc * rowb, &b[3], &pc.w_off, "matmul w"));
            b[4] = b[3];
            if (glu)
                TRY(bind_at(d, &j->w2, (size_t)n0 * rowb, wsz, (size_t)nc * rowb, &b[10], &pc.w2_off, "matmul w2"));
            if (fused && (pc.w_off % (int)vec_k || pc.w2_off % (int)vec_k))
                return qr_set_error(QR_E_INTERNAL, "vulkan: fused GEMV weights not 16-byte aligned");
            TRY(vk_dispatch(s, pipe, n_bind, b, &pc, sizeof pc, cdiv(nc, tile_n), cdiv(mc, tile_m), 1));
        }
    }
    return QR_OK;
}

static qr_status vk_matmul(struct qr_stream *qs, const struct qr_matmul_args *a) {
    struct mm_job j = {.y = a->y, .x = a->x, .w = a->w, .bias = a->bias, .wtype = a->wtype, .btype = a->btype,
                       .M = a->M, .N = a->N, .K = a->K, .ldx = a->ldx, .ldy = a->ldy,
                       .flags = a->accumulate ? QR_MM_ACC : 0};
    return mm_run(vk_stream_of(qs), &j);
}

static qr_status vk_logits(struct qr_stream *qs, const struct qr_logits_args *a) {
    struct mm_job j = {.y = a->out, .x = a->x, .w = a->w, .idx = a->idx, .wtype = a->wtype, .M = a->n_out,
                       .N = a->vocab, .K = a->dim, .ldx = a->ldx, .ldy = a->vocab, .flags = QR_MM_IDX};
    return mm_run(vk_stream_of(qs), &j);
}

/* ---- norms ---- */
static qr_status vk_rmsnorm(struct qr_stream *qs, const struct qr_rmsnorm_args *a) {
    struct vk_stream *s = vk_stream_of(qs);
    struct vk_dev *d = s->d;
    TRY(check_pos("rmsnorm", a->n_tokens, "n_tokens"));
    if (a->n_tokens == 0 || a->n_heads <= 0 || a->n <= 0) return QR_OK;
    if (!is_float_dtype(a->wtype)) return qr_set_error(QR_E_UNSUPPORTED, "vulkan: rmsnorm: weight dtype");
    struct vk_binding b[3];
    struct qr_pc_rmsnorm pc = {.n_tokens = a->n_tokens, .n_heads = a->n_heads, .n = a->n, .ldx = a->ldx,
                               .ldout = a->ldout, .wtype = a->wtype, .eps = a->eps};
    size_t row = (size_t)a->n_heads * a->n;
    TRY(bind_at(d, &a->out, 0, 4, ((size_t)(a->n_tokens - 1) * a->ldout + row) * 4, &b[0], &pc.out_off, "rmsnorm out"));
    TRY(bind_at(d, &a->x, 0, 4, ((size_t)(a->n_tokens - 1) * a->ldx + row) * 4, &b[1], &pc.x_off, "rmsnorm x"));
    size_t wsz = qr_dtype_size(a->wtype);
    TRY(bind_at(d, &a->w, 0, wsz, (size_t)a->n * wsz, &b[2], &pc.w_off, "rmsnorm w"));
    return vk_dispatch(s, vk_pipe_find(d->norm_prefetch ? "rmsnorm" : "rmsnorm_late_w"), 3, b, &pc, sizeof pc,
                       (uint32_t)a->n_heads, (uint32_t)a->n_tokens, 1);
}

/* ---- rope ---- */
static qr_status vk_rope(struct qr_stream *qs, const struct qr_rope_args *a) {
    struct vk_stream *s = vk_stream_of(qs);
    struct vk_dev *d = s->d;
    TRY(check_pos("rope", a->n_tokens, "n_tokens"));
    if (a->n_tokens == 0 || a->n_heads <= 0) return QR_OK;
    if (a->head_dim <= 0 || a->head_dim % 2) return qr_set_error(QR_E_INVALID_ARG, "vulkan: rope: odd head_dim");
    struct vk_binding b[3];
    struct qr_pc_rope pc = {.n_tokens = a->n_tokens, .n_heads = a->n_heads, .head_dim = a->head_dim, .ld = a->ld,
                            .attn_factor = a->attn_factor};
    TRY(bind_at(d, &a->x, 0, 4, ((size_t)(a->n_tokens - 1) * a->ld + (size_t)a->n_heads * a->head_dim) * 4, &b[0],
                &pc.x_off, "rope x"));
    TRY(bind_at(d, &a->pos, 0, 4, (size_t)a->n_tokens * 4, &b[1], &pc.pos_off, "rope pos"));
    TRY(bind_at(d, &a->inv_freq, 0, 4, (size_t)a->head_dim / 2 * 4, &b[2], &pc.if_off, "rope inv_freq"));
    return vk_dispatch(s, vk_pipe_find("rope"), 3, b, &pc, sizeof pc, cdiv((int64_t)a->n_heads * a->head_dim / 2, 64),
                       (uint32_t)a->n_tokens, 1);
}

/* ---- kv store ---- */
static qr_status vk_kv_store(struct qr_stream *qs, const struct qr_kv_store_args *a) {
    struct vk_stream *s = vk_stream_of(qs);
    struct vk_dev *d = s->d;
    TRY(check_pos("kv_store", a->n_tokens, "n_tokens"));
    if (a->n_tokens == 0) return QR_OK;
    if (!is_float_dtype(a->kv_dtype)) return qr_set_error(QR_E_UNSUPPORTED, "vulkan: kv_store: kv dtype");
    if (a->head_dim <= 0 || a->head_dim % 2 || a->block_size <= 0 || a->num_blocks <= 0)
        return qr_set_error(QR_E_INVALID_ARG, "vulkan: kv_store: bad shape");
    size_t ksz = qr_dtype_size(a->kv_dtype);
    if (a->k_cache.off % 4 || a->v_cache.off % 4)
        return qr_set_error(QR_E_INVALID_ARG, "vulkan: kv_store: cache offsets must be 4-byte aligned");
    size_t cache = (size_t)a->num_blocks * a->n_kv_heads * a->block_size * a->head_dim * ksz;
    size_t rows = ((size_t)(a->n_tokens - 1) * a->ld + (size_t)a->n_kv_heads * a->head_dim) * 4;
    struct vk_binding b[5];
    struct qr_pc_kv_store pc = {.n_tokens = a->n_tokens, .n_kv_heads = a->n_kv_heads, .head_dim = a->head_dim,
                                .ld = a->ld, .block_size = a->block_size, .num_blocks = a->num_blocks,
                                .kvtype = a->kv_dtype};
    TRY(bind_at(d, &a->k_cache, 0, ksz, cache, &b[0], &pc.kc_off, "k_cache"));
    TRY(bind_at(d, &a->v_cache, 0, ksz, cache, &b[1], &pc.vc_off, "v_cache"));
    TRY(bind_at(d, &a->k, 0, 4, rows, &b[2], &pc.k_off, "kv_store k"));
    TRY(bind_at(d, &a->v, 0, 4, rows, &b[3], &pc.v_off, "kv_store v"));
    TRY(bind_at(d, &a->slots, 0, 4, (size_t)a->n_tokens * 4, &b[4], &pc.slots_off, "slots"));
    return vk_dispatch(s, vk_pipe_find("kv_store"), 5, b, &pc, sizeof pc,
                       cdiv((int64_t)a->n_kv_heads * a->head_dim / 2, 64), (uint32_t)a->n_tokens, 1);
}

/* scratch for partial results (split-KV attention, argmax), shared by the
 * nodes of one recording: nodes run in order, so one buffer serves all */
static qr_status rec_scratch(struct vk_stream *s, size_t size, struct qr_buf **out) {
    if (s->cur->part && s->cur->part_size >= size) {
        *out = s->cur->part;
        return QR_OK;
    }
    TRY(vk_rec_tmp_alloc(s, size, out));
    s->cur->part = *out;
    s->cur->part_size = size;
    return QR_OK;
}

/* ---- attention ---- */
/* the one-token q/k RMSNorm + RoPE + KV write folded in front of a decode attention (attn_dec_h<HS>q; qkv_post) */
struct attn_pro {
    const struct qr_rmsnorm_args *nq, *nk;   /* NULL: RoPE only (Qwen2) */
    const struct qr_rope_args *rq;
    const struct qr_kv_store_args *kv;
};

/* the attention; with pro, the folded form where the decode kernel has it (else *declined, nothing recorded) */
static qr_status attn_run(struct vk_stream *s, const struct qr_attn_args *a, const struct attn_pro *pro,
                          bool *declined) {
    struct vk_dev *d = s->d;
    TRY(check_pos("attn", a->n_tokens, "n_tokens"));
    if (a->n_tokens == 0 || a->n_seqs <= 0) return QR_OK;
    if (!is_float_dtype(a->kv_dtype)) return qr_set_error(QR_E_UNSUPPORTED, "vulkan: attn: kv dtype");
    if (a->head_dim <= 0 || a->head_dim > ATTN_HDMAX || a->head_dim % 2)
        return qr_set_error(QR_E_UNSUPPORTED, "vulkan: attn: head_dim %d (even, <= %d supported)", a->head_dim, ATTN_HDMAX);
    if (a->n_kv_heads <= 0 || a->n_heads % a->n_kv_heads || a->block_size <= 0 || a->num_blocks <= 0 ||
        a->max_blocks_per_seq <= 0)
        return qr_set_error(QR_E_INVALID_ARG, "vulkan: attn: bad shape");
    size_t ksz = qr_dtype_size(a->kv_dtype);
    size_t cache = (size_t)a->num_blocks * a->n_kv_heads * a->block_size * a->head_dim * ksz;
    int G = a->n_heads / a->n_kv_heads;
    struct vk_binding b[13];   /* 8, the K/V caches again as 16-byte words for attn_cm2, the fold's 8..12 */
    struct qr_pc_attn pc = {.n_tokens = a->n_tokens, .n_seqs = a->n_seqs, .n_heads = a->n_heads,
                            .n_kv_heads = a->n_kv_heads, .head_dim = a->head_dim, .block_size = a->block_size,
                            .mbps = a->max_blocks_per_seq, .num_blocks = a->num_blocks, .ldq = a->ldq, .ldo = a->ldo,
                            .kvtype = a->kv_dtype, .scale = a->scale};
    size_t hrow = (size_t)a->n_heads * a->head_dim;
    TRY(bind_at(d, &a->out, 0, 4, ((size_t)(a->n_tokens - 1) * a->ldo + hrow) * 4, &b[0], &pc.o_off, "attn out"));
    TRY(bind_at(d, &a->q, 0, 4, ((size_t)(a->n_tokens - 1) * a->ldq + hrow) * 4, &b[1], &pc.q_off, "attn q"));
    TRY(bind_at(d, &a->k_cache, 0, ksz, cache, &b[2], &pc.kc_off, "k_cache"));
    TRY(bind_at(d, &a->v_cache, 0, ksz, cache, &b[3], &pc.vc_off, "v_cache"));
    TRY(bind_at(d, &a->block_tables, 0, 4, (size_t)a->n_seqs * a->max_blocks_per_seq * 4, &b[4], &pc.bt_off, "block_tables"));
    TRY(bind_at(d, &a->seq_lens, 0, 4, (size_t)a->n_seqs * 4, &b[5], &pc.sl_off, "seq_lens"));
    TRY(bind_at(d, &a->q_start, 0, 4, (size_t)(a->n_seqs + 1) * 4, &b[6], &pc.qs_off, "q_start"));
    /* decode batches (one query per sequence) with a 16-bit KV cache whose
     * rows are 16-byte words: attn_dec_h<HS> (HS query heads of one KV head
     * per workgroup, HS = 1/2/4/8); prompts, mixed batches and F32 KV: the
     * tiled attn */
    int hs_dec = G > 4 ? 8 : G > 2 ? 4 : G;
    /* two query heads per workgroup up to attn_dec_short keys (twice the workgroups: attn_dec + combine 20.8 -> 18.2 us
     * per layer at 512 on the H100, bench latency 195.4 -> 201.5 tok/s; at 8192 four won, 175.1 against 163.5:
     * docs/PERF.md, twenty-first session); QR_VK_ATTN_DEC_HS fixes it (lab) */
    int hs_want = d->attn_dec_hs ? d->attn_dec_hs : a->max_seq_len <= d->attn_dec_short ? 2 : 0;
    if (hs_want && hs_want < hs_dec) hs_dec = hs_want;
    char dec_name[32];
    /* QR_VK_ATTN_NT=1: Nontemporal K/V loads (lab); QR_VK_ATTN_DEC_PIPE=1: the next tile's loads before the math */
    snprintf(dec_name, sizeof dec_name, "attn_dec_h%d%s", hs_dec,
             hs_dec != 4 ? "" : d->attn_dec_pipe ? "p" : d->attn_nt ? "nt" : "");
    size_t dec_smem = (size_t)4 * hs_dec * (4 * 128 + 64 + 2 * 32);
    int pipe_dec = a->max_q_len <= 1 && a->kv_dtype != QR_DTYPE_F32 && a->head_dim % 8 == 0 &&
                   pc.kc_off % 8 == 0 && pc.vc_off % 8 == 0 && d->subgroup_shuffle && d->subgroup_size >= 4 &&
                   d->subgroup_size <= 128 && 128 % d->subgroup_size == 0 &&
                   dec_smem <= d->props.limits.maxComputeSharedMemorySize && getenv("QR_VK_NO_ATTN_DEC") == NULL
                       ? vk_pipe_find(dec_name)
                       : -1;
    bool dec = pipe_dec >= 0;
    struct qr_pc_attn_pro pcp = {0};
    if (pro) {
        char pn[32];
        snprintf(pn, sizeof pn, "attn_dec_h%dq", hs_dec);
        int pp = dec && d->max_bind >= 13 && d->subgroup_size <= 64 && 64 % d->subgroup_size == 0 ? vk_pipe_find(pn)
                                                                                                 : -1;
        if (pp < 0) {
            *declined = true;
            return QR_OK;
        }
        pipe_dec = pp;
        const struct qr_rope_args *rq = pro->rq;
        const struct qr_kv_store_args *kv = pro->kv;
        int hd = a->head_dim;
        size_t row = ((size_t)(a->n_tokens - 1) * a->ldq + (size_t)(a->n_heads + 2 * a->n_kv_heads) * hd) * 4;
        TRY(bind_at(d, &a->q, 0, 4, row, &b[1], &pc.q_off, "attn q/k/v"));
        TRY(bind_at(d, &rq->pos, 0, 4, (size_t)a->n_tokens * 4, &b[10], &pcp.pos_off, "rope pos"));
        TRY(bind_at(d, &rq->inv_freq, 0, 4, (size_t)hd / 2 * 4, &b[11], &pcp.if_off, "rope inv_freq"));
        TRY(bind_at(d, &kv->slots, 0, 4, (size_t)a->n_tokens * 4, &b[12], &pcp.slots_off, "slots"));
        b[8] = b[9] = (struct vk_binding){0};
        if (pro->nq) {
            size_t wq = qr_dtype_size(pro->nq->wtype), wk = qr_dtype_size(pro->nk->wtype);
            pcp.wqtype = pro->nq->wtype;
            pcp.wktype = pro->nk->wtype;
            pcp.eps = pro->nq->eps;
            pcp.norm = 1;
            TRY(bind_at(d, &pro->nq->w, 0, wq, (size_t)hd * wq, &b[8], &pcp.wq_off, "q_norm w"));
            TRY(bind_at(d, &pro->nk->w, 0, wk, (size_t)hd * wk, &b[9], &pcp.wk_off, "k_norm w"));
        }
        pcp.attn_factor = rq->attn_factor;
    }
    /* prompts on cooperative-matrix devices: attn_cm (64-row tiles, head_dim 128) */
    int pipe_cm = d->use_coopmat && !dec && a->head_dim == 128 && d->subgroup_size == 32 &&
                  getenv("QR_VK_NO_ATTN_CM") == NULL ? vk_pipe_find("attn_cm") : -1;
    /* its accumulator-resident form (16-bit cache read as 16-byte words through bindings 8 and 9) */
    int cm_rows = 64;
    bool cm2 = pipe_cm >= 0 && d->attn_cm2 && d->max_bind >= 10 && a->kv_dtype != QR_DTYPE_F32 &&
               pc.kc_off % 8 == 0 && pc.vc_off % 8 == 0 && vk_pipe_find("attn_cm2") >= 0;
    if (cm2) {
        /* on KHR cooperative matrices where the device has them (16 x 8 B fragments; vk_device.c), QR_VK_ATTN_PIPE
         * names another variant of attn_cm2.comp (attn_cm2n8: the KHR variant's NV form) */
        const char *ap = getenv("QR_VK_ATTN_PIPE"), *an = ap && *ap ? ap : d->coop_khr ? d->attn_khr : "";
        int pk = *an ? vk_pipe_find(an) : -1;
        pipe_cm = pk >= 0 ? pk : vk_pipe_find("attn_cm2");
        /* the 8-subgroup variants (attn_cm2k_w8*) take 128 (token, head) rows per workgroup */
        if (pk >= 0 && strstr(an, "_w8")) cm_rows = 128;
    }
    int rows = pipe_cm >= 0 ? cm_rows : ATTN_ROWS;
    int hs = dec ? hs_dec : (G < rows ? G : rows);
    int n_hsub = (G + hs - 1) / hs;
    int qt = a->max_q_len <= 1 ? 1 : rows / hs;
    int n_split = 1;
    int wgs = a->n_tokens * a->n_kv_heads * n_hsub;
    if (dec) {
        /* about 384 workgroups in all, at least one 64-key tile each (QR_VK_ATTN_DEC_TILES=N: at least N, a lab
         * switch: fewer splits, fewer partials for attn_combine, longer serial loops); the shader rounds each split
         * up to whole tiles */
        int keys = 64 * d->attn_dec_tiles;   /* 1..64 tiles, set at device open */
        int want = (a->max_seq_len + keys - 1) / keys, cap = d->attn_dec_wgs / (wgs > 0 ? wgs : 1);
        n_split = want < cap ? want : cap;
        if (n_split > 128) n_split = 128;
        if (n_split < 1) n_split = 1;
    } else if (pipe_cm < 0 && a->max_q_len <= 1 && a->max_seq_len > 256 && wgs < 512) {
        n_split = (a->max_seq_len + 255) / 256;
        if (n_split > 32) n_split = 32;
    }
    pc.qt = qt;
    pc.hs = hs;
    pc.n_split = n_split;
    struct qr_buf *part = NULL;
    b[7] = (struct vk_binding){0};
    if (n_split > 1) {
        size_t psz = (size_t)a->n_tokens * a->n_heads * n_split * (a->head_dim + 2) * 4;
        TRY(rec_scratch(s, psz, &part));
        struct qr_view pv = {.buf = part, .off = 0};
        int dummy;
        TRY(bind_at(d, &pv, 0, 4, psz, &b[7], &dummy, "attn partials"));
    }
    uint32_t gx = dec ? (uint32_t)a->n_tokens : cdiv(a->n_tokens, qt) + (uint32_t)a->n_seqs;
    if (pro) {   /* qr_pc_attn's fields first (same layout), then the fold's */
        struct qr_pc_attn_pro fold = pcp;
        memcpy(&pcp, &pc, sizeof pc);
        memcpy((char *)&pcp + sizeof pc, (const char *)&fold + sizeof pc, sizeof pcp - sizeof pc);
        TRY(vk_dispatch(s, pipe_dec, 13, b, &pcp, sizeof pcp, gx, (uint32_t)(a->n_kv_heads * n_hsub),
                        (uint32_t)n_split));
    } else {
        b[8] = b[2];
        b[9] = b[3];
        TRY(vk_dispatch(s, dec ? pipe_dec : pipe_cm >= 0 ? pipe_cm : vk_pipe_find("attn"), cm2 ? 10 : 8, b, &pc,
                        sizeof pc, gx, (uint32_t)(a->n_kv_heads * n_hsub), (uint32_t)n_split));
    }
    if (n_split > 1) {
        struct qr_pc_attn_combine pcc = {.n_tokens = a->n_tokens, .n_heads = a->n_heads, .head_dim = a->head_dim,
                                         .ldo = a->ldo, .o_off = pc.o_off, .n_split = n_split};
        struct vk_binding bc[2] = {b[0], b[7]};
        TRY(vk_dispatch(s, vk_pipe_find("attn_combine"), 2, bc, &pcc, sizeof pcc, (uint32_t)a->n_heads,
                        (uint32_t)a->n_tokens, 1));
    }
    return QR_OK;
}

static qr_status vk_attn(struct qr_stream *qs, const struct qr_attn_args *a) {
    return attn_run(vk_stream_of(qs), a, NULL, NULL);
}

/* ---- element-wise ---- */
static qr_status vk_silu_mul(struct qr_stream *qs, const struct qr_silu_mul_args *a) {
    struct vk_stream *s = vk_stream_of(qs);
    struct vk_dev *d = s->d;
    TRY(check_pos("silu_mul", a->n_tokens, "n_tokens"));
    if (a->n_tokens == 0 || a->n_ff <= 0) return QR_OK;
    struct vk_binding b[2];
    struct qr_pc_silu_mul pc = {.n_tokens = a->n_tokens, .n_ff = a->n_ff, .ldgu = a->ldgu, .ldout = a->ldout};
    TRY(bind_at(d, &a->out, 0, 4, ((size_t)(a->n_tokens - 1) * a->ldout + a->n_ff) * 4, &b[0], &pc.out_off, "silu out"));
    TRY(bind_at(d, &a->gu, 0, 4, ((size_t)(a->n_tokens - 1) * a->ldgu + 2 * (size_t)a->n_ff) * 4, &b[1], &pc.gu_off, "silu gu"));
    return vk_dispatch(s, vk_pipe_find("silu_mul"), 2, b, &pc, sizeof pc, cdiv(a->n_ff, 256), (uint32_t)a->n_tokens, 1);
}

static qr_status vk_add(struct qr_stream *qs, const struct qr_add_args *a) {
    struct vk_stream *s = vk_stream_of(qs);
    struct vk_dev *d = s->d;
    if (a->n <= 0) return a->n < 0 ? qr_set_error(QR_E_INVALID_ARG, "vulkan: add: negative n") : QR_OK;
    if (a->n > INT32_MAX) return qr_set_error(QR_E_UNSUPPORTED, "vulkan: add: n too large");
    struct vk_binding b[2];
    struct qr_pc_add pc = {.n = (int)a->n};
    TRY(bind_at(d, &a->y, 0, 4, (size_t)a->n * 4, &b[0], &pc.y_off, "add y"));
    TRY(bind_at(d, &a->x, 0, 4, (size_t)a->n * 4, &b[1], &pc.x_off, "add x"));
    uint32_t groups = cdiv(a->n, 256), gx = groups < 65535 ? groups : 65535;
    return vk_dispatch(s, vk_pipe_find("add"), 2, b, &pc, sizeof pc, gx, cdiv(groups, gx), 1);
}

static qr_status vk_argmax(struct qr_stream *qs, const struct qr_argmax_args *a) {
    struct vk_stream *s = vk_stream_of(qs);
    struct vk_dev *d = s->d;
    if (a->n_rows <= 0) return QR_OK;
    if (a->n <= 0) return qr_set_error(QR_E_INVALID_ARG, "vulkan: argmax: empty rows");
    struct vk_binding b[3];
    int n_chunk = (int)cdiv(a->n, QR_ARGMAX_CHUNK);
    struct qr_pc_argmax pc = {.n_rows = a->n_rows, .n = a->n, .n_chunk = n_chunk, .mode = n_chunk > 1 ? 1 : 0};
    TRY(bind_at(d, &a->out, 0, 4, (size_t)a->n_rows * 4, &b[0], &pc.out_off, "argmax out"));
    TRY(bind_at(d, &a->x, 0, 4, (size_t)a->n_rows * a->n * 4, &b[1], &pc.x_off, "argmax x"));
    b[2] = (struct vk_binding){0};
    int pipe = vk_pipe_find("argmax");
    if (n_chunk == 1) return vk_dispatch(s, pipe, 3, b, &pc, sizeof pc, 1, (uint32_t)a->n_rows, 1);
    /* long rows: (value, index) per chunk, then one workgroup per row */
    struct qr_buf *part;
    size_t psz = (size_t)a->n_rows * n_chunk * 8;
    TRY(rec_scratch(s, psz, &part));
    struct qr_view pv = {.buf = part, .off = 0};
    int poff;
    TRY(bind_at(d, &pv, 0, 8, psz, &b[2], &poff, "argmax partials"));
    TRY(vk_dispatch(s, pipe, 3, b, &pc, sizeof pc, (uint32_t)n_chunk, (uint32_t)a->n_rows, 1));
    pc.mode = 2;
    return vk_dispatch(s, pipe, 3, b, &pc, sizeof pc, 1, (uint32_t)a->n_rows, 1);
}

/* the split top-k's chunks per row (topk_part, then topk_merge where more than one), 0 for the one-workgroup form
 * (topk.comp): QR_VK_TOPK_SPLIT=0, rows whose candidates don't fit the merge's registers, a scratch above
 * TOPK_SCRATCH_MAX (lavapipe's 128 MiB binding limit is far), or a device without 512-invocation workgroups.
 * The switch and the pipelines' table indices are read once (the SPIR-V table is fixed at build time). */
#define TOPK_SCRATCH_MAX ((size_t)16 << 20)
static struct {
    int one, part, merge;   /* table indices, -1: not built */
    bool split;
} g_topk;
static pthread_once_t g_topk_once = PTHREAD_ONCE_INIT;
static void topk_init(void) {
    const char *e = getenv("QR_VK_TOPK_SPLIT");
    g_topk.split = !(e && atoi(e) == 0);
    g_topk.one = vk_pipe_find("topk");
    g_topk.part = vk_pipe_find("topk_part");
    g_topk.merge = vk_pipe_find("topk_merge");
}

static int topk_chunks(struct vk_dev *d, const struct qr_topk_args *a) {
    pthread_once(&g_topk_once, topk_init);
    if (!g_topk.split || g_topk.part < 0) return 0;
    int nc = (int)cdiv(a->n, QR_TOPK_CHUNK);
    if ((int64_t)nc * a->k > (int64_t)QR_TOPK_MERGE_WG * QR_TOPK_MERGE_E) return 0;
    if ((uint32_t)a->n_rows > d->props.limits.maxComputeWorkGroupCount[1]) return 0;
    if (nc > 1) {
        const VkPhysicalDeviceLimits *l = &d->props.limits;
        if ((size_t)a->n_rows * (size_t)nc * (size_t)a->k * 8 > TOPK_SCRATCH_MAX) return 0;
        if (l->maxComputeWorkGroupInvocations < QR_TOPK_MERGE_WG || l->maxComputeWorkGroupSize[0] < QR_TOPK_MERGE_WG ||
            g_topk.merge < 0)
            return 0;
    }
    return nc;
}

static qr_status vk_topk(struct qr_stream *qs, const struct qr_topk_args *a) {
    struct vk_stream *s = vk_stream_of(qs);
    struct vk_dev *d = s->d;
    if (a->n_rows <= 0) return QR_OK;
    if (a->n <= 0 || a->k < 1 || a->k > QR_TOPK_MAX || a->k > a->n)
        return qr_set_error(QR_E_INVALID_ARG, "vulkan: topk: k %d outside [1, min(n %d, %d)]", a->k, a->n, QR_TOPK_MAX);
    struct vk_binding b[5];
    struct qr_pc_topk pc = {.n_rows = a->n_rows, .n = a->n, .k = a->k};
    size_t nk = (size_t)a->n_rows * (size_t)a->k * 4;
    TRY(bind_at(d, &a->ids, 0, 4, nk, &b[0], &pc.ids_off, "topk ids"));
    TRY(bind_at(d, &a->vals, 0, 4, nk, &b[1], &pc.vals_off, "topk vals"));
    TRY(bind_at(d, &a->x, 0, 4, (size_t)a->n_rows * a->n * 4, &b[2], &pc.x_off, "topk x"));
    TRY(bind_at(d, &a->inv_t, 0, 4, (size_t)a->n_rows * 4, &b[3], &pc.it_off, "topk inv_t"));
    int nc = topk_chunks(d, a);
    if (nc == 0) return vk_dispatch(s, g_topk.one, 4, b, &pc, sizeof pc, (uint32_t)a->n_rows, 1, 1);
    /* split: each chunk's best k by index into the scratch ((value bits, index) at [row][chunk * k]), then one
     * workgroup per row merges them (vk_dispatch's barrier in between); a single chunk is ranked by topk_part */
    pc.n_chunk = nc;
    b[4] = (struct vk_binding){0};
    if (nc > 1) {
        struct qr_buf *part;
        size_t psz = (size_t)a->n_rows * (size_t)nc * (size_t)a->k * 8;
        TRY(rec_scratch(s, psz, &part));
        struct qr_view pv = {.buf = part, .off = 0};
        int poff;
        TRY(bind_at(d, &pv, 0, 8, psz, &b[4], &poff, "topk candidates"));
    }
    TRY(vk_dispatch(s, g_topk.part, 5, b, &pc, sizeof pc, (uint32_t)nc, (uint32_t)a->n_rows, 1));
    if (nc == 1) return QR_OK;
    return vk_dispatch(s, g_topk.merge, 5, b, &pc, sizeof pc, (uint32_t)a->n_rows, 1, 1);
}

static bool overlap(const struct qr_view *a, size_t na, const struct qr_view *b, size_t nb) {
    return a->buf && a->buf == b->buf && a->off < b->off + nb && b->off < a->off + na;
}

/* SILU_MUL followed by the MATMUL that reads its output (Qwen's down_proj)
 * at decode sizes: one GEMV that applies SwiGLU to its input on the fly
 * (and still stores the SwiGLU output).  Opt-in (fuse_swiglu). */
static int fuse_silu_matmul(struct vk_stream *s, const struct qr_node *n, int n_nodes) {
    if (!s->d->fuse_swiglu || n_nodes < 2 || n[0].op != QR_OP_SILU_MUL || n[1].op != QR_OP_MATMUL) return 0;
    const struct qr_silu_mul_args *a = &n[0].a.silu_mul;
    const struct qr_matmul_args *m = &n[1].a.matmul;
    if (m->x.buf != a->out.buf || m->x.off != a->out.off || m->ldx != a->ldout || m->M != a->n_tokens ||
        m->K != a->n_ff || m->M < 1 || m->M > 16 || a->n_ff < 1 || a->ldgu < 2 * a->n_ff || a->ldout < a->n_ff)
        return 0;
    size_t ngu = ((size_t)(a->n_tokens - 1) * a->ldgu + 2 * (size_t)a->n_ff) * 4;
    size_t nact = ((size_t)(a->n_tokens - 1) * a->ldout + (size_t)a->n_ff) * 4;
    size_t ny = ((size_t)(m->M - 1) * m->ldy + (size_t)m->N) * 4;
    if (overlap(&a->gu, ngu, &a->out, nact) || overlap(&a->gu, ngu, &m->y, ny) || overlap(&a->out, nact, &m->y, ny))
        return 0;
    struct mm_job j = {.y = m->y, .x = a->gu, .w = m->w, .bias = m->bias, .act = a->out, .wtype = m->wtype,
                       .btype = m->btype, .M = m->M, .N = m->N, .K = m->K, .ldx = a->ldgu, .ldy = m->ldy,
                       .ld_act = a->ldout, .flags = QR_MM_SILU | (m->accumulate ? QR_MM_ACC : 0)};
    qr_status st = mm_run(s, &j);
    return st == QR_OK ? 2 : (int)st;
}

static bool same_view(const struct qr_view *a, const struct qr_view *b) { return a->buf == b->buf && a->off == b->off; }

/* RMSNORM (one head per token) + the decode-sized MATMUL that reads its output, and (gate_up) the SILU_MUL that reads
 * the MATMUL's output: one matmul_gemvf dispatch that still writes h, gu and act for any later reader.  Returns the
 * nodes consumed (2 or 3), 0 if the pattern does not qualify, or a negative status. */
static int fuse_norm_matmul(struct vk_stream *s, const struct qr_node *nd, int n) {
    struct vk_dev *d = s->d;
    if (!d->fuse_gemv || n < 2 || nd[0].op != QR_OP_RMSNORM || nd[1].op != QR_OP_MATMUL) return 0;
    const struct qr_rmsnorm_args *r = &nd[0].a.rmsnorm;
    const struct qr_matmul_args *m = &nd[1].a.matmul;
    int T = r->n_tokens, K = r->n;
    if (r->n_heads != 1 || T < 1 || T > 16 || m->M != T || m->K != K || !same_view(&m->x, &r->out) ||
        m->ldx != r->ldout || !is_float_dtype(r->wtype) || !is_float_dtype(m->wtype) || m->N < 1)
        return 0;
    /* by default only where matmul_gemvn1 (the staged fold) runs; QR_VK_FUSE_GEMV set: every row count */
    if (!d->fuse_gemv_any && (T != 1 || !d->norm_sh || K > 4096)) return 0;
    unsigned vk = m->wtype == QR_DTYPE_F32 ? 4 : 8;
    if (K % (int)vk || r->x.off % 16 || r->ldx % 4 || m->w.off % 16 || r->w.off % 16 || r->out.off % 4)
        return 0;
    /* x, h and y must not overlap: the fused kernel reads x while it writes y and h */
    size_t nx = ((size_t)(T - 1) * r->ldx + (size_t)K) * 4, nh = ((size_t)(T - 1) * r->ldout + (size_t)K) * 4;
    size_t ny = ((size_t)(T - 1) * m->ldy + (size_t)m->N) * 4;
    if (overlap(&r->x, nx, &r->out, nh) || overlap(&r->x, nx, &m->y, ny) || overlap(&r->out, nh, &m->y, ny)) return 0;
    struct mm_job j = {.y = m->y, .x = r->x, .w = m->w, .bias = m->bias, .wtype = m->wtype, .btype = m->btype,
                       .M = T, .N = m->N, .K = K, .ldx = r->ldx, .ldy = m->ldy,
                       .flags = QR_MM_NORM | (m->accumulate ? QR_MM_ACC : 0), .g = r->w, .gtype = r->wtype,
                       .h = r->out, .ld_h = r->ldout, .eps = r->eps};
    int used = 2;
    const struct qr_silu_mul_args *g = d->fuse_glu && n >= 3 && nd[2].op == QR_OP_SILU_MUL ? &nd[2].a.silu_mul : NULL;
    size_t half = g ? (size_t)g->n_ff * (size_t)K * qr_dtype_size(m->wtype) : 0;
    /* the GLU GEMV: gate and up subgroups in one workgroup (subgroups of 64 lanes or fewer), all columns in one
     * dispatch (each half of W within one binding) */
    if (g && g->n_tokens == T && same_view(&g->gu, &m->y) && g->ldgu == m->ldy && 2 * g->n_ff == m->N &&
        !m->accumulate && g->ldout >= g->n_ff && d->subgroup_size <= 64 && half <= d->max_range - d->align &&
        (int64_t)g->n_ff <= (int64_t)d->props.limits.maxComputeWorkGroupCount[0] * (64 / (int)d->subgroup_size)) {
        size_t na = ((size_t)(T - 1) * g->ldout + (size_t)g->n_ff) * 4;
        if (!overlap(&g->out, na, &m->y, ny) && !overlap(&g->out, na, &r->x, nx) && !overlap(&g->out, na, &r->out, nh)) {
            j.N = g->n_ff;
            j.w2 = (struct qr_view){.buf = m->w.buf, .off = m->w.off + half};
            j.act = g->out;
            j.ld_act = g->ldout;
            j.flags |= QR_MM_GLU;
            used = 3;
        }
    }
    qr_status st = mm_run(s, &j);
    return st == QR_OK ? used : (int)st;
}

/* no node of nd[0..n) reads the rows x[0..T) x [0, cols) (ld floats apart) before a matmul overwrites them whole, and
 * x lies in a QR_BUF_TRANSIENT buffer (never read by the host): a fused kernel may leave them unwritten */
static bool rows_dead_after(const struct qr_view *x, int T, int ld, int cols, const struct qr_node *nd, int n) {
    if (!x->buf || !(vk_buf_of(x->buf)->usage & QR_BUF_TRANSIENT)) return false;
    for (int i = 0; i < n; i++) {
        const struct qr_view *v[QR_NODE_MAX_VIEWS];
        bool w[QR_NODE_MAX_VIEWS];
        int k = qr_node_views(&nd[i], v, w);
        const struct qr_matmul_args *m = &nd[i].a.matmul;
        bool over = nd[i].op == QR_OP_MATMUL && same_view(&m->y, x) && !m->accumulate && m->M >= T && m->ldy == ld &&
                    m->N >= cols;
        for (int j = 0; j < k; j++)
            if (!v[j] || (v[j]->buf == x->buf && !(over && w[j]))) return false;
        if (over) return true;
    }
    return true;
}

/* may the decode attention at take the q/k norm + RoPE + KV write in front of it (attn_dec_h<HS>q)?  Its q rows are
 * the rotated ones, its caches the KV write's, one query per sequence, and the rows are dead after it */
static bool attn_fold_ok(const struct vk_dev *d, const struct qr_attn_args *at, const struct qr_rope_args *rq,
                         const struct qr_rope_args *rk, const struct qr_kv_store_args *kv, const struct qr_node *rest,
                         int n_rest) {
    int hd = rq->head_dim, T = rq->n_tokens;
    return d->fuse_attn && at && kv && at->max_q_len <= 1 && at->n_tokens == T && at->n_seqs >= 1 &&
           same_view(&at->q, &rq->x) && at->ldq == rq->ld && at->n_heads == rq->n_heads &&
           at->n_kv_heads == rk->n_heads && at->head_dim == hd && hd % 8 == 0 && same_view(&at->k_cache, &kv->k_cache) &&
           same_view(&at->v_cache, &kv->v_cache) && at->kv_dtype == kv->kv_dtype &&
           (at->kv_dtype == QR_DTYPE_BF16 || at->kv_dtype == QR_DTYPE_F16) && at->block_size == kv->block_size &&
           at->num_blocks == kv->num_blocks &&
           rows_dead_after(&rq->x, T, rq->ld, (rq->n_heads + rk->n_heads) * hd, rest, n_rest);
}

/* [QK_NORM q, QK_NORM k,] ROPE q, ROPE k (in place, k heads right after the q heads, as the runtime lays out the
 * fused qkv rows) and, if it follows, the KV_STORE of those k rows and the v rows after them -> one dispatch
 * (qk_norm_rope, or qk_norm_rope_kv); and if a one-token ATTN on those rows follows too, where attn_fold_ok, that
 * dispatch is the attention's (attn_dec_h<HS>q).  nq == NULL (Qwen2): only with the KV_STORE; the two ROPEs alone
 * are merged by the caller.  at / rest / n_rest: the node after the KV_STORE if an ATTN, and the graph after it.
 * Returns the nodes consumed, 0, or a negative status. */
static int qkv_post(struct vk_stream *s, const struct qr_rmsnorm_args *nq, const struct qr_rmsnorm_args *nk,
                    const struct qr_rope_args *rq, const struct qr_rope_args *rk, const struct qr_kv_store_args *kv,
                    int n_before_kv, const struct qr_attn_args *at, const struct qr_node *rest, int n_rest) {
    struct vk_dev *d = s->d;
    int hd = rq->head_dim, T = rq->n_tokens, ld = rq->ld;
    if (hd < 2 || hd % 2 || hd > 128 || rk->head_dim != hd || rk->n_tokens != T || T < 1 || rk->ld != ld) return 0;
    if (rk->x.buf != rq->x.buf || rk->x.off != rq->x.off + (size_t)rq->n_heads * hd * 4) return 0;
    if (!same_view(&rq->pos, &rk->pos) || !same_view(&rq->inv_freq, &rk->inv_freq) || rq->attn_factor != rk->attn_factor)
        return 0;
    if (nq) {
        if (nq->n != hd || nk->n != hd || nq->n_tokens != T || nk->n_tokens != T) return 0;
        if (!same_view(&nq->out, &nq->x) || !same_view(&nk->out, &nk->x) || nq->eps != nk->eps) return 0;
        if (nq->ldx != ld || nq->ldout != ld || nk->ldx != ld || nk->ldout != ld) return 0;
        if (!same_view(&rq->x, &nq->x) || !same_view(&rk->x, &nk->x) || rq->n_heads != nq->n_heads ||
            rk->n_heads != nk->n_heads)
            return 0;
        if (!is_float_dtype(nq->wtype) || !is_float_dtype(nk->wtype)) return 0;
    }
    if (kv && !(d->fuse_kv && same_view(&kv->k, &rk->x) && kv->v.buf == rq->x.buf &&
                kv->v.off == rk->x.off + (size_t)rk->n_heads * hd * 4 && kv->ld == ld && kv->n_tokens == T &&
                kv->n_kv_heads == rk->n_heads && kv->head_dim == hd && is_float_dtype(kv->kv_dtype) &&
                kv->block_size > 0 && kv->num_blocks > 0 && kv->k_cache.off % 4 == 0 && kv->v_cache.off % 4 == 0))
        kv = NULL;
    if (!nq && !kv) return 0;
    if (attn_fold_ok(d, at, rq, rk, kv, rest, n_rest)) {
        struct attn_pro pro = {.nq = nq, .nk = nk, .rq = rq, .kv = kv};
        bool declined = false;
        qr_status st = attn_run(s, at, &pro, &declined);
        if (st != QR_OK) return (int)st;
        if (!declined) return n_before_kv + 2;
    }
    int heads = rq->n_heads + rk->n_heads;
    struct vk_binding b[8] = {{0}};
    struct qr_pc_qk_norm_rope pc = {.n_tokens = T, .n_hq = rq->n_heads, .n_hk = rk->n_heads, .head_dim = hd, .ld = ld,
                                    .attn_factor = rq->attn_factor, .norm = nq != NULL};
    qr_status st;
    size_t rows = ((size_t)(T - 1) * ld + (size_t)(heads + (kv ? rk->n_heads : 0)) * hd) * 4;
    if ((st = bind_at(d, &rq->x, 0, 4, rows, &b[0], &pc.x_off, kv ? "q/k/v" : "q/k")) ||
        (st = bind_at(d, &rq->pos, 0, 4, (size_t)T * 4, &b[3], &pc.pos_off, "rope pos")) ||
        (st = bind_at(d, &rq->inv_freq, 0, 4, (size_t)hd / 2 * 4, &b[4], &pc.if_off, "rope inv_freq")))
        return (int)st;
    if (nq) {
        size_t wq = qr_dtype_size(nq->wtype), wk = qr_dtype_size(nk->wtype);
        pc.wqtype = nq->wtype;
        pc.wktype = nk->wtype;
        pc.eps = nq->eps;
        if ((st = bind_at(d, &nq->w, 0, wq, (size_t)hd * wq, &b[1], &pc.wq_off, "q_norm w")) ||
            (st = bind_at(d, &nk->w, 0, wk, (size_t)hd * wk, &b[2], &pc.wk_off, "k_norm w")))
            return (int)st;
    }
    if (!kv) {
        st = vk_dispatch(s, vk_pipe_find("qk_norm_rope"), 5, b, &pc, sizeof pc, (uint32_t)heads, (uint32_t)T, 1);
        return st == QR_OK ? n_before_kv : (int)st;
    }
    size_t ksz = qr_dtype_size(kv->kv_dtype);
    size_t cache = (size_t)kv->num_blocks * kv->n_kv_heads * kv->block_size * kv->head_dim * ksz;
    pc.block_size = kv->block_size;
    pc.num_blocks = kv->num_blocks;
    pc.kvtype = kv->kv_dtype;
    if ((st = bind_at(d, &kv->k_cache, 0, ksz, cache, &b[5], &pc.kc_off, "k_cache")) ||
        (st = bind_at(d, &kv->v_cache, 0, ksz, cache, &b[6], &pc.vc_off, "v_cache")) ||
        (st = bind_at(d, &kv->slots, 0, 4, (size_t)T * 4, &b[7], &pc.slots_off, "slots")))
        return (int)st;
    st = vk_dispatch(s, vk_pipe_find("qk_norm_rope_kv"), 8, b, &pc, sizeof pc, (uint32_t)(heads + rk->n_heads),
                     (uint32_t)T, 1);
    return st == QR_OK ? n_before_kv + 1 : (int)st;
}

static int fuse_qk_norm_rope(struct vk_stream *s, const struct qr_node *n, int n_nodes) {
    if (n_nodes < 4 || n[0].op != QR_OP_QK_NORM || n[1].op != QR_OP_QK_NORM || n[2].op != QR_OP_ROPE ||
        n[3].op != QR_OP_ROPE)
        return 0;
    const struct qr_kv_store_args *kv = n_nodes >= 5 && n[4].op == QR_OP_KV_STORE ? &n[4].a.kv_store : NULL;
    const struct qr_attn_args *at = kv && n_nodes >= 6 && n[5].op == QR_OP_ATTN ? &n[5].a.attn : NULL;
    return qkv_post(s, &n[0].a.rmsnorm, &n[1].a.rmsnorm, &n[2].a.rope, &n[3].a.rope, kv, 4, at, n + 6,
                    at ? n_nodes - 6 : 0);
}

/* ROPE q, ROPE k [, KV_STORE] (Qwen2: no q/k norm): with the KV write, one qk_norm_rope_kv dispatch (norm off);
 * without it, one rope over the q and k heads of the same rows */
static int fuse_rope(struct vk_stream *s, const struct qr_node *n, int n_nodes) {
    if (n_nodes < 2 || n[0].op != QR_OP_ROPE || n[1].op != QR_OP_ROPE) return 0;
    const struct qr_rope_args *a = &n[0].a.rope, *b = &n[1].a.rope;
    if (n_nodes >= 3 && n[2].op == QR_OP_KV_STORE) {
        const struct qr_attn_args *at = n_nodes >= 4 && n[3].op == QR_OP_ATTN ? &n[3].a.attn : NULL;
        int r = qkv_post(s, NULL, NULL, a, b, &n[2].a.kv_store, 2, at, n + 4, at ? n_nodes - 4 : 0);
        if (r != 0) return r;
    }
    if (!(a->x.buf == b->x.buf && b->x.off == a->x.off + (size_t)a->n_heads * a->head_dim * 4 &&
          same_view(&a->pos, &b->pos) && same_view(&a->inv_freq, &b->inv_freq) && a->n_tokens == b->n_tokens &&
          a->head_dim == b->head_dim && a->ld == b->ld && a->attn_factor == b->attn_factor))
        return 0;
    struct qr_rope_args m = *a;
    m.n_heads = a->n_heads + b->n_heads;
    qr_status st = vk_ops.rope(&s->pub, &m);
    return st == QR_OK ? 2 : (int)st;
}

int vk_fuse_at(struct qr_stream *qs, const struct qr_node *n, int n_nodes) {
    struct vk_stream *s = vk_stream_of(qs);
    if (s->d->fuse_off) return 0;
    switch (n[0].op) {
    case QR_OP_QK_NORM: return fuse_qk_norm_rope(s, n, n_nodes);
    case QR_OP_RMSNORM: return fuse_norm_matmul(s, n, n_nodes);
    case QR_OP_ROPE: return fuse_rope(s, n, n_nodes);
    case QR_OP_SILU_MUL: return fuse_silu_matmul(s, n, n_nodes);
    default: return 0;
    }
}

bool vk_supports(struct qr_device *qd, enum qr_op op, enum qr_dtype wtype) {
    (void)qd;
    if (op < 0 || op >= QR_OP_COUNT) return false;
    return wtype == QR_DTYPE_COUNT || is_float_dtype(wtype);
}

const struct qr_ops vk_ops = {
    .embed = vk_embed,
    .matmul = vk_matmul,
    .rmsnorm = vk_rmsnorm,
    .qk_norm = vk_rmsnorm,
    .rope = vk_rope,
    .kv_store = vk_kv_store,
    .attn = vk_attn,
    .silu_mul = vk_silu_mul,
    .add = vk_add,
    .logits = vk_logits,
    .argmax = vk_argmax,
    .topk = vk_topk,
};
