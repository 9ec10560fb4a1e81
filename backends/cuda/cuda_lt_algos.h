/* cuda_lt_algos.h - split-K variants of cublasLt algorithms (cuda_lt_algos.c); C, also included by the kernel lab */
#ifndef QRUN_CUDA_LT_ALGOS_H
#define QRUN_CUDA_LT_ALGOS_H

#include <cublasLt.h>
#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* up to max copies of *base with 2..16 splits of K (K / splits >= 256, not base's own split count), each with the
 * in-place (only where inplace: it adds the parts in the output type, so not for 16-bit outputs) and the compute-type
 * reduction where base supports them; 0 where base has no split-K.  The caller checks
 * each with cublasLtMatmulAlgoCheck (workspace, shape) before it runs one. */
int cuda_lt_splitk_variants(const cublasLtMatmulAlgo_t *base, int K, bool inplace, cublasLtMatmulAlgo_t *out, int max);

/* "algo ID tile T stages S split-K N (reduction R) swizzle W custom C cluster L"; NULL algo: cublasGemmEx's default */
void cuda_lt_algo_desc(const cublasLtMatmulAlgo_t *algo, char *buf, size_t n);

#ifdef __cplusplus
}
#endif

#endif
