# thirteenth session, call 2: the 16-bit prompt qkv (QR_CUDA_QKV16, new: parity, then A/B), where a serve burst's
# mixed steps lose time (step trace at 12 concurrent 8192-token
# prompts), prompt lengths just past 8192 (the GEMMs' M of a mixed step), serve capacity with the tuned GEMMs on by
# default, and an nsys kernel summary of an 8192-token prompt step where nsys exists.  ~300 s.  Carry as dev_s29.sh.
. tools/bench/dev_env.sh
timeout 100 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1
echo "== parity (16-bit prompt qkv on)"
timeout 60 $B/test_graph_fusion -b cuda 2>&1 | grep -E "FAIL|passed" | tail -4
timeout 60 $B/test_backend_ops -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
timeout 100 $B/test_e2e -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
echo "== A/B QR_CUDA_QKV16"
for round in 1 2; do
  for e in "QR_CUDA_QKV16=0" "QR_CUDA_QKV16=1"; do
    printf '%-18s ' "$e"
    env $e timeout 60 $B/qrun bench latency --backend cuda --model $M --prompt-lens 512,8192 --gen 32 --long-run 0 \
        2>&1 | grep -E "^(512|8192) " | awk '{printf "%s: TTFT %s decode %s; ", $1, $3, $5} END {print ""}'
  done
done
echo "== TTFT at 8192 and just past it (a mixed step's M)"
timeout 90 $B/qrun bench latency --backend cuda --model $M --prompt-lens 8192,8200,8203,8256 --gen 4 --long-run 0 \
    2>&1 | grep -E "^[0-9]+ "
port=18123
for kv in bf16; do
  echo "== serve, one burst of 12 x 8192/512 ($kv), step trace"
  QRUN_STEP_TRACE=$O/trace_$kv.txt timeout 200 $B/qrun serve --backend cuda --model $M --port $port \
      --max-model-len 16384 --kv-dtype $kv > $O/serve_$kv.log 2>&1 &
  for i in $(seq 1 60); do curl -sf localhost:$port/health >/dev/null 2>&1 && break; sleep 1; done
  timeout 60 $B/qrun bench serve --port $port --input-len 8192 --output-len 512 --num-prompts 12 \
      --max-concurrency 12 2>&1 | grep -E "TTFT|Mean|throughput" | head -6
  awk '!/^#/ && $8 > 0 {n++; printf "%s ", $0; print ""} END {print n " prompt steps"}' $O/trace_$kv.txt | tail -16
  awk '!/^#/ && $8 == 0 && $7 > 0 {s[$7] += $3; c[$7]++} END {for (k in s) printf "decode-only, %d seqs: %.2f ms (%d)\n", k, s[k]/c[k], c[k]}' $O/trace_$kv.txt | sort -n -k3 | tail -4
  echo "== serve capacity 8192/512 ($kv)"
  timeout 130 $B/qrun bench serve --port $port --input-len 8192 --output-len 512 --find-max-concurrency \
      --ttft-slo 1000 2>&1 | grep -E "concurrency"
  pkill -TERM -f "qrun serve"; sleep 2
done
NS=$(ls /usr/local/cuda/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys /usr/bin/nsys 2>/dev/null | head -1); echo "nsys: $NS"
if [ -n "$NS" ]; then
  timeout 120 $NS profile -o $O/ns --force-overwrite true $B/qrun bench latency --backend cuda --model $M \
      --prompt-lens 8192 --gen 2 --long-run 0 > $O/nsrun.txt 2>&1
  timeout 60 $NS stats --report cuda_gpu_kern_sum --format csv $O/ns.nsys-rep > $O/kern.csv 2>&1
  head -32 $O/kern.csv | cut -d, -f1-4,9 | cut -c1-200
  rm -f $O/ns.nsys-rep $O/ns.sqlite
fi
echo "total ${SECONDS} s"
