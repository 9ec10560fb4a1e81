/* push constants of copy.comp: dst[d_off + i] = src[s_off + i] for i < n, in 16-byte words */
#include "pc_common.h"
QR_PC_BEGIN(qr_pc_copy)
    int n, d_off, s_off;
QR_PC_END(qr_pc_copy)
