#!/usr/bin/env bash
# Copies the Debian runtime libraries that the GPU machine (Ubuntu 24.04) lacks into BUILD_DIR/deps, so binaries
# built here run there (dev scripts put BUILD_DIR/deps on LD_LIBRARY_PATH).  Carry BUILD_DIR/bin and BUILD_DIR/deps.
#   tools/bench/mkdeps.sh [BUILD_DIR]      (default build-h100)
set -euo pipefail
B=${1:-build-h100}
mkdir -p "$B/deps"
for lib in libcjson.so.1 libiniparser.so.1 libmicrohttpd.so.12 libutf8proc.so.2; do
  src=$(ldconfig -p | awk -v l="$lib" '$1 == l && /x86-64/ {print $NF; exit}')
  [ -n "$src" ] || { echo "mkdeps: $lib not found (run scripts/install-deps.sh)" >&2; exit 1; }
  cp -L "$src" "$B/deps/$lib"
done
ls "$B/deps"
