#!/usr/bin/env bash
# Runs the whole test suite: builds (CUDA backend as a compile check for one
# architecture when nvcc exists), makes the demo model if missing, runs every
# ctest (unit, parity on the CPU reference and on Vulkan/lavapipe, end to end
# against HF references, CLI, server, web page), then the bounded fuzzers.
set -euo pipefail
cd "$(dirname "$0")/.."
export QR_CUDA_ARCHS=${QR_CUDA_ARCHS:-90a}
scripts/build.sh -DQR_CUDA_ARCHS="$QR_CUDA_ARCHS"
if [ ! -f models/demo/config.json ]; then
  build/bin/qrun-mkmodel --preset qwen3-tiny --seed 1 --out models/demo
fi
status=0
(cd build && ctest --output-on-failure -j2 --timeout 900) || status=1
# The loader and parser tests again under ASan + UBSan (a CPU-only build).
echo "[test] loader and parser tests under ASan + UBSan"
if cmake -S . -B build-asan -G Ninja -DQR_SANITIZE=ON -DQR_CUDA=OFF -DQR_VULKAN=OFF > build-asan.cmake.log 2>&1 &&
   ninja -C build-asan -j"$(nproc)" qrun-mkmodel test_safetensors test_model_load test_tokenizer test_chat test_openai_parse \
     test_tune_cache test_spv_nv2khr > build-asan.log 2>&1; then
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
     ctest --output-on-failure -R "test_safetensors|test_model_load|test_tokenizer|test_chat|test_openai_parse|test_tune_cache") \
     || status=1
  # the SPIR-V rewriter on the main build's NV modules (this build has no Vulkan plugin)
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 QR_BUILD_DIR="$PWD/build" build-asan/bin/test_spv_nv2khr ||
    status=1
else
  tail -30 build-asan.cmake.log build-asan.log; status=1
fi
if [ -f tests/fuzz.sh ]; then
  bash tests/fuzz.sh || status=1
fi
exit $status
