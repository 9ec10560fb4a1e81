# dev_s75.sh (twenty-fourth session): offline throughput 1000 x 1024/1024 on the H100 with decodes in every step
# (--decode-pause-ms 0) and with prefill first (the default), to see whether prefill first costs throughput where
# the KV pool is tight (preemptions).  ~280 s.  Carry as dev_s74.sh.
. tools/bench/dev_env.sh
timeout 150 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1
for a in "--decode-pause-ms 0" ""; do
  echo "== throughput 1000 x 1024/1024 ${a:-(default)} (${SECONDS} s)"
  timeout 200 $B/qrun bench throughput --backend cuda --model $M --num-prompts 1000 --input-len 1024 \
      --output-len 1024 $a 2>&1 | grep -E "Throughput|Elapsed|Steps|rror"
done
echo "total ${SECONDS} s"
