# twelfth session, call 6: the FP8 tile conversion with fixed per-thread offsets (27a4981): kernel-lab FP8 checks and
# BF16 vs FP8 timings, graph-fusion parity (the fixed 100-token case), op parity, e2e, TTFT FP8 / BF16.  Carry as
# dev_s18.sh (without .gl).
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
export QRUN_COMMIT=$(cat .commit)
B=build-h100/bin; M=/tmp/q4b; O=${OUT:-/tmp}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
(timeout 100 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1) > $O/setup.txt 2>&1 &
SETUP=$!
echo "== lab --attn-f8"
timeout 60 $B/cuda_kernel_lab --attn-f8 > $O/lab_f8.txt 2>&1; echo "lab rc $?"
grep -E -i "fail|mismatch|error" $O/lab_f8.txt | head -8; grep -c " ok" $O/lab_f8.txt; grep -E " us " $O/lab_f8.txt | head -8
echo "== parity"
timeout 60 $B/test_graph_fusion -b cuda 2>&1 | grep -E "FAIL|passed" | tail -5
timeout 60 $B/test_backend_ops -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
timeout 100 $B/test_e2e -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
wait $SETUP; cat $O/setup.txt
echo "== TTFT FP8 / BF16"
for e in "KV=fp8" "KV=bf16" "KV=fp8"; do
  printf '%-10s ' "$e"
  env $e sh -c 'timeout 40 '$B'/qrun bench latency --backend cuda --model '$M' --kv-dtype $KV --prompt-lens 512,8192 \
      --gen 32 --long-run 0 2>&1' | grep -E "^(512|8192) " | awk '{printf "%s: TTFT %s decode %s; ", $1, $3, $5} END {print ""}'
done
echo "total ${SECONDS} s"
