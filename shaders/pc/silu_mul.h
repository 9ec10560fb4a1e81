/* push constants of silu_mul.comp: out = silu(gate) * up */
#include "pc_common.h"
QR_PC_BEGIN(qr_pc_silu_mul)
    int n_tokens, n_ff, ldgu, ldout, gu_off, out_off;
QR_PC_END(qr_pc_silu_mul)
