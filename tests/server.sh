#!/bin/bash
# server.sh - `qrun serve` end to end on the CPU backend with a tiny random
# model: the openai npm client (tests/server/api.mjs: answers vs the qrun CLI,
# streaming, usage, n, logprobs, stop, tools, bad requests, auth, CORS, 64
# concurrent streams, disconnects, RSS), huge headers, the web page in headless
# Chromium (tests/server/web.mjs), `qrun bench serve`, and SIGTERM draining.
# The servers listen on 127.0.0.1 with a free port and are always killed.
set -u
BUILD=${QR_BUILD_DIR:-build}
SRC=${QR_SOURCE_DIR:-.}
QRUN=$BUILD/bin/qrun
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() { if eval "$2"; then ok; else bad "$1"; fi; }

if ! command -v node >/dev/null; then
    echo "SKIP: node is not installed"; echo "0 passed, 0 failed"; exit 0
fi
if [ ! -d "$SRC/node_modules/openai" ]; then
    echo "SKIP: node_modules/openai missing (run npm install)"; echo "0 passed, 0 failed"; exit 0
fi
if ! "$QRUN" serve --help >/dev/null 2>&1; then
    echo "SKIP: this qrun has no server (libmicrohttpd missing)"; echo "0 passed, 0 failed"; exit 0
fi

H="node $SRC/tests/server/http.mjs"
code() { $H "$@" 2>/dev/null | tail -n 1; }

