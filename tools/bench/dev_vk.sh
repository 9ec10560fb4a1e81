# dev_vk.sh - sourced after dev_env.sh by the Vulkan device scripts (dev_s42.sh on): the carried Vulkan loader
# (h100.sh's vkloader stage: carry .gl) and
#   vk_gemm LABEL [VAR=VALUE ...]   qr-step-bench --gemm at M = 4096 (4 layers' weights, best of 4) in that
#                                   environment: us and TFLOP/s per prompt GEMM and a checksum of y
#   lat BACKEND LENS LABEL [VAR=VALUE ...]   qrun bench latency at those prompt lengths (--gen 64) on $M: the rows,
#                                   the copy probe and peak memory (dev_s52.sh on)
#   vrate LABEL [VAR=VALUE ...]     the unprofiled Vulkan decode step at a 512-token context (qr-step-bench, 100 steps)
#   need_model                      makes the random-weight model $M unless a warm machine still has it
source /dev/stdin <<<"$(sed -n '/vkloader)/,/;;/p' tools/bench/h100.sh | sed '1d;$d')"
vk_gemm() {
  local label=$1; shift
  echo "-- $label"
  env "$@" timeout 40 $B/qr-step-bench -b vulkan --layers 4 --prompt 4096 --reps 4 --gemm 2>&1 | \
      grep -E "^gemm|rror|VK_ERROR|failed|cooperative matrix shapes|prompt GEMM on" | cut -c1-230
}
lat() {
  local be=$1 pl=$2 label=$3; shift 3
  echo "-- $be $label"
  env "$@" timeout 90 $B/qrun bench latency --backend $be --model $M --prompt-lens $pl --gen 64 --long-run 0 2>&1 | \
      grep -E "^(512|8192) |copy bandwidth|at peak|rror" | cut -c1-200
}
vrate() {
  local label=$1; shift
  printf -- "-- %-28s " "$label"
  env "$@" timeout 40 $B/qr-step-bench -b vulkan --ctx 512 --prompt 0 --reps 100 2>&1 | grep -E "^decode|rror" | cut -c1-120
}
need_model() {
  [ -f $M/config.json ] || (timeout 100 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1)
}
