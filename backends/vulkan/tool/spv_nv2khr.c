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
 * checks the result when it builds the pipeline.  Exit status 1 with a message on anything it does not handle. */
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

static int fail(const char *msg, uint32_t a) {
    fprintf(stderr, "qr-spv-nv2khr: %s (%u)\n", msg, a);
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s IN.spv OUT.spv\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) return fail("cannot open the input", 0);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (sz < 20 || sz % 4) {
        fclose(f);
        return fail("not a SPIR-V module (size)", (uint32_t)sz);
    }
    size_t n = (size_t)sz / 4;
    uint32_t *w = malloc((size_t)sz), *out = malloc((size_t)sz * 2 + 64);
    if (!w || !out || fread(w, 4, n, f) != n) {
        fclose(f);
        return fail("cannot read the input", 0);
    }
    fclose(f);
    if (w[0] != 0x07230203u) return fail("not a SPIR-V module (magic)", w[0]);
    uint32_t bound = w[3];
    int *use = malloc(sizeof(int) * bound);
    uint32_t *type_of = calloc(bound, sizeof(uint32_t));
    unsigned char *is_nv = calloc(bound, 1), *is_true = calloc(bound, 1), *is_false = calloc(bound, 1);
    unsigned char *comp32 = calloc(bound, 1), *is32 = calloc(bound, 1);
    if (!use || !type_of || !is_nv || !is_true || !is_false || !comp32 || !is32) return fail("out of memory", 0);
    for (uint32_t i = 0; i < bound; i++) use[i] = USE_NONE;
    uint32_t uint_type = 0;
    /* pass 1: types, constants, the type of every value a matrix can come from, the roles */
    for (size_t i = 5; i < n;) {
        uint32_t wc = w[i] >> 16, op = w[i] & 0xFFFFu;
        if (wc == 0 || i + wc > n) return fail("bad instruction length at word", (uint32_t)i);
        const uint32_t *o = &w[i + 1];
        if (op == OP_TYPE_INT && wc >= 4 && o[1] == 32 && o[2] == 0 && o[0] < bound) uint_type = o[0];
        if ((op == OP_TYPE_INT || op == OP_TYPE_FLOAT) && wc >= 3 && o[0] < bound) is32[o[0]] = o[1] == 32;
        if (op == OP_CONSTANT_TRUE && wc >= 3 && o[1] < bound) is_true[o[1]] = 1;
        if (op == OP_CONSTANT_FALSE && wc >= 3 && o[1] < bound) is_false[o[1]] = 1;
        if (op == NV_TYPE) {
            if (wc != 6 || o[0] >= bound || o[1] >= bound) return fail("bad OpTypeCooperativeMatrixNV", (uint32_t)i);
            is_nv[o[0]] = 1;
            comp32[o[0]] = is32[o[1]];
            if (comp32[o[0]]) use[o[0]] = USE_ACC;
        }
        if (has_result_type(op) && wc >= 3 && o[1] < bound) type_of[o[1]] = o[0];
        if (op == NV_MULADD) {
            if (wc != 6) return fail("bad OpCooperativeMatrixMulAddNV", (uint32_t)i);
            static const int roles[3] = {USE_A, USE_B, USE_ACC};
            for (int k = 0; k < 3; k++) {
                uint32_t id = o[2 + k], t = id < bound ? type_of[id] : 0;
                if (!t || !is_nv[t]) return fail("a MulAdd operand of unknown type, id", id);
                if (use[t] != USE_NONE && use[t] != roles[k]) return fail("one matrix type in two roles, type id", t);
                use[t] = roles[k];
            }
            if (o[0] >= bound || !is_nv[o[0]]) return fail("a MulAdd result of unknown type", o[0]);
            if (use[o[0]] != USE_NONE && use[o[0]] != USE_ACC) return fail("a MulAdd result type in two roles", o[0]);
            use[o[0]] = USE_ACC;
        }
        i += wc;
    }
    if (!uint_type) return fail("no 32-bit unsigned int type", 0);
    const uint32_t c_id[3] = {bound, bound + 1, bound + 2};   /* uint 0, 1, 2 */
    /* pass 2: rewrite */
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
        } else if (op == OP_EXTENSION && !strcmp((const char *)o, "SPV_NV_cooperative_matrix")) {
            static const char ext[] = "SPV_KHR_cooperative_matrix";
            uint32_t sw = (uint32_t)(sizeof ext + 3) / 4;
            out[m++] = ((1 + sw) << 16) | OP_EXTENSION;
            memset(&out[m], 0, sw * 4);
            memcpy(&out[m], ext, sizeof ext);
            m += sw;
        } else if (op == NV_TYPE) {
            int u = use[o[0]];
            if (u == USE_NONE) return fail("a matrix type used by no MulAdd, type id", o[0]);
            out[m++] = (7u << 16) | KHR_TYPE;
            for (uint32_t k = 0; k < 5; k++) out[m++] = o[k];
            out[m++] = c_id[u];
            n_nv++;
        } else if (op == NV_LOAD || op == NV_STORE) {
            /* load: rt r ptr stride colmajor [mem...]; store: ptr obj stride colmajor [mem...] */
            uint32_t lead = op == NV_LOAD ? 3 : 2, cm = o[lead + 1];
            if (wc < 1 + lead + 2 || cm >= bound || (!is_true[cm] && !is_false[cm]))
                return fail("a load/store whose column-major operand is not a constant, word", (uint32_t)i);
            out[m++] = (wc << 16) | (op == NV_LOAD ? KHR_LOAD : KHR_STORE);
            for (uint32_t k = 0; k < lead; k++) out[m++] = o[k];
            out[m++] = c_id[is_true[cm] ? 1 : 0];   /* ColumnMajorKHR = 1, RowMajorKHR = 0 */
            out[m++] = o[lead];                      /* stride */
            for (uint32_t k = lead + 2; k < wc - 1; k++) out[m++] = o[k];
        } else if (op == NV_MULADD || op == NV_LENGTH) {
            out[m++] = (wc << 16) | (op == NV_MULADD ? KHR_MULADD : KHR_LENGTH);
            for (uint32_t k = 0; k < wc - 1; k++) out[m++] = o[k];
        } else if (op >= NV_CAP && op <= NV_LENGTH) {
            return fail("an NV cooperative matrix opcode this tool does not handle", op);
        } else {
            for (uint32_t k = 0; k < wc; k++) out[m++] = w[i + k];
            if (op == OP_TYPE_INT && o[0] == uint_type)
                for (uint32_t k = 0; k < 3; k++) {
                    out[m++] = (4u << 16) | OP_CONSTANT;
                    out[m++] = uint_type;
                    out[m++] = c_id[k];
                    out[m++] = k;
                }
        }
        i += wc;
    }
    if (n_nv == 0) return fail("no NV cooperative matrix type in the module", 0);
    FILE *g = fopen(argv[2], "wb");
    if (!g || fwrite(out, 4, m, g) != m || fclose(g) != 0) return fail("cannot write the output", 0);
    free(w);
    free(out);
    free(use);
    free(type_of);
    free(is_nv);
    free(is_true);
    free(is_false);
    free(comp32);
    free(is32);
    return 0;
}
