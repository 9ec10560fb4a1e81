/* graph_views.c - which buffers a graph node reads and writes (qr_node_views), for the backends' fusers: a fused
 * kernel may leave an intermediate unwritten only where no later node reads it (QR_BUF_TRANSIENT buffers). */
#include "qrun/qr_backend.h"

int qr_node_views(const struct qr_node *n, const struct qr_view **v, bool *w) {
    int k = 0;
#define R(x) (v[k] = &(x), w[k++] = false)
#define W(x) (v[k] = &(x), w[k++] = true)
    switch (n->op) {
    case QR_OP_EMBED: W(n->a.embed.out), R(n->a.embed.table), R(n->a.embed.ids); break;
    case QR_OP_MATMUL:
        R(n->a.matmul.x), R(n->a.matmul.w), R(n->a.matmul.bias);
        if (n->a.matmul.accumulate) R(n->a.matmul.y);
        W(n->a.matmul.y);
        break;
    case QR_OP_RMSNORM:
    case QR_OP_QK_NORM: R(n->a.rmsnorm.x), R(n->a.rmsnorm.w), W(n->a.rmsnorm.out); break;
    case QR_OP_ROPE: R(n->a.rope.x), R(n->a.rope.pos), R(n->a.rope.inv_freq), W(n->a.rope.x); break;
    case QR_OP_KV_STORE:
        R(n->a.kv_store.k), R(n->a.kv_store.v), R(n->a.kv_store.slots), W(n->a.kv_store.k_cache),
            W(n->a.kv_store.v_cache);
        break;
    case QR_OP_ATTN:
        R(n->a.attn.q), R(n->a.attn.k_cache), R(n->a.attn.v_cache), R(n->a.attn.block_tables),
            R(n->a.attn.seq_lens), R(n->a.attn.q_start), W(n->a.attn.out);
        break;
    case QR_OP_SILU_MUL: R(n->a.silu_mul.gu), W(n->a.silu_mul.out); break;
    case QR_OP_ADD: R(n->a.add.y), R(n->a.add.x), W(n->a.add.y); break;
    case QR_OP_LOGITS: R(n->a.logits.x), R(n->a.logits.idx), R(n->a.logits.w), W(n->a.logits.out); break;
    case QR_OP_ARGMAX: R(n->a.argmax.x), W(n->a.argmax.out); break;
    case QR_OP_TOPK: R(n->a.topk.x), R(n->a.topk.inv_t), W(n->a.topk.ids), W(n->a.topk.vals); break;
    default: v[k] = NULL, w[k++] = false; break;   /* unknown op: counted as a read of nothing known */
    }
#undef R
#undef W
    return k;
}
