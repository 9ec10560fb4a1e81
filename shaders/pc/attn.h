/* push constants of attn.comp (paged causal attention, tiled, optional split-KV)
 * and attn_combine.comp (merges the split partials). */
#include "pc_common.h"
QR_PC_BEGIN(qr_pc_attn)
    int n_tokens, n_seqs, n_heads, n_kv_heads, head_dim;
    int block_size, mbps, num_blocks, ldq, ldo;
    int q_off, o_off, kc_off, vc_off, bt_off, sl_off, qs_off;
    int qt, hs, n_split, kvtype;    /* tokens per tile, heads per tile, KV splits */
    float scale;
QR_PC_END(qr_pc_attn)
