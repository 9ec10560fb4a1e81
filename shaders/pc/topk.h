/* push constants of topk.comp: each row's k best (struct qr_topk_args) */
#include "pc_common.h"
QR_PC_BEGIN(qr_pc_topk)
    int n_rows, n, k, x_off;
    int it_off, ids_off, vals_off, pad;
QR_PC_END(qr_pc_topk)
