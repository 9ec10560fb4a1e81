#version 450
// Tiled GEMM for prompts (scalar f32 path, any device):
// y[m, n] = x[m, :] . W[n, :].  64x64 tile per workgroup, 16-wide K steps
// through shared memory, 4x4 outputs per thread.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "pc/matmul.h"
#include "include/common.glsl"
layout(local_size_x = 256) in;
#include "include/mm_io.glsl"
#include "include/wload.glsl"

#define BM 64
#define BN 64
#define BK 16
shared float xt[BK][BM + 1];
shared float wt[BK][BN + 1];

void main() {
    int m0 = int(gl_WorkGroupID.y) * BM, nb = int(gl_WorkGroupID.x) * BN;
    uint tid = gl_LocalInvocationID.x;
    int tm = int(tid / 16u) * 4, tn = int(tid % 16u) * 4;
    float acc[4][4];
    [[unroll]] for (int i = 0; i < 4; i++) [[unroll]] for (int j = 0; j < 4; j++) acc[i][j] = 0.0;
    // loader: each thread loads 4 elements of each tile (64 rows x 16 k)
    int lr = int(tid / 4u), lk = int(tid % 4u) * 4;
    bool xin = m0 + lr < pc.M;
    uint xrow = xin ? x_row(m0 + lr) : 0u;
    bool win = nb + lr < pc.N;
    uint wrow = uint(pc.w_off) + uint(nb + lr) * uint(pc.K);
    for (int k0 = 0; k0 < pc.K; k0 += BK) {
        [[unroll]] for (int q = 0; q < 4; q++) {
            int k = k0 + lk + q;
            bool kin = k < pc.K;
            xt[lk + q][lr] = (xin && kin) ? xs[xrow + uint(k)] : 0.0;
            wt[lk + q][lr] = (win && kin) ? w_scalar(wrow + uint(k)) : 0.0;
        }
        barrier();
        [[unroll]] for (int kk = 0; kk < BK; kk++) {
            vec4 a = vec4(xt[kk][tm], xt[kk][tm + 1], xt[kk][tm + 2], xt[kk][tm + 3]);
            vec4 b = vec4(wt[kk][tn], wt[kk][tn + 1], wt[kk][tn + 2], wt[kk][tn + 3]);
            [[unroll]] for (int i = 0; i < 4; i++) [[unroll]] for (int j = 0; j < 4; j++) acc[i][j] += a[i] * b[j];
        }
        barrier();
    }
    [[unroll]] for (int i = 0; i < 4; i++)
        [[unroll]] for (int j = 0; j < 4; j++) {
            int m = m0 + tm + i, n = nb + tn + j;
            if (m < pc.M && n < pc.N) y_store(m, n, acc[i][j]);
        }
}
