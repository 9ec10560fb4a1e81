# twelfth session, call 5: the kernel lab with its one-token fix (a named prompt variant now runs for q = 1
# instead of the decode kernel), FP8 TMA checks and BF16 vs FP8 timings, bench latency BF16 / FP8 at HEAD, then
# the cuBLAS algorithm A/B and ncu of the TMA prompt kernel; graph-fusion parity and the prompt profile for the
# per-token q/k-norm kernel.  Carry as dev_s18.sh (without .gl).
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
export QRUN_COMMIT=$(cat .commit)
B=build-h100/bin; M=/tmp/q4b; O=${OUT:-/tmp}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
(timeout 100 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1) > $O/setup.txt 2>&1 &
SETUP=$!
echo "== lab --attn-f8"
timeout 60 $B/cuda_kernel_lab --attn-f8 > $O/lab_f8.txt 2>&1; echo "lab rc $?"
grep -E -i "fail|mismatch|error" $O/lab_f8.txt | head -8; grep -c " ok" $O/lab_f8.txt; grep -E " us " $O/lab_f8.txt | head -10
echo "== lab (all checks)"
timeout 100 $B/cuda_kernel_lab > $O/lab_all.txt 2>&1; echo "lab rc $?"
grep -E -i "fail|mismatch|error" $O/lab_all.txt | head -8; grep -c " ok" $O/lab_all.txt
wait $SETUP; cat $O/setup.txt
echo "== graph fusion parity (cuda; the per-token q/k-norm kernel from 64 tokens)"
timeout 60 $B/test_graph_fusion -b cuda 2>&1 | grep -E "FAIL|passed|(100|70) tokens" | tail -12
echo "== prompt profile (8192, BF16): the q/k-norm node was 183.8 us per layer (call 2)"
QR_CUDA_PROFILE=1 timeout 60 $B/qrun bench latency --backend cuda --model $M --prompt-lens 8192 --gen 4 \
    --long-run 0 2>&1 | grep -A8 "prompt-sized" | head -8
echo "== bench latency BF16 / FP8"
for kv in bf16 fp8; do
  timeout 60 $B/qrun bench latency --backend cuda --model $M --kv-dtype $kv 2>&1 | grep -E -A4 "^prompt|peak"
done
echo "== prompt GEMMs: cublasGemmEx default vs cublasLt's algorithms (random data)"
timeout 60 $B/cuda_kernel_lab --gemm-tune 2>&1 | grep -E "tune|rror"
echo "== ncu: the TMA prompt kernel, 8192 causal, 64-token blocks"
timeout 150 /usr/local/cuda/bin/ncu --set full -k regex:k_attn_prefill_tma --launch-count 1 $B/cuda_kernel_lab \
    --attn-ncu64 > $O/ncu_tma64.txt 2>&1; echo "ncu rc $?"
grep -E "Duration|Executed Ipc A|Issue Slots Busy|SM Busy|Registers Per|Achieved Occupancy|Warp Cycles Per Issued|\
Bank Conflicts|Tensor|No Eligible|Active Warps Per" $O/ncu_tma64.txt | head -30
echo "total ${SECONDS} s"
