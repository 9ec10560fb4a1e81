/* push constants of embed_<w>.comp: out[t,:] = table[ids[t],:] for ids in [vocab_lo, vocab_hi) */
#include "pc_common.h"
QR_PC_BEGIN(qr_pc_embed)
    int n_tokens, dim, vocab;
    int vocab_lo, vocab_hi;     /* rows of the table bound in this dispatch */
    int out_off, table_off, ids_off;   /* element offsets inside the bound ranges */
QR_PC_END(qr_pc_embed)
