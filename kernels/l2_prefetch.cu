/* l2_prefetch.cu - pulls weight bytes into L2 ahead of the GEMV that reads them.  Decode: the o_proj weights (and,
 * optionally, the first MiBs of the next GEMV's) while the q/k-norm kernel and the latency-bound attention leave HBM
 * idle; launched on a low-priority side stream (backends/cuda/cuda_backend.c, QR_CUDA_L2PF).  Correctness never
 * depends on it: it only reads.  mode 1: prefetch.global.L2::evict_last per 128-byte line; 2: 16-byte loads whose
 * values are dropped; 3: cp.async.bulk.prefetch.L2 of 4 KiB pieces (sm_90; mode 1 below that). */
#include "qr_cuda_common.cuh"

__device__ __forceinline__ const char *pf_at(const char *a, size_t na, const char *b, size_t o)
{
    return o < na ? a + o : b + (o - na);
}

__global__ void k_l2_prefetch(const char *a, size_t na, const char *b, size_t nb, int mode)
{
    const size_t n = na + nb, tid = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    const size_t nt = (size_t)gridDim.x * blockDim.x;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if (mode == 3) {
        const size_t piece = 4096;
        for (size_t o = tid * piece; o < n; o += nt * piece) {
            size_t lim = o < na ? na - o : n - o;
            unsigned sz = (unsigned)(lim < piece ? lim : piece) & ~15u;
            if (sz)
                asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;\n" ::"l"(pf_at(a, na, b, o)), "r"(sz)
                             : "memory");
        }
        return;
    }
#endif
    if (mode == 2) {
        for (size_t o = tid * 16; o + 16 <= n; o += nt * 16) {
            unsigned x0, x1, x2, x3;
            asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];\n"
                         : "=r"(x0), "=r"(x1), "=r"(x2), "=r"(x3)
                         : "l"(pf_at(a, na, b, o)));
            asm volatile("" ::"r"(x0), "r"(x1), "r"(x2), "r"(x3));   /* a use: the loads stay, nothing is emitted */
        }
        return;
    }
    for (size_t o = tid * 128; o < n; o += nt * 128) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
        asm volatile("prefetch.global.L2::evict_last [%0];\n" ::"l"(pf_at(a, na, b, o)));
#else
        asm volatile("prefetch.global.L2 [%0];\n" ::"l"(pf_at(a, na, b, o)));
#endif
    }
}

extern "C" int cuda_launch_l2_prefetch(qr_cuda_stream st, const void *a, size_t na, const void *b, size_t nb,
                                       int mode, int blocks)
{
    if (na + nb == 0 || blocks <= 0)
        return 0;
    if ((na & 15) != 0 || mode < 1 || mode > 3)
        return (int)cudaErrorInvalidValue;
    k_l2_prefetch<<<blocks, 256, 0, st>>>((const char *)a, na, (const char *)b, nb, mode);
    return qk_launch_result();
}
