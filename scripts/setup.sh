#!/usr/bin/env bash
# One command for a fresh Debian 12 machine: install every dependency, build,
# make the small random-weight demo model (models/demo, with the real Qwen3
# tokenizer) and run qrun's main job on it: `qrun prompt.txt`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh "$@"
if [ ! -f models/demo/config.json ]; then
  echo "[setup] making the demo model in models/demo"
  build/bin/qrun-mkmodel --preset qwen3-tiny --seed 1 --out models/demo
fi
[ -f prompt.txt ] || printf 'Write a haiku about GPUs.\n' > prompt.txt
echo "[setup] running: build/bin/qrun --backend cpu -n 32 prompt.txt"
build/bin/qrun --backend cpu -n 32 prompt.txt
