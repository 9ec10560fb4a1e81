/* spv_nontemporal.c - build-time SPIR-V pass (included by spv_nv2khr.c, run as `qr-spv-nv2khr --keep-nv
 * --nontemporal B,...`): every OpLoad whose pointer is rooted, through access chains or copies, at a variable
 * decorated Binding B (one of the given bindings) gets the Nontemporal memory-access bit, the streaming hint that
 * GLSL has no word for in Debian 12's glslc (GL_EXT_nontemporal_keyword is newer).  A decode GEMV reads each weight
 * once: the hint lets the driver keep x (read by every row) in L1 instead of the weight stream (what CUDA's __ldcs
 * does for the CUDA GEMV).  The module keeps its ids and bound; only OpLoad instructions grow by the mask word where
 * they had none.  Needs SPIR-V 1.4 or later (Nontemporal), which the vulkan1.2 target gives.  Every read stays inside
 * the module whatever it holds. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    NT_OP_VARIABLE = 59, NT_OP_LOAD = 61, NT_OP_ACCESS_CHAIN = 65, NT_OP_IN_BOUNDS_ACCESS_CHAIN = 66,
    NT_OP_PTR_ACCESS_CHAIN = 67, NT_OP_COPY_OBJECT = 83, NT_OP_DECORATE = 71, NT_DEC_BINDING = 33,
    NT_MEM_NONTEMPORAL = 0x4,
};

/* the rewrite of w (n words) into *out_p (*out_n words, malloc'd); bindings[0..nb) are the bindings to mark; *n_marked
 * gets the number of loads marked.  Returns 0, or 1 with a message in err */
static int qr_spv_nontemporal(const uint32_t *w, size_t n, const uint32_t *bindings, int nb, uint32_t **out_p,
                              size_t *out_n, int *n_marked, char *err, size_t errsz) {
    *out_p = NULL;
    *out_n = 0;
    *n_marked = 0;
    if (n < 5 || w[0] != 0x07230203u) {
        snprintf(err, errsz, "not a SPIR-V module");
        return 1;
    }
    if ((w[1] >> 16) < 1 || ((w[1] >> 16) == 1 && ((w[1] >> 8) & 0xff) < 4)) {
        snprintf(err, errsz, "SPIR-V %u.%u predates the Nontemporal memory access (1.4)", w[1] >> 16, (w[1] >> 8) & 0xff);
        return 1;
    }
    uint32_t bound = w[3];
    if (bound == 0 || bound > (1u << 22)) {
        snprintf(err, errsz, "id bound out of range (%u)", bound);
        return 1;
    }
    unsigned char *tag = calloc(bound, 1);   /* 1: a pointer rooted at a marked binding */
    size_t n_loads = 0;
    for (size_t i = 5; i < n;) {   /* decorations first: the variables of the bindings; count the loads */
        uint32_t wc = w[i] >> 16, op = w[i] & 0xffff;
        if (wc == 0 || wc > n - i) {
            snprintf(err, errsz, "instruction at word %zu runs past the module", i);
            free(tag);
            return 1;
        }
        if (tag && op == NT_OP_DECORATE && wc >= 4 && w[i + 2] == NT_DEC_BINDING && w[i + 1] < bound)
            for (int b = 0; b < nb; b++)
                if (w[i + 3] == bindings[b]) tag[w[i + 1]] = 1;
        if (op == NT_OP_LOAD) n_loads++;
        i += wc;
    }
    uint32_t *out = tag ? malloc(sizeof(uint32_t) * (n + n_loads)) : NULL;
    if (!out) {
        snprintf(err, errsz, "out of memory");
        free(tag);
        return 1;
    }
    /* pointers derived from a tagged one (ids are defined before their uses in each function's block order; a
     * second sweep catches any chain written out of order) */
    for (int sweep = 0; sweep < 2; sweep++)
        for (size_t i = 5; i < n; i += w[i] >> 16) {
            uint32_t wc = w[i] >> 16, op = w[i] & 0xffff;
            bool chain = op == NT_OP_ACCESS_CHAIN || op == NT_OP_IN_BOUNDS_ACCESS_CHAIN ||
                         op == NT_OP_PTR_ACCESS_CHAIN || op == NT_OP_COPY_OBJECT;
            if (chain && wc >= 4 && w[i + 2] < bound && w[i + 3] < bound && tag[w[i + 3]]) tag[w[i + 2]] = 1;
        }
    size_t m = 0;
    memcpy(out, w, 5 * sizeof(uint32_t));
    m = 5;
    for (size_t i = 5; i < n;) {
        uint32_t wc = w[i] >> 16, op = w[i] & 0xffff;
        memcpy(out + m, w + i, wc * sizeof(uint32_t));
        if (op == NT_OP_LOAD && wc >= 4 && w[i + 3] < bound && tag[w[i + 3]]) {
            if (wc == 4) {
                out[m] = (5u << 16) | NT_OP_LOAD;
                out[m + 4] = NT_MEM_NONTEMPORAL;
                m++;
            } else {
                out[m + 4] |= NT_MEM_NONTEMPORAL;
            }
            (*n_marked)++;
        }
        m += wc;
        i += wc;
    }
    free(tag);
    *out_p = out;
    *out_n = m;
    return 0;
}
