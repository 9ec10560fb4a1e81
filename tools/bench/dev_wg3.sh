# short device check: kernel lab (wgmma serial + pipelined checks, timings), parity, e2e, latency pipelined vs serial
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
B=build-h100/bin; M=/tmp/q4b
tools/bench/h100.sh build-h100 setup >/dev/null 2>&1 &
QR_CUDA_ATTN_WG_OVL=1 timeout 100 $B/cuda_kernel_lab --attn > $OUT/lab.txt 2>&1; echo "lab rc=$?"; grep -E "FAIL|failed" $OUT/lab.txt | head; grep -E "prefill.* us " $OUT/lab.txt
wait
timeout 100 $B/test_backend_ops -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
timeout 100 $B/test_e2e -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
for ovl in 1 0; do
  echo "== QR_CUDA_ATTN_WG_OVL=$ovl"
  QR_CUDA_ATTN_WG_OVL=$ovl timeout 100 $B/qrun bench latency --backend cuda --model $M --prompt-lens 512,8192 --gen 128 --long-run 0 2>&1 | grep -A3 "^prompt"
done
QR_CUDA_ATTN_WG_OVL=1 timeout 100 $B/test_backend_ops -b cuda -o attn 2>&1 | grep -E "FAIL|passed" | tail -3
