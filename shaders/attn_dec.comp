#version 450
// Paged attention for decode batches (every sequence has one query token),
// 16-bit (BF16/F16) KV, head_dim a multiple of 8 and <= 128.
// Workgroup = (token, HS query heads sharing one KV head, split of the keys):
// every K/V row is read once for all HS heads of the GQA group.  Keys are
// visited in tiles of TK; all K and V loads of a tile (16-byte words) are
// issued before any math:
//   q.k : LPK = min(16, SG) lanes per key, each holding DPT = 128/LPK dims of
//         q in registers; the dot is reduced with LPK-wide xor shuffles
//   softmax: tile max per head through shared memory (one barrier), online
//         rescaling, p to shared memory (second barrier)
//   p.V : 16 lanes x 8 dims per key, VKG = 8 key groups, acc in registers
// At the end the key groups are summed in shared memory.  With n_split > 1
// the (max, sum, unnormalised acc) partials go to attn_combine.comp (the
// layout attn.comp uses); otherwise the output is written directly.
// PRO (attn_dec_h2q / h4q, QR_VK_FUSE_ATTN): the q/k RMSNorm + RoPE + KV write of the step folded in front (below).
// PIPE (attn_dec_h4p, QR_VK_ATTN_DEC_PIPE=1): the next tile's K and V loads are issued before this tile's math
// (double-buffered registers) and carry no condition (clamped to the split's last key, zeroed by a select): same
// sums in the same order as attn_dec_h4.
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_KHR_shader_subgroup_shuffle : require
#extension GL_EXT_control_flow_attributes : require
#ifdef PRO
#include "pc/attn_pro.h"
#else
#include "pc/attn.h"
#endif
#include "include/common.glsl"
#ifdef PRO
#include "include/rope_cs.glsl"
#endif
layout(local_size_x = 128) in;
layout(constant_id = 0) const uint SG = 32;   // subgroup size, set at pipeline creation
#ifndef HS
#define HS 4                                  // query heads per workgroup (variant)
#endif
#if HS >= 8
#define TK 32u                                // keys per tile (fewer registers for 8 heads)
#else
#define TK 64u
#endif
const uint NSG = 128u / SG;                   // subgroups per workgroup
const uint LPK = SG < 16u ? SG : 16u;         // lanes per key, q.k pass
const uint DPT = 128u / LPK;                  // dims per lane, q.k pass
const uint CPL = DPT / 8u;                    // 16-byte words per lane per key
const uint KPW = 128u / LPK;                  // keys per workgroup pass
const uint KU = TK / KPW;                     // q.k passes per tile
#define VKG 8u                                // key groups, p.V pass (16 lanes x 8 dims)
#define VKU (TK / VKG)                        // keys per thread per tile, p.V pass
#define NEG_INF (-1.0 / 0.0)

layout(std430, binding = 0) writeonly buffer O { float o[]; };
#ifdef PRO
// the raw q/k/v rows of the fused qkv GEMV, and the caches written too (the new token's k and v row)
layout(std430, binding = 1) readonly buffer Q { float q[]; };
layout(std430, binding = 2) buffer KC { uvec4 kc[]; };
layout(std430, binding = 3) buffer VC { uvec4 vc[]; };
layout(std430, binding = 8) readonly buffer WQ { uint wq[]; };
layout(std430, binding = 9) readonly buffer WK { uint wk[]; };
layout(std430, binding = 10) readonly buffer PS { int pos[]; };
layout(std430, binding = 11) readonly buffer IF { float inv_freq[]; };
layout(std430, binding = 12) readonly buffer SLT { int slots[]; };
shared float sh_q[HS][128];        // the workgroup's q heads, normalized and rotated
shared float sh_kv[2][128];        // the new token's k (normalized, rotated) and v
shared float sh_nr[2][64];         // sums of squares per subgroup, two heads per pass (64 threads each, SG <= 64)
#else
layout(std430, binding = 1) readonly buffer Q { float q[]; };
layout(std430, binding = 2) readonly buffer KC { uvec4 kc[]; };
layout(std430, binding = 3) readonly buffer VC { uvec4 vc[]; };
#endif
layout(std430, binding = 4) readonly buffer BT { int bt[]; };
layout(std430, binding = 5) readonly buffer SL { int sl[]; };
layout(std430, binding = 6) readonly buffer QS { int qs[]; };
layout(std430, binding = 7) writeonly buffer PT { float part[]; };

