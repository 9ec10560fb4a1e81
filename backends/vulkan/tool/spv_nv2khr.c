/* spv_nv2khr.c - build-time tool: rewrites a SPIR-V module written against SPV_NV_cooperative_matrix (what Debian
 * 12's glslc, shaderc 2023.2, compiles) into SPV_KHR_cooperative_matrix (which that glslc cannot compile), for
 * drivers whose KHR path is the fast one (NVIDIA's Hopper driver: the NV path's MMAs ran at ~32 TFLOP/s in the
 * fifteenth session's GEMM lab, docs/PERF.md).
 *   qr-spv-nv2khr IN.spv OUT.spv
 * What changes:
 *   - Capability CooperativeMatrixNV -> CooperativeMatrixKHR, the extension string;
 *   - OpTypeCooperativeMatrixNV -> OpTypeCooperativeMatrixKHR with a Use operand: the result type of a MulAdd
 *     (and every matrix type with a 32-bit component) is an accumulator, the type of a MulAdd's A operand MatrixA,
 *     of its B operand MatrixB.  NV has one type for A and B where their shapes agree, KHR needs two: a shader
 *     converted here must give them different shapes (matmul_cm3.comp with FRAG_N = 8: A 16 x 16, B 16 x 8); a type
 *     in two roles is an error;
 *   - OpCooperativeMatrixLoadNV / StoreNV -> LoadKHR / StoreKHR: the column-major bool (a constant) becomes a
 *     MemoryLayout constant before the stride; MulAddNV / LengthNV -> MulAddKHR / LengthKHR (same operands);
 *   - three uint constants (0, 1, 2) are added after the 32-bit unsigned int type for the Use and layout operands.
 * The output is not validated (Debian 12's spirv-val predates the KHR extension); the NV input is, and the driver
 * checks the result when it builds the pipeline.  Exit status 1 with a message on anything it does not handle.
 * tests/test_spv_nv2khr.c includes this file with QR_SPV_NV2KHR_NO_MAIN and calls qr_spv_nv2khr() directly. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    OP_EXTENSION = 10, OP_CAPABILITY = 17, OP_TYPE_INT = 21, OP_TYPE_FLOAT = 22, OP_TYPE_ARRAY = 28,
    OP_TYPE_POINTER = 32, OP_CONSTANT_TRUE = 41, OP_CONSTANT_FALSE = 42, OP_CONSTANT = 43,
    NV_CAP = 5357, NV_TYPE = 5358, NV_LOAD = 5359, NV_STORE = 5360, NV_MULADD = 5361, NV_LENGTH = 5362,
    KHR_CAP = 6022, KHR_TYPE = 4456, KHR_LOAD = 4457, KHR_STORE = 4458, KHR_MULADD = 4459, KHR_LENGTH = 4460,
};
enum { USE_NONE = -1, USE_A = 0, USE_B = 1, USE_ACC = 2 };

/* opcodes whose first two operands are <result type> <result id> (those a cooperative matrix value can come from) */
static int has_result_type(uint32_t op) {
    static const uint32_t ops[] = {1,   44,  46,  59,  61,  65,  66,  80,  81,  82,  83,  115, 127, 129, 131,
                                   133, 136, 143, 169, 245, NV_LOAD, NV_MULADD, NV_LENGTH};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (ops[i] == op) return 1;
    return 0;
}

#define NV2KHR_FAIL(msg, a) \
    do { \
        snprintf(err, errsz, "%s (%u)", (msg), (unsigned)(a)); \
        goto done; \
    } while (0)

/* The rewrite of module w (n words) into a new malloc'd module (*out, *out_n words).  Returns 0, or 1 with a message in
 * err.  Every read stays inside w, whatever it holds (tests/test_spv_nv2khr.c feeds it broken modules). */
