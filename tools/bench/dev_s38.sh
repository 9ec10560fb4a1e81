# fourteenth session, call 3: (1) parity with the decode qkv fold (QR_CUDA_QKV_FOLD=1) and with the split-KV chunk
# kernel forced (QR_CUDA_ATTN_CHUNK=force), (2) decode A/B of the fold, three alternating rounds, (3) the cached-prefix
# TTFT with QR_CUDA_ATTN_CHUNK=0 / 1.  ~200 s.  Carry as dev_s29.sh.
. tools/bench/dev_env.sh
(timeout 100 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1) > $O/setup.txt 2>&1 &
SETUP=$!
echo "== parity, QR_CUDA_QKV_FOLD=1"
QR_CUDA_QKV_FOLD=1 timeout 40 $B/test_graph_fusion -b cuda 2>&1 | grep -E "FAIL|passed" | cut -c1-240 | tail -6
QR_CUDA_QKV_FOLD=1 timeout 60 $B/test_engine -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
QR_CUDA_QKV_FOLD=1 timeout 60 $B/test_e2e -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
echo "== parity, QR_CUDA_ATTN_CHUNK=force"
QR_CUDA_ATTN_CHUNK=force timeout 60 $B/test_backend_ops -b cuda 2>&1 | grep -E "FAIL|passed" | cut -c1-240 | tail -8
QR_CUDA_ATTN_CHUNK=force timeout 40 $B/test_graph_fusion -b cuda 2>&1 | grep -E "FAIL|passed" | cut -c1-240 | tail -6
QR_CUDA_ATTN_CHUNK=force timeout 60 $B/test_engine -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
QR_CUDA_ATTN_CHUNK=1 timeout 60 $B/test_e2e -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
wait $SETUP; cat $O/setup.txt
for round in 1 2 3; do
  for f in 0 1; do
    printf 'r%s FOLD=%s ' $round $f
    QR_CUDA_QKV_FOLD=$f timeout 40 $B/qrun bench latency --backend cuda --model $M --prompt-lens 512,8192 --gen 128 \
        --long-run 0 2>&1 | grep -E "^(512|8192) " | awk '{printf "%s: TTFT %s decode %s (%s GB/s); ", $1, $3, $5, $6} END {print ""}'
  done
done
echo "== cached prefix, BF16 (${SECONDS} s so far)"
for ck in 0 1; do
  for pre in 8192 32768; do
    QR_CUDA_ATTN_CHUNK=$ck timeout 90 $B/qrun bench latency --backend cuda --model $M --cached-prefix $pre \
        --prompt-lens 16,64,256,1024 --gen 32 --long-run 0 2>&1 | grep -E "^[0-9]+ " | sed "s/^/CHUNK=$ck after $pre: /"
  done
done
echo "total ${SECONDS} s"
