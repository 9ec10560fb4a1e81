#!/usr/bin/env bash
# A device without BF16 (Turing) gets BF16 checkpoints converted to F16 at load
# and an F16 KV cache.  The CPU backend's `no_bf16 = 1` option emulates such a
# device; perplexity must match the native BF16 run closely (F16 holds every
# BF16 weight of this model with more mantissa bits), and the warning must show.
set -u
B=${QR_BUILD_DIR:-build}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok() { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL: $*"; }
"$B/bin/qrun-mkmodel" --preset qwen3-tiny --seed 7 --out "$T/m" > /dev/null || { echo "mkmodel failed"; echo "0 passed, 1 failed"; exit 1; }
cat > "$T/nobf16.ini" <<INI
[backend.cpu]
enabled = true
lib = libqrun-cpu.so
priority = 10
no_bf16 = 1
INI
printf 'The quick brown fox jumps over the lazy dog. Paged attention keeps the KV cache in blocks.\n' > "$T/text.txt"
ref=$("$B/bin/qrun" ppl --backend cpu --model "$T/m" --threads 2 "$T/text.txt" 2>/dev/null | grep -oiE 'perplexity[^0-9]*[0-9.e+]+' | grep -oE '[0-9.e+]+$')
out=$("$B/bin/qrun" ppl --config "$T/nobf16.ini" --backend cpu --model "$T/m" --threads 2 "$T/text.txt" 2>"$T/err")
f16=$(echo "$out" | grep -oiE 'perplexity[^0-9]*[0-9.e+]+' | grep -oE '[0-9.e+]+$')
if grep -q "converting BF16 weights to F16" "$T/err"; then ok; else bad "no BF16->F16 warning"; cat "$T/err"; fi
if [ -n "$ref" ] && [ -n "$f16" ]; then ok; else bad "no perplexity printed (ref='$ref' f16='$f16')"; fi
if [ -n "$ref" ] && [ -n "$f16" ] && awk -v a="$ref" -v b="$f16" 'BEGIN{d=(a-b)/a; if(d<0)d=-d; exit !(d < 1e-2)}'; then ok
else bad "perplexity BF16 $ref vs F16 $f16 differ by more than 1%"; fi
echo "no_bf16: $pass passed, $fail failed"
[ $fail -eq 0 ]
