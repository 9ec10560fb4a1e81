/* push constants of qk_norm_rope.comp: per-head RMSNorm of q and k heads
 * followed by NeoX rotary, in place (fuses QK_NORM q, QK_NORM k, ROPE q, ROPE k);
 * the KV_STORE variant also writes the k heads and the v heads after them
 * (n_hk heads at x + (n_hq + n_hk) * head_dim) to the paged cache */
#include "pc_common.h"
QR_PC_BEGIN(qr_pc_qk_norm_rope)
    int n_tokens, n_hq, n_hk, head_dim, ld;
    int x_off, wq_off, wk_off, wqtype, wktype, pos_off, if_off;
    float eps, attn_factor;
    int block_size, num_blocks, kc_off, vc_off, slots_off, kvtype;   /* KV_STORE; kc/vc_off: elements of kvtype */
    int norm;                                                        /* 0: RoPE only (Qwen2: no q/k norm) */
QR_PC_END(qr_pc_qk_norm_rope)
