#!/usr/bin/env bash
# report.sh - `qrun bench report --quick` on the CPU backend with the tiny
# random model: all three files are written, report.json validates against
# docs/report-schema.json and its numbers hang together, the HTML opens in
# headless Chromium with its three SVG charts (screenshot), and --compare of
# two reports merges them (shared charts with a series per report).  Bad
# input (no --out, one report to --compare, a broken JSON) fails cleanly.
set -u
SRC=${QR_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
BUILD=${QR_BUILD_DIR:-$SRC/build}
QRUN=$BUILD/bin/qrun
MK=$BUILD/bin/qrun-mkmodel
SCHEMA=$SRC/docs/report-schema.json
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit $?; }

if [ ! -x "$QRUN" ] || [ ! -x "$MK" ]; then echo "qrun or qrun-mkmodel not built in $BUILD" >&2; echo "0 passed, 1 failed"; exit 1; fi
if ! command -v node >/dev/null; then echo "node is required" >&2; echo "0 passed, 1 failed"; exit 1; fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
"$MK" --preset qwen3-tiny --seed 11 --out "$T/model" >/dev/null || { bad "qrun-mkmodel"; finish; }
E=(--backend cpu --model "$T/model" --threads 2 --max-model-len 1024)

# 1. two quick reports (the second under another label, as if from another machine)
t0=$(date +%s)
if "$QRUN" bench report "${E[@]}" --quick --out "$T/a" >"$T/a.out" 2>"$T/a.err"; then ok; else bad "bench report --quick exit $?"; cat "$T/a.err" >&2; fi
t1=$(date +%s)
[ $((t1 - t0)) -le 60 ] && ok || bad "--quick took $((t1 - t0)) s on the tiny model"
"$QRUN" bench report "${E[@]}" --quick --label "second run" --out "$T/b" >/dev/null 2>"$T/b.err" && ok || { bad "second report"; cat "$T/b.err" >&2; }
for f in report.md report.html report.json; do
    [ -s "$T/a/$f" ] && ok || bad "missing $f"
done
grep -q "report: \[" "$T/a.err" && ok || bad "no phase progress on stderr"
grep -q "^# qrun hardware report" "$T/a.out" && ok || bad "report.md not printed on stdout"
for h in "## Single request" "## Concurrency sweep" "## Context ladder" "## Memory breakdown" "## Environment"; do
    grep -qF "$h" "$T/a/report.md" && ok || bad "report.md lacks '$h'"
done

# 2. report.json against the schema, and the numbers' consistency
node "$SRC/tests/report/validate.mjs" "$SCHEMA" "$T/a/report.json" "$T/b/report.json" && ok || bad "schema validation"
node --input-type=module - "$T/a/report.json" "$T/model" <<'JS' && ok || bad "report.json contents"
import fs from "node:fs";
const [file, model] = process.argv.slice(2);
const r = JSON.parse(fs.readFileSync(file, "utf8"));
const cfg = JSON.parse(fs.readFileSync(model + "/config.json", "utf8"));
const fails = [];
const want = (c, m) => { if (!c) fails.push(m); };
want(r.quick === true, "quick flag");
want(r.environment.backend === "cpu", "backend " + r.environment.backend);
want(r.environment.device.length > 0, "device name");
want(r.model.num_hidden_layers === cfg.num_hidden_layers && r.model.vocab_size === cfg.vocab_size, "model config");
want(r.engine.max_model_len === 1024, "max_model_len " + r.engine.max_model_len);
want(r.engine.kv_tokens === r.engine.kv_blocks * r.engine.block_size, "kv_tokens");
// KV bytes per token from the config: layers * 2 * kv_heads * head_dim * 4 (F32 on the CPU)
const kvpt = cfg.num_hidden_layers * 2 * cfg.num_key_value_heads * cfg.head_dim * 4;
want(Math.abs(r.engine.kv_bytes_per_token - kvpt) < 1, `kv bytes/token ${r.engine.kv_bytes_per_token} != ${kvpt}`);
want(r.single.length === 2 && r.single.every((s) => s.ran && s.ttft_ms > 0 && s.decode_tok_s > 0), "single runs");
for (const s of r.single) {
  const eff = s.bytes_per_token * s.decode_tok_s / 1e9;
  want(Math.abs(eff - s.effective_gbs) <= 1e-6 * eff + 1e-9, "effective GB/s formula");
  const bs = r.engine.block_size, m0 = r.memory;
  const need = m0.weights + m0.activations + m0.overhead + Math.ceil((s.prompt + s.gen) / bs) * bs * r.engine.kv_bytes_per_token;
  want(Math.abs(s.vram_needed_bytes - need) < 2, `VRAM needed ${s.vram_needed_bytes} != ${need}`);
  want(r.copy_bandwidth_gbs === null ? s.bandwidth_fraction === null
       : Math.abs(s.bandwidth_fraction - s.effective_gbs / r.copy_bandwidth_gbs) < 1e-9, "bandwidth fraction");
}
const conc = r.sweep.points.map((p) => p.concurrency);
want(JSON.stringify(conc) === "[1,2,4]", "sweep concurrencies " + conc);
for (const p of r.sweep.points) {
  want(p.ttft_p99_ms >= p.ttft_mean_ms - 1e-9 && p.tpot_p99_ms >= p.tpot_mean_ms - 1e-9, "p99 >= mean");
  want(p.total_tok_s > p.output_tok_s && p.output_tok_s > 0, "throughputs");
  const outTok = p.output_tok_s * p.wall_s, totTok = p.total_tok_s * p.wall_s;
  want(Math.abs(outTok - p.concurrency * p.gen) < 0.5, `output tokens ${outTok} != ${p.concurrency * p.gen}`);
  want(Math.abs(totTok - p.concurrency * (p.gen + p.prompt)) < 0.5, "total tokens");
}
const best = Math.max(0, ...r.sweep.points.filter((p) => p.ttft_mean_ms < 1000).map((p) => p.concurrency));
want(r.sweep.max_concurrency_ttft_under_1s === best, "max concurrency under 1 s");
const ctx = r.context_ladder.rungs.map((x) => x.context);
want(JSON.stringify(ctx) === "[128,256,512,1024]", "ladder " + ctx);
want(r.context_ladder.rungs.every((x) => x.fits && x.timed && x.prompt + x.gen === x.context && x.ttft_ms > 0), "ladder runs");
want(r.context_ladder.longest_fit === 1024, "longest fit");
const m = r.memory;
want(m.weights > 0 && m.kv_pool > 0 && m.activations >= 0 && m.device_total > 0, "memory parts");
want(Math.abs(m.kv_pool - r.engine.kv_tokens * r.engine.kv_bytes_per_token) < 1, "KV pool bytes");
want(m.peak_used >= m.weights + m.kv_pool, "peak >= weights + KV");
if (fails.length) { console.error(fails.join("\n")); process.exit(1); }
JS

