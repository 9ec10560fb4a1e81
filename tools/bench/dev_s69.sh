# dev_s69.sh (twenty-second session): the lean form of dev_s68.sh for the last minutes of device time: SASS of the TMA
# prompt attention (FL 0 / 1 / 3), the lab's checks and 8192-causal timings of the default and FL 1 2 3 7 8 11, parity of
# FL 3 and 7 (test_backend_ops).  ~90 s.  Carry ["build-h100/bin","build-h100/deps",".commit"].
. tools/bench/dev_env.sh
F=_Z18k_attn_prefill_tmaI13__nv_bfloat16Li3ELi128ELb0ELb0ELi0EEv12qr_cuda_attn14CUtensorMap_stS2_
CO=$(ls /usr/local/cuda/bin/cuobjdump 2>/dev/null || which cuobjdump)
for v in 0 1 3; do $CO -sass -fun ${F/Li0EEv/Li${v}EEv} $B/cuda_kernel_lab > $O/tma_fl$v.sass 2>&1; done
wc -l $O/*.sass
for v in 0 1 3; do   # the order of the MMAs, their waits and the exponentials in each kernel (runs counted)
  echo "-- SASS FL $v"; grep -oE "HGMMA|WARPGROUP\.(DEPBAR|ARRIVE)[^;]*|MUFU\.EX2|BAR\.(SYNC|ARV)|SYNCS\.[A-Z.]+" \
      $O/tma_fl$v.sass | sed 's/ *$//' | uniq -c | tr -s ' ' | paste -sd';' | cut -c1-1500
done
echo "== lab: default, then FL 1 2 3 7 8 11 (checks; 16 no softmax and 32 no MMAs: timing only, then 8192 causal, 64-token blocks)"
timeout 30 $B/cuda_kernel_lab --attn-tma-time 2>&1 | tail -1
for f in 1 2 3 7 8 11 16 32; do timeout 40 $B/cuda_kernel_lab --attn-tma-fl $f 2>&1 | grep -E "FAIL|fail| us "; done
timeout 30 $B/cuda_kernel_lab --attn-tma-time 2>&1 | tail -1
echo "== parity with FL 3 and 7 (${SECONDS} s)"
for f in 3 7 11; do QR_CUDA_ATTN_TMA_FL=$f timeout 50 $B/test_backend_ops -b cuda 2>&1 | tail -1; done
echo "total ${SECONDS} s"
