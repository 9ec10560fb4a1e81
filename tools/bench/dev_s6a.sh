# sixth session, first check (most important first): fusion test, kernel lab checks + attention timings, parity,
# e2e, full-size prompt-path NLL (kept vs skipped intermediates must match bitwise), latency A/B, then extras
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
B=build-h100/bin; M=/tmp/q4b
tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" &
echo "== fusion"; timeout 60 $B/test_graph_fusion -b cuda 2>&1 | grep -E "FAIL|passed" | tail -6
echo "== lab"; timeout 100 $B/cuda_kernel_lab --attn > $OUT/lab.txt 2>&1; echo "lab rc=$?"; grep -E "FAIL|failed" $OUT/lab.txt | head; grep -E "prefill.* us |decode.* us " $OUT/lab.txt
echo "== parity, e2e"; timeout 100 $B/test_backend_ops -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
timeout 100 $B/test_e2e -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
wait
cat docs/PERF.md README.md docs/*.md > /tmp/ppl.txt
i=0
for cfg in "QR_CUDA_KEEP_INTERMEDIATES=1 QR_CUDA_GEMV_NW=8" "QR_CUDA_KEEP_INTERMEDIATES=0" "QR_CUDA_GU16=1"; do
  i=$((i+1)); env $cfg timeout 60 $B/qrun ppl --backend cuda --model $M --json --ctx 4096 --batch 4096 /tmp/ppl.txt > /tmp/ppl_$i.json 2>/tmp/ppl_$i.err || tail -2 /tmp/ppl_$i.err
done
python3 - <<'PY'
import json, glob
f = sorted(glob.glob('/tmp/ppl_*.json')); d = {x: json.load(open(x)) for x in f}
base = d['/tmp/ppl_1.json']
for x in f:
    n = d[x]['nll']; m = max(abs(a - b) for a, b in zip(n, base['nll']))
    print(x, 'tokens', len(n), 'ppl', d[x]['ppl'], 'max |nll - kept|', m, 'identical' if n == base['nll'] else '')
PY
for cfg in "QR_CUDA_KEEP_INTERMEDIATES=1 QR_CUDA_GEMV_NW=8" "QR_CUDA_KEEP_INTERMEDIATES=0" "QR_CUDA_GU16=1"; do
  echo "== $cfg"
  env $cfg timeout 100 $B/qrun bench latency --backend cuda --model $M --prompt-lens 512,8192 --gen 64 --long-run 0 2>&1 | grep -E -A3 "^prompt|peak"
done
echo "== extras"
QR_CUDA_GU16=1 timeout 60 $B/test_graph_fusion -b cuda 2>&1 | grep -E "FAIL|passed" | tail -4
QR_CUDA_GU16=1 timeout 100 $B/test_e2e -b cuda 2>&1 | grep -E "FAIL|passed|worst" | tail -4
for nw in 8 4; do echo "gemv NW=$nw"; QR_CUDA_GEMV_NW=$nw timeout 60 $B/cuda_kernel_lab --gemv | grep gemv; done
timeout 60 $B/cuda_kernel_lab --gemm
QR_CUDA_PROFILE=1 timeout 120 $B/qrun bench latency --backend cuda --model $M --prompt-lens 8192 --gen 8 --long-run 0 > $OUT/prof8k.txt 2>&1
grep -A40 "cuda profile" $OUT/prof8k.txt | grep -v "^T1 " | head -40
