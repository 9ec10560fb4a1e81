#!/usr/bin/env bash
# Vulkan decode check on the GPU machine, from the repo root, after
#   tools/bench/h100.sh build-h100 setup vkloader     (model + Vulkan loader, same shell)
# Runs the Vulkan parity/e2e/fusion/graph tests, the per-shader profile of
# bench latency (512 and 8192 prompts) and qr-step-bench (whole decode step
# at ctx 512, then each decode op alone with its bandwidth).  Full logs under
# $OUT; prints summaries only.
set -u
B=build-h100/bin; M=/tmp/q4b
OUT=${OUT:-/tmp/qrun-vk}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:${LD_LIBRARY_PATH:-} QR_BUILD_DIR=build-h100
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null
echo "== tests (vulkan)"
timeout 180 $B/test_backend_ops -b vulkan > $OUT/ops.txt 2>&1; echo "rc=$?"; grep -E "^device|FAIL|passed" $OUT/ops.txt | tail -8
timeout 180 $B/test_e2e -b vulkan > $OUT/e2e.txt 2>&1; echo "rc=$?"; grep -E "FAIL|passed|worst" $OUT/e2e.txt | tail -6
timeout 120 $B/test_graph_fusion -b vulkan > $OUT/fusion.txt 2>&1; echo "rc=$?"; grep -E "FAIL|passed" $OUT/fusion.txt | tail -6
timeout 120 $B/test_vulkan_graph > $OUT/vkgraph.txt 2>&1; echo "rc=$?"; grep -E "FAIL|passed|SKIP" $OUT/vkgraph.txt | tail -6
echo "== per-shader profile, bench latency 512,8192 (gen 32)"
QR_VK_PROFILE=1 timeout 300 $B/qrun bench latency --backend vulkan --model $M --prompt-lens 512,8192 --gen 32 \
    --long-run 0 > $OUT/vkprofile.txt 2>&1; echo "rc=$?"
grep -iE "^prompt|tok/s|ttft" $OUT/vkprofile.txt | head -12
grep -A30 "vulkan profile" $OUT/vkprofile.txt | grep -E "profile|dispatches" | head -30
echo "== bench latency 512,8192 (no profiler, gen 64)"
timeout 300 $B/qrun bench latency --backend vulkan --model $M --prompt-lens 512,8192 --gen 64 --long-run 0 \
    > $OUT/latency.txt 2>&1; echo "rc=$?"
grep -iE "^prompt|tok/s|ttft" $OUT/latency.txt | head -12
echo "== qr-step-bench ctx 512 (+ each decode op alone)"
timeout 300 $B/qr-step-bench -b vulkan --ctx 512 --reps 30 --ops > $OUT/step512.txt 2>&1; echo "rc=$?"
grep -E "^decode|^prefill|^op " $OUT/step512.txt
echo "== qr-step-bench ctx 8192 (decode + ops, no prefill)"
timeout 300 $B/qr-step-bench -b vulkan --ctx 8192 --prompt 0 --reps 30 --ops > $OUT/step8192.txt 2>&1; echo "rc=$?"
grep -E "^decode|^op " $OUT/step8192.txt
