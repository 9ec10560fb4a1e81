/* push constants of topk.comp (one workgroup per row) and of topk_part / topk_merge (the split form: a chunk's best
 * k, then a merge of the candidates; topk_part.comp): each row's k best (struct qr_topk_args).  n_chunk: the split
 * form's chunks of QR_TOPK_CHUNK elements per row (unused by topk.comp). */
#include "pc_common.h"
#define QR_TOPK_CHUNK 2048       /* elements per workgroup of topk_part: 256 invocations x 8 */
#define QR_TOPK_MERGE_WG 512     /* topk_merge: invocations per workgroup ... */
#define QR_TOPK_MERGE_E 40       /* ... and candidates per invocation: up to 20480 (80 chunks at k = 256) */
QR_PC_BEGIN(qr_pc_topk)
    int n_rows, n, k, x_off;
    int it_off, ids_off, vals_off, n_chunk;
QR_PC_END(qr_pc_topk)
