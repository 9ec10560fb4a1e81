#!/usr/bin/env bash
# Runs the whole test suite: builds (CUDA backend as a compile check for one
# architecture when nvcc exists), makes the demo model if missing, runs every
# ctest (unit, parity on the CPU reference and on Vulkan/lavapipe, end to end
# against HF references, CLI, server, web page), then the bounded fuzzers.
set -euo pipefail
cd "$(dirname "$0")/.."
export QR_CUDA_ARCHS=${QR_CUDA_ARCHS:-80}
scripts/build.sh -DQR_CUDA_ARCHS="$QR_CUDA_ARCHS"
if [ ! -f models/demo/config.json ]; then
  build/bin/qrun-mkmodel --preset qwen3-tiny --seed 1 --out models/demo
fi
status=0
(cd build && ctest --output-on-failure -j2 --timeout 900) || status=1
if [ -f tests/fuzz.sh ]; then
  bash tests/fuzz.sh || status=1
fi
exit $status