shared float sh_m[NSG][HS];        // per-subgroup tile max
shared float sh_l[NSG][HS];        // per-subgroup softmax sums
shared float sh_p[TK][HS];         // probabilities of the tile
shared float sh_red[VKG / 2][HS][128];

void unpack8(uvec4 u, out vec4 a, out vec4 b) {
    if (pc.kvtype == QR_PC_BF16) {
        a = vec4(qr_bf16_lo(u.x), qr_bf16_hi(u.x), qr_bf16_lo(u.y), qr_bf16_hi(u.y));
        b = vec4(qr_bf16_lo(u.z), qr_bf16_hi(u.z), qr_bf16_lo(u.w), qr_bf16_hi(u.w));
    } else {
        a = vec4(unpackHalf2x16(u.x), unpackHalf2x16(u.y));
        b = vec4(unpackHalf2x16(u.z), unpackHalf2x16(u.w));
    }
}

// the K words (q.k mapping) and V words (p.V mapping) of the tile at j0 into registers; keys past k_hi read zeros.
// CLAMPED (with PIPE): the loads carry no condition (a key past k_hi reads the last key's word, then zeroed by a
// select), so every load of the tile can issue before the first returns.
#ifdef PRO
// 8 values of the new token's k (r = 0) or v (r = 1) row from dimension d, packed as the cache holds them
uvec4 kv_word(int r, uint d) {
    uvec4 u;
    [[unroll]] for (uint e = 0u; e < 4u; e++) {
        float a = sh_kv[r][d + 2u * e], b = sh_kv[r][d + 2u * e + 1u];
        u[e] = pc.kvtype == QR_PC_BF16 ? qr_f32_to_bf16(a) | (qr_f32_to_bf16(b) << 16) : packHalf2x16(vec2(a, b));
    }
    return u;
}
#endif

// jn (PRO): the new token's key, taken from sh_kv instead of the cache (-1: none in this split)
void load_tile(int j0, int k_hi, int bt_row, uint kvrow, int kvh, uint d0, uint kslot, uint vkg, uint vp, bool vdim,
               int jn, out uvec4 kr[KU][CPL], out uvec4 vr[VKU]) {
    uint hd = uint(pc.head_dim);
    [[unroll]] for (uint i = 0u; i < KU; i++) {
        int j = j0 + int(i * KPW + kslot);
        bool ok = j < k_hi;
#ifdef PIPE
        int jc = min(j, k_hi - 1);
        int blk = clamp(bt[bt_row + jc / pc.block_size], 0, pc.num_blocks - 1);
        uint base = uint(blk) * kvrow + uint(kvh * pc.block_size + jc % pc.block_size) * hd;
        [[unroll]] for (uint c = 0u; c < CPL; c++) {
            uint dd = min(d0 + 8u * c, hd - 8u);
            uvec4 w = kc[(uint(pc.kc_off) + base + dd) >> 3];
            kr[i][c] = ok && d0 + 8u * c < hd ? w : uvec4(0u);
        }
#else
        uint base = 0u;
#ifdef PRO
        bool fresh = j == jn;
#else
        const bool fresh = false;
#endif
        if (ok && !fresh) {
            int blk = clamp(bt[bt_row + j / pc.block_size], 0, pc.num_blocks - 1);
            base = uint(blk) * kvrow + uint(kvh * pc.block_size + j % pc.block_size) * hd;
        }
        [[unroll]] for (uint c = 0u; c < CPL; c++) {
            uint dd = d0 + 8u * c;
            kr[i][c] = ok && dd < hd && !fresh ? kc[(uint(pc.kc_off) + base + dd) >> 3] : uvec4(0u);
#ifdef PRO
            if (ok && dd < hd && fresh) kr[i][c] = kv_word(0, dd);
#endif
        }
#endif
    }
    [[unroll]] for (uint i = 0u; i < VKU; i++) {
        int j = j0 + int(i * VKG + vkg);
        bool ok = j < k_hi && vdim;
#ifdef PIPE
        int jc = min(j, k_hi - 1);
        int blk = clamp(bt[bt_row + jc / pc.block_size], 0, pc.num_blocks - 1);
        uint base = uint(blk) * kvrow + uint(kvh * pc.block_size + jc % pc.block_size) * hd;
        uvec4 w = vc[(uint(pc.vc_off) + base + min(vp * 8u, hd - 8u)) >> 3];
        vr[i] = ok ? w : uvec4(0u);
#else
        uint base = 0u;
#ifdef PRO
        bool fresh = j == jn;
#else
        const bool fresh = false;
#endif
        if (ok && !fresh) {
            int blk = clamp(bt[bt_row + j / pc.block_size], 0, pc.num_blocks - 1);
            base = uint(blk) * kvrow + uint(kvh * pc.block_size + j % pc.block_size) * hd;
        }
        vr[i] = ok && !fresh ? vc[(uint(pc.vc_off) + base + vp * 8u) >> 3] : uvec4(0u);
#ifdef PRO
        if (ok && fresh) vr[i] = kv_word(1, vp * 8u);
#endif
#endif
    }
}

