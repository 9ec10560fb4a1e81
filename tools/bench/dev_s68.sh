# dev_s68.sh (twenty-second session, call 1): where the TMA prompt-attention kernel's cycles go (8192 causal, 64-token
# blocks, BF16): its SASS, ncu with per-instruction stall samples (source page as CSV), and the lab's timing.  ~150 s.
# Carry ["build-h100/bin","build-h100/deps",".commit"].
. tools/bench/dev_env.sh
F=_Z18k_attn_prefill_tmaI13__nv_bfloat16Li3ELi128ELb0ELb0ELi0EEv12qr_cuda_attn14CUtensorMap_stS2_
CO=$(ls /usr/local/cuda/bin/cuobjdump 2>/dev/null || which cuobjdump); NCU=$(ls /usr/local/cuda/bin/ncu 2>/dev/null || which ncu)
echo "cuobjdump: $CO  ncu: $NCU"
$CO -sass -fun $F $B/cuda_kernel_lab > $O/tma.sass 2>&1; wc -l $O/tma.sass
$CO -sass -fun ${F/Li0EEv/Li1EEv} $B/cuda_kernel_lab > $O/tma_fl1.sass 2>&1; wc -l $O/tma_fl1.sass
echo "== lab timing (TMA kernel, 8192 causal, 64-token blocks), three runs"
for i in 1 2 3; do
  timeout 60 $B/cuda_kernel_lab --attn-tma-time 2>&1 | tail -1
  for f in 1 2 3 7; do timeout 60 $B/cuda_kernel_lab --attn-tma-fl $f 2>&1 | tail -4; done
done
echo "== ncu (${SECONDS} s)"
timeout 240 $NCU --set full --import-source no --launch-count 1 -k regex:k_attn_prefill_tma -o /tmp/tma \
    $B/cuda_kernel_lab --attn-ncu64 > $O/ncu_run.txt 2>&1; echo "ncu rc $?"; tail -3 $O/ncu_run.txt
$NCU -i /tmp/tma.ncu-rep --page source --csv --print-source sass > $O/tma_src.csv 2>&1 || \
    $NCU -i /tmp/tma.ncu-rep --page source --csv > $O/tma_src.csv 2>&1
wc -c $O/tma_src.csv; head -c 600 $O/tma_src.csv; echo
$NCU -i /tmp/tma.ncu-rep --page details > $O/tma_details.txt 2>&1
grep -E "Duration|Issue Slots Busy|Registers Per|Warp Cycles Per Issued|Tensor|No Eligible|Active Warps Per|\
Executed Ipc A" $O/tma_details.txt | head -20
echo "total ${SECONDS} s"
