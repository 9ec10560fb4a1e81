# sixth session, second call: the serving-side targets with this build (200K prompt, serve capacity, throughput)
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
export STAGE_TIMEOUT=200 OUT=$OUT
tools/bench/h100.sh build-h100 setup long 2>&1 | grep -v "^$" | tail -9
STAGE_TIMEOUT=240 tools/bench/h100.sh build-h100 serve 2>&1 | grep -E "concurrency|mean|max|capacity|^ *[0-9]+ " | tail -16
B=build-h100/bin; M=/tmp/q4b
timeout 200 $B/qrun bench throughput --backend cuda --model $M --num-prompts 1000 --input-len 1024 --output-len 1024 2>&1 | tail -6
