/* test_spv_nv2khr.c - the build-time NV -> KHR cooperative-matrix rewriter (backends/vulkan/tool/spv_nv2khr.c) and
 * its Nontemporal pass (tool/spv_nontemporal.c, test_nontemporal below):
 *  - the build's NV modules of matmul_cm3k_bf16 and attn_cm2k convert to exactly the embedded KHR modules, and the
 *    result is well formed: every instruction's length inside the module, no NV opcode or capability left, one KHR
 *    type per NV type with a Use that is one of the added constants, loads/stores with a layout constant;
 *  - refusals with a message: a module whose A and B share a type (matmul_cm3's 16 x 16 fragments), one without
 *    cooperative matrices (rmsnorm), a bad magic, an id bound of 0 or 2^31, a zero-length instruction;
 *  - no read or write outside the module for truncations at every length and 4000 random corruptions (run under
 *    ASan in CI): each returns 0 or 1.
 * SKIPs (exit 0) where the build has no Vulkan plugin or its glslc lacks GL_NV_cooperative_matrix. */
#define QR_SPV_NV2KHR_NO_MAIN
#include "../backends/vulkan/tool/spv_nv2khr.c"

#include <stdbool.h>
#include "testutil.h"

static uint32_t *load(const char *name, size_t *n) {
    const char *bd = getenv("QR_BUILD_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/backends/vulkan/spv/%s", bd ? bd : "build", name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint32_t *w = sz > 0 && sz % 4 == 0 ? malloc((size_t)sz) : NULL;
    *n = sz > 0 ? (size_t)sz / 4 : 0;
    if (w && fread(w, 4, *n, f) != *n) {
        free(w);
        w = NULL;
    }
    fclose(f);
    return w;
}

/* the converted module: lengths, no NV left, the KHR types' Use operands */
static bool well_formed(const uint32_t *w, size_t n, int *n_types, int *n_muladd) {
    *n_types = *n_muladd = 0;
    if (n < 5 || w[0] != 0x07230203u) return false;
    uint32_t bound = w[3];
    uint32_t *cval = calloc(bound, sizeof(uint32_t));
    unsigned char *isc = calloc(bound, 1);
    bool ok = cval && isc;
    for (size_t i = 5; ok && i < n;) {
        uint32_t wc = w[i] >> 16, op = w[i] & 0xFFFFu;
        if (wc == 0 || wc > n - i) {
            ok = false;
            break;
        }
        if (op >= NV_CAP && op <= NV_LENGTH) ok = false;
        if (op == OP_CAPABILITY && w[i + 1] == NV_CAP) ok = false;
        if (op == OP_CONSTANT && wc == 4 && w[i + 2] < bound) {
            isc[w[i + 2]] = 1;
            cval[w[i + 2]] = w[i + 3];
        }
        if (op == KHR_TYPE) {
            ok = ok && wc == 7 && w[i + 6] < bound && isc[w[i + 6]] && cval[w[i + 6]] <= 2;
            (*n_types)++;
        }
        if (op == KHR_LOAD || op == KHR_STORE) {
            uint32_t lay = w[i + (op == KHR_LOAD ? 4 : 3)];
            ok = ok && lay < bound && isc[lay] && cval[lay] <= 1;
        }
        if (op == KHR_MULADD) (*n_muladd)++;
        i += wc;
    }
    free(cval);
    free(isc);
    return ok;
}

static int count_op(const uint32_t *w, size_t n, uint32_t want) {
    int c = 0;
    for (size_t i = 5; i < n;) {
        uint32_t wc = w[i] >> 16;
        if (wc == 0 || wc > n - i) return -1;
        if ((w[i] & 0xFFFFu) == want) c++;
        i += wc;
    }
    return c;
}

static void check_refused(const uint32_t *w, size_t n, const char *want, const char *what) {
    uint32_t *out;
    size_t m;
    char err[256] = "";
    int rc = qr_spv_nv2khr(w, n, &out, &m, err, sizeof err);
    CHECKF(rc == 1 && out == NULL && strstr(err, want) != NULL, "%s: rc %d, message '%s' (want '%s')", what, rc, err,
           want);
    if (!rc) free(out);
}

/* OpLoads with the Nontemporal bit in module w */
static int count_nontemporal(const uint32_t *w, size_t n) {
    int c = 0;
    for (size_t i = 5; i < n && (w[i] >> 16); i += w[i] >> 16)
        if ((w[i] & 0xffff) == 61 && (w[i] >> 16) >= 5 && (w[i + 4] & 0x4)) c++;
    return c;
}

/* the Nontemporal pass (tool/spv_nontemporal.c): the build's GEMV module marks to exactly the embedded one, marking
 * twice changes nothing, a binding with no loads marks none and keeps the bytes, bad input is refused, truncations
 * and corruptions return 0 or 1 */
static void test_nontemporal(void) {
    size_t n_in = 0, n_ref = 0;
    uint32_t *in = load("matmul_gemv1wnt_bf16.spv.in", &n_in), *ref = load("matmul_gemv1wnt_bf16.spv", &n_ref);
    if (!in || !ref) {
        printf("SKIP nontemporal: no matmul_gemv1wnt_bf16 module in the build (no Vulkan plugin)\n");
        free(in);
        free(ref);
        return;
    }
    static const uint32_t wb[3] = {3, 4, 10}, none[1] = {9};
    uint32_t *out = NULL, *out2 = NULL;
    size_t m = 0, m2 = 0;
    int marked = 0, marked2 = 0;
    char err[256] = "";
    CHECKF(qr_spv_nontemporal(in, n_in, wb, 3, &out, &m, &marked, err, sizeof err) == 0, "nontemporal: %s", err);
    CHECKF(out && m == n_ref && !memcmp(out, ref, m * 4), "nontemporal: differs from the build's module");
    CHECKF(marked > 0 && marked == count_nontemporal(out, m) && count_nontemporal(in, n_in) == 0,
           "nontemporal: %d loads marked, %d in the output", marked, out ? count_nontemporal(out, m) : -1);
    CHECK(out && qr_spv_nontemporal(out, m, wb, 3, &out2, &m2, &marked2, err, sizeof err) == 0);
    CHECK(out2 && m2 == m && !memcmp(out2, out, m * 4) && marked2 == marked);
    free(out2);
    out2 = NULL;
    CHECK(qr_spv_nontemporal(in, n_in, none, 1, &out2, &m2, &marked2, err, sizeof err) == 0);
    CHECK(out2 && marked2 == 0 && m2 == n_in && !memcmp(out2, in, m2 * 4));
    free(out2);
    uint32_t *bad = malloc(n_in * 4);
    memcpy(bad, in, n_in * 4);
    bad[1] = 0x00010300u;   /* SPIR-V 1.3 */
    CHECK(qr_spv_nontemporal(bad, n_in, wb, 3, &out2, &m2, &marked2, err, sizeof err) == 1 && strstr(err, "1.4"));
    bad[1] = in[1];
    bad[0] = 0x03022307u;
    CHECK(qr_spv_nontemporal(bad, n_in, wb, 3, &out2, &m2, &marked2, err, sizeof err) == 1 && !out2);
    int bad_rc = 0;
    for (size_t len = 0; len <= n_in; len += len < 300 ? 1 : 53) {
        int rc = qr_spv_nontemporal(in, len, wb, 3, &out2, &m2, &marked2, err, sizeof err);
        if (rc != 0 && rc != 1) bad_rc++;
        free(out2);
    }
    uint32_t r = 777;
    for (int it = 0; it < 2000; it++) {
        memcpy(bad, in, n_in * 4);
        r = r * 1664525u + 1013904223u;
        size_t at = 5 + (r >> 8) % (n_in - 5);
        r = r * 1664525u + 1013904223u;
        bad[at] = (it & 1) ? (bad[at] ^ (1u << (r >> 27))) : r;
        int rc = qr_spv_nontemporal(bad, n_in, wb, 3, &out2, &m2, &marked2, err, sizeof err);
        if (rc != 0 && rc != 1) bad_rc++;
        free(out2);
    }
    CHECKF(bad_rc == 0, "nontemporal: %d calls returned neither 0 nor 1", bad_rc);
    printf("nontemporal: %d loads marked in matmul_gemv1wnt_bf16\n", marked);
    free(bad);
    free(out);
    free(in);
    free(ref);
}

int main(void) {
    test_nontemporal();
    size_t n_nv = 0, n_khr = 0, n_attn = 0, n_attn_khr = 0;
    uint32_t *nv = load("matmul_cm3k_bf16.spv.nv", &n_nv), *khr = load("matmul_cm3k_bf16.spv", &n_khr);
    uint32_t *anv = load("attn_cm2k.spv.nv", &n_attn), *akhr = load("attn_cm2k.spv", &n_attn_khr);
    if (!nv || !khr || !anv || !akhr) {
        printf("SKIP: no NV cooperative-matrix modules in the build (no Vulkan plugin or glslc without "
               "GL_NV_cooperative_matrix)\n");
        free(nv);
        free(khr);
        free(anv);
        free(akhr);
        return qt_summary("test_spv_nv2khr");
    }
    /* the real modules: the same bytes as the build embeds, well formed, one KHR type per NV type */
    const uint32_t *ins[2] = {nv, anv}, *refs[2] = {khr, akhr};
    const size_t ns[2] = {n_nv, n_attn}, nrefs[2] = {n_khr, n_attn_khr};
    for (int k = 0; k < 2; k++) {
        uint32_t *out;
        size_t m;
        char err[256] = "";
        int rc = qr_spv_nv2khr(ins[k], ns[k], &out, &m, err, sizeof err);
        CHECKF(rc == 0, "module %d: %s", k, err);
        if (rc) continue;
        CHECKF(m == nrefs[k] && !memcmp(out, refs[k], m * 4), "module %d: differs from the build's KHR module", k);
        int nt, nm;
        CHECKF(well_formed(out, m, &nt, &nm), "module %d: malformed output", k);
        CHECKF(nt == count_op(ins[k], ns[k], NV_TYPE) && nt == 3, "module %d: %d KHR matrix types", k, nt);
        CHECKF(nm == count_op(ins[k], ns[k], NV_MULADD) && nm > 0, "module %d: %d MulAdds", k, nm);
        CHECK(out[3] == ins[k][3] + 3);
        free(out);
    }
    /* refusals */
    size_t n16 = 0, nrms = 0;
    uint32_t *cm16 = load("matmul_cm3_bf16.spv", &n16), *rms = load("rmsnorm.spv", &nrms);
    CHECK(cm16 != NULL && rms != NULL);
    if (cm16) check_refused(cm16, n16, "two roles", "16 x 16 A and B in one type");
    if (rms) check_refused(rms, nrms, "no NV cooperative matrix type", "no cooperative matrices");
    uint32_t *bad = malloc(n_nv * 4);
    memcpy(bad, nv, n_nv * 4);
    bad[0] = 0x03022307u;
    check_refused(bad, n_nv, "not a SPIR-V module", "byte-swapped magic");
    memcpy(bad, nv, n_nv * 4);
    bad[3] = 0;
    check_refused(bad, n_nv, "bound", "id bound 0");
    bad[3] = 1u << 31;
    check_refused(bad, n_nv, "bound", "id bound 2^31");
    memcpy(bad, nv, n_nv * 4);
    bad[5] = 0;
    check_refused(bad, n_nv, "instruction length", "zero-length instruction");
    check_refused(nv, 4, "not a SPIR-V module", "four words");
    /* truncations and corruptions: 0 or 1, never a crash (ASan in CI) */
    int bad_rc = 0;
    for (size_t len = 0; len <= n_nv; len += len < 400 ? 1 : 97) {
        uint32_t *out;
        size_t m;
        char err[256];
        int rc = qr_spv_nv2khr(nv, len, &out, &m, err, sizeof err);
        if (rc != 0 && rc != 1) bad_rc++;
        if (!rc) free(out);
    }
    uint32_t r = 12345;
    int converted = 0;
    for (int it = 0; it < 4000; it++) {
        memcpy(bad, nv, n_nv * 4);
        for (int k = 0; k < 1 + it % 4; k++) {
            r = r * 1664525u + 1013904223u;
            size_t at = 5 + (r >> 8) % (n_nv - 5);
            r = r * 1664525u + 1013904223u;
            bad[at] = (it & 1) ? (bad[at] ^ (1u << (r >> 27))) : r;
        }
        uint32_t *out;
        size_t m;
        char err[256];
        int rc = qr_spv_nv2khr(bad, n_nv, &out, &m, err, sizeof err);
        if (rc != 0 && rc != 1) bad_rc++;
        if (!rc) {
            converted++;
            free(out);
        }
    }
    CHECKF(bad_rc == 0, "%d calls returned neither 0 nor 1", bad_rc);
    printf("corruptions: %d of 4000 still converted (the rest refused)\n", converted);
    free(bad);
    free(nv);
    free(khr);
    free(anv);
    free(akhr);
    free(cm16);
    free(rms);
    return qt_summary("test_spv_nv2khr");
}
