/* push constants of attn_dec.comp's PRO variants (attn_dec_h<HS>q): qr_pc_attn's fields, then those of the q/k
 * RMSNorm + RoPE + KV write folded in front of the decode attention (qk_norm_rope.comp's KV_STORE form) */
#include "pc_common.h"
QR_PC_BEGIN(qr_pc_attn_pro)
    int n_tokens, n_seqs, n_heads, n_kv_heads, head_dim;
    int block_size, mbps, num_blocks, ldq, ldo;
    int q_off, o_off, kc_off, vc_off, bt_off, sl_off, qs_off;
    int qt, hs, n_split, kvtype;
    float scale;
    int wq_off, wk_off, wqtype, wktype, pos_off, if_off, slots_off, norm;   /* norm 0: RoPE only (Qwen2) */
    float eps, attn_factor;
QR_PC_END(qr_pc_attn_pro)
