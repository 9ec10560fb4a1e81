/* push constants of rope.comp (NeoX rotary, in place) */
#include "pc_common.h"
QR_PC_BEGIN(qr_pc_rope)
    int n_tokens, n_heads, head_dim, ld;
    int x_off, pos_off, if_off;
    float attn_factor;
QR_PC_END(qr_pc_rope)
