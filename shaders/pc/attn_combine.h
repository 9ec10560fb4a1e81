/* push constants of attn_combine.comp */
#include "pc_common.h"
QR_PC_BEGIN(qr_pc_attn_combine)
    int n_tokens, n_heads, head_dim, ldo, o_off, n_split;
QR_PC_END(qr_pc_attn_combine)
