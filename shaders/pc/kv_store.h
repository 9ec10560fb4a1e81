/* push constants of kv_store.comp (paged KV write) */
#include "pc_common.h"
QR_PC_BEGIN(qr_pc_kv_store)
    int n_tokens, n_kv_heads, head_dim, ld, block_size, num_blocks;
    int k_off, v_off, kc_off, vc_off, slots_off, kvtype;   /* kc/vc_off: elements of kvtype */
QR_PC_END(qr_pc_kv_store)
