# fourteenth session, call 2: the decode chain's early starts (QR_CUDA_PDL_EARLY bits: 1 merge triggers o_proj
# before its wait, 2 o_proj loads whole rows before its wait, 4 o_proj triggers gate_up before its wait, 8 the q/k
# norm kernel triggers the attention before its wait): parity with all on, then three alternating rounds of
# `bench latency --prompt-lens 512,8192 --gen 128`.  ~150 s.  Carry as dev_s29.sh.
. tools/bench/dev_env.sh
(timeout 100 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1) > $O/setup.txt 2>&1 &
SETUP=$!
echo "== parity, QR_CUDA_PDL_EARLY=15"
QR_CUDA_PDL_EARLY=15 timeout 40 $B/test_graph_fusion -b cuda 2>&1 | grep -E "FAIL|passed" | cut -c1-240 | tail -4
QR_CUDA_PDL_EARLY=15 timeout 60 $B/test_engine -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
QR_CUDA_PDL_EARLY=15 timeout 60 $B/test_e2e -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
wait $SETUP; cat $O/setup.txt
for round in 1 2 3; do
  for e in 0 1 3 5 7 8 9 13 15; do
    printf 'r%s E=%-3s ' $round $e
    QR_CUDA_PDL_EARLY=$e timeout 40 $B/qrun bench latency --backend cuda --model $M --prompt-lens 512,8192 --gen 128 \
        --long-run 0 2>&1 | grep -E "^(512|8192) " | awk '{printf "%s: TTFT %s decode %s (%s GB/s); ", $1, $3, $5, $6} END {print ""}'
  done
  [ $SECONDS -gt 200 ] && break
done
echo "total ${SECONDS} s"