void main() {
    uint tid = gl_LocalInvocationID.x, lane = gl_SubgroupInvocationID, w = gl_SubgroupID;
    uint hd = uint(pc.head_dim);
    int t = int(gl_WorkGroupID.x);
    int G = pc.n_heads / pc.n_kv_heads;
    int n_hsub = (G + HS - 1) / HS;
    int kvh = int(gl_WorkGroupID.y) / n_hsub;
    int hbase = kvh * G + (int(gl_WorkGroupID.y) % n_hsub) * HS;
    int hcount = min(HS, kvh * G + G - hbase);
    // the sequence of token t (usually sequence t); every thread finds it, no barrier
    int seq = -1;
    if (t < pc.n_seqs && qs[pc.qs_off + t] == t && qs[pc.qs_off + t + 1] == t + 1) seq = t;
    else
        for (int s = 0; s < pc.n_seqs; s++)
            if (qs[pc.qs_off + s] == t && qs[pc.qs_off + s + 1] == t + 1) { seq = s; break; }
    if (seq < 0) return;
    int L = sl[pc.sl_off + seq];
    int k_lo = 0, k_hi = L;
    if (pc.n_split > 1) {
        int chunk = ((L + pc.n_split - 1) / pc.n_split + int(TK) - 1) / int(TK) * int(TK);
        k_lo = min(L, int(gl_WorkGroupID.z) * chunk);
        k_hi = min(L, k_lo + chunk);
    }
    int bt_row = pc.bt_off + seq * pc.mbps;
#ifdef PRO
    // the folded q/k RMSNorm + RoPE + KV write (qk_norm_rope.comp's KV_STORE form, the same expressions and sums):
    // passes of two heads, threads 0-63 and 64-127 one head each (64 threads per head as there, so the per-subgroup
    // sums of squares are the same).  The heads: this workgroup's q heads, then the new token's k head where this
    // split holds its key (L - 1); the first head group of that split writes the token's cache row.  The rotated q
    // and k are not written back to the qkv rows (other workgroups read them raw): the host folds only where no
    // later node reads those rows (a QR_BUF_TRANSIENT buffer).
    int jn = -1;
    {
        int slot = slots[pc.slots_off + t];
        bool slot_ok = slot >= 0 && slot < pc.num_blocks * pc.block_size;
        bool own = L >= 1 && L - 1 >= k_lo && L - 1 < k_hi && slot_ok;
        bool lead = int(gl_WorkGroupID.y) % n_hsub == 0;
        int nh = hcount + (own ? 1 : 0), half_d = int(hd) / 2;
        uint u = tid / 64u, i = tid % 64u, spu = 64u / SG;   // unit (head of the pass), thread in it, subgroups per unit
        bool act = int(i) < half_d;
        uint xrow = uint(pc.q_off + t * pc.ldq);
        int ii = act ? int(i) : 0;
        vec2 cs = qr_rope_cs(pos[pc.pos_off + t], inv_freq[pc.if_off + ii], pc.attn_factor);
        for (int p0 = 0; p0 < nh; p0 += 2) {
            int e = p0 + int(u);
            bool isq = e < hcount, live = e < nh;
            uint col = isq ? uint((hbase + e) * int(hd)) : uint((pc.n_heads + kvh) * int(hd));
            uint b = xrow + col + i;
            float x1 = live && act ? q[b] : 0.0, x2 = live && act ? q[b + uint(half_d)] : 0.0;
            float ssq = subgroupAdd(x1 * x1 + x2 * x2);
            if (subgroupElect()) sh_nr[u][gl_SubgroupID % spu] = ssq;
            barrier();
            float tot = 0.0;
            for (uint k = 0u; k < spu; k++) tot += sh_nr[u][k];
            float r = 1.0 / sqrt(tot / float(pc.head_dim) + pc.eps);
            float n1 = x1, n2 = x2;
            if (pc.norm != 0) {
                float w1 = isq ? QR_LOAD_ANY(wq, uint(pc.wq_off + ii), pc.wqtype) : QR_LOAD_ANY(wk, uint(pc.wk_off + ii), pc.wktype);
                float w2 = isq ? QR_LOAD_ANY(wq, uint(pc.wq_off + ii + half_d), pc.wqtype)
                               : QR_LOAD_ANY(wk, uint(pc.wk_off + ii + half_d), pc.wktype);
                n1 = w1 * (x1 * r);
                n2 = w2 * (x2 * r);
            }
            float o1 = n1 * cs.x - n2 * cs.y, o2 = n2 * cs.x + n1 * cs.y;
            if (live && act) {
                if (isq) {
                    sh_q[e][i] = o1;
                    sh_q[e][i + uint(half_d)] = o2;
                } else {
                    sh_kv[0][i] = o1;
                    sh_kv[0][i + uint(half_d)] = o2;
                }
            }
            barrier();   // sh_nr is rewritten by the next pass
        }
        if (own) {
            uint vcol = xrow + uint((pc.n_heads + pc.n_kv_heads + kvh) * int(hd));
            if (tid < hd) sh_kv[1][tid] = q[vcol + tid];
            barrier();
            jn = L - 1;
            if (lead) {   // the cache row of the new token (kv_store's packing), k words then v words
                uint w8 = hd / 8u;
                int blk = slot / pc.block_size, off = slot % pc.block_size;
                uint ce = uint((blk * pc.n_kv_heads + kvh) * pc.block_size + off) * hd;
                if (tid < w8) kc[(uint(pc.kc_off) + ce + 8u * tid) >> 3] = kv_word(0, 8u * tid);
                else if (tid < 2u * w8) vc[(uint(pc.vc_off) + ce + 8u * (tid - w8)) >> 3] = kv_word(1, 8u * (tid - w8));
            }
        }
    }
#else
    const int jn = -1;
#endif

    // q.k mapping: lane kpart (dims kpart*DPT ..), key slot within a pass
    uint kpart = lane % LPK;
    uint kslot = w * (SG / LPK) + lane / LPK;
    uint d0 = kpart * DPT;
    vec4 qa[HS][CPL], qb[HS][CPL];
    [[unroll]] for (int h = 0; h < HS; h++)
        [[unroll]] for (uint c = 0u; c < CPL; c++) {
            uint dd = d0 + 8u * c;
            bool ok = h < hcount && dd < hd;
            uint qb0 = uint(pc.q_off + t * pc.ldq + (hbase + h) * int(hd)) + dd;
#ifdef PRO
            uint sd = ok ? dd : 0u;
            qa[h][c] = ok ? vec4(sh_q[h][sd], sh_q[h][sd + 1u], sh_q[h][sd + 2u], sh_q[h][sd + 3u]) * pc.scale : vec4(0.0);
            qb[h][c] = ok ? vec4(sh_q[h][sd + 4u], sh_q[h][sd + 5u], sh_q[h][sd + 6u], sh_q[h][sd + 7u]) * pc.scale
                          : vec4(0.0);
#else
            qa[h][c] = ok ? vec4(q[qb0], q[qb0 + 1u], q[qb0 + 2u], q[qb0 + 3u]) * pc.scale : vec4(0.0);
            qb[h][c] = ok ? vec4(q[qb0 + 4u], q[qb0 + 5u], q[qb0 + 6u], q[qb0 + 7u]) * pc.scale : vec4(0.0);
#endif
        }
    // p.V mapping: 8 dims (vp*8 ..) of keys vkg, vkg + VKG, ...
    uint vp = tid % 16u, vkg = tid / 16u;
    bool vdim = vp * 8u < hd;

    float m[HS], lsum[HS];
    vec4 acca[HS], accb[HS];
    [[unroll]] for (int h = 0; h < HS; h++) {
        m[h] = NEG_INF; lsum[h] = 0.0; acca[h] = vec4(0.0); accb[h] = vec4(0.0);
    }
    uint kvrow = uint(pc.n_kv_heads * pc.block_size) * hd;   // elements per block
#ifdef PIPE
    // the first tile's K and V words in flight before the loop; each pass issues the next tile's before its math
    uvec4 kr[KU][CPL], vr[VKU];
    if (k_lo < k_hi) load_tile(k_lo, k_hi, bt_row, kvrow, kvh, d0, kslot, vkg, vp, vdim, -1, kr, vr);
    for (int j0 = k_lo; j0 < k_hi; j0 += int(TK)) {
        uvec4 kn[KU][CPL], vn[VKU];
        bool more = j0 + int(TK) < k_hi;
        if (more) load_tile(j0 + int(TK), k_hi, bt_row, kvrow, kvh, d0, kslot, vkg, vp, vdim, -1, kn, vn);
#else
    for (int j0 = k_lo; j0 < k_hi; j0 += int(TK)) {
        // 1. every K and V word of the tile in flight
        uvec4 kr[KU][CPL], vr[VKU];
        load_tile(j0, k_hi, bt_row, kvrow, kvh, d0, kslot, vkg, vp, vdim, jn, kr, vr);
#endif
        // 2. scores, reduced over the LPK lanes of each key
        float s[KU][HS];
        float mx[HS];
        [[unroll]] for (int h = 0; h < HS; h++) mx[h] = NEG_INF;
        [[unroll]] for (uint i = 0u; i < KU; i++) {
            bool ok = j0 + int(i * KPW + kslot) < k_hi;
            vec4 ka[CPL], kb[CPL];
            [[unroll]] for (uint c = 0u; c < CPL; c++) unpack8(kr[i][c], ka[c], kb[c]);
            [[unroll]] for (int h = 0; h < HS; h++) {
                float v = 0.0;
                [[unroll]] for (uint c = 0u; c < CPL; c++) v += dot(qa[h][c], ka[c]) + dot(qb[h][c], kb[c]);
                [[unroll]] for (uint off = LPK / 2u; off > 0u; off >>= 1) v += subgroupShuffleXor(v, off);
                s[i][h] = ok ? v : NEG_INF;
                mx[h] = max(mx[h], s[i][h]);
            }
        }
        [[unroll]] for (int h = 0; h < HS; h++) {
            float sm = subgroupMax(mx[h]);
            if (lane == 0u) sh_m[w][h] = sm;
        }
        barrier();
        // 3. online softmax: the new max is the same in every thread
        float alpha[HS];
        [[unroll]] for (int h = 0; h < HS; h++) {
            float mt = NEG_INF;
            for (uint k = 0u; k < NSG; k++) mt = max(mt, sh_m[k][h]);
            float mn = max(m[h], mt);
            alpha[h] = m[h] == NEG_INF ? 0.0 : exp(m[h] - mn);
            m[h] = mn;
        }
        [[unroll]] for (int h = 0; h < HS; h++) {
            float ps = 0.0;
            [[unroll]] for (uint i = 0u; i < KU; i++) {
                float p = s[i][h] == NEG_INF ? 0.0 : exp(s[i][h] - m[h]);
                if (kpart == 0u) {
                    sh_p[i * KPW + kslot][h] = p;
                    ps += p;
                }
            }
            lsum[h] = lsum[h] * alpha[h] + subgroupAdd(ps);
        }
        barrier();
        // 4. acc = acc * alpha + p . V
        [[unroll]] for (int h = 0; h < HS; h++) {
            acca[h] *= alpha[h];
            accb[h] *= alpha[h];
        }
        [[unroll]] for (uint i = 0u; i < VKU; i++) {
            vec4 va, vb;
            unpack8(vr[i], va, vb);
            uint jt = i * VKG + vkg;
            [[unroll]] for (int h = 0; h < HS; h++) {
                float p = sh_p[jt][h];
                acca[h] += p * va;
                accb[h] += p * vb;
            }
        }
#ifdef PIPE
        if (more) {
            [[unroll]] for (uint i = 0u; i < KU; i++)
                [[unroll]] for (uint c = 0u; c < CPL; c++) kr[i][c] = kn[i][c];
            [[unroll]] for (uint i = 0u; i < VKU; i++) vr[i] = vn[i];
        }
#endif
    }
    // sums over the subgroups, accumulators over the key groups (tree in shared memory)
    if (lane == 0u) {
        [[unroll]] for (int h = 0; h < HS; h++) sh_l[w][h] = lsum[h];
    }
    [[unroll]] for (uint half_ = VKG / 2u; half_ > 0u; half_ >>= 1) {
        barrier();
        if (vkg >= half_ && vkg < 2u * half_) {
            [[unroll]] for (int h = 0; h < HS; h++)
                [[unroll]] for (uint e = 0u; e < 4u; e++) {
                    sh_red[vkg - half_][h][vp * 8u + e] = acca[h][e];
                    sh_red[vkg - half_][h][vp * 8u + 4u + e] = accb[h][e];
                }
        }
        barrier();
        if (vkg < half_) {
            [[unroll]] for (int h = 0; h < HS; h++)
                [[unroll]] for (uint e = 0u; e < 4u; e++) {
                    acca[h][e] += sh_red[vkg][h][vp * 8u + e];
                    accb[h][e] += sh_red[vkg][h][vp * 8u + 4u + e];
                }
        }
    }
    if (vkg != 0u || !vdim) return;
    [[unroll]] for (int h = 0; h < HS; h++) {
        if (h >= hcount) break;
        float l = 0.0;
        for (uint k = 0u; k < NSG; k++) l += sh_l[k][h];
        if (pc.n_split > 1) {
            uint pb = uint((t * pc.n_heads + hbase + h) * pc.n_split + int(gl_WorkGroupID.z)) * (hd + 2u);
            if (vp == 0u) { part[pb] = m[h]; part[pb + 1u] = l; }
            [[unroll]] for (uint e = 0u; e < 4u; e++) {
                part[pb + 2u + vp * 8u + e] = acca[h][e];
                part[pb + 6u + vp * 8u + e] = accb[h][e];
            }
        } else {
            float inv = l > 0.0 ? 1.0 / l : 0.0;
            uint ob = uint(pc.o_off + t * pc.ldo + (hbase + h) * int(hd)) + vp * 8u;
            [[unroll]] for (uint e = 0u; e < 4u; e++) {
                o[ob + e] = acca[h][e] * inv;
                o[ob + 4u + e] = accb[h][e] * inv;
            }
        }
    }
}
