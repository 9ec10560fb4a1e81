# ad-hoc device check of the wgmma prompt attention (attn_prefill_wg.cu) and decode on tensor cores: kernel lab
# (checks, then attention timings), parity/e2e/engine/fusion tests, latency with QR_CUDA_ATTN_WG=1/0, throughput
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
B=build-h100/bin; M=/tmp/q4b
nvidia-smi --query-gpu=name --format=csv,noheader
tools/bench/h100.sh build-h100 setup >/dev/null 2>&1 &
timeout 150 $B/cuda_kernel_lab --attn > $OUT/lab.txt 2>&1; echo "lab rc=$?"; grep -E "FAIL|failed|wgmma" $OUT/lab.txt | head; grep -E "prefill.* us " $OUT/lab.txt
wait
[ -n "${LAB_ONLY:-}" ] && exit 0
if grep -q "wgmma.*FAIL" $OUT/lab.txt; then echo "wgmma kernel failed its checks: QR_CUDA_ATTN_WG=0 below"; export QR_CUDA_ATTN_WG=0; fi
timeout 120 $B/test_backend_ops -b cuda > $OUT/ops.txt 2>&1; grep -E "FAIL|passed" $OUT/ops.txt | tail -3
timeout 120 $B/test_e2e -b cuda > $OUT/e2e.txt 2>&1; grep -E "FAIL|passed" $OUT/e2e.txt | tail -3
QRUN_TEST_BACKEND=cuda timeout 180 $B/test_engine > $OUT/engine.txt 2>&1; grep -E "FAIL|passed|seeded" $OUT/engine.txt | tail -4
timeout 60 $B/test_graph_fusion -b cuda > $OUT/fusion.txt 2>&1; grep -E "FAIL|passed" $OUT/fusion.txt | tail -3
for wg in ${QR_CUDA_ATTN_WG:-1} 0; do
  echo "== QR_CUDA_ATTN_WG=$wg"
  QR_CUDA_ATTN_WG=$wg timeout 120 $B/qrun bench latency --backend cuda --model $M --prompt-lens 512,8192 --gen 256 --long-run 0 > $OUT/lat$wg.txt 2>&1; grep -A4 "^prompt" $OUT/lat$wg.txt; grep "wgmma" $OUT/lat$wg.txt | head -1
done
timeout 100 $B/qrun bench throughput --backend cuda --model $M --num-prompts 256 --input-len 1024 --output-len 1024 > $OUT/tp.txt 2>&1; tail -3 $OUT/tp.txt
