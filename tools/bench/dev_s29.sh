# for the next session's first call: the twelfth session's head re-measured where it was not (FP8 prompts changed
# after the last throughput / 200K runs; the q/k-norm refactor 9670bcf never ran): parity, then bench latency BF16 /
# FP8, the tuned-GEMM A/B (QR_CUDA_GEMM_TUNE=1, never run), offline throughput 1000 x 1024/1024 with FP8 and BF16,
# the 200K run with FP8, serve capacity BF16.  ~500 s;
# FULL=0 skips the throughput and 200K runs.  Carry as dev_s18.sh (without .gl).
. tools/bench/dev_env.sh
(timeout 100 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1) > $O/setup.txt 2>&1 &
SETUP=$!
echo "== parity"
timeout 60 $B/test_graph_fusion -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
timeout 60 $B/test_backend_ops -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
wait $SETUP; cat $O/setup.txt
echo "== bench latency BF16 / FP8"
for kv in bf16 fp8; do
  timeout 60 $B/qrun bench latency --backend cuda --model $M --kv-dtype $kv 2>&1 | grep -E -A4 "^prompt|peak"
done
echo "== QR_CUDA_GEMM_TUNE=1 (prompt GEMMs on the cublasLt algorithm tuned per shape): parity, then A/B"
QR_CUDA_GEMM_TUNE=1 timeout 60 $B/test_backend_ops -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
QR_CUDA_GEMM_TUNE=1 timeout 100 $B/test_e2e -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
for round in 1 2; do
  for e in "QR_CUDA_GEMM_TUNE=0" "QR_CUDA_GEMM_TUNE=1"; do
    printf '%-22s ' "$e"
    env $e timeout 60 $B/qrun bench latency --backend cuda --model $M --prompt-lens 512,8192 --gen 32 --long-run 0 \
        2>&1 | grep -E "^(512|8192) " | awk '{printf "%s: TTFT %s decode %s; ", $1, $3, $5} END {print ""}'
  done
done
if [ "${FULL:-1}" = 1 ]; then
  for kv in fp8 bf16; do
    echo "== throughput 1000 x 1024/1024, $kv"
    timeout 150 $B/qrun bench throughput --backend cuda --model $M --num-prompts 1000 --input-len 1024 \
        --output-len 1024 --kv-dtype $kv 2>&1 | grep -E "Throughput|Elapsed|preempt|KV cache"
  done
  echo "== 200K + 512, fp8"
  timeout 100 $B/qrun bench throughput --backend cuda --model $M --max-model-len 262144 --num-prompts 1 \
      --input-len 200000 --output-len 512 --kv-dtype fp8 2>&1 | grep -E "Throughput|Elapsed|KV cache"
fi
echo "== serve capacity 8192/512, BF16"
port=18123
timeout 150 $B/qrun serve --backend cuda --model $M --port $port --max-model-len 16384 > $O/serve.log 2>&1 &
for i in $(seq 1 60); do curl -sf localhost:$port/health >/dev/null 2>&1 && break; sleep 1; done
timeout 120 $B/qrun bench serve --port $port --input-len 8192 --output-len 512 --find-max-concurrency --ttft-slo 1000 \
    2>&1 | grep -E "concurrency"
pkill -TERM -f "qrun serve"; sleep 1
echo "total ${SECONDS} s"
