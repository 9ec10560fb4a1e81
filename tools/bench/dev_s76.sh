# dev_s76.sh (twenty-fourth session): serve capacity 8192/512 after prefill first stopped pausing requests whose
# generated tokens have shown the client nothing yet (awaiting_output; random weights give ~1 % of first tokens
# without text), then with decodes in every step (--decode-pause-ms 0) on the same machine.  ~140 s.
. tools/bench/dev_env.sh
timeout 150 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1
for a in "" "--decode-pause-ms 0"; do
  echo "== serve capacity ${a:-(default: prefill first)} (${SECONDS} s)"
  QRUN_STEP_TRACE=$O/trace${a:+_mixed}.txt SERVE_ARGS="$a" SERVE_TAG=${a:+_mixed} timeout 120 \
      tools/bench/h100.sh build-h100 serve 2>&1 | grep -E "^concurrency|max concurrency|^TTFT"
done
echo "total ${SECONDS} s"
