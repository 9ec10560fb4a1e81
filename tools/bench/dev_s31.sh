# thirteenth session, call 3: the mixed-batch attention -> o_proj fusion with the decode kernel's partials beside
# the GEMM input (call 2 found them written over it: NaN rows), parity incl. test_engine, QR_CUDA_QKV16 A/B, serve
# capacity BF16 (with a burst's step trace) and FP8.  ~400 s.  Carry as dev_s29.sh.
. tools/bench/dev_env.sh
(timeout 100 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1) > $O/setup.txt 2>&1 &
SETUP=$!
echo "== parity"
timeout 60 $B/test_graph_fusion -b cuda 2>&1 | grep -E "FAIL|passed" | cut -c1-240 | tail -6
timeout 60 $B/test_backend_ops -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
timeout 100 $B/test_e2e -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
timeout 100 $B/test_engine -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
wait $SETUP; cat $O/setup.txt
echo "== A/B QR_CUDA_QKV16"
for round in 1 2; do
  for e in "QR_CUDA_QKV16=0" "QR_CUDA_QKV16=1"; do
    printf '%-18s ' "$e"
    env $e timeout 60 $B/qrun bench latency --backend cuda --model $M --prompt-lens 512,8192 --gen 32 --long-run 0 \
        2>&1 | grep -E "^(512|8192) " | awk '{printf "%s: TTFT %s decode %s; ", $1, $3, $5} END {print ""}'
  done
done
port=18123
for kv in bf16 fp8; do
  echo "== serve ($kv): one burst of 12 x 8192/512 (step trace), then capacity"
  QRUN_STEP_TRACE=$O/trace_$kv.txt timeout 200 $B/qrun serve --backend cuda --model $M --port $port \
      --max-model-len 16384 --kv-dtype $kv > $O/serve_$kv.log 2>&1 &
  for i in $(seq 1 60); do curl -sf localhost:$port/health >/dev/null 2>&1 && break; sleep 1; done
  if [ $kv = bf16 ]; then
    timeout 60 $B/qrun bench serve --port $port --input-len 8192 --output-len 512 --num-prompts 12 \
        --max-concurrency 12 2>&1 | grep -E "TTFT" | head -2
    awk '!/^#/ && $8 > 0 {printf "%s ms with %d decodes\n", $3, $7}' $O/trace_$kv.txt | tail -12 | tr '\n' ';'; echo
  fi
  timeout 130 $B/qrun bench serve --port $port --input-len 8192 --output-len 512 --find-max-concurrency \
      --ttft-slo 1000 2>&1 | grep -E "concurrency"
  pkill -TERM -f "qrun serve"; sleep 2
done
echo "total ${SECONDS} s"
