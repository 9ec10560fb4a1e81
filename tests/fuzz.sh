#!/bin/bash
# fuzz.sh - build every libFuzzer target (fuzz/fuzz_*.c) with clang + ASan/UBSan
# into build-fuzz/ and run each for a bounded time over fuzz/corpus/<name>/.
#   QR_FUZZ_SECONDS  seconds per target (default 15)
#   QR_FUZZ_BUILD    build dir (default build-fuzz)
# New inputs go to $QR_FUZZ_BUILD/corpus-work/<name> (the checked-in corpus is read
# only; fuzz/<name>.dict, where present, is the target's libFuzzer dictionary); crashes are written to
# $QR_FUZZ_BUILD/artifacts/ and fail the script.
# Skips cleanly (exit 0, message) without clang or libFuzzer.  scripts/test.sh
# calls it after ctest; as a ctest (sh_fuzz, QR_BUILD_DIR set) it only runs when
# QR_FUZZ_IN_CTEST=1, so the suite does not fuzz twice.
set -u
cd "${QR_SOURCE_DIR:-$(dirname "$0")/..}"
if [ -n "${QR_BUILD_DIR:-}" ] && [ "${QR_FUZZ_IN_CTEST:-0}" != 1 ]; then
  echo "fuzz: SKIP under ctest (scripts/test.sh runs tests/fuzz.sh; set QR_FUZZ_IN_CTEST=1 to run it here)"
  echo "fuzz: 0 passed, 0 failed"
  exit 0
fi
SECS=${QR_FUZZ_SECONDS:-15}
BD=${QR_FUZZ_BUILD:-build-fuzz}
CC_BIN=${CLANG:-clang}
if ! command -v "$CC_BIN" >/dev/null 2>&1; then
  echo "fuzz: SKIP: clang not found (install clang to run the fuzzers)"; exit 0
fi
probe=$(mktemp -d); trap 'rm -rf "$probe"' EXIT
printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n){(void)d;(void)n;return 0;}\n' > "$probe/p.c"
if ! "$CC_BIN" -fsanitize=fuzzer,address "$probe/p.c" -o "$probe/p" >/dev/null 2>&1; then
  echo "fuzz: SKIP: $CC_BIN cannot link -fsanitize=fuzzer (libFuzzer missing)"; exit 0
fi
if [ ! -f "$BD/build.ninja" ]; then
  CC="$CC_BIN" CXX="${CLANGXX:-clang++}" cmake -S . -B "$BD" -G Ninja -DQR_FUZZ=ON -DQR_SANITIZE=ON -DQR_WERROR=OFF \
    -DQR_CUDA=OFF -DQR_VULKAN=OFF -DCMAKE_BUILD_TYPE=Release >"$probe/cmake.log" 2>&1 \
    || { cat "$probe/cmake.log"; echo "fuzz: FAIL: configure"; exit 1; }
fi
targets=()
for src in fuzz/fuzz_*.c; do targets+=("$(basename "$src" .c)"); done
ninja -C "$BD" -j"${QR_FUZZ_JOBS:-2}" "${targets[@]}" >"$probe/build.log" 2>&1 \
  || { tail -40 "$probe/build.log"; echo "fuzz: FAIL: build"; exit 1; }
mkdir -p "$BD/artifacts"
pass=0 fail=0
for t in "${targets[@]}"; do
  name=${t#fuzz_}
  work="$BD/corpus-work/$name"; mkdir -p "$work"
  dirs=("$work"); [ -d "fuzz/corpus/$name" ] && dirs+=("fuzz/corpus/$name")
  echo "fuzz: $t for ${SECS}s"
  dict=(); [ -f "fuzz/$name.dict" ] && dict=(-dict="fuzz/$name.dict")
  if ASAN_OPTIONS=detect_leaks=1 "$BD/bin/$t" "${dict[@]}" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 \
      -max_len=65536 -print_final_stats=1 -artifact_prefix="$BD/artifacts/$t-" "${dirs[@]}" >"$BD/$t.log" 2>&1; then
    pass=$((pass+1)); grep -E "stat::number_of_executed_units|Done [0-9]+ runs" "$BD/$t.log" | tail -1
  else
    fail=$((fail+1)); echo "FAIL $t (log: $BD/$t.log)" >&2; tail -30 "$BD/$t.log" >&2
  fi
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" = 0 ]
