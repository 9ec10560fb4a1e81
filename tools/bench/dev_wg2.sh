# dev_wg.sh, then (if the wgmma checks pass) serving capacity at 8192/512
bash tools/bench/dev_wg.sh
grep -q "wgmma.*FAIL" $OUT/lab.txt && exit 0
export QRUN_COMMIT=$(cat .commit 2>/dev/null || echo unknown)
STAGE_TIMEOUT=240 OUT=$OUT tools/bench/h100.sh build-h100 serve 2>&1 | grep -E "concurrency|TTFT|max|===" | tail -14
