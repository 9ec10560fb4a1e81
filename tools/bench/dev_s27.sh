# twelfth session, call 5 (last): the kernel lab with its one-token fix (a named prompt variant now runs for q = 1
# instead of the decode kernel), FP8 TMA checks and BF16 vs FP8 timings, bench latency BF16 / FP8 at HEAD, then
# serve capacity with FP8.  Carry as dev_s18.sh (without .gl).
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
export QRUN_COMMIT=$(cat .commit)
B=build-h100/bin; M=/tmp/q4b; O=${OUT:-/tmp}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
(timeout 100 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1) > $O/setup.txt 2>&1 &
SETUP=$!
echo "== lab --attn-f8"
timeout 60 $B/cuda_kernel_lab --attn-f8 > $O/lab_f8.txt 2>&1; echo "lab rc $?"
grep -E -i "fail|mismatch|error" $O/lab_f8.txt | head -8; grep -c " ok" $O/lab_f8.txt; grep -E " us " $O/lab_f8.txt | head -10
echo "== lab (all checks)"
timeout 100 $B/cuda_kernel_lab > $O/lab_all.txt 2>&1; echo "lab rc $?"
grep -E -i "fail|mismatch|error" $O/lab_all.txt | head -8; grep -c " ok" $O/lab_all.txt
wait $SETUP; cat $O/setup.txt
echo "== bench latency BF16 / FP8"
for kv in bf16 fp8; do
  timeout 60 $B/qrun bench latency --backend cuda --model $M --kv-dtype $kv 2>&1 | grep -E -A4 "^prompt|peak"
done
echo "== serve capacity 8192/512 with FP8"
port=18123
timeout 230 $B/qrun serve --backend cuda --model $M --port $port --max-model-len 16384 --kv-dtype fp8 > $O/serve.log 2>&1 &
for i in $(seq 1 60); do curl -sf localhost:$port/health >/dev/null 2>&1 && break; sleep 1; done
timeout 200 $B/qrun bench serve --port $port --input-len 8192 --output-len 512 --find-max-concurrency --ttft-slo 1000 \
    --json-out $O/cap.json 2>&1 | grep -E "concurrency|TTFT  "
pkill -TERM -f "qrun serve" ; sleep 1
echo "total ${SECONDS} s"
