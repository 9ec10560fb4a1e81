# fourteenth session, call 1: (1) parity with the decode chain's early starts on (QR_CUDA_PDL_EARLY=7), (2) decode
# A/B of QR_CUDA_PDL_EARLY 0 / 1 / 3 / 7 / 5 (bits: merge triggers o_proj before its wait; o_proj's L2 prefetch of
# the rest of its rows; o_proj triggers gate_up before its wait), two rounds, (3) the cached-prefix TTFT
# (dev_s34.sh, never run).  ~240 s.  Carry as dev_s29.sh.
. tools/bench/dev_env.sh
(timeout 100 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1) > $O/setup.txt 2>&1 &
SETUP=$!
echo "== parity, QR_CUDA_PDL_EARLY=7"
QR_CUDA_PDL_EARLY=7 timeout 40 $B/test_graph_fusion -b cuda 2>&1 | grep -E "FAIL|passed" | cut -c1-240 | tail -4
QR_CUDA_PDL_EARLY=7 timeout 60 $B/test_engine -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
QR_CUDA_PDL_EARLY=7 timeout 60 $B/test_e2e -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
wait $SETUP; cat $O/setup.txt
for round in 1 2; do
  for e in 0 1 3 7 5; do
    [ $round = 2 ] && [ $e = 5 ] && continue
    echo "== round $round, QR_CUDA_PDL_EARLY=$e"
    QR_CUDA_PDL_EARLY=$e timeout 40 $B/qrun bench latency --backend cuda --model $M --prompt-lens 512,8192 --gen 128 \
        --long-run 0 2>&1 | grep -E "^(512|8192) |peak"
  done
done
echo "== cached prefix (${SECONDS} s so far)"
bash tools/bench/dev_s34.sh 2>&1 | grep -v "^NVIDIA\|^H100\|setup\|model"
echo "total ${SECONDS} s"
