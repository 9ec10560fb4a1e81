# per-node GPU time of a prompt step (8192) and of decode, and an nsys kernel summary of the prompt step
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
B=build-h100/bin; M=/tmp/q4b
tools/bench/h100.sh build-h100 setup >/dev/null 2>&1
QR_CUDA_PROFILE=1 timeout 120 $B/qrun bench latency --backend cuda --model $M --prompt-lens 8192 --gen 16 --long-run 0 > $OUT/prof8k.txt 2>&1
grep -A45 "cuda profile" $OUT/prof8k.txt | head -60
NS=$(ls /usr/local/cuda/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys 2>/dev/null | head -1); echo "nsys: $NS"
if [ -n "$NS" ]; then
  $NS profile -o $OUT/ns --force-overwrite true $B/qrun bench latency --backend cuda --model $M --prompt-lens 8192 --gen 4 --long-run 0 > $OUT/nsrun.txt 2>&1
  $NS stats --report cuda_gpu_kern_sum --format csv $OUT/ns.nsys-rep > $OUT/kern.csv 2>&1; head -30 $OUT/kern.csv | cut -c1-260
  rm -f $OUT/ns.nsys-rep $OUT/ns.sqlite
fi
