# ad-hoc device check of the default CUDA path: parity tests, kernel lab, latency, eager profile; logs in $OUT
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
B=build-h100/bin; M=/tmp/q4b
tools/bench/h100.sh build-h100 setup >/dev/null 2>&1
timeout 120 $B/test_backend_ops -b cuda > $OUT/ops.txt 2>&1; grep -E "FAIL|passed" $OUT/ops.txt | tail -3
timeout 120 $B/test_e2e -b cuda > $OUT/e2e.txt 2>&1; grep -E "FAIL|passed" $OUT/e2e.txt | tail -3
QRUN_TEST_BACKEND=cuda timeout 180 $B/test_engine > $OUT/engine.txt 2>&1; grep -E "FAIL|passed|seeded" $OUT/engine.txt | tail -4
timeout 60 $B/test_graph_fusion -b cuda > $OUT/fusion.txt 2>&1; grep -E "FAIL|passed" $OUT/fusion.txt | tail -3
timeout 120 $B/qrun bench latency --backend cuda --model $M --prompt-lens 512,8192 --gen 128 --long-run 0 > $OUT/lat.txt 2>&1; grep -A4 "^prompt" $OUT/lat.txt
QR_CUDA_PROFILE=1 timeout 120 $B/qrun bench latency --backend cuda --model $M --prompt-lens 512 --gen 32 --long-run 0 > $OUT/prof.txt 2>&1
grep -A9 "decode-sized steps: 3" $OUT/prof.txt
timeout 250 $B/cuda_kernel_lab > $OUT/lab.txt 2>&1; grep -E "FAIL|failed" $OUT/lab.txt; grep -E "gemv|decode ctx" $OUT/lab.txt | grep -v nmse
