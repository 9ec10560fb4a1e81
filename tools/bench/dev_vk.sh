# dev_vk.sh - sourced after dev_env.sh by the Vulkan device scripts (dev_s42.sh on): the carried Vulkan loader
# (h100.sh's vkloader stage: carry .gl) and
#   vk_gemm LABEL [VAR=VALUE ...]   qr-step-bench --gemm at M = 4096 (4 layers' weights, best of 4) in that
#                                   environment: us and TFLOP/s per prompt GEMM and a checksum of y
source /dev/stdin <<<"$(sed -n '/vkloader)/,/;;/p' tools/bench/h100.sh | sed '1d;$d')"
vk_gemm() {
  local label=$1; shift
  echo "-- $label"
  env "$@" timeout 40 $B/qr-step-bench -b vulkan --layers 4 --prompt 4096 --reps 4 --gemm 2>&1 | \
      grep -E "^gemm|rror|VK_ERROR|failed|cooperative matrix shapes|prompt GEMM on" | cut -c1-230
}
