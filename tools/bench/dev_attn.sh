# ad-hoc device check of decode attention on tensor cores (attn_decode_tc.cu): kernel lab checks and timings,
# parity/e2e/engine/fusion tests, latency and offline throughput with it on and off; logs in $OUT
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
B=build-h100/bin; M=/tmp/q4b
tools/bench/h100.sh build-h100 setup >/dev/null 2>&1
[ -n "${SKIP_LAB:-}" ] || timeout 150 $B/cuda_kernel_lab --attn > $OUT/lab.txt 2>&1; echo "lab rc=$?"; grep -E "FAIL|failed" $OUT/lab.txt; grep -E " us " $OUT/lab.txt
timeout 120 $B/test_backend_ops -b cuda > $OUT/ops.txt 2>&1; grep -E "FAIL|passed" $OUT/ops.txt | tail -3
timeout 120 $B/test_e2e -b cuda > $OUT/e2e.txt 2>&1; grep -E "FAIL|passed" $OUT/e2e.txt | tail -3
QRUN_TEST_BACKEND=cuda timeout 180 $B/test_engine > $OUT/engine.txt 2>&1; grep -E "FAIL|passed|seeded" $OUT/engine.txt | tail -4
timeout 60 $B/test_graph_fusion -b cuda > $OUT/fusion.txt 2>&1; grep -E "FAIL|passed" $OUT/fusion.txt | tail -3
for tc in 1 0; do
  echo "== QR_CUDA_DECODE_TC=$tc"
  QR_CUDA_DECODE_TC=$tc timeout 120 $B/qrun bench latency --backend cuda --model $M --prompt-lens 512,8192 --gen 256 --long-run 0 > $OUT/lat$tc.txt 2>&1; grep -A4 "^prompt" $OUT/lat$tc.txt
done
QR_CUDA_DECODE_TC=1 timeout 100 $B/qrun bench throughput --backend cuda --model $M --num-prompts 256 --input-len 1024 --output-len 1024 > $OUT/tp.txt 2>&1; tail -4 $OUT/tp.txt
