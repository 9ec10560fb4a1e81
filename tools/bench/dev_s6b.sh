# the runs the sixth session had no device time for: serve capacity (8192 in / 512 out) with this build, and the
# Vulkan backend side by side with CUDA (needs the libvulkan1 .deb in .gl: carry ".gl" too, see h100.sh vkloader)
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
STAGE_TIMEOUT=300 tools/bench/h100.sh build-h100 setup serve 2>&1 | grep -E "concurrency|mean|max|capacity|^ *[0-9]+ " | tail -16
B=build-h100/bin; M=/tmp/q4b
for b in cuda vulkan; do
  timeout 150 $B/qrun bench latency --backend $b --model $M --prompt-lens 512,8192 --gen 64 --long-run 0 2>&1 | grep -E -A3 "^prompt"
done
