# thirteenth session, call 4: a mixed batch's decode attention on a side stream beside the prompt kernel
# (QR_CUDA_ATTN_SIDE, new): parity, then a serve burst of 12 x 8192/512 with it off and on (step trace), then BF16
# serve capacity with it on.  ~240 s.  Carry as dev_s29.sh.
. tools/bench/dev_env.sh
(timeout 100 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1) > $O/setup.txt 2>&1 &
SETUP=$!
echo "== parity"
timeout 60 $B/test_graph_fusion -b cuda 2>&1 | grep -E "FAIL|passed" | cut -c1-240 | tail -6
timeout 100 $B/test_engine -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
timeout 100 $B/test_e2e -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
wait $SETUP; cat $O/setup.txt
port=18123
for side in 0 1; do
  echo "== serve, QR_CUDA_ATTN_SIDE=$side: one burst of 12 x 8192/512"
  QR_CUDA_ATTN_SIDE=$side QRUN_STEP_TRACE=$O/trace_$side.txt timeout 200 $B/qrun serve --backend cuda --model $M \
      --port $port --max-model-len 16384 > $O/serve_$side.log 2>&1 &
  for i in $(seq 1 60); do curl -sf localhost:$port/health >/dev/null 2>&1 && break; sleep 1; done
  timeout 60 $B/qrun bench serve --port $port --input-len 8192 --output-len 512 --num-prompts 12 \
      --max-concurrency 12 2>&1 | grep -E "TTFT" | head -1
  awk '!/^#/ && $8 > 0 {printf "%.1f/%d ", $3, $7}' $O/trace_$side.txt | tail -c 200; echo
  if [ $side = 1 ]; then
    timeout 130 $B/qrun bench serve --port $port --input-len 8192 --output-len 512 --find-max-concurrency \
        --ttft-slo 1000 2>&1 | grep -E "concurrency"
  fi
  pkill -TERM -f "qrun serve"; sleep 2
done
echo "total ${SECONDS} s"
