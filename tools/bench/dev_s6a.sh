# sixth session, first check: fusion/parity tests, prompt profile, latency with transient intermediates skipped vs kept
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
B=build-h100/bin; M=/tmp/q4b
tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" &
timeout 100 $B/test_graph_fusion -b cuda 2>&1 | grep -E "FAIL|passed|attn" | tail -12
timeout 100 $B/test_backend_ops -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
timeout 100 $B/test_e2e -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
wait
timeout 100 $B/cuda_kernel_lab --attn > $OUT/lab.txt 2>&1; echo "lab rc=$?"; grep -E "FAIL|failed" $OUT/lab.txt | head; grep -E "prefill.* us |decode.* us " $OUT/lab.txt
QR_CUDA_PROFILE=1 timeout 120 $B/qrun bench latency --backend cuda --model $M --prompt-lens 8192 --gen 8 --long-run 0 > $OUT/prof8k.txt 2>&1
grep -A40 "cuda profile" $OUT/prof8k.txt | grep -v "^T1 " | head -45
for k in 0 1; do
  echo "== QR_CUDA_KEEP_INTERMEDIATES=$k"
  QR_CUDA_KEEP_INTERMEDIATES=$k timeout 100 $B/qrun bench latency --backend cuda --model $M --prompt-lens 512,8192 --gen 64 --long-run 0 2>&1 | grep -A3 "^prompt"
done
