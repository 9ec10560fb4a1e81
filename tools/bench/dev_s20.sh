# eleventh session, call 3: the FP8 E4M3 KV cache on CUDA (committed 1c4706f..79783ed): GPU parity, kernel-lab decode
# timings FP8 vs BF16, offline throughput 1000 x 1024/1024 with FP8 and with BF16 in the same call, the 200K run with
# FP8; the Vulkan GEMV fold (QR_VK_FUSE_GEMV=1) A/B.  Carry as dev_s18.sh.
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
export QRUN_COMMIT=$(cat .commit)
B=build-h100/bin; M=/tmp/q4b
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1
echo "== parity"
timeout 60 $B/test_backend_ops -b cuda 2>&1 | grep -E "FAIL|passed" | tail -4
timeout 60 $B/test_graph_fusion -b cuda 2>&1 | grep -E "FAIL|passed" | tail -4
echo "== lab --attn (decode FP8 vs BF16)"
timeout 120 $B/cuda_kernel_lab --attn 2>&1 | grep -E "fp8|tc|fail|FAIL" | grep -v "^ *ok" | head -40
echo "== throughput 1000 x 1024/1024, FP8 KV"
timeout 170 $B/qrun bench throughput --backend cuda --model $M --num-prompts 1000 --input-len 1024 --output-len 1024 \
    --kv-dtype fp8 2>&1 | grep -E "Throughput|Elapsed|KV cache|decode-only|prompt|preempt" | head -12
echo "== throughput 1000 x 1024/1024, BF16 KV"
timeout 170 $B/qrun bench throughput --backend cuda --model $M --num-prompts 1000 --input-len 1024 --output-len 1024 \
    2>&1 | grep -E "Throughput|Elapsed|KV cache|decode-only|prompt|preempt" | head -12
