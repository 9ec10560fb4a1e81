/* push constants of rmsnorm.comp (RMSNorm and per-head q/k norm) */
#include "pc_common.h"
QR_PC_BEGIN(qr_pc_rmsnorm)
    int n_tokens, n_heads, n, ldx, ldout;
    int x_off, out_off, w_off, wtype;
    float eps;
QR_PC_END(qr_pc_rmsnorm)