static int qr_spv_nv2khr(const uint32_t *w, size_t n, uint32_t **out_p, size_t *out_n, char *err, size_t errsz) {
    int rc = 1;
    uint32_t *out = NULL, *type_of = NULL;
    int *use = NULL;
    unsigned char *flags = NULL;   /* per id: 1 NV matrix type, 2 true, 4 false, 8 32-bit scalar type */
    *out_p = NULL;
    *out_n = 0;
    if (n < 5 || w[0] != 0x07230203u) NV2KHR_FAIL("not a SPIR-V module", n);
    uint32_t bound = w[3];
    if (bound == 0 || bound > (1u << 22)) NV2KHR_FAIL("id bound out of range", bound);
    out = malloc(sizeof(uint32_t) * (2 * n + 16));
    type_of = calloc(bound, sizeof(uint32_t));
    use = malloc(sizeof(int) * bound);
    flags = calloc(bound, 1);
    if (!out || !type_of || !use || !flags) NV2KHR_FAIL("out of memory", 0);
    for (uint32_t i = 0; i < bound; i++) use[i] = USE_NONE;
    uint32_t uint_type = 0;
    /* pass 1: types, constants, the type of every value a matrix can come from, the roles */
    for (size_t i = 5; i < n;) {
        uint32_t wc = w[i] >> 16, op = w[i] & 0xFFFFu;
        if (wc == 0 || wc > n - i) NV2KHR_FAIL("bad instruction length at word", i);
        const uint32_t *o = &w[i + 1];
        if (op == OP_TYPE_INT && wc >= 4 && o[1] == 32 && o[2] == 0 && o[0] < bound) uint_type = o[0];
        if ((op == OP_TYPE_INT || op == OP_TYPE_FLOAT) && wc >= 3 && o[0] < bound && o[1] == 32) flags[o[0]] |= 8;
        if (op == OP_CONSTANT_TRUE && wc >= 3 && o[1] < bound) flags[o[1]] |= 2;
        if (op == OP_CONSTANT_FALSE && wc >= 3 && o[1] < bound) flags[o[1]] |= 4;
        if (op == NV_TYPE) {
            if (wc != 6 || o[0] >= bound || o[1] >= bound) NV2KHR_FAIL("bad OpTypeCooperativeMatrixNV at word", i);
            flags[o[0]] |= 1;
            if (flags[o[1]] & 8) use[o[0]] = USE_ACC;
        }
        if (has_result_type(op) && wc >= 3 && o[1] < bound) type_of[o[1]] = o[0];
        if (op == NV_MULADD) {
            static const int roles[3] = {USE_A, USE_B, USE_ACC};
            if (wc != 6) NV2KHR_FAIL("bad OpCooperativeMatrixMulAddNV at word", i);
            for (int k = 0; k < 3; k++) {
                uint32_t id = o[2 + k], t = id < bound ? type_of[id] : 0;
                if (!t || t >= bound || !(flags[t] & 1)) NV2KHR_FAIL("a MulAdd operand of unknown type, id", id);
                if (use[t] != USE_NONE && use[t] != roles[k]) NV2KHR_FAIL("one matrix type in two roles, type id", t);
                use[t] = roles[k];
            }
            if (o[0] >= bound || !(flags[o[0]] & 1)) NV2KHR_FAIL("a MulAdd result of unknown type", o[0]);
            if (use[o[0]] != USE_NONE && use[o[0]] != USE_ACC) NV2KHR_FAIL("a MulAdd result type in two roles", o[0]);
            use[o[0]] = USE_ACC;
        }
        i += wc;
    }
    if (!uint_type) NV2KHR_FAIL("no 32-bit unsigned int type", 0);
    const uint32_t c_id[3] = {bound, bound + 1, bound + 2};   /* uint 0, 1, 2 */
    /* pass 2: rewrite */
    static const char nv_ext[] = "SPV_NV_cooperative_matrix", khr_ext[] = "SPV_KHR_cooperative_matrix";
    size_t m = 0;
    for (int k = 0; k < 5; k++) out[m++] = w[k];
    out[3] = bound + 3;
    int n_nv = 0;
    for (size_t i = 5; i < n;) {
        uint32_t wc = w[i] >> 16, op = w[i] & 0xFFFFu;
        const uint32_t *o = &w[i + 1];
        if (op == OP_CAPABILITY && wc == 2 && o[0] == NV_CAP) {
            out[m++] = w[i];
            out[m++] = KHR_CAP;
        } else if (op == OP_EXTENSION && (size_t)(wc - 1) * 4 >= sizeof nv_ext && !memcmp(o, nv_ext, sizeof nv_ext)) {
            uint32_t sw = (uint32_t)(sizeof khr_ext + 3) / 4;
            out[m++] = ((1 + sw) << 16) | OP_EXTENSION;
            memset(&out[m], 0, sw * 4);
            memcpy(&out[m], khr_ext, sizeof khr_ext);
            m += sw;
        } else if (op == NV_TYPE) {
            int u = use[o[0]];
            if (u == USE_NONE) NV2KHR_FAIL("a matrix type used by no MulAdd, type id", o[0]);
            out[m++] = (7u << 16) | KHR_TYPE;
            for (uint32_t k = 0; k < 5; k++) out[m++] = o[k];
            out[m++] = c_id[u];
            n_nv++;
        } else if (op == NV_LOAD || op == NV_STORE) {
            /* load: rt r ptr stride colmajor [mem...]; store: ptr obj stride colmajor [mem...] */
            uint32_t lead = op == NV_LOAD ? 3 : 2;
            if (wc < 1 + lead + 2) NV2KHR_FAIL("a short cooperative-matrix load/store at word", i);
            uint32_t cm = o[lead + 1];
            if (cm >= bound || !(flags[cm] & 6))
                NV2KHR_FAIL("a load/store whose column-major operand is not a constant, word", i);
            out[m++] = (wc << 16) | (op == NV_LOAD ? KHR_LOAD : KHR_STORE);
            for (uint32_t k = 0; k < lead; k++) out[m++] = o[k];
            out[m++] = c_id[(flags[cm] & 2) ? 1 : 0];   /* ColumnMajorKHR = 1, RowMajorKHR = 0 */
            out[m++] = o[lead];                         /* stride */
            for (uint32_t k = lead + 2; k < wc - 1; k++) out[m++] = o[k];
        } else if (op == NV_MULADD || op == NV_LENGTH) {
            out[m++] = (wc << 16) | (op == NV_MULADD ? KHR_MULADD : KHR_LENGTH);
            for (uint32_t k = 0; k < wc - 1; k++) out[m++] = o[k];
        } else if (op >= NV_CAP && op <= NV_LENGTH) {
            NV2KHR_FAIL("an NV cooperative matrix opcode this tool does not handle", op);
        } else {
            for (uint32_t k = 0; k < wc; k++) out[m++] = w[i + k];
            if (op == OP_TYPE_INT && wc >= 4 && o[0] == uint_type)
                for (uint32_t k = 0; k < 3; k++) {
                    out[m++] = (4u << 16) | OP_CONSTANT;
                    out[m++] = uint_type;
                    out[m++] = c_id[k];
                    out[m++] = k;
                }
        }
        i += wc;
    }
    if (n_nv == 0) NV2KHR_FAIL("no NV cooperative matrix type in the module", 0);
    *out_p = out;
    *out_n = m;
    out = NULL;
    rc = 0;
done:
    free(out);
    free(type_of);
    free(use);
    free(flags);
    return rc;
}

