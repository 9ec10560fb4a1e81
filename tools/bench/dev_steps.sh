# dev_steps.sh - sourced after dev_env.sh by dev_s49.sh and dev_s50.sh: one decode step at a 512-token context
# (qr-step-bench, random weights in the real shapes, no model file) in a given environment:
#   step LABEL [VAR=VALUE ...]    CUDA, 100 steps: the decode line (us per step, tok/s)
#   vstep LABEL [VAR=VALUE ...]   Vulkan with QR_VK_PROFILE=1, 50 steps: the decode line and per-shader GPU times
step() {
  local label=$1; shift
  printf -- "-- %-28s " "$label"
  env "$@" timeout 30 $B/qr-step-bench -b cuda --ctx 512 --prompt 0 --reps 100 2>&1 | grep -E "^decode|rror" | cut -c1-120
}
vstep() {
  local label=$1; shift
  echo "-- $label"
  env QR_VK_PROFILE=1 "$@" timeout 40 $B/qr-step-bench -b vulkan --ctx 512 --prompt 0 --reps 50 2>&1 | \
      grep -E "^decode|matmul_gemv|rmsnorm|attn_|silu|qk_norm|GEMV_PIPE|rror" | sed 's/qrun warn: *//' | cut -c1-120
}
