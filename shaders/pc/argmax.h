/* push constants of argmax.comp.  mode 0: x -> out (one chunk per row);
 * 1: x -> partials (n_chunk chunks of QR_ARGMAX_CHUNK per row); 2: partials -> out */
#include "pc_common.h"
#define QR_ARGMAX_CHUNK 4096
QR_PC_BEGIN(qr_pc_argmax)
    int n_rows, n, x_off, out_off;
    int n_chunk, mode;
QR_PC_END(qr_pc_argmax)
