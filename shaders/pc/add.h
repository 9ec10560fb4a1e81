/* push constants of add.comp: y[i] += x[i] */
#include "pc_common.h"
QR_PC_BEGIN(qr_pc_add)
    int n, y_off, x_off;
QR_PC_END(qr_pc_add)
