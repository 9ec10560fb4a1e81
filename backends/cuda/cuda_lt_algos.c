/* cuda_lt_algos.c - split-K variants of cublasLt algorithms, and a line describing an algorithm's configuration.
 * Shared by the GEMM tuner (cuda_gemm_tune.c) and the kernel lab (kernels/lab/kernel_lab.cu --gemm-tune-decode).
 *
 * Why: at the batch sizes of serving and offline decoding (M = 2..512 rows) the GEMMs are bound by their weight
 * bytes, and a narrow output (N = 2560 for o_proj and down) gives cuBLAS's usual tiles only 20-80 blocks for 132
 * SMs: the twenty-fifth session's profile of a 256-sequence step had o_proj at 0.86 TB/s.  cublasLt's heuristic list
 * does not always hold a split of K; these variants add them (2..16 splits with at least 256 of K each, each with
 * the in-place and the compute-type reduction the algorithm supports; the in-place one adds the parts in the output
 * type, so 16-bit outputs take only the other).  Both reductions sum the parts in a fixed
 * order, so a variant gives the same bits from run to run. */
#include "cuda_lt_algos.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

static const int32_t k_splits[] = {2, 3, 4, 6, 8, 12, 16};
static const uint32_t k_schemes[] = {CUBLASLT_REDUCTION_SCHEME_INPLACE, CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE};

int cuda_lt_splitk_variants(const cublasLtMatmulAlgo_t *base, int K, bool inplace, cublasLtMatmulAlgo_t *out, int max)
{
    int32_t support = 0, cur = 1;
    uint32_t mask = 0;
    size_t wr = 0;
    if (!base || !out || max <= 0 || K < 512)
        return 0;
    if (cublasLtMatmulAlgoCapGetAttribute(base, CUBLASLT_ALGO_CAP_SPLITK_SUPPORT, &support, sizeof support, &wr) !=
            CUBLAS_STATUS_SUCCESS ||
        !support)
        return 0;
    if (cublasLtMatmulAlgoCapGetAttribute(base, CUBLASLT_ALGO_CAP_REDUCTION_SCHEME_MASK, &mask, sizeof mask, &wr) !=
        CUBLAS_STATUS_SUCCESS)
        return 0;
    if (cublasLtMatmulAlgoConfigGetAttribute(base, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &cur, sizeof cur, &wr) !=
        CUBLAS_STATUS_SUCCESS)
        cur = 1;
    int n = 0;
    for (size_t i = 0; i < sizeof k_splits / sizeof k_splits[0]; i++) {
        const int32_t sk = k_splits[i];
        if (sk == cur || K / sk < 256)
            continue;
        for (size_t j = 0; j < sizeof k_schemes / sizeof k_schemes[0] && n < max; j++) {
            const uint32_t rs = k_schemes[j];
            if (!(mask & rs) || (rs == CUBLASLT_REDUCTION_SCHEME_INPLACE && !inplace))
                continue;
            cublasLtMatmulAlgo_t a = *base;
            if (cublasLtMatmulAlgoConfigSetAttribute(&a, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &sk, sizeof sk) !=
                    CUBLAS_STATUS_SUCCESS ||
                cublasLtMatmulAlgoConfigSetAttribute(&a, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &rs, sizeof rs) !=
                    CUBLAS_STATUS_SUCCESS)
                continue;
            out[n++] = a;
        }
    }
    return n;
}

void cuda_lt_algo_desc(const cublasLtMatmulAlgo_t *algo, char *buf, size_t n)
{
    int32_t id = -1, sk = 1;
    uint32_t tile = 0, stages = 0, rs = 0, swz = 0, custom = 0;
    uint16_t cluster = 0;
    size_t wr = 0;
    if (!buf || n == 0)
        return;
    if (!algo) {
        snprintf(buf, n, "cublasGemmEx default");
        return;
    }
    /* each attribute that cannot be read keeps its initial value */
    (void)cublasLtMatmulAlgoConfigGetAttribute(algo, CUBLASLT_ALGO_CONFIG_ID, &id, sizeof id, &wr);
    (void)cublasLtMatmulAlgoConfigGetAttribute(algo, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile, sizeof tile, &wr);
    (void)cublasLtMatmulAlgoConfigGetAttribute(algo, CUBLASLT_ALGO_CONFIG_STAGES_ID, &stages, sizeof stages, &wr);
    (void)cublasLtMatmulAlgoConfigGetAttribute(algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &sk, sizeof sk, &wr);
    (void)cublasLtMatmulAlgoConfigGetAttribute(algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &rs, sizeof rs, &wr);
    (void)cublasLtMatmulAlgoConfigGetAttribute(algo, CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING, &swz, sizeof swz, &wr);
    (void)cublasLtMatmulAlgoConfigGetAttribute(algo, CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION, &custom, sizeof custom, &wr);
    (void)cublasLtMatmulAlgoConfigGetAttribute(algo, CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID, &cluster, sizeof cluster,
                                               &wr);
    snprintf(buf, n, "algo %d tile %u stages %u split-K %d (reduction %u) swizzle %u custom %u cluster %u", (int)id,
             tile, stages, (int)sk, rs, swz, custom, (unsigned)cluster);
}