#include "spv_nontemporal.c"

#ifndef QR_SPV_NV2KHR_NO_MAIN
/* qr-spv-nv2khr [--keep-nv] [--nontemporal B[,B...]] IN.spv OUT.spv: the KHR rewrite (unless --keep-nv), then the
 * Nontemporal hint on the loads of the given bindings (spv_nontemporal.c; at least one load must be marked) */
int main(int argc, char **argv) {
    bool keep_nv = false;
    uint32_t nt[8];
    int n_nt = 0, a = 1;
    for (; a < argc - 2; a++) {
        if (!strcmp(argv[a], "--keep-nv")) {
            keep_nv = true;
        } else if (!strcmp(argv[a], "--nontemporal") && a + 1 < argc - 2) {
            for (char *p = argv[++a], *e; *p; p = *e ? e + 1 : e) {
                unsigned long b = strtoul(p, &e, 10);
                if (e == p || (*e && *e != ',') || b > 64 || n_nt == 8) {
                    fprintf(stderr, "qr-spv-nv2khr: --nontemporal wants up to 8 bindings 0..64, comma-separated\n");
                    return 2;
                }
                nt[n_nt++] = (uint32_t)b;
            }
        } else {
            break;
        }
    }
    if (argc - a != 2) {
        fprintf(stderr, "usage: %s [--keep-nv] [--nontemporal B[,B...]] IN.spv OUT.spv\n", argv[0]);
        return 2;
    }
    const char *in_path = argv[a], *out_path = argv[a + 1];
    FILE *f = fopen(in_path, "rb");
    if (!f) {
        fprintf(stderr, "qr-spv-nv2khr: cannot open %s\n", in_path);
        return 1;
    }
    long sz = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    uint32_t *w = sz >= 20 && sz % 4 == 0 ? malloc((size_t)sz) : NULL;
    size_t n = sz > 0 ? (size_t)sz / 4 : 0;
    int ok = w && fseek(f, 0, SEEK_SET) == 0 && fread(w, 4, n, f) == n;
    fclose(f);
    if (!ok) {
        fprintf(stderr, "qr-spv-nv2khr: %s: not a readable SPIR-V module\n", in_path);
        free(w);
        return 1;
    }
    uint32_t *out = w, *o;
    size_t m = n, on;
    char err[256];
    int rc = 0;
    if (!keep_nv) {
        rc = qr_spv_nv2khr(out, m, &o, &on, err, sizeof err);
        free(out);
        out = o;
        m = on;
    }
    if (!rc && n_nt > 0) {
        int marked = 0;
        rc = qr_spv_nontemporal(out, m, nt, n_nt, &o, &on, &marked, err, sizeof err);
        free(out);
        out = o;
        m = on;
        if (!rc && marked == 0) {
            snprintf(err, sizeof err, "no load of the --nontemporal bindings");
            rc = 1;
        }
    }
    if (rc) {
        fprintf(stderr, "qr-spv-nv2khr: %s: %s\n", in_path, err);
        free(out);
        return 1;
    }
    FILE *g = fopen(out_path, "wb");
    ok = g && fwrite(out, 4, m, g) == m;
    if (g && fclose(g) != 0) ok = 0;
    free(out);
    if (!ok) {
        fprintf(stderr, "qr-spv-nv2khr: cannot write %s\n", out_path);
        return 1;
    }
    return 0;
}
#endif
