/* push constants of matmul_{gemv,gemm,cm}_<w>.comp: y[m, n0+n] (+)= x[m,:] . W[n,:] + b[n0+n] */
#include "pc_common.h"
#define QR_MM_BIAS 1
#define QR_MM_ACC 2
#define QR_MM_VEC 4      /* x and w rows are 16-byte aligned: vector loads */
#define QR_MM_IDX 8      /* x row of m is idx[idx_off + m] (logits) */
#define QR_MM_SILU 16    /* gemv: x = silu(gu[:, :K]) * gu[:, K:] (fused SwiGLU), also written to act */
#define QR_MM_NORM 32    /* gemv_fused: x = rmsnorm(x) * g, the scale applied after the sum; h = the norm output */
#define QR_MM_GLU 64     /* gemv_fused: columns n and N + n (gate, up rows of W2), act[m, n] = silu(gate) * up */
#define QR_MM_CLAMP 128  /* gemv vector path: tail loads read a clamped in-row address instead of a branch */
QR_PC_BEGIN(qr_pc_matmul)
    int M, N, K, ldx, ldy;
    int x_off, y_off, w_off, b_off;    /* elements (w: of the weight dtype) */
    int n0, btype, flags, idx_off;
    int act_off, ld_act;               /* QR_MM_SILU: where x is stored (workgroups x == 0); QR_MM_GLU: the output */
    int g_off, gtype, h_off, ld_h;     /* QR_MM_NORM: norm weight (elements of gtype), norm output rows */
    float eps;
    int w2_off;                        /* QR_MM_GLU: the up rows (W2 binding) */
QR_PC_END(qr_pc_matmul)
