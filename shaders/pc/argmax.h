/* push constants of argmax.comp */
#include "pc_common.h"
QR_PC_BEGIN(qr_pc_argmax)
    int n_rows, n, x_off, out_off;
QR_PC_END(qr_pc_argmax)
