# twelfth session, call 1: the opt-in FP8 TMA prompt kernel (QR_CUDA_ATTN_F8_TMA=1) on the GPU (parity, kernel-lab
# checks), TTFT(8192) with FP8 on it / FP8 on mma.sync / BF16 in the same call, then serve capacity with FP8 (on the
# TMA kernel if its parity passed).  Carry as dev_s18.sh.
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
export QRUN_COMMIT=$(cat .commit)
B=build-h100/bin; M=/tmp/q4b
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1
echo "== parity with the FP8 TMA prompt kernel on"
QR_CUDA_ATTN_F8_TMA=1 timeout 60 $B/test_backend_ops -b cuda > /tmp/tbo.txt 2>&1; rc=$?
grep -E "FAIL|passed" /tmp/tbo.txt | tail -6; echo "parity rc $rc"
TMA=0; [ $rc -eq 0 ] && TMA=1
echo "== kernel lab checks (--quick)"
timeout 45 $B/cuda_kernel_lab --quick > /tmp/lab.txt 2>&1; echo "lab rc $?"
grep -E -i "fail" /tmp/lab.txt | head -8; grep -E "fp8" /tmp/lab.txt | head -12
echo "== TTFT(8192): FP8 on the TMA kernel, FP8 on mma.sync (default), BF16"
for e in "QR_CUDA_ATTN_F8_TMA=1 KV=fp8" "KV=fp8" "KV=bf16"; do
  printf '%-32s ' "$e"
  env $e sh -c 'timeout 40 '$B'/qrun bench latency --backend cuda --model '$M' --kv-dtype $KV --prompt-lens 512,8192 \
      --gen 32 --long-run 0 2>&1' | grep -E "^(512|8192) " | awk '{printf "%s: TTFT %s decode %s; ", $1, $3, $5} END {print ""}'
done
echo "== serve capacity 8192/512 with FP8 (F8 TMA=$TMA)"
port=18123
QR_CUDA_ATTN_F8_TMA=$TMA timeout 230 $B/qrun serve --backend cuda --model $M --port $port --max-model-len 16384 \
    --kv-dtype fp8 > /tmp/serve.log 2>&1 &
for i in $(seq 1 60); do curl -sf localhost:$port/health >/dev/null 2>&1 && break; sleep 1; done
timeout 200 $B/qrun bench serve --port $port --input-len 8192 --output-len 512 --find-max-concurrency --ttft-slo 1000 \
    --json-out /tmp/cap.json 2>&1 | grep -E "max concurrency|TTFT  "
python3 -c "
import json;d=json.load(open('/tmp/cap.json'))
print([(r.get('concurrency'), round(r.get('mean_ttft_ms',0),1)) for r in d['trials']])" 2>&1 | tail -1
pkill -TERM -f "qrun serve" ; sleep 1
