# eighth session, third call: which Vulkan decode fusion lost (the GEMV folds or the KV write), attn_cm vs attn_cm2
# at the default GEMM, the prompt profile with attn_cm, then offline throughput 1000 x 1024/1024 on CUDA.
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
B=build-h100/bin; M=/tmp/q4b
[ -f $M/model.safetensors ] || tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; [ -f $icd ] && export VK_DRIVER_FILES=$icd
timeout 60 $B/test_backend_ops -b vulkan -o attn 2>&1 | grep -E "FAIL|passed" | tail -3
for cfg in "QR_VK_FUSE_GEMV=0 QR_VK_FUSE_KV=1 QR_VK_ATTN_CM2=0" "QR_VK_FUSE_GEMV=0 QR_VK_FUSE_KV=1 QR_VK_ATTN_CM2=1"; do
  echo "== vulkan $cfg"
  env $cfg timeout 100 $B/qrun bench latency --backend vulkan --model $M --prompt-lens 512,8192 --gen 64 --long-run 0 2>&1 | grep -E -A2 "^prompt|rror"
done
echo "== vulkan prompt profile (8192, attn_cm)"
QR_VK_ATTN_CM2=0 QR_VK_PROFILE=1 timeout 60 $B/qrun bench latency --backend vulkan --model $M --prompt-lens 8192 --gen 4 --long-run 0 --warmup 0 2>&1 | grep -E "matmul_cm|attn_cm|total"
echo "== cuda throughput 1000 x 1024/1024 (defaults)"
timeout 200 $B/qrun bench throughput --backend cuda --model $M --num-prompts 1000 --input-len 1024 --output-len 1024 2>&1 | grep -E "tok/s|preempt|requests" | tail -5
