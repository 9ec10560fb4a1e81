# eighth session, second call: the Vulkan half of dev_s8.sh (the first call's loader lacked libglvnd, so no Vulkan
# device was found), then the CUDA decode-attention gathers before the PDL wait on and off.
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
B=build-h100/bin; M=/tmp/q4b
export QR_VK_CM2=1 QR_VK_ATTN_CM2=1   # the new paths (opt-in at the time) for the tests
S8_PART=vulkan bash tools/bench/dev_s8.sh
for cfg in "QR_CUDA_ATTN_EARLY=1 QR_CUDA_ATTN_LASTMERGE=0" "QR_CUDA_ATTN_EARLY=0 QR_CUDA_ATTN_LASTMERGE=0"; do
  echo "== cuda $cfg"
  env $cfg timeout 100 $B/qrun bench latency --backend cuda --model $M --prompt-lens 512,8192 --gen 64 --long-run 0 2>&1 | grep -E -A3 "^prompt|rror|unavail"
done
