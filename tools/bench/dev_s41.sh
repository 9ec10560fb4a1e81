# fourteenth session, last seconds of device time: the chunk kernel's second version (QR_CUDA_ATTN_CHUNK_V=1, opt-in,
# never run) through the kernel lab's --attn-chunk checks and timings only (both versions against the prompt kernel
# and the CPU loop, 16-256 tokens after 8192 / 32768 keys).  ~60 s.  Carry as dev_s29.sh.
. tools/bench/dev_env.sh
timeout 75 $B/cuda_kernel_lab --attn-chunk > $O/lab_chunk.txt 2>&1
echo "exit $? ; checks ok: $(grep -c ' ok$' $O/lab_chunk.txt), failed: $(grep -c 'FAIL' $O/lab_chunk.txt)"
grep -E "FAIL|nan|rror|us" $O/lab_chunk.txt | cut -c1-200 | tail -30
echo "total ${SECONDS} s"
