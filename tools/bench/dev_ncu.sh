export LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
/usr/local/cuda/bin/ncu --section SpeedOfLight --section Occupancy --section LaunchStats --section MemoryWorkloadAnalysis -k regex:k_gemv build-h100/bin/cuda_kernel_lab --gemv-ncu > $OUT/ncu.txt 2>&1
grep -E "k_gemv|Duration|Registers Per|Achieved Occupancy|Theoretical Occupancy|DRAM Throughput|Memory Throughput|Block Limit Reg|Waves Per SM|L1/TEX Hit|L2 Hit|Mem Busy|Max Bandwidth" $OUT/ncu.txt | head -120
