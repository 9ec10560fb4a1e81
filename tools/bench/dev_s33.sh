# thirteenth session, call 5 (the last ~4 minutes of device time): parity at the final head (the side stream now
# opt-in, so a mixed batch's decode attention runs after the prompt attention on the stream), then offline
# throughput 1000 x 1024/128 (issue 6's second shape; last recorded in the fourth session) with FP8 and BF16 KV.
# ~130 s.  Carry as dev_s29.sh.
. tools/bench/dev_env.sh
(timeout 100 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1) > $O/setup.txt 2>&1 &
SETUP=$!
echo "== parity"
timeout 40 $B/test_graph_fusion -b cuda 2>&1 | grep -E "FAIL|passed" | cut -c1-240 | tail -4
timeout 60 $B/test_engine -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
wait $SETUP; cat $O/setup.txt
for kv in fp8 bf16; do
  echo "== throughput 1000 x 1024/128, $kv"
  timeout 60 $B/qrun bench throughput --backend cuda --model $M --num-prompts 1000 --input-len 1024 \
      --output-len 128 --kv-dtype $kv 2>&1 | grep -E "Throughput|Elapsed|Steps"
done
echo "total ${SECONDS} s"
