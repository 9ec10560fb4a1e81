export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
B=build-h100/bin; M=/tmp/q4b
tools/bench/h100.sh build-h100 setup >/dev/null 2>&1
:
QR_CUDA_PROFILE=1 timeout 120 $B/qrun bench latency --backend cuda --model $M --prompt-lens 512 --gen 32 --long-run 0 > $OUT/prof1.txt 2>&1
grep -A40 "cuda profile" $OUT/prof1.txt | head -60
NS=$(ls /usr/local/cuda/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys 2>/dev/null | head -1); echo "nsys: $NS"; which ncu
if [ -n "$NS" ]; then
  $NS profile --cuda-graph-trace=node -o $OUT/ns --force-overwrite true $B/qrun bench latency --backend cuda --model $M --prompt-lens 512 --gen 64 --long-run 0 > $OUT/nsrun.txt 2>&1
  $NS stats --report cuda_gpu_kern_sum --format csv $OUT/ns.nsys-rep > $OUT/kern.csv 2>&1; head -40 $OUT/kern.csv | cut -c1-220
  rm -f $OUT/ns.nsys-rep $OUT/ns.sqlite
fi
