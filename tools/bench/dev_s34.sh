# for the next session's first call: the TTFT of a new chat turn (a short prompt after a long cached prefix,
# `bench latency --cached-prefix`, new in the thirteenth session, never run on a GPU).  Expectation to check: the
# prompt attention gives a short chunk one block per 64 queries and head pair (16-32 blocks on 132 SMs), each walking
# the whole prefix, so the step is far slower than its GEMMs.  ~60 s.  Carry as dev_s29.sh.
. tools/bench/dev_env.sh
timeout 100 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1
for kv in bf16 fp8; do
  echo "== $kv: 16 / 64 / 256 / 1024 new tokens after 8192 and 32768 cached"
  for pre in 8192 32768; do
    timeout 90 $B/qrun bench latency --backend cuda --model $M --kv-dtype $kv --cached-prefix $pre \
        --prompt-lens 16,64,256,1024 --gen 32 --long-run 0 2>&1 | grep -E "^[0-9]+ " | sed "s/^/after $pre: /"
  done
done
echo "total ${SECONDS} s"
