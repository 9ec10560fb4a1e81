/* kernel_lab.cu - standalone lab for the CUDA kernels: includes the
 * production kernels, checks them against plain CPU loops on small shapes,
 * then times them on Qwen3-4B shapes (GEMV GB/s vs the device copy
 * bandwidth, prompt attention TFLOP/s, split-KV decode latency).
 *
 * The fused-path kernels are measured beside the plain ones: decode attention
 * v2 (attn_decode2.cu) and tc (attn_decode_tc.cu, tensor cores) vs v1, and the
 * prefetching GEMV (gemv_fused.cu) vs gemv.cu.  Decode attention is also timed
 * over batches of sequences (KV GB/s: what offline throughput is bound by).
 *
 *   cuda_kernel_lab [--quick | --attn | --attn-chunk | --gemm | --prefill | --attn-ncu]
 *     --attn-chunk: short chunks after a long context, the split-KV chunk kernel (attn_chunk.cu) vs the prompt kernel:
 *     results against each other (f32 and 16-bit rows, both chunk versions), then times (16 / 64 / 128 / 256 tokens
 *     after 8192 and 32768 keys)
 *     --attn: the checks, then attention timings only (decode over BF16 and FP8 E4M3 KV); --gemm: cuBLAS prompt
 *     GEMM timings; --prefill: the prompt RMSNorm / SwiGLU passes, 16-byte vs scalar, same bits?; --attn-ncu: one
 *     8192 prompt launch of each pipelined wgmma variant and the warp-specialized one, for ncu
 * Exit status 1 if a check fails.  Not part of ctest (needs a GPU). */
#include "../attn.cu"
#include "../attn_chunk.cu"
#include "../attn_decode2.cu"
#include "../attn_decode_tc.cu"
#include "../attn_prefill_wg.cu"
#include "../attn_prefill_tma.cu"
#include "../gemv_norm.cu"
#include "../elementwise.cu"
#include "../gemv.cu"
#include "../gemv_fused.cu"
#include "../prefill_fused.cu"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>

#include <cublasLt.h>
#include <cublas_v2.h>

#include "cuda_lt_algos.h"

#define CK(x)                                                                                                      \
    do {                                                                                                           \
        cudaError_t e_ = (x);                                                                                      \
        if (e_ != cudaSuccess) {                                                                                   \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_));                    \
            exit(2);                                                                                               \
        }                                                                                                          \
    } while (0)

