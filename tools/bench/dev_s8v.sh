# eighth session, second call: the Vulkan half of dev_s8.sh (the first call's loader lacked libglvnd, so no Vulkan
# device was found), then the CUDA decode-attention switches one at a time.
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
B=build-h100/bin; M=/tmp/q4b
[ -f $M/model.safetensors ] || tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1
export QR_VK_CM2=1 QR_VK_ATTN_CM2=1   # the new paths (opt-in) for the tests
echo "== vulkan"
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; [ -f $icd ] && export VK_DRIVER_FILES=$icd
timeout 100 $B/test_backend_ops -b vulkan 2>&1 | grep -E "FAIL|passed|M=(200|129|70|256) |ramp|2048:512" | tail -10
timeout 60 $B/test_graph_fusion -b vulkan 2>&1 | grep -E "FAIL|passed" | tail -4
timeout 100 $B/test_e2e -b vulkan 2>&1 | grep -E "FAIL|passed" | tail -3
for cfg in "QR_VK_FUSE_GEMV=0 QR_VK_FUSE_KV=0 QR_VK_CM2=0" "QR_VK_FUSE_GEMV=1 QR_VK_FUSE_KV=1 QR_VK_CM2=0" \
           "QR_VK_FUSE_GEMV=1 QR_VK_FUSE_KV=1 QR_VK_CM2=1 QR_VK_ATTN_CM2=1"; do
  echo "== vulkan $cfg"
  env $cfg timeout 120 $B/qrun bench latency --backend vulkan --model $M --prompt-lens 512,8192 --gen 64 --long-run 0 2>&1 | grep -E -A3 "^prompt|rror|unavail"
done
echo "== vulkan prompt profile (8192)"
QR_VK_PROFILE=1 timeout 90 $B/qrun bench latency --backend vulkan --model $M --prompt-lens 8192 --gen 4 --long-run 0 --warmup 0 2>&1 | grep -E "profile|dispatches" | head -30
for cfg in "QR_CUDA_ATTN_EARLY=1 QR_CUDA_ATTN_LASTMERGE=0" "QR_CUDA_ATTN_EARLY=0 QR_CUDA_ATTN_LASTMERGE=0"; do
  echo "== cuda $cfg"
  env $cfg timeout 100 $B/qrun bench latency --backend cuda --model $M --prompt-lens 512,8192 --gen 64 --long-run 0 2>&1 | grep -E -A3 "^prompt|rror|unavail"
done