tmp=$(mktemp -d)
PIDS=""
cleanup() {
    for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT

"$BUILD/bin/qrun-mkmodel" --preset qwen3-tiny --seed 7 --out "$tmp/model" >/dev/null || { bad "qrun-mkmodel"; exit 1; }

# start_server LOG ARGS...: sets SPID and PORT
start_server() {
    local log=$1; shift
    "$QRUN" serve --backend cpu --model "$tmp/model" --host 127.0.0.1 --port 0 --max-model-len 512 "$@" \
        >"$log" 2>&1 &
    SPID=$!
    PIDS="$PIDS $SPID"
    PORT=""
    for _ in $(seq 1 300); do
        PORT=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$log" 2>/dev/null | grep -o '[0-9]*$')
        if [ -n "$PORT" ] && [ "$(code GET "http://127.0.0.1:$PORT/health")" = 200 ]; then
            return 0
        fi
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.1
    done
    echo "server did not become ready:"; cat "$log"
    return 1
}

KEY="test-key-$RANDOM$RANDOM"
if ! start_server "$tmp/server.log" --api-key "$KEY" --cors-origin http://allowed.test --max-body-bytes 1048576 \
        --max-header-bytes 32768; then
    bad "server start"; echo "$pass passed, $fail failed"; exit 1
fi
U="http://127.0.0.1:$PORT"

# /health while ready, the page, the metrics
check "/health 200" '[ "$(code GET $U/health)" = 200 ]'
check "/ serves the chat page" '[ "$(code GET $U/ - $tmp/index.html)" = 200 ] && grep -q "qrun chat" $tmp/index.html'
check "/metrics is Prometheus text" '[ "$(code GET $U/metrics - $tmp/metrics.txt)" = 200 ] &&
    grep -q "^# TYPE qrun_time_to_first_token_seconds histogram" $tmp/metrics.txt &&
    grep -q "^qrun_engine_paused_steps_total{.*} [0-9]" $tmp/metrics.txt &&
    grep -q "^qrun_engine_topk_sampling_steps_total{.*} [0-9]" $tmp/metrics.txt'

# the openai client suite
QR_PORT=$PORT QR_KEY=$KEY QR_MODEL="$tmp/model" QRUN="$QRUN" QR_SERVER_PID=$SPID \
    timeout 300 node "$SRC/tests/server/api.mjs" >"$tmp/api.out" 2>&1
rc=$?
cat "$tmp/api.out" | grep -v '^$' | tail -n 40
check "api.mjs (openai client suite) passes (rc $rc)" '[ $rc -eq 0 ]'

# the web page in headless Chromium
CHROME=""
for c in chromium chromium-browser google-chrome; do
    command -v "$c" >/dev/null && { CHROME=$(command -v "$c"); break; }
done
if [ -n "$CHROME" ] && [ -d "$SRC/node_modules/playwright-core" ]; then
    SHOT_DIR=${QR_SCREENSHOT_DIR:-$BUILD}
    QR_URL=$U QR_KEY=$KEY QR_CHROME=$CHROME QR_SHOT="$SHOT_DIR/server_web.png" \
        timeout 120 node "$SRC/tests/server/web.mjs" >"$tmp/web.out" 2>&1
    rc=$?
    cat "$tmp/web.out"
    check "web page: streamed answer in headless Chromium (rc $rc)" '[ $rc -eq 0 ]'
else
    echo "SKIP: web page test (no chromium: apt-get install -y chromium; or no playwright-core)"
fi

# qrun bench serve against the running server (it sends the key)
QRUN_API_KEY=$KEY timeout 120 "$QRUN" bench serve --host 127.0.0.1 --port "$PORT" --num-prompts 12 \
    --input-len 32 --output-len 8 --max-concurrency 4 --json-out "$tmp/bench.json" >"$tmp/bench.out" 2>&1
rc=$?
tail -n 20 "$tmp/bench.out"
check "bench serve exits 0 (rc $rc)" '[ $rc -eq 0 ]'
check "bench serve JSON has all requests completed" \
    'node -e "const j=require(process.argv[1]); process.exit(j.completed===12 && j.failed===0 && j.total_output_tokens===96 && j.mean_ttft_ms>0 && j.p99_itl_ms>=0 ? 0 : 1)" "$tmp/bench.json"'
# the model's generation_config samples with top-k 20: the suite's requests that keep the defaults sampled on the
# device
check "default sampling ran top-k steps on the device" '[ "$(code GET $U/metrics - $tmp/metrics2.txt)" = 200 ] &&
    awk "/^qrun_engine_topk_sampling_steps_total/ { n = \$2 } END { exit !(n > 0) }" $tmp/metrics2.txt'

kill -TERM "$SPID"
for _ in $(seq 1 100); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
wait "$SPID"; rc=$?
check "idle server exits 0 on SIGTERM (rc $rc)" '[ $rc -eq 0 ]'

# SIGTERM while a request runs: the listener closes, the request completes, exit 0
if start_server "$tmp/server2.log" --shutdown-timeout 60; then
    U="http://127.0.0.1:$PORT"
    code POST "$U/v1/completions" '{"prompt":"drain me","max_tokens":300,"ignore_eos":true,"temperature":0}' \
        "$tmp/drain.json" >"$tmp/drain.code" &
    cpid=$!
    PIDS="$PIDS $cpid"
    sleep 0.3
    kill -TERM "$SPID"
    sleep 0.2
    check "no new connections after SIGTERM" '[ "$(code GET $U/health)" = 0 ]'
    wait "$cpid"
    check "in-flight request completed during drain ($(cat $tmp/drain.code))" \
        '[ "$(cat $tmp/drain.code)" = 200 ] && grep -q "\"completion_tokens\":300" "$tmp/drain.json"'
    wait "$SPID"; rc=$?
    check "drained server exits 0 (rc $rc)" '[ $rc -eq 0 ]'
else
    bad "second server start"
fi

# SIGTERM with a short --shutdown-timeout: the stream gets an error event, then [DONE]-less end; exit 0
if start_server "$tmp/server3.log" --shutdown-timeout 0.3; then
    U="http://127.0.0.1:$PORT"
    code POST "$U/v1/completions" '{"prompt":"long","max_tokens":480,"ignore_eos":true,"stream":true}' \
        "$tmp/abort.sse" >/dev/null &
    cpid=$!
    PIDS="$PIDS $cpid"
    sleep 0.3
    t0=$(date +%s%N)
    kill -TERM "$SPID"
    wait "$SPID"; rc=$?
    t1=$(date +%s%N)
    wait "$cpid"
    check "shutdown-timeout: exit 0 (rc $rc)" '[ $rc -eq 0 ]'
    check "shutdown-timeout honoured ($(( (t1 - t0) / 1000000 )) ms)" '[ $(( (t1 - t0) / 1000000 )) -lt 5000 ]'
    check "cut stream got an OpenAI error event" 'grep -q "\"error\":{\"message\":\"request cancelled" "$tmp/abort.sse"'
else
    bad "third server start"
fi

# while the model loads: /health and /v1 answer 503; SIGTERM during the load exits 0 at once
"$QRUN" serve --backend cpu --model "$tmp/model" --host 127.0.0.1 --port 0 --max-model-len 512 >"$tmp/server4.log" 2>&1 &
SPID=$!
PIDS="$PIDS $SPID"
PORT=""
for _ in $(seq 1 100); do
    PORT=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$tmp/server4.log" 2>/dev/null | grep -o '[0-9]*$')
    [ -n "$PORT" ] && break
    sleep 0.02
done
h=$(code GET "http://127.0.0.1:$PORT/health" - "$tmp/h4.json")
if grep -q "ready in" "$tmp/server4.log" && [ "$h" = 200 ]; then
    echo "SKIP: the model loaded before /health could be asked (no loading window to observe)"
else
    check "/health 503 while loading (got $h)" '[ "$h" = 503 ] && grep -q "loading model" "$tmp/h4.json"'
    kill -TERM "$SPID"
    wait "$SPID"; rc=$?
    check "SIGTERM during load exits 0 (rc $rc)" '[ $rc -eq 0 ]'
fi
kill -9 "$SPID" 2>/dev/null

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
