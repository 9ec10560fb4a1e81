# ad-hoc A/B of the unfused (0) vs fused (1) CUDA path on the device; full logs in $OUT
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
B=build-h100/bin; M=/tmp/q4b
tools/bench/h100.sh build-h100 setup >/dev/null 2>&1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
for exp in 0 1; do
  export QRUN_CUDA_FUSED=$exp QR_CUDA_ATTN_MINB=$((exp+1))
  
  echo "== exp=$exp tests"
  timeout 120 $B/test_backend_ops -b cuda > $OUT/ops$exp.txt 2>&1; grep -E "FAIL|passed" $OUT/ops$exp.txt | tail -3
  timeout 120 $B/test_e2e -b cuda > $OUT/e2e$exp.txt 2>&1; grep -E "FAIL|passed" $OUT/e2e$exp.txt | tail -3
  QRUN_TEST_BACKEND=cuda timeout 180 $B/test_engine > $OUT/engine$exp.txt 2>&1; grep -E "FAIL|passed" $OUT/engine$exp.txt | tail -4
  timeout 60 $B/test_graph_fusion -b cuda > $OUT/fusion$exp.txt 2>&1; grep -E "FAIL|passed" $OUT/fusion$exp.txt | tail -3
  echo "== exp=$exp latency"
  timeout 120 $B/qrun bench latency --backend cuda --model $M --prompt-lens 512,8192 --gen 128 --long-run 0 > $OUT/lat$exp.txt 2>&1; grep -A4 "^prompt" $OUT/lat$exp.txt
  QR_CUDA_PROFILE=1 timeout 120 $B/qrun bench latency --backend cuda --model $M --prompt-lens 512 --gen 32 --long-run 0 > $OUT/prof_exp$exp.txt 2>&1
done
unset QRUN_CUDA_FUSED QR_CUDA_ATTN_MINB
timeout 200 $B/cuda_kernel_lab > $OUT/lab.txt 2>&1; grep -E "gemv|fail" $OUT/lab.txt | grep -v "M=[248]" | grep -v nmse | head -30
