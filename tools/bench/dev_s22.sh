# eleventh session, last call (short: the budget left after failed machine starts): the opt-in FP8 TMA prompt kernel
# (QR_CUDA_ATTN_F8_TMA=1) checked on the GPU (parity, kernel-lab checks) and TTFT(8192) with FP8 on it, FP8 on the
# mma.sync kernel (the default) and BF16 in the same call.  Carry as dev_s18.sh.
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
export QRUN_COMMIT=$(cat .commit)
B=build-h100/bin; M=/tmp/q4b
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1
echo "== parity with the FP8 TMA prompt kernel on"
QR_CUDA_ATTN_F8_TMA=1 timeout 60 $B/test_backend_ops -b cuda 2>&1 | grep -E "FAIL|passed" | tail -6

echo "== kernel lab checks (--quick)"
timeout 45 $B/cuda_kernel_lab --quick > /tmp/lab.txt 2>&1; echo "lab rc $?"
grep -E -i "fail" /tmp/lab.txt | head -8; grep -E "fp8" /tmp/lab.txt | grep -E "wgmma tma" | head -8
echo "== TTFT(8192): FP8 on the TMA kernel, FP8 on mma.sync (default), BF16"
for e in "QR_CUDA_ATTN_F8_TMA=1 KV=fp8" "KV=fp8" "KV=bf16"; do
  printf '%-32s ' "$e"
  env $e sh -c 'timeout 40 '$B'/qrun bench latency --backend cuda --model '$M' --kv-dtype $KV --prompt-lens 512,8192 \
      --gen 32 --long-run 0 2>&1' | grep -E "^(512|8192) " | awk '{printf "%s: TTFT %s decode %s; ", $1, $3, $5} END {print ""}'
done