# a report that does not match the schema is caught by the validator
node -e 'const fs=require("fs");const r=JSON.parse(fs.readFileSync(process.argv[1]));delete r.sweep;r.single[0].ttft_ms="fast";fs.writeFileSync(process.argv[2],JSON.stringify(r))' \
    "$T/a/report.json" "$T/broken.json"
node "$SRC/tests/report/validate.mjs" "$SCHEMA" "$T/broken.json" >/dev/null 2>&1 && bad "validator accepted a broken report" || ok

# 3. the HTML in headless Chromium: three SVG charts, screenshot
shot=${QR_REPORT_SHOT_DIR:-$T}
run_html() { # FILE SHOT MIN_SERIES
    node "$SRC/tests/report/html_check.mjs" "$1" "$2" "$3"
    local rc=$?
    if [ $rc -eq 3 ] && ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ] && [ -z "${QR_REPORT_NO_APT:-}" ]; then
        echo "installing chromium for the HTML check" >&2
        QR_REPORT_NO_APT=1 apt-get install -y chromium >/dev/null 2>&1 && { node "$SRC/tests/report/html_check.mjs" "$1" "$2" "$3"; rc=$?; }
    fi
    return $rc
}
run_html "$T/a/report.html" "$shot/report-single.png" 2; rc=$?
if [ $rc -eq 3 ]; then echo "SKIP: HTML check (no headless Chromium)" >&2; elif [ $rc -eq 0 ]; then ok; else bad "HTML check"; fi

# 4. --compare: two reports into one, shared charts with both
if "$QRUN" bench report --out "$T/c" --compare "$T/a/report.json" "$T/b/report.json" 2>"$T/c.err"; then ok; else bad "--compare"; cat "$T/c.err" >&2; fi
node "$SRC/tests/report/validate.mjs" "$SCHEMA" "$T/c/report.json" >/dev/null && ok || bad "comparison schema"
node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1]));if(!(r.comparison===true&&r.reports.length===2&&r.reports[1].label==="second run"))process.exit(1)' \
    "$T/c/report.json" && ok || bad "comparison contents"
grep -q "second run" "$T/c/report.md" && grep -q "qrun hardware comparison (2 reports)" "$T/c/report.md" && ok || bad "comparison markdown"
# a comparison can itself be compared again (3 reports)
"$QRUN" bench report --out "$T/d" --compare "$T/c/report.json" "$T/a/report.json" 2>/dev/null && \
    node -e 'process.exit(JSON.parse(require("fs").readFileSync(process.argv[1])).reports.length===3?0:1)' "$T/d/report.json" \
    && ok || bad "re-comparing a comparison"
if [ $rc -ne 3 ]; then
    run_html "$T/c/report.html" "$shot/report-compare.png" 4 && ok || bad "comparison HTML check"
fi

# 5. bad input
"$QRUN" bench report "${E[@]}" --quick >/dev/null 2>"$T/e1" && bad "no --out accepted" || { grep -q -- "--out" "$T/e1" && ok || bad "no --out message"; }
"$QRUN" bench report --out "$T/e" --compare "$T/a/report.json" >/dev/null 2>"$T/e2" && bad "one report compared" || { grep -q "at least two" "$T/e2" && ok || bad "one-report message"; }
echo '{"schema": "qrun-report/1", "label": 3}' >"$T/bad.json"
"$QRUN" bench report --out "$T/e" --compare "$T/bad.json" "$T/a/report.json" >/dev/null 2>"$T/e3"; r3=$?
[ $r3 -ne 0 ] && [ $r3 -lt 128 ] && grep -q "label" "$T/e3" && ok || bad "broken JSON: rc $r3, $(cat "$T/e3")"
"$QRUN" bench report --out "$T/e" --compare "$T/missing.json" "$T/a/report.json" >/dev/null 2>&1 && bad "missing file accepted" || ok
finish
