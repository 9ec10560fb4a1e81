# eleventh session, call 2: decode A/Bs in one call on one machine.  CUDA: the GEMV's first weight round before the
# PDL wait (QR_CUDA_GEMV_EARLY), fewer decode-attention splits at short contexts (QR_CUDA_DEC_SPLIT_KEYS), and two
# timing-only builds' switches that skip the q/k-norm+RoPE+KV kernel or the decode attention (wrong results; they
# bound what fusing them could save; not committed).  Vulkan: the decode switches of this session's shader work.
# Then a first look at the FP8 KV cache on CUDA.  Carry as dev_s18.sh.
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
export QRUN_COMMIT=$(cat .commit)
B=build-h100/bin; M=/tmp/q4b
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1
lat() {   # $1 backend, rest: env assignments
  local be=$1; shift
  printf '%-60s ' "$be $*"
  env "$@" timeout 60 $B/qrun bench latency --backend $be --model $M --prompt-lens 512 --gen 128 --long-run 0 2>&1 |
    grep -E "^512 " | awk '{print "TTFT", $3, "decode", $5, "GB/s", $6}'
}
echo "== cuda decode A/B"
for e in "X=1" "QR_CUDA_GEMV_EARLY=0" "X=1" "QR_CUDA_DEC_SPLIT_KEYS=256" "QR_CUDA_DEC_SPLIT_KEYS=1024" \
         "QR_TIMING_SKIP_QKVPOST=1" "QR_TIMING_SKIP_ATTN=1" "QR_TIMING_SKIP_QKVPOST=1 QR_TIMING_SKIP_ATTN=1"; do
  lat cuda $e
done
source /dev/stdin <<<"$(sed -n '/vkloader)/,/;;/p' tools/bench/h100.sh | sed '1d;$d')"
echo "== vulkan decode A/B"
for e in "X=1" "QR_VK_NORM_PREFETCH=0" "QR_VK_FUSE_GEMV=norm" "QR_VK_FUSE_SWIGLU=1" "QR_VK_GEMV_WG=256" \
         "QR_VK_ATTN_MERGE=1" "QR_VK_FUSE_GEMV=norm QR_VK_FUSE_SWIGLU=1 QR_VK_GEMV_WG=256 QR_VK_ATTN_MERGE=1"; do
  lat vulkan $e
done
echo "== vulkan profile, all switches on"
QR_VK_PROFILE=1 QR_VK_FUSE_GEMV=norm QR_VK_FUSE_SWIGLU=1 QR_VK_GEMV_WG=256 QR_VK_ATTN_MERGE=1 timeout 60 \
  $B/qrun bench latency --backend vulkan --model $M --prompt-lens 512 --gen 128 --long-run 0 2>&1 |
  grep -A16 "vulkan profile" | head -18
echo "== vulkan parity with all switches on"
QR_VK_FUSE_GEMV=norm QR_VK_FUSE_SWIGLU=1 QR_VK_GEMV_WG=256 QR_VK_ATTN_MERGE=1 timeout 120 $B/test_backend_ops -b vulkan 2>&1 | grep -E "FAIL|passed" | tail -3
QR_VK_FUSE_GEMV=norm QR_VK_FUSE_SWIGLU=1 QR_VK_GEMV_WG=256 QR_VK_ATTN_MERGE=1 timeout 60 $B/test_graph_fusion -b vulkan 2>&1 | grep -E "FAIL|passed" | tail -3
echo "== cuda FP8 KV first look"
timeout 60 $B/test_backend_ops -b cuda 2>&1 | grep -E "FAIL|passed" | tail -6
timeout 90 $B/test_e2e -b cuda 2>&1 | grep -E "FAIL|passed|worst|FP8" | tail -6
timeout 60 $B/qrun bench latency --backend cuda --model $M --kv-dtype fp8 2>&1 | grep -E -A4 "^prompt|KV pool|error"