static int g_fail = 0;
static uint64_t g_rng = 88172645463325252ull;
static float frand(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((g_rng >> 40) / (double)(1ull << 24)) * 2.0f - 1.0f;
}
static uint16_t to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}
static float from_bf16(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
template <typename T>
static T *dev_copy(const std::vector<T> &v)
{
    T *p;
    CK(cudaMalloc(&p, v.size() * sizeof(T) + 16));
    CK(cudaMemcpy(p, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
    return p;
}
static void check(const char *what, double nmse, double lim)
{
    bool ok = nmse <= lim && !isnan(nmse);
    printf("%-48s nmse %.3e  %s\n", what, nmse, ok ? "ok" : "FAIL");
    if (!ok)
        g_fail++;
}

/* ---- GEMV ---- */
/* gemv_norm.cu vs CPU loops: y = W . rmsnorm(x), the side row, and with glu the SwiGLU of the gate_up rows;
 * bench: time per call on rotating weight copies (> L2) */
static void test_gemv_norm(int N, int K, bool glu, bool bench, double cbw)
{
    std::vector<uint16_t> w((size_t)N * K), g(K);
    std::vector<float> x(K), y(N), side(K), act(N / 2 + 1);
    for (auto &v : w)
        v = to_bf16(frand());
    for (auto &v : g)
        v = to_bf16(frand() + 1.5f);
    for (auto &v : x)
        v = frand() * 3.0f;
    uint16_t *dw = dev_copy(w), *dg = dev_copy(g);
    float *dx = dev_copy(x), *dy = dev_copy(y), *ds = dev_copy(side), *da = dev_copy(act);
    const float eps = 1e-6f;
    const int ff = glu ? N / 2 : 0;
    CK((cudaError_t)cuda_launch_gemv_norm(0, dy, dx, dw, NULL, QK_BF16, 0, N, K, 0, dg, QK_BF16, eps, ds,
                                          glu ? da : NULL, ff));
    CK(cudaMemcpy(y.data(), dy, y.size() * 4, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(side.data(), ds, side.size() * 4, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(act.data(), da, act.size() * 4, cudaMemcpyDeviceToHost));
    double ss = 0;
    for (int k = 0; k < K; k++)
        ss += (double)x[k] * x[k];
    double inv = 1.0 / sqrt(ss / K + eps);
    std::vector<double> xn(K), yr(N);
    double num = 0, den = 0, snum = 0, sden = 0, anum = 0, aden = 0;
    for (int k = 0; k < K; k++) {
        xn[k] = from_bf16(g[k]) * (x[k] * inv);
        snum += (xn[k] - side[k]) * (xn[k] - side[k]);
        sden += xn[k] * xn[k];
    }
    for (int n = 0; n < N; n++) {
        double r = 0;
        for (int k = 0; k < K; k++)
            r += xn[k] * from_bf16(w[(size_t)n * K + k]);
        yr[n] = r;
        num += (r - y[n]) * (r - y[n]);
        den += r * r;
    }
    for (int i = 0; i < ff; i++) {
        double a = yr[i] / (1.0 + exp(-yr[i])) * yr[ff + i];
        anum += (a - act[i]) * (a - act[i]);
        aden += a * a;
    }
    char buf[96];
    snprintf(buf, sizeof buf, "gemv_norm%s N=%d K=%d y", glu ? "+glu" : "", N, K);
    check(buf, num / den, 1e-10);
    snprintf(buf, sizeof buf, "gemv_norm%s N=%d K=%d side", glu ? "+glu" : "", N, K);
    check(buf, snum / sden, 1e-12);
    if (glu) {
        snprintf(buf, sizeof buf, "gemv_norm+glu N=%d K=%d act", N, K);
        check(buf, anum / aden, 1e-10);
    }
    if (bench) {
        const int copies = (int)(600e6 / ((double)N * K * 2)) + 2, reps = 4 * copies;
        std::vector<uint16_t *> ws(copies);
        for (auto &p : ws) {
            CK(cudaMalloc(&p, (size_t)N * K * 2));
            CK(cudaMemset(p, 0, (size_t)N * K * 2));
        }
        cudaEvent_t e0, e1;
        cudaEventCreate(&e0);
        cudaEventCreate(&e1);
        for (int i = 0; i < copies + reps; i++) {
            if (i == copies)
                cudaEventRecord(e0);
            cuda_launch_gemv_norm(0, dy, dx, ws[i % copies], NULL, QK_BF16, 0, N, K, 0, dg, QK_BF16, eps, ds,
                                  glu ? da : NULL, ff);
        }
        cudaEventRecord(e1);
        CK(cudaEventSynchronize(e1));
        float ms;
        cudaEventElapsedTime(&ms, e0, e1);
        double t = ms * 1e-3 / reps, gbs = (double)N * K * 2 / t / 1e9;
        printf("gemv_norm%s bf16 M=1 N=%6d K=%5d  %8.2f us  %7.1f GB/s  (%.0f%% of copy)\n", glu ? "+glu" : "", N, K,
               t * 1e6, gbs, 100 * gbs / cbw);
        for (auto p : ws)
            cudaFree(p);
    }
    cudaFree(dw);
    cudaFree(dg);
    cudaFree(dx);
    cudaFree(dy);
    cudaFree(ds);
    cudaFree(da);
}

static void test_gemv(int M, int N, int K)
{
    std::vector<uint16_t> w((size_t)N * K);
    std::vector<float> x((size_t)M * K), y((size_t)M * N);
    for (auto &v : w)
        v = to_bf16(frand());
    for (auto &v : x)
        v = frand();
    uint16_t *dw = dev_copy(w);
    float *dx = dev_copy(x), *dy = dev_copy(y);
    CK((cudaError_t)cuda_launch_gemv(0, dy, dx, dw, NULL, QK_BF16, 0, M, N, K, K, N, 0, NULL, 0));
    CK(cudaMemcpy(y.data(), dy, y.size() * 4, cudaMemcpyDeviceToHost));
    double num = 0, den = 0;
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double r = 0;
            for (int k = 0; k < K; k++)
                r += (double)x[(size_t)m * K + k] * from_bf16(w[(size_t)n * K + k]);
            num += (r - y[(size_t)m * N + n]) * (r - y[(size_t)m * N + n]);
            den += r * r;
        }
    char buf[96];
    snprintf(buf, sizeof buf, "gemv bf16 M=%d N=%d K=%d", M, N, K);
    check(buf, num / den, 1e-10);
    cudaFree(dw);
    cudaFree(dx);
    cudaFree(dy);
}

static double copy_bw(void)
{
    size_t n = 1ull << 30;
    void *a, *b;
    CK(cudaMalloc(&a, n));
    CK(cudaMalloc(&b, n));
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    CK(cudaMemcpy(b, a, n, cudaMemcpyDeviceToDevice));
    cudaEventRecord(e0);
    for (int i = 0; i < 10; i++)
        cudaMemcpyAsync(b, a, n, cudaMemcpyDeviceToDevice);
    cudaEventRecord(e1);
    CK(cudaEventSynchronize(e1));
    float ms;
    cudaEventElapsedTime(&ms, e0, e1);
    cudaFree(a);
    cudaFree(b);
    return 2.0 * n * 10 / (ms * 1e-3) / 1e9;
}

static void bench_gemv(int M, int N, int K, double cbw, bool fused = false)
{
    const int copies = (int)(600e6 / ((double)N * K * 2)) + 2;   /* > L2 */
    std::vector<uint16_t *> ws(copies);
    for (auto &p : ws) {
        CK(cudaMalloc(&p, (size_t)N * K * 2));
        CK(cudaMemset(p, 0, (size_t)N * K * 2));
    }
    float *dx, *dy;
    CK(cudaMalloc(&dx, (size_t)M * K * 4));
    CK(cudaMemset(dx, 0, (size_t)M * K * 4));
    CK(cudaMalloc(&dy, (size_t)M * N * 4));
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    int reps = 4 * copies;
    auto go = [&](int i) {
        if (fused)
            cuda_launch_gemv_fused(0, 0, dy, dx, ws[i], NULL, QK_BF16, 0, M, N, K, K, N, 0, NULL, 0, 0.0f, NULL, 0);
        else
            cuda_launch_gemv(0, dy, dx, ws[i], NULL, QK_BF16, 0, M, N, K, K, N, 0, NULL, 0);
    };
    for (int i = 0; i < copies; i++)
        go(i);
    cudaEventRecord(e0);
    for (int i = 0; i < reps; i++)
        go(i % copies);
    cudaEventRecord(e1);
    CK(cudaEventSynchronize(e1));
    float ms;
    cudaEventElapsedTime(&ms, e0, e1);
    double t = ms * 1e-3 / reps, gbs = (double)N * K * 2 / t / 1e9;
    printf("gemv%s bf16 M=%d N=%6d K=%5d  %8.2f us  %7.1f GB/s  (%.0f%% of copy)\n",
           fused ? "(fx)" : qk_gemv_variant ? (const char *[]){"", "(p8)", "(p16)", "(p8r2)", "(p4r4)"}[qk_gemv_variant] : "",
           M, N, K, t * 1e6, gbs,
           100 * gbs / cbw);
    if (M > 1) {   /* the cuBLAS alternative at this M (bf16 x, f32 out) */
        static cublasHandle_t hb;
        if (!hb)
            cublasCreate(&hb);
        const float al = 1.0f, be = 0.0f;
        void *xb;
        CK(cudaMalloc(&xb, (size_t)M * K * 2));
        CK(cudaMemset(xb, 0, (size_t)M * K * 2));
        for (int i = 0; i < copies; i++)
            cublasGemmEx(hb, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &al, ws[i], CUDA_R_16BF, K, xb, CUDA_R_16BF, K, &be, dy,
                         CUDA_R_32F, N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
        cudaEventRecord(e0);
        for (int i = 0; i < reps; i++)
            cublasGemmEx(hb, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &al, ws[i % copies], CUDA_R_16BF, K, xb, CUDA_R_16BF, K,
                         &be, dy, CUDA_R_32F, N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
        cudaEventRecord(e1);
        CK(cudaEventSynchronize(e1));
        cudaEventElapsedTime(&ms, e0, e1);
        t = ms * 1e-3 / reps;
        printf("  cublas   M=%d N=%6d K=%5d  %8.2f us  %7.1f GB/s\n", M, N, K, t * 1e6, (double)N * K * 2 / t / 1e9);
        cudaFree(xb);
    }
    for (auto p : ws)
        cudaFree(p);
    cudaFree(dx);
    cudaFree(dy);
}

/* ---- attention: nseq sequences of the same shape, bf16 (or FP8 E4M3) paged KV, shuffled blocks ---- */
struct attn_case {
    int ctx, qlen, H, KVH, D, bs, nseq = 1;
    int kvt = QK_BF16;   /* QK_F8: an FP8 E4M3 cache (tc decode, mma.sync prompt kernel) */
};

/* host FP8 E4M3: CUDA's own conversion (round to nearest even, saturating), and the exact value of a byte */
static uint8_t to_f8(float f) { return (uint8_t)__nv_cvt_float_to_fp8(f, __NV_SATFINITE, __NV_E4M3); }
static float from_f8(uint8_t b)
{
    const int e = (b >> 3) & 15, m = b & 7;
    float v = e == 15 && m == 7 ? NAN : e == 0 ? (float)m / 512.0f : ldexpf(1.0f + (float)m / 8.0f, e - 7);
    return b & 0x80 ? -v : v;
}

typedef int (*prefill_fn)(qr_cuda_stream, const struct qr_cuda_attn *);
template <int FL>
static int tma_fl(qr_cuda_stream st, const struct qr_cuda_attn *a)
{
    return cuda_launch_attn_prefill_tma_fl(st, a, FL);
}
static const struct {
    const char *name;
    prefill_fn fn;
} k_variants[] = {
    {"wgmma tma fl1", tma_fl<1>},
    {"wgmma tma fl2", tma_fl<2>},
    {"wgmma tma fl3", tma_fl<3>},
    {"wgmma tma fl7", tma_fl<7>},
    {"wgmma tma fl8", tma_fl<8>},
    {"wgmma tma fl9", tma_fl<9>},
    {"wgmma tma fl11", tma_fl<11>},
    {"wgmma tma fl128", tma_fl<128>},
    {"wgmma tma fl129", tma_fl<129>},
    {"wgmma tma fl137", tma_fl<137>},
    {"wgmma tma fl256", tma_fl<256>},
    {"wgmma tma fl257", tma_fl<257>},
    {"wgmma tma fl385", tma_fl<385>},
    {"timing tma fl320", tma_fl<320>},   /* 256 without loads past the first 3 tiles */
    {"wgmma tma fl512", tma_fl<512>},
    {"wgmma tma fl513", tma_fl<513>},
    {"wgmma tma fl641", tma_fl<641>},
    {"wgmma tma fl1024", tma_fl<1024>},   /* the last warp out of a stage refills it */
    {"wgmma tma fl1025", tma_fl<1025>},
    {"wgmma tma fl1152", tma_fl<1152>},   /* 1024 with K and V stages on counters of their own (128) */
    {"wgmma tma fl1153", tma_fl<1153>},
    {"timing tma fl16", tma_fl<16>},   /* no softmax: timing only, wrong results (never checked) */
    {"timing tma fl32", tma_fl<32>},   /* no MMAs: timing only */
    {"timing tma fl64", tma_fl<64>},   /* no K/V loads after the first 3 tiles: timing only */
    {"timing tma fl65", tma_fl<65>},
    {"timing tma fl80", tma_fl<80>},   /* no loads, no softmax: the MMAs and their waits alone */
    {"timing tma fl18", tma_fl<18>},   /* 16 with S from two shared-memory operands */
    {"timing tma fl82", tma_fl<82>},   /* 80 with S from two shared-memory operands */
    {"BK32 HPB1", prefill_launch<__nv_bfloat16, QK_BF16, 128, 32, 1>},
    {"BK32 HPB2", prefill_launch<__nv_bfloat16, QK_BF16, 128, 32, 2>},
    {"BK64 HPB1", prefill_launch<__nv_bfloat16, QK_BF16, 128, 64, 1>},
    {"BK64 HPB2", prefill_launch<__nv_bfloat16, QK_BF16, 128, 64, 2>},
    {"BK32 HPB2 MINB2", prefill_launch<__nv_bfloat16, QK_BF16, 128, 32, 2, 2>},
    {"wgmma tma", cuda_launch_attn_prefill_tma},
    {"wgmma tma pp", cuda_launch_attn_prefill_tma_pp},
    {"wgmma serial", cuda_launch_attn_prefill_wg_serial},   /* sm_90a only (attn_prefill_wg.cu) */
    {"wgmma nomix", cuda_launch_attn_prefill_wg_nomix},
    {"wgmma 1wg", cuda_launch_attn_prefill_wg_1wg},
    {"wgmma bk64", cuda_launch_attn_prefill_wg_bk64},
    {"wgmma", cuda_launch_attn_prefill_wg},
};
#define VARIANT_WG_BK64 (N_VARIANTS - 2)
#define VARIANT_WG (N_VARIANTS - 1)
#define VARIANT_WG_SERIAL (N_VARIANTS - 5)
#define VARIANT_WG_NOMIX (N_VARIANTS - 4)
#define VARIANT_WG_1WG (N_VARIANTS - 3)
#define VARIANT_WG_TMA (N_VARIANTS - 7)
#define VARIANT_WG_TMA_PP (N_VARIANTS - 6)
#define N_VARIANTS ((int)(sizeof k_variants / sizeof k_variants[0]))

/* TCM: tc, the last split block merging; PF: the prompt kernel (where FP8 decodes go without tc) */
enum { DEC_V1 = 0, DEC_V2 = 1, DEC_TC = 2, DEC_TCM = 3, DEC_PF = 4 };
static const char *const k_dec_names[] = {"v1", "v2", "tc", "tc-lastmerge", "prompt kernel"};

static void run_attn(const attn_case &c, bool check_it, bool bench, int variant = -1, int dec = DEC_V1)
{
    const int S = c.nseq;
    int nb = (c.ctx + c.bs - 1) / c.bs, nbt = nb * S;
    std::vector<int> table(nbt > 0 ? nbt : 1);
    for (int i = 0; i < nbt; i++)
        table[i] = i;
    for (int i = nbt - 1; i > 0; i--) {
        int j = (int)((frand() * 0.5f + 0.5f) * i);
        j = j < 0 ? 0 : j > i ? i : j;
        std::swap(table[i], table[j]);
    }
    size_t kvn = (size_t)(nbt > 0 ? nbt : 1) * c.KVH * c.bs * c.D;
    const bool f8 = c.kvt == QK_F8;
    std::vector<uint16_t> kc(f8 ? 0 : kvn), vc(f8 ? 0 : kvn);
    std::vector<uint8_t> kc8(f8 ? kvn : 0), vc8(f8 ? kvn : 0);
    for (size_t i = 0; i < kvn; i++) {
        if (f8) {
            kc8[i] = to_f8(frand());
            vc8[i] = to_f8(frand());
        } else {
            kc[i] = to_bf16(frand());
            vc[i] = to_bf16(frand());
        }
    }
    auto kval = [&](size_t i) { return f8 ? from_f8(kc8[i]) : from_bf16(kc[i]); };
    auto vval = [&](size_t i) { return f8 ? from_f8(vc8[i]) : from_bf16(vc[i]); };
    int ld = c.H * c.D;
    std::vector<float> q((size_t)S * c.qlen * ld), out((size_t)S * c.qlen * ld);
    for (auto &v : q)
        v = frand() * 2.0f;
    std::vector<int> seq_lens(S, c.ctx), q_start(S + 1);
    for (int i = 0; i <= S; i++)
        q_start[i] = i * c.qlen;
    struct qr_cuda_attn a = {};
    a.out = dev_copy(out);
    a.q = dev_copy(q);
    a.k_cache = f8 ? (const void *)dev_copy(kc8) : (const void *)dev_copy(kc);
    a.v_cache = f8 ? (const void *)dev_copy(vc8) : (const void *)dev_copy(vc);
    a.block_tables = dev_copy(table);
    a.seq_lens = dev_copy(seq_lens);
    a.q_start = dev_copy(q_start);
    a.kv_dtype = c.kvt;
    a.n_tokens = S * c.qlen;
    a.n_seqs = S;
    a.n_heads = c.H;
    a.n_kv_heads = c.KVH;
    a.head_dim = c.D;
    a.block_size = c.bs;
    a.max_blocks_per_seq = nb > 0 ? nb : 1;
    a.num_blocks = nbt > 0 ? nbt : 1;
    a.ldq = a.ldo = ld;
    a.max_seq_len = c.ctx;
    a.max_q_len = c.qlen;
    a.scale = 1.0f / sqrtf((float)c.D);
    void *scr = NULL;
    int n_sm = 132;
    CK(cudaDeviceGetAttribute(&n_sm, cudaDevAttrMultiProcessorCount, 0));
    size_t s1 = cuda_attn_decode_scratch(&a, n_sm), s2 = cuda_attn_decode2_scratch(&a, n_sm),
           s3 = cuda_attn_decode_tc_scratch(&a, n_sm);
    s1 = s1 > s2 ? s1 : s2;
    s1 = s1 > s3 ? s1 : s3;
    CK(cudaMalloc(&scr, s1 + 16));
    int *cnt = NULL;
    CK(cudaMalloc(&cnt, (size_t)S * c.KVH * sizeof(int)));
    CK(cudaMemset(cnt, 0, (size_t)S * c.KVH * sizeof(int)));
    auto launch = [&]() {
        if (c.qlen == 1 && dec != DEC_PF && variant < 0)   /* a named prompt variant runs even for one token */
            return dec == DEC_TC    ? cuda_launch_attn_decode_tc(0, &a, scr, n_sm, NULL, 1)
                   : dec == DEC_TCM ? cuda_launch_attn_decode_tc(0, &a, scr, n_sm, cnt, 1)
                   : dec == DEC_V2 ? cuda_launch_attn_decode2(0, &a, scr, n_sm)
                                   : cuda_launch_attn_decode(0, &a, scr, n_sm);
        return variant >= 0 ? k_variants[variant].fn(0, &a) : cuda_launch_attn_prefill(0, &a);
    };
    CK((cudaError_t)launch());
    CK(cudaMemcpy(out.data(), a.out, out.size() * 4, cudaMemcpyDeviceToHost));
    char name[112];
    snprintf(name, sizeof name, "attn %s ctx=%d q=%d H=%d/%d D=%d bs=%d seqs=%d %s%s",
             c.qlen == 1 ? "decode" : "prefill", c.ctx, c.qlen, c.H, c.KVH, c.D, c.bs, S,
             variant >= 0 ? k_variants[variant].name : c.qlen == 1 ? k_dec_names[dec] : "", f8 ? " fp8" : "");
    if (check_it) {
        double num = 0, den = 0;
        std::vector<double> sc(c.ctx > 0 ? c.ctx : 1);
        int G = c.H / c.KVH;
        for (int sq = 0; sq < S; sq += (S > 3 ? S - 1 : 1))   /* the first and the last sequence */
            for (int i = 0; i < c.qlen; i += (c.qlen > 64 ? 7 : 1))
                for (int h = 0; h < c.H; h++) {
                    int pos = c.ctx - c.qlen + i, g = h / G;
                    const int *tb = &table[(size_t)sq * nb];
                    const float *qr = &q[((size_t)sq * c.qlen + i) * ld + h * c.D];
                    double mx = -1e300;
                    for (int k = 0; k <= pos; k++) {
                        size_t off = (((size_t)tb[k / c.bs] * c.KVH + g) * c.bs + k % c.bs) * c.D;
                        double s = 0;
                        for (int d = 0; d < c.D; d++)
                            s += (double)qr[d] * kval(off + d);
                        sc[k] = s * a.scale;
                        mx = sc[k] > mx ? sc[k] : mx;
                    }
                    double sum = 0;
                    for (int k = 0; k <= pos; k++)
                        sum += (sc[k] = exp(sc[k] - mx));
                    for (int d = 0; d < c.D; d++) {
                        double r = 0;
                        for (int k = 0; k <= pos; k++) {
                            size_t off = (((size_t)tb[k / c.bs] * c.KVH + g) * c.bs + k % c.bs) * c.D;
                            r += sc[k] * vval(off + d);
                        }
                        r /= sum;
                        double gv = out[((size_t)sq * c.qlen + i) * ld + h * c.D + d];
                        num += (r - gv) * (r - gv);
                        den += r * r;
                    }
                }
        check(name, den > 0 ? num / den : num, 1e-4);
    }
    if (bench) {
        cudaEvent_t e0, e1;
        cudaEventCreate(&e0);
        cudaEventCreate(&e1);
        int reps = 20;
        cudaEventRecord(e0);
        for (int i = 0; i < reps; i++)
            launch();
        cudaEventRecord(e1);
        CK(cudaEventSynchronize(e1));
        float ms;
        cudaEventElapsedTime(&ms, e0, e1);
        double t = ms * 1e-3 / reps;
        double flop = 4.0 * S * c.D * c.H * ((double)c.qlen * (c.ctx - c.qlen) + (double)c.qlen * (c.qlen + 1) / 2);
        double bytes = 2.0 * S * c.ctx * c.KVH * c.D * (f8 ? 1 : 2);
        printf("%-60s %9.2f us  %7.1f TFLOP/s  %7.1f GB/s (KV)\n", name, t * 1e6, flop / t / 1e12, bytes / t / 1e9);
    }
    cudaFree(a.out);
    cudaFree((void *)a.q);
    cudaFree((void *)a.k_cache);
    cudaFree((void *)a.v_cache);
    cudaFree((void *)a.block_tables);
    cudaFree((void *)a.seq_lens);
    cudaFree((void *)a.q_start);
    cudaFree(scr);
    cudaFree(cnt);
}

/* the prompt GEMMs of Qwen3-4B (cuBLAS, bf16 weights and inputs, f32 accumulate) with f32 or bf16 output:
 * TFLOP/s, the output's share of the traffic */
static void bench_prompt_gemms(int M)
{
    static cublasHandle_t hb;
    if (!hb) {
        cublasCreate(&hb);
        void *ws = NULL;
        CK(cudaMalloc(&ws, 32u << 20));
        cublasSetWorkspace(hb, ws, 32u << 20);
    }
    const int shapes[][2] = {{6144, 2560}, {2560, 4096}, {19456, 2560}, {2560, 9728}};
    const char *names[] = {"qkv", "o", "gate_up", "down"};
    for (int i = 0; i < 4; i++) {
        const int N = shapes[i][0], K = shapes[i][1];
        void *w = NULL, *x = NULL, *y = NULL;
        CK(cudaMalloc(&w, (size_t)N * K * 2));
        CK(cudaMalloc(&x, (size_t)M * K * 2));
        CK(cudaMalloc(&y, (size_t)M * N * 4));
        CK(cudaMemset(w, 0x3c, (size_t)N * K * 2));   /* small finite bf16 values */
        CK(cudaMemset(x, 0x3c, (size_t)M * K * 2));
        for (int out16 = 0; out16 <= 1; out16++) {
            const float al = 1.f, be = 0.f;
            cudaEvent_t e0, e1;
            cudaEventCreate(&e0);
            cudaEventCreate(&e1);
            cublasStatus_t bs = CUBLAS_STATUS_SUCCESS;
            for (int r = 0; r < 23; r++) {
                if (r == 3)
                    cudaEventRecord(e0);
                bs = cublasGemmEx(hb, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &al, w, CUDA_R_16BF, K, x, CUDA_R_16BF, K, &be,
                                  y, out16 ? CUDA_R_16BF : CUDA_R_32F, N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
            }
            cudaEventRecord(e1);
            CK(cudaEventSynchronize(e1));
            float ms = 0;
            cudaEventElapsedTime(&ms, e0, e1);
            const double t = ms / 20 * 1e-3;
            printf("  gemm %-7s M=%5d N=%5d K=%5d out %s: %8.1f us  %6.1f TFLOP/s%s\n", names[i], M, N, K,
                   out16 ? "bf16" : "f32 ", t * 1e6, 2.0 * M * N * K / t / 1e12,
                   bs == CUBLAS_STATUS_SUCCESS ? "" : "  (cuBLAS error)");
            cudaEventDestroy(e0);
            cudaEventDestroy(e1);
        }
        cudaFree(w);
        cudaFree(x);
        cudaFree(y);
    }
}

/* random bf16 in about [-1, 1] (the engine's weights are random: constant data draws less power) */
__global__ void k_fill_bf16(uint16_t *p, size_t n, uint32_t seed)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        uint32_t h = (uint32_t)i * 2654435761u ^ seed;
        h ^= h >> 15;
        h *= 2246822519u;
        h ^= h >> 13;
        const float v = ((float)(h & 0xffffu) / 32768.0f - 1.0f);
        uint32_t b;
        memcpy(&b, &v, 4);
        p[i] = (uint16_t)(b >> 16);
    }
}

/* the prompt GEMMs as the engine runs them (cublasGemmEx, CUBLAS_GEMM_DEFAULT; qkv f32 out, o_proj / down f32 out
 * accumulating (beta 1), gate_up bf16 out) against every algorithm cublasLt's heuristic offers for the same call,
 * each timed over 20 runs after 3; random bf16 data.  ext (the batch sizes of decoding, --gemm-tune-decode): also
 * the heuristic algorithms' split-K variants (backends/cuda/cuda_lt_algos.c, what QR_CUDA_GEMM_TUNE_SPLITK adds to
 * the engine's tuner), and each run timed alone after a 100 MB write that leaves none of its operands in L2 */
static void tune_gemms(int M, bool ext)
{
    static cublasHandle_t hb;
    static cublasLtHandle_t lt;
    static void *ws, *flush;
    const size_t wsz = 32u << 20, flush_n = 100u << 20;
    if (!hb) {
        cublasCreate(&hb);
        cublasLtCreate(&lt);
        CK(cudaMalloc(&ws, wsz));
        CK(cudaMalloc(&flush, flush_n));
        cublasSetWorkspace(hb, ws, wsz);
    }
    const int shapes[][3] = {{6144, 2560, 0}, {2560, 4096, 1}, {19456, 2560, 2}, {2560, 9728, 1}};
    const char *names[] = {"qkv", "o", "gate_up", "down"};
    for (int i = 0; i < 4; i++) {
        const int N = shapes[i][0], K = shapes[i][1], kind = shapes[i][2];   /* 0 f32, 1 f32 beta 1, 2 bf16 */
        const cudaDataType_t ot = kind == 2 ? CUDA_R_16BF : CUDA_R_32F;
        uint16_t *w = NULL, *x = NULL;
        void *y = NULL;
        CK(cudaMalloc(&w, (size_t)N * K * 2));
        CK(cudaMalloc(&x, (size_t)M * K * 2));
        CK(cudaMalloc(&y, (size_t)M * N * 4));
        k_fill_bf16<<<1024, 256>>>(w, (size_t)N * K, 17u + i);
        k_fill_bf16<<<1024, 256>>>(x, (size_t)M * K, 99u + i);
        CK(cudaMemset(y, 0, (size_t)M * N * 4));
        const float al = 1.f, be = kind == 1 ? 1.f : 0.f;
        cudaEvent_t ev[40];
        for (int e = 0; e < 40; e++)
            cudaEventCreate(&ev[e]);
        /* us per run: 20 runs after 3 (ext: each between its own events, after the flush) */
        auto time_it = [&](auto &&call) {
            for (int r = 0; r < 3; r++)
                if (!call())
                    return -1.0;
            if (!ext)
                cudaEventRecord(ev[0]);
            for (int r = 0; r < 20; r++) {
                if (ext) {
                    cudaMemsetAsync(flush, r, flush_n);
                    cudaEventRecord(ev[2 * r]);
                }
                if (!call())
                    return -1.0;
                if (ext)
                    cudaEventRecord(ev[2 * r + 1]);
            }
            if (!ext)
                cudaEventRecord(ev[1]);
            CK(cudaEventSynchronize(ext ? ev[39] : ev[1]));
            double us = 0;
            for (int r = 0; r < (ext ? 20 : 1); r++) {
                float ms = 0;
                cudaEventElapsedTime(&ms, ev[2 * r], ev[2 * r + 1]);
                us += ms * 1e3;
            }
            return us / 20;
        };
        const double tdef = time_it([&]() {
            return cublasGemmEx(hb, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &al, w, CUDA_R_16BF, K, x, CUDA_R_16BF, K, &be, y,
                                ot, N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS;
        });
        cublasLtMatmulDesc_t op;
        cublasLtMatrixLayout_t la, lb, lc;
        cublasLtMatmulPreference_t pref;
        cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
        cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
        cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta);
        cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb);
        cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, K, N, K);
        cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, K, M, K);
        cublasLtMatrixLayoutCreate(&lc, ot, N, M, N);
        cublasLtMatmulPreferenceCreate(&pref);
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsz, sizeof wsz);
        cublasLtMatmulHeuristicResult_t res[32];
        int nres = 0;
        cublasLtMatmulAlgoGetHeuristic(lt, op, la, lb, lc, lc, pref, 32, res, &nres);
        std::vector<cublasLtMatmulAlgo_t> cand;
        for (int a = 0; a < nres; a++)
            cand.push_back(res[a].algo);
        for (int a = 0; ext && a < nres; a++) {
            cublasLtMatmulAlgo_t v[16];
            const int nv = cuda_lt_splitk_variants(&res[a].algo, K, kind != 2, v, 16);
            for (int j = 0; j < nv; j++) {
                cublasLtMatmulHeuristicResult_t chk;
                if (cublasLtMatmulAlgoCheck(lt, op, la, lb, lc, lc, &v[j], &chk) == CUBLAS_STATUS_SUCCESS &&
                    chk.workspaceSize <= wsz)
                    cand.push_back(v[j]);
            }
        }
        double best[2] = {1e30, 1e30}, first = -1;
        int bi[2] = {-1, -1};
        for (size_t a = 0; a < cand.size(); a++) {
            const double t = time_it([&]() {
                return cublasLtMatmul(lt, op, &al, w, la, x, lb, &be, y, lc, y, lc, &cand[a], ws, wsz, 0) ==
                       CUBLAS_STATUS_SUCCESS;
            });
            if (a == 0)
                first = t;
            const int sk = (int)a >= nres;
            if (t > 0 && t < best[sk])
                best[sk] = t, bi[sk] = (int)a;
        }
        const double wb = (double)N * K * 2;   /* weight bytes */
        printf("  tune %-7s M=%5d N=%5d K=%5d out %s%s: GemmEx default %8.1f us (%5.1f TFLOP/s, %6.1f GB/s); Lt #0 "
               "%8.1f; best of %d: #%d %8.1f us (%5.1f TFLOP/s, %6.1f GB/s)\n",
               names[i], M, N, K, kind == 2 ? "bf16" : "f32 ", kind == 1 ? " +=" : "   ", tdef,
               2.0 * M * N * K / tdef / 1e6, wb / tdef / 1e3, first, nres, bi[0], best[0],
               2.0 * M * N * K / best[0] / 1e6, wb / best[0] / 1e3);
        for (int k = 0; k < 2 && ext; k++) {
            char desc[160];
            cuda_lt_algo_desc(bi[k] >= 0 ? &cand[bi[k]] : NULL, desc, sizeof desc);
            printf("       %s: %s\n", k ? "best split-K" : "best heuristic", desc);
        }
        if (ext)
            printf("       best of %d split-K variants: %8.1f us (%6.1f GB/s; %+.1f %% against the best heuristic)\n",
                   (int)cand.size() - nres, best[1], wb / best[1] / 1e3, 100.0 * (best[0] / best[1] - 1.0));
        cublasLtMatmulPreferenceDestroy(pref);
        cublasLtMatrixLayoutDestroy(la);
        cublasLtMatrixLayoutDestroy(lb);
        cublasLtMatrixLayoutDestroy(lc);
        cublasLtMatmulDescDestroy(op);
        for (int e = 0; e < 40; e++)
            cudaEventDestroy(ev[e]);
        cudaFree(w);
        cudaFree(x);
        cudaFree(y);
    }
}

/* the prompt RMSNorm and SwiGLU passes that write the GEMM's bf16 input (prefill_fused.cu): the 16-byte kernels must
 * give the scalar ones' bits (f32 output too); then both are timed (GB/s of the bytes each must move) */
static void bench_prefill_pass(int T, int n, bool silu)
{
    size_t nin = silu ? (size_t)T * 2 * n : (size_t)T * n;
    std::vector<float> hx(nin);
    std::vector<uint16_t> hg(nin), hw(n);
    for (size_t i = 0; i < nin; i++) {
        hx[i] = frand() * 3.0f;
        hg[i] = to_bf16(frand() * 6.0f);
    }
    for (int i = 0; i < n; i++)
        hw[i] = to_bf16(1.0f + 0.3f * frand());
    float *x, *o[2];
    uint16_t *g, *w, *oh[2];
    CK(cudaMalloc(&x, nin * 4));
    CK(cudaMalloc(&g, nin * 2));
    CK(cudaMalloc(&w, (size_t)n * 2));
    for (int v = 0; v < 2; v++) {
        CK(cudaMalloc(&o[v], (size_t)T * n * 4));
        CK(cudaMalloc(&oh[v], (size_t)T * n * 2));
        CK(cudaMemset(o[v], 0, (size_t)T * n * 4));
        CK(cudaMemset(oh[v], 0, (size_t)T * n * 2));
    }
    CK(cudaMemcpy(x, hx.data(), nin * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(g, hg.data(), nin * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(w, hw.data(), (size_t)n * 2, cudaMemcpyHostToDevice));
    auto run = [&](int v, bool with_f32) {
        float *of = with_f32 ? o[v] : NULL;
        return silu ? cuda_launch_silu16_cvt(0, of, oh[v], QK_BF16, g, T, n, 2 * n, n, v)
                    : cuda_launch_rmsnorm_cvt(0, of, oh[v], QK_BF16, x, w, QK_BF16, T, n, n, n, 1e-6f, v);
    };
    for (int v = 0; v < 2; v++)
        CK((cudaError_t)run(v, true));
    CK(cudaDeviceSynchronize());
    std::vector<float> f0((size_t)T * n), f1((size_t)T * n);
    std::vector<uint16_t> h0((size_t)T * n), h1((size_t)T * n);
    CK(cudaMemcpy(f0.data(), o[0], f0.size() * 4, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(f1.data(), o[1], f1.size() * 4, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(h0.data(), oh[0], h0.size() * 2, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(h1.data(), oh[1], h1.size() * 2, cudaMemcpyDeviceToHost));
    bool same = !memcmp(f0.data(), f1.data(), f0.size() * 4) && !memcmp(h0.data(), h1.data(), h0.size() * 2);
    bool nonzero = false;
    for (size_t i = 0; i < h0.size() && !nonzero; i++)
        nonzero = h0[i] != 0;
    if (!same || !nonzero)
        g_fail++;
    printf("%-8s T %5d n %5d: 16-byte vs scalar kernel bits %s%s\n", silu ? "SwiGLU" : "RMSNorm", T, n,
           same ? "identical" : "DIFFER (FAIL)", nonzero ? "" : ", output all zero (FAIL)");
    /* bytes a pass must move: input (f32 x or bf16 gate+up), bf16 output (no f32 output: the transient case) */
    double bytes = silu ? (double)T * n * (4 + 2) : (double)T * n * (4 + 2);
    for (int v = 0; v < 2; v++) {
        cudaEvent_t e0, e1;
        CK(cudaEventCreate(&e0));
        CK(cudaEventCreate(&e1));
        for (int i = 0; i < 3; i++)
            run(v, false);
        CK(cudaEventRecord(e0));
        const int reps = 20;
        for (int i = 0; i < reps; i++)
            run(v, false);
        CK(cudaEventRecord(e1));
        CK(cudaEventSynchronize(e1));
        float ms;
        CK(cudaEventElapsedTime(&ms, e0, e1));
        double us = ms * 1000.0 / reps;
        printf("  %-7s %9.1f us  %7.1f GB/s\n", v ? "16-byte" : "scalar", us, bytes / (us * 1e3));
        cudaEventDestroy(e0);
        cudaEventDestroy(e1);
    }
    cudaFree(x), cudaFree(g), cudaFree(w);
    for (int v = 0; v < 2; v++)
        cudaFree(o[v]), cudaFree(oh[v]);
}

/* FP8 prompts on the TMA kernel (tiles converted to f16 in shared memory) against the CPU loop: block sizes 8 / 16 /
 * 64 / 256, several sequences, a chunk after a context, 3 and 10 tiles (more than the stages), one token */
static void check_f8_tma(void)
{
    run_attn({300, 300, 32, 8, 128, 16, 1, QK_F8}, true, false, VARIANT_WG_TMA);
    run_attn({333, 100, 16, 2, 128, 8, 1, QK_F8}, true, false, VARIANT_WG_TMA);
    run_attn({1000, 65, 4, 2, 128, 16, 3, QK_F8}, true, false, VARIANT_WG_TMA);
    run_attn({2048, 512, 32, 8, 128, 64, 1, QK_F8}, true, false, VARIANT_WG_TMA);
    run_attn({700, 300, 32, 8, 128, 256, 1, QK_F8}, true, false, VARIANT_WG_TMA);
    run_attn({1200, 1200, 32, 8, 128, 64, 1, QK_F8}, true, false, VARIANT_WG_TMA);
    run_attn({257, 257, 32, 8, 128, 64, 1, QK_F8}, true, false, VARIANT_WG_TMA);
    run_attn({1, 1, 32, 8, 128, 16, 2, QK_F8}, true, false, VARIANT_WG_TMA);
}

/* a short chunk after a long context: the split-KV chunk kernel (attn_chunk.cu; its default version and the first,
 * QR_CUDA_ATTN_CHUNK_V=0) against the prompt kernel the backend would run (wgmma where available, else mma.sync), all
 * writing f32 and 16-bit (bf16) rows; checks them against each other (over all rows and the worst (token, head) row)
 * and three tokens of every sequence (first, middle, last) against the CPU loop, then times the three.  kvt: QK_BF16
 * or QK_F16; qamp: the queries' amplitude (2: flat softmax over random keys, 8: peaked; the CPU loop keeps Q in f32, the
 * kernels round it to 16 bits: score errors grow with it) */
static void lab_chunk(int ctx, int qlen, int nseq, int H, int KVH, int bs, int kvt, bool bench, float qamp = 2.0f)
{
    const int D = 128, S = nseq, nb = (ctx + bs - 1) / bs, nbt = nb * S, ld = H * D, T = S * qlen;
    std::vector<int> table(nbt);
    for (int i = 0; i < nbt; i++)
        table[i] = i;
    for (int i = nbt - 1; i > 0; i--) {
        int j = (int)((frand() * 0.5f + 0.5f) * i);
        j = j < 0 ? 0 : j > i ? i : j;
        std::swap(table[i], table[j]);
    }
    const size_t kvn = (size_t)nbt * KVH * bs * D;
    std::vector<uint16_t> kc(kvn), vc(kvn);
    auto enc = [&](float f) {
        if (kvt == QK_BF16)
            return to_bf16(f);
        __half h = __float2half(f);
        return *(uint16_t *)&h;
    };
    auto dec = [&](uint16_t u) { return kvt == QK_BF16 ? from_bf16(u) : __half2float(*(__half *)&u); };
    for (size_t i = 0; i < kvn; i++) {
        kc[i] = enc(frand());
        vc[i] = enc(frand());
    }
    std::vector<float> q((size_t)T * ld), out((size_t)T * ld, 0.0f);
    for (auto &v : q)
        v = frand() * qamp;
    std::vector<int> seq_lens(S, ctx), q_start(S + 1);
    for (int i = 0; i <= S; i++)
        q_start[i] = i * qlen;
    struct qr_cuda_attn a = {};
    a.q = dev_copy(q);
    a.k_cache = dev_copy(kc);
    a.v_cache = dev_copy(vc);
    a.block_tables = dev_copy(table);
    a.seq_lens = dev_copy(seq_lens);
    a.q_start = dev_copy(q_start);
    a.kv_dtype = kvt;
    a.n_tokens = T;
    a.n_seqs = S;
    a.n_heads = H;
    a.n_kv_heads = KVH;
    a.head_dim = D;
    a.block_size = bs;
    a.max_blocks_per_seq = nb;
    a.num_blocks = nbt;
    a.ldq = a.ldo = ld;
    a.max_seq_len = ctx;
    a.max_q_len = qlen;
    a.scale = 1.0f / sqrtf((float)D);
    a.out_h_type = QK_BF16;
    int n_sm = 132;
    CK(cudaDeviceGetAttribute(&n_sm, cudaDevAttrMultiProcessorCount, 0));
    /* runs: 0 the prompt kernel, 1 the chunk kernel (default version), 2 its first version */
    constexpr int NR = 3;
    float *of[NR];
    void *oh[NR], *scr = NULL;
    for (int k = 0; k < NR; k++) {
        CK(cudaMalloc(&of[k], out.size() * 4));
        CK(cudaMalloc(&oh[k], out.size() * 2));
        CK(cudaMemset(of[k], 0, out.size() * 4));
        CK(cudaMemset(oh[k], 0, out.size() * 2));
    }
    const size_t sb1 = cuda_attn_chunk_scratch(&a, n_sm, 1), sb0 = cuda_attn_chunk_scratch(&a, n_sm, 0);
    CK(cudaMalloc(&scr, sb1 > sb0 ? sb1 : sb0));
    const bool wg = cuda_attn_prefill_wg_available() && cuda_attn_prefill_wg_supported(D, kvt, H, KVH);
    auto launch = [&](int k) {
        struct qr_cuda_attn b = a;
        b.out = of[k];
        b.out_h = oh[k];
        if (k >= 1)
            return cuda_launch_attn_chunk(0, &b, scr, n_sm, k == 1 ? 1 : 0);
        return wg ? cuda_launch_attn_prefill_wg_variant(0, &b, QK_WG_DEFAULT) : cuda_launch_attn_prefill(0, &b);
    };
    std::vector<float> f[NR];
    std::vector<uint16_t> hh[NR];
    for (int k = 0; k < NR; k++) {
        CK((cudaError_t)launch(k));
        CK(cudaDeviceSynchronize());
        f[k].resize(out.size());
        hh[k].resize(out.size());
        CK(cudaMemcpy(f[k].data(), of[k], f[k].size() * 4, cudaMemcpyDeviceToHost));
        CK(cudaMemcpy(hh[k].data(), oh[k], hh[k].size() * 2, cudaMemcpyDeviceToHost));
    }
    char name[128];
    const struct ck_plan p1 = ck_make_plan(&a, n_sm, 1), p0 = ck_make_plan(&a, n_sm, 0);
    snprintf(name, sizeof name, "attn chunk ctx=%d q=%d H=%d/%d bs=%d seqs=%d %s%s", ctx, qlen, H, KVH, bs, S,
             kvt == QK_BF16 ? "bf16" : "f16", qamp > 4.0f ? " peaked" : "");
    char what[256];
    for (int k = 1; k < NR; k++) {
        double num = 0, den = 0, numh = 0, denh = 0, worst = 0;
        for (size_t r = 0; r < (size_t)T * H; r++) {   /* (token, head) rows of D */
            double rn = 0, rd = 0;
            for (size_t i = r * D; i < (r + 1) * D; i++) {
                const double d = (double)f[k][i] - f[0][i];
                rn += d * d;
                rd += (double)f[0][i] * f[0][i];
                const double x0 = from_bf16(hh[0][i]), x1 = from_bf16(hh[k][i]);
                numh += (x1 - x0) * (x1 - x0);
                denh += x0 * x0;
            }
            num += rn;
            den += rd;
            const double e = rd > 0 ? rn / rd : rn;
            worst = e > worst || isnan(e) ? e : worst;
        }
        const char *ver = k == 1 ? "chunk" : "chunk v0";
        snprintf(what, sizeof what, "%s: %s vs prompt kernel, f32 rows", name, ver);
        check(what, den > 0 ? num / den : num, 1e-4);
        snprintf(what, sizeof what, "%s: %s vs prompt kernel, bf16 rows", name, ver);
        check(what, denh > 0 ? numh / denh : numh, 1e-4);
        snprintf(what, sizeof what, "%s: %s vs prompt kernel, worst row", name, ver);
        check(what, worst, 1e-3);
    }
    /* the CPU loop on the first, middle and last token of every sequence, every head (causal: pos = ctx - qlen + i):
     * the middle one lies in another row group than the others where there are several */
    double num = 0, den = 0;
    std::vector<double> sc(ctx);
    const int G = H / KVH;
    for (int sq = 0; sq < S; sq++)
        for (int i : {0, qlen / 2, qlen - 1})
            for (int h = 0; h < H; h++) {
                const int pos = ctx - qlen + i, g = h / G;
                const int *tb = &table[(size_t)sq * nb];
                const float *qr = &q[((size_t)sq * qlen + i) * ld + h * D];
                double mx = -1e300;
                for (int k = 0; k <= pos; k++) {
                    const size_t off = (((size_t)tb[k / bs] * KVH + g) * bs + k % bs) * D;
                    double x = 0;
                    for (int d = 0; d < D; d++)
                        x += (double)qr[d] * dec(kc[off + d]);
                    sc[k] = x * a.scale;
                    mx = sc[k] > mx ? sc[k] : mx;
                }
                double sum = 0;
                for (int k = 0; k <= pos; k++)
                    sum += (sc[k] = exp(sc[k] - mx));
                for (int d = 0; d < D; d++) {
                    double r = 0;
                    for (int k = 0; k <= pos; k++) {
                        const size_t off = (((size_t)tb[k / bs] * KVH + g) * bs + k % bs) * D;
                        r += sc[k] * dec(vc[off + d]);
                    }
                    r /= sum;
                    const double gv = f[1][((size_t)sq * qlen + i) * ld + h * D + d];
                    num += (r - gv) * (r - gv);
                    den += r * r;
                }
            }
    snprintf(what, sizeof what, "%s: chunk vs CPU loop (first, middle, last token)", name);
    check(what, den > 0 ? num / den : num, 1e-4);
    if (bench) {
        cudaEvent_t e0, e1;
        CK(cudaEventCreate(&e0));
        CK(cudaEventCreate(&e1));
        double us[NR];
        for (int k = 0; k < NR; k++) {
            const int reps = 20;
            CK((cudaError_t)launch(k));
            CK(cudaEventRecord(e0));
            for (int r = 0; r < reps; r++)
                launch(k);
            CK(cudaEventRecord(e1));
            CK(cudaEventSynchronize(e1));
            float ms;
            CK(cudaEventElapsedTime(&ms, e0, e1));
            us[k] = ms * 1000.0 / reps;
        }
        /* rows x keys x head_dim x 4 (two MMAs of 2 flops a multiply-add), causal part of the chunk included */
        const double flops = 4.0 * S * H * D * ((double)qlen * (ctx - qlen) + 0.5 * qlen * (qlen + 1));
        printf("%-52s prompt kernel (%s) %8.1f us  chunk %8.1f us (%5.1f TFLOP/s; mt %d w %d rg %d ns %d)  x%.2f  "
               "chunk v0 %8.1f us (ns %d)\n",
               name, wg ? "wgmma" : "mma.sync", us[0], us[1], flops / us[1] * 1e-6, p1.mt, p1.w, p1.n_rg, p1.ns,
               us[0] / us[1], us[2], p0.ns);
        cudaEventDestroy(e0);
        cudaEventDestroy(e1);
    }
    for (int k = 0; k < NR; k++)
        cudaFree(of[k]), cudaFree(oh[k]);
    cudaFree(scr);
    cudaFree((void *)a.q);
    cudaFree((void *)a.k_cache);
    cudaFree((void *)a.v_cache);
    cudaFree((void *)a.block_tables);
    cudaFree((void *)a.seq_lens);
    cudaFree((void *)a.q_start);
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--attn-chunk")) {
        /* checks: q_len 2 / 5 / 33, GQA 4 and 8, F16, several sequences, 16-row blocks; past 8 m-tiles (k_attn_chunk2):
         * q_len 64 / 65 / 100 / 130 / 255 / 256, GQA 4 / 6 / 8, several row groups and sequences, peaked scores */
        lab_chunk(1000, 2, 1, 32, 8, 64, QK_BF16, false);
        lab_chunk(3000, 33, 2, 32, 8, 16, QK_BF16, false);
        lab_chunk(2000, 5, 3, 16, 2, 64, QK_F16, false);
        lab_chunk(5000, 64, 1, 32, 4, 64, QK_BF16, false);
        lab_chunk(2000, 65, 1, 24, 4, 64, QK_BF16, false);
        lab_chunk(3000, 100, 2, 32, 8, 16, QK_BF16, false);
        lab_chunk(1500, 130, 3, 16, 2, 64, QK_F16, false);
        lab_chunk(4000, 255, 1, 32, 8, 64, QK_BF16, false, 8.0f);
        lab_chunk(1300, 256, 2, 32, 8, 16, QK_BF16, false);
        lab_chunk(2500, 128, 1, 32, 8, 64, QK_F16, false, 8.0f);
        /* Qwen3-4B: 16 / 64 / 128 / 256 new tokens after 8192 and 32768 cached keys (64-row KV blocks, the engine's
         * default) */
        for (int ctx : {8192, 32768})
            for (int ql : {16, 64, 128, 256})
                lab_chunk(ctx + ql, ql, 1, 32, 8, 64, QK_BF16, true);
        lab_chunk(8192 + 16, 16, 4, 32, 8, 64, QK_BF16, true);
        lab_chunk(8192 + 64, 64, 2, 32, 8, 64, QK_BF16, true);
        return g_fail ? 1 : 0;
    }
    if (argc > 1 && !strcmp(argv[1], "--prefill")) {
        bench_prefill_pass(37, 2568, false);   /* odd token count, n % 8 == 0 */
        bench_prefill_pass(37, 1000, true);
        bench_prefill_pass(8192, 2560, false);
        bench_prefill_pass(8192, 9728, true);
        bench_prefill_pass(512, 9728, true);
        return g_fail ? 1 : 0;
    }
    bool quick = argc > 1 && !strcmp(argv[1], "--quick");
    bool attn_only = argc > 1 && !strcmp(argv[1], "--attn");
    if (argc > 1 && !strcmp(argv[1], "--gemv")) {   /* the plain one-token GEMVs of the fused path (QR_CUDA_GEMV_NW) */
        double cbw = copy_bw();
        bench_gemv(1, 2560, 4096, cbw, true);
        bench_gemv(1, 2560, 9728, cbw, true);
        bench_gemv(1, 151936, 2560, cbw, true);
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "--gemm")) {   /* the prompt GEMMs at 8192 and 512 rows */
        bench_prompt_gemms(8192);
        bench_prompt_gemms(512);
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "--gemm-tune")) {   /* cuBLAS's default against cublasLt's other algorithms */
        tune_gemms(8192, false);
        tune_gemms(512, false);
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "--gemm-tune-decode")) {   /* decode batch sizes: split-K variants, cold L2 */
        const int ms[] = {2, 8, 32, 64, 128, 256, 512};
        for (int m : ms)
            tune_gemms(m, true);
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "--gemv-ncu")) {   /* a few launches of each decode GEMV kind, for ncu */
        qk_gemv_variant = 1;
        test_gemv(1, 6144, 2560);
        qk_gemv_variant = 0;
        test_gemv(1, 6144, 2560);
        test_gemv_norm(6144, 2560, false, false, 1);
        test_gemv_norm(19456, 2560, true, false, 1);
        return g_fail ? 1 : 0;
    }
    if (argc > 1 && !strcmp(argv[1], "--attn-f8")) {   /* FP8 prompts on the TMA kernel: checks, then BF16 vs FP8 */
        if (!cuda_attn_prefill_wg_available())
            return 1;
        check_f8_tma();
        for (int kvt : {QK_BF16, QK_F8, QK_BF16, QK_F8}) {
            run_attn({8192, 8192, 32, 8, 128, 64, 1, kvt}, false, true, VARIANT_WG_TMA);
            run_attn({32768, 4096, 32, 8, 128, 64, 1, kvt}, false, true, VARIANT_WG_TMA);
        }
        return g_fail ? 1 : 0;
    }
    if (argc > 1 && !strcmp(argv[1], "--attn-tma-time")) {   /* the default TMA kernel, 8192 causal, 64-token blocks */
        if (!cuda_attn_prefill_wg_available())
            return 1;
        run_attn({8192, 8192, 32, 8, 128, 64}, false, true, VARIANT_WG_TMA);
        return g_fail ? 1 : 0;
    }
    if (argc > 2 && !strcmp(argv[1], "--attn-tma-fl")) {   /* lab variant FL of the TMA kernel: checks, then timing */
        if (!cuda_attn_prefill_wg_available())
            return 1;
        char want[32], want_t[32];
        snprintf(want, sizeof want, "wgmma tma fl%s", argv[2]);
        snprintf(want_t, sizeof want_t, "timing tma fl%s", argv[2]);
        int v = -1;
        bool timing_only = false;
        for (int i = 0; i < N_VARIANTS; i++)
            if (!strcmp(k_variants[i].name, want) || !strcmp(k_variants[i].name, want_t)) {
                v = i;
                timing_only = !strcmp(k_variants[i].name, want_t);
            }
        if (v < 0)
            return 2;
        if (!timing_only) {
            run_attn({1200, 1200, 32, 8, 128, 64}, true, false, v);
            run_attn({1000, 65, 4, 2, 128, 16, 3}, true, false, v);
            run_attn({700, 300, 32, 8, 128, 256}, true, false, v);
        }
        run_attn({8192, 8192, 32, 8, 128, 64}, false, true, v);
        return g_fail ? 1 : 0;
    }
    if (argc > 1 && !strcmp(argv[1], "--attn-ncu64")) {   /* one launch of the default TMA kernel, 64-token blocks */
        if (!cuda_attn_prefill_wg_available())
            return 1;
        run_attn({8192, 8192, 32, 8, 128, 64}, false, false, VARIANT_WG_TMA);
        return g_fail ? 1 : 0;
    }
    if (argc > 1 && !strcmp(argv[1], "--attn-ncu")) {   /* one launch of the 8192 prompt kernel, for ncu */
        bool wg = cuda_attn_prefill_wg_available();
        run_attn({8192, 8192, 32, 8, 128, 16}, false, false, wg ? VARIANT_WG : -1);
        if (wg) {
            run_attn({8192, 8192, 32, 8, 128, 16}, false, false, VARIANT_WG_BK64);
            run_attn({8192, 8192, 32, 8, 128, 16}, false, false, VARIANT_WG_1WG);
            run_attn({8192, 8192, 32, 8, 128, 16}, false, false, VARIANT_WG_NOMIX);
            run_attn({8192, 8192, 32, 8, 128, 16}, false, false, VARIANT_WG_TMA);
            run_attn({8192, 8192, 32, 8, 128, 16}, false, false, VARIANT_WG_TMA_PP);
            run_attn({8192, 8192, 32, 8, 128, 64}, false, false, VARIANT_WG_TMA);
        }
        return g_fail ? 1 : 0;
    }
    cudaDeviceProp dp;
    CK(cudaGetDeviceProperties(&dp, 0));
    printf("device: %s (cc %d.%d, %d SMs)\n", dp.name, dp.major, dp.minor, dp.multiProcessorCount);
    for (int v = 0; v <= 4; v++) {   /* every GEMV variant against the CPU loop */
        qk_gemv_variant = v;
        test_gemv(1, 777, 2560);
        test_gemv(3, 129, 4104);
        test_gemv(8, 300, 9728);
        test_gemv(2, 5, 9728);
    }
    qk_gemv_variant = 0;
    test_gemv_norm(777, 2560, false, false, 1);
    test_gemv_norm(2 * 389, 4104, true, false, 1);
    test_gemv_norm(2 * 1000, 2560, true, false, 1);
    run_attn({300, 300, 32, 8, 128, 16}, true, false);
    run_attn({333, 100, 16, 2, 128, 5}, true, false);
    run_attn({77, 13, 8, 8, 64, 16}, true, false);
    run_attn({1000, 1, 32, 8, 128, 16}, true, false);
    run_attn({130, 1, 16, 2, 64, 5}, true, false);
    for (int dec : {DEC_V2, DEC_TC}) {
        run_attn({1000, 1, 32, 8, 128, 16}, true, false, -1, dec);
        run_attn({9000, 1, 32, 8, 128, 16}, true, false, -1, dec);
        run_attn({130, 1, 16, 2, 64, 5}, true, false, -1, dec);
        run_attn({0, 1, 32, 8, 128, 16}, false, false, -1, dec);   /* empty context: must not fault */
    }
    if (cuda_attn_prefill_wg_available()) {   /* wgmma prompt kernel: odd lengths, chunk after a context, GQA 2 */
        run_attn({300, 300, 32, 8, 128, 16}, true, false, VARIANT_WG);
        run_attn({333, 100, 16, 2, 128, 5}, true, false, VARIANT_WG);
        run_attn({1000, 65, 4, 2, 128, 16, 3}, true, false, VARIANT_WG);
        run_attn({64, 64, 32, 8, 128, 16}, true, false, VARIANT_WG);
        run_attn({2048, 512, 32, 8, 128, 16}, true, false, VARIANT_WG);
        run_attn({333, 100, 16, 2, 128, 5}, true, false, VARIANT_WG_SERIAL);
        run_attn({2048, 512, 32, 8, 128, 16}, true, false, VARIANT_WG_SERIAL);
        run_attn({300, 300, 32, 8, 128, 16}, true, false, VARIANT_WG_BK64);
        run_attn({333, 100, 16, 2, 128, 5}, true, false, VARIANT_WG_BK64);
        run_attn({1000, 65, 4, 2, 128, 16, 3}, true, false, VARIANT_WG_BK64);
        run_attn({64, 64, 32, 8, 128, 16}, true, false, VARIANT_WG_BK64);
        run_attn({2048, 512, 32, 8, 128, 16}, true, false, VARIANT_WG_BK64);
        run_attn({130, 130, 32, 8, 128, 7}, true, false, VARIANT_WG_BK64);
        run_attn({300, 300, 32, 8, 128, 16}, true, false, VARIANT_WG_1WG);
        run_attn({333, 100, 16, 2, 128, 5}, true, false, VARIANT_WG_1WG);
        run_attn({1000, 65, 4, 2, 128, 16, 3}, true, false, VARIANT_WG_1WG);
        run_attn({2048, 512, 32, 8, 128, 16}, true, false, VARIANT_WG_1WG);
        run_attn({130, 130, 32, 8, 128, 7}, true, false, VARIANT_WG_1WG);
        run_attn({300, 300, 32, 8, 128, 16}, true, false, VARIANT_WG_NOMIX);
        run_attn({333, 100, 16, 2, 128, 32}, true, false, VARIANT_WG_NOMIX);
        run_attn({1000, 65, 4, 2, 128, 16, 3}, true, false, VARIANT_WG_NOMIX);
        run_attn({64, 64, 32, 8, 128, 16}, true, false, VARIANT_WG_NOMIX);
        run_attn({2048, 512, 32, 8, 128, 16}, true, false, VARIANT_WG_NOMIX);
        run_attn({130, 130, 32, 8, 128, 7}, true, false, VARIANT_WG_NOMIX);   /* not a power of two */
        /* K/V by TMA: block sizes 8 / 16 / 32 / 256 (one box per tile), several sequences, a chunk after a context,
         * more tiles than stages; 5 and 7 run the cp.async kernel */
        for (int v : {VARIANT_WG_TMA, VARIANT_WG_TMA_PP}) {
            run_attn({300, 300, 32, 8, 128, 16}, true, false, v);
            run_attn({333, 100, 16, 2, 128, 8}, true, false, v);
            run_attn({1000, 65, 4, 2, 128, 16, 3}, true, false, v);
            run_attn({64, 64, 32, 8, 128, 16}, true, false, v);
            run_attn({2048, 512, 32, 8, 128, 32}, true, false, v);
            run_attn({700, 300, 32, 8, 128, 256}, true, false, v);
            run_attn({130, 130, 32, 8, 128, 7}, true, false, v);
            run_attn({1200, 1200, 32, 8, 128, 16}, true, false, v);
            run_attn({1, 1, 32, 8, 128, 16, 2}, true, false, v);
        }
    } else {
        printf("wgmma prompt kernel: not available on this device/build\n");
    }
    /* tc: GQA 1 / 7 / 16, head_dim 64, odd block sizes, several sequences (direct and split writes) */
    for (int dec : {DEC_TC, DEC_TCM}) {
        run_attn({333, 1, 8, 8, 128, 7}, true, false, -1, dec);
        run_attn({1, 1, 28, 4, 128, 16}, true, false, -1, dec);
        run_attn({2049, 1, 28, 4, 128, 16}, true, false, -1, dec);
        run_attn({517, 1, 32, 2, 64, 16}, true, false, -1, dec);
        run_attn({700, 1, 32, 8, 128, 16, 40}, true, false, -1, dec);
        run_attn({95, 1, 32, 8, 128, 16, 300}, true, false, -1, dec);
        run_attn({9000, 1, 32, 8, 128, 16}, true, false, -1, dec);
    }
    /* FP8 E4M3 KV: tc decode (1-byte tiles, fragments built in registers) with the same shapes, and the mma.sync
     * prompt kernel (tiles converted to f16 in shared memory): odd lengths and block sizes, a chunk after a context */
    for (int dec : {DEC_TC, DEC_TCM}) {
        run_attn({333, 1, 8, 8, 128, 7, 1, QK_F8}, true, false, -1, dec);
        run_attn({1, 1, 28, 4, 128, 16, 1, QK_F8}, true, false, -1, dec);
        run_attn({2049, 1, 28, 4, 128, 16, 1, QK_F8}, true, false, -1, dec);
        run_attn({517, 1, 32, 2, 64, 16, 1, QK_F8}, true, false, -1, dec);
        run_attn({130, 1, 16, 2, 64, 5, 1, QK_F8}, true, false, -1, dec);
        run_attn({700, 1, 32, 8, 128, 16, 40, QK_F8}, true, false, -1, dec);
        run_attn({95, 1, 32, 8, 128, 16, 300, QK_F8}, true, false, -1, dec);
        run_attn({9000, 1, 32, 8, 128, 16, 1, QK_F8}, true, false, -1, dec);
        run_attn({0, 1, 32, 8, 128, 16, 1, QK_F8}, false, false, -1, dec);   /* empty context: must not fault */
    }
    run_attn({300, 300, 32, 8, 128, 16, 1, QK_F8}, true, false);
    run_attn({333, 100, 16, 2, 128, 5, 1, QK_F8}, true, false);
    run_attn({77, 13, 8, 8, 64, 16, 1, QK_F8}, true, false);
    run_attn({1000, 65, 4, 2, 128, 16, 3, QK_F8}, true, false);
    run_attn({2048, 512, 32, 8, 128, 64, 1, QK_F8}, true, false);
    run_attn({1000, 1, 32, 8, 128, 16, 2, QK_F8}, true, false, -1, DEC_PF);   /* FP8 decodes without tc */
    if (cuda_attn_prefill_wg_available()) {
        check_f8_tma();
    }
    if (attn_only) {   /* decode attention timings (single sequence and batched) and the 8192 prompt */
        for (int ctx : {512, 8192, 32768, 131072})
            for (int dec : {DEC_V2, DEC_TC, DEC_TCM})
                run_attn({ctx, 1, 32, 8, 128, 16}, false, true, -1, dec);
        for (int dec : {DEC_V2, DEC_TC}) {
            run_attn({1536, 1, 32, 8, 128, 16, 128}, false, true, -1, dec);
            run_attn({1024, 1, 32, 8, 128, 16, 256}, false, true, -1, dec);
        }
        /* FP8 E4M3 KV on the tc kernel, the same shapes as the BF16 runs above (half the bytes per key; GB/s counts
         * the bytes read), and 256 sequences of 1536 in the engine's default 64-token blocks, BF16 and FP8 */
        for (int ctx : {512, 8192, 32768, 131072})
            for (int dec : {DEC_TC, DEC_TCM})
                run_attn({ctx, 1, 32, 8, 128, 16, 1, QK_F8}, false, true, -1, dec);
        run_attn({1536, 1, 32, 8, 128, 16, 128, QK_F8}, false, true, -1, DEC_TC);
        run_attn({1024, 1, 32, 8, 128, 16, 256, QK_F8}, false, true, -1, DEC_TC);
        for (int kvt : {QK_BF16, QK_F8})
            run_attn({1536, 1, 32, 8, 128, 64, 256, kvt}, false, true, -1, DEC_TC);
        run_attn({8192, 8192, 32, 8, 128, 16}, false, true);
        run_attn({8192, 8192, 32, 8, 128, 16, 1, QK_F8}, false, true);   /* FP8 prompts: mma.sync, f16 tiles */
        if (cuda_attn_prefill_wg_available())   /* FP8 prompts on the TMA kernel, next to BF16 on it */
            for (int kvt : {QK_BF16, QK_F8}) {
                run_attn({8192, 8192, 32, 8, 128, 64, 1, kvt}, false, true, VARIANT_WG_TMA);
                run_attn({32768, 4096, 32, 8, 128, 64, 1, kvt}, false, true, VARIANT_WG_TMA);
            }
        if (cuda_attn_prefill_wg_available()) {
            run_attn({8192, 8192, 32, 8, 128, 16}, false, true, VARIANT_WG);
            run_attn({8192, 8192, 32, 8, 128, 16}, false, true, VARIANT_WG_SERIAL);
            run_attn({8192, 8192, 32, 8, 128, 16}, false, true, VARIANT_WG_BK64);
            run_attn({32768, 4096, 32, 8, 128, 16}, false, true, VARIANT_WG_BK64);
            run_attn({8192, 8192, 32, 8, 128, 16}, false, true, VARIANT_WG_1WG);
            run_attn({32768, 4096, 32, 8, 128, 16}, false, true, VARIANT_WG_1WG);
            run_attn({8192, 8192, 32, 8, 128, 16}, false, true, VARIANT_WG_NOMIX);
            run_attn({32768, 4096, 32, 8, 128, 16}, false, true, VARIANT_WG_NOMIX);
            for (int v : {VARIANT_WG_TMA, VARIANT_WG_TMA_PP}) {
                run_attn({8192, 8192, 32, 8, 128, 16}, false, true, v);
                run_attn({32768, 4096, 32, 8, 128, 16}, false, true, v);
            }
            /* larger KV blocks: TMA boxes of 64 / 128 rows instead of 16 */
            for (int bsz : {64, 128})
                for (int v : {VARIANT_WG, VARIANT_WG_TMA, VARIANT_WG_TMA_PP}) {
                    run_attn({8192, 8192, 32, 8, 128, bsz}, false, true, v);
                    run_attn({32768, 4096, 32, 8, 128, bsz}, false, true, v);
                }
            run_attn({512, 512, 32, 8, 128, 16}, false, true, VARIANT_WG);
            run_attn({32768, 4096, 32, 8, 128, 16}, false, true, VARIANT_WG);
            run_attn({32768, 4096, 32, 8, 128, 16}, false, true, 4);
        }
    }
    if (!quick && !attn_only) {
        double cbw = copy_bw();
        printf("device copy bandwidth (D2D memcpy, read+write): %.1f GB/s\n", cbw);
        test_gemv_norm(6144, 2560, false, true, cbw);
        test_gemv_norm(19456, 2560, false, true, cbw);
        test_gemv_norm(19456, 2560, true, true, cbw);
        int shapes[][2] = {{6144, 2560}, {2560, 4096}, {19456, 2560}, {2560, 9728}, {151936, 2560}};
        for (auto &s : shapes) {
            for (int v = 0; v <= 4; v++) {
                qk_gemv_variant = v;
                bench_gemv(1, s[0], s[1], cbw);
            }
            qk_gemv_variant = 0;
            bench_gemv(1, s[0], s[1], cbw, true);
        }
        for (int m : {2, 4, 8})
            for (int v = 0; v <= 4; v++) {
                qk_gemv_variant = v;
                bench_gemv(m, 19456, 2560, cbw);
            }
        qk_gemv_variant = 0;
        for (int v = 0; v < N_VARIANTS; v++) {
            if ((!strncmp(k_variants[v].name, "wgmma", 5) && !cuda_attn_prefill_wg_available()) ||
                !strncmp(k_variants[v].name, "timing", 6))
                continue;   /* the Hopper kernels (wgmma, TMA) where absent; the timing-only ones */
            run_attn({300, 300, 32, 8, 128, 16}, true, false, v);
            run_attn({512, 512, 32, 8, 128, 16}, false, true, v);
            run_attn({8192, 8192, 32, 8, 128, 16}, false, true, v);
        }
        run_attn({2048, 512, 32, 8, 128, 16}, true, true);
        for (int ctx : {512, 8192, 32768, 131072})
            for (int dec : {DEC_V1, DEC_V2, DEC_TC})
                run_attn({ctx, 1, 32, 8, 128, 16}, false, true, -1, dec);
        for (int dec : {DEC_V2, DEC_TC}) {   /* batched decode: the offline-throughput shape */
            run_attn({1536, 1, 32, 8, 128, 16, 128}, false, true, -1, dec);
            run_attn({1024, 1, 32, 8, 128, 16, 256}, false, true, -1, dec);
        }
    }
    printf("kernel_lab: %d check(s) failed\n", g_fail);
    return g_fail ? 1 : 0;
}
