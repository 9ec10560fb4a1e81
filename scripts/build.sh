#!/usr/bin/env bash
# Configures and builds qrun into ./build.  Extra arguments go to cmake.
# The CUDA backend is built when nvcc is found (QR_CUDA_ARCHS selects GPUs;
# CI compiles one architecture as a compile check).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${QR_BUILD:-build}
args=(-G Ninja -DCMAKE_BUILD_TYPE=Release)
if [ -x /usr/local/cuda/bin/nvcc ]; then
  args+=(-DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc)
fi
cmake -S . -B "$BUILD" "${args[@]}" "$@" > "$BUILD.cmake.log" 2>&1 || { cat "$BUILD.cmake.log"; exit 1; }
grep -E "^-- qrun" "$BUILD.cmake.log" || true
ninja -C "$BUILD" -j"$(nproc)"
