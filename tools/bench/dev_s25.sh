# twelfth session, call 3: decode with the L2 prefetch of the next GEMVs' weights from the one-token q/k-norm kernel
# (QR_CUDA_L2PF=0 off; default o_proj; QR_CUDA_L2PF_NEXT_MB=N also the first N MiB of gate_up), two rounds, then the
# fused-graph parity test.  Carry as dev_s18.sh (without .gl).
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
export QRUN_COMMIT=$(cat .commit)
B=build-h100/bin; M=/tmp/q4b
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1
for round in 1 2; do
  for e in "QR_CUDA_L2PF=0" "X=1" "QR_CUDA_L2PF_NEXT_MB=12" "QR_CUDA_L2PF_NEXT_MB=24"; do
    printf '%-26s ' "$e"
    env $e timeout 40 $B/qrun bench latency --backend cuda --model $M --prompt-lens 512,8192 --gen 128 --long-run 0 \
        2>&1 | grep -E "^(512|8192) " | awk '{printf "%s: TTFT %s decode %s; ", $1, $3, $5} END {print ""}'
  done
done
echo "== fused-graph parity and op parity"
timeout 60 $B/test_graph_fusion -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
QR_CUDA_L2PF_NEXT_MB=24 timeout 60 $B/test_backend_ops -b cuda 2>&1 | grep -E "FAIL|passed" | tail -3
