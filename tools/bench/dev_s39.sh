# fourteenth session, final call: the head with its defaults (chunk kernel on, PDL early 5): parity, bench latency
# BF16 / FP8 (peak VRAM), the cached-prefix TTFT, offline 1000 x 1024/128 BF16, serve capacity.  ~260 s.
# Carry as dev_s29.sh.
. tools/bench/dev_env.sh
(timeout 100 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1) > $O/setup.txt 2>&1 &
SETUP=$!
echo "== parity (defaults)"
timeout 60 $B/test_backend_ops -b cuda 2>&1 | grep -E "FAIL|passed" | cut -c1-240 | tail -4
timeout 40 $B/test_graph_fusion -b cuda 2>&1 | grep -E "FAIL|passed" | cut -c1-240 | tail -4
timeout 60 $B/test_e2e -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
wait $SETUP; cat $O/setup.txt
for kv in bf16 fp8; do
  echo "== bench latency $kv"
  timeout 60 $B/qrun bench latency --backend cuda --model $M --kv-dtype $kv 2>&1 | grep -E -A4 "^prompt|peak"
done
echo "== cached prefix, BF16"
for pre in 8192 32768; do
  timeout 60 $B/qrun bench latency --backend cuda --model $M --cached-prefix $pre --prompt-lens 16,64 --gen 32 \
      --long-run 0 2>&1 | grep -E "^[0-9]+ " | sed "s/^/after $pre: /"
done
echo "== throughput 1000 x 1024/128 bf16 (${SECONDS} s so far)"
timeout 60 $B/qrun bench throughput --backend cuda --model $M --num-prompts 1000 --input-len 1024 --output-len 128 \
    2>&1 | grep -E "Throughput|Elapsed|Steps"
echo "== serve (${SECONDS} s so far)"
timeout 200 tools/bench/h100.sh build-h100 serve 2>&1 | grep -E "concurrency|mean TTFT|max c|^ *[0-9]+ " | tail -14
echo "total ${SECONDS} s"
