#!/usr/bin/env bash
# One full GPU-machine run (from the repo root, .whl and .anchors carried): GPU kernel tests, the
# QLoRA benchmark, Unsloth from the shared anchor harness on the same model folder, then the longest
# batch-1 context.  Everything lands in $OUT/run.tgz (one file: the device tool returns few files)
# plus $OUT/summary.txt; each stage has its own time cap so a slow stage cannot eat the others.
#   bash bench/run_gpu.sh [ANCHOR_STAGE_SECONDS]   (0: no Unsloth)
# Environment: SYSTEMS (default hf,tunesmith,tunesmith_cpuemb), MAXCTX (lengths for the last system;
# empty: none), TESTS_S (cap for the GPU kernel tests, 0: none), STEPS (timed steps, default 8).
set -u
UNS=${1:-260}
R=/tmp/tsrun; mkdir -p $R
export PYTHONPATH=$PWD/.whl/site HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTORCH_ALLOC_CONF=expandable_segments:True
pack() { cp $R/bench/table.md $OUT/summary.txt 2>/dev/null; tar czf $OUT/run.tgz -C /tmp tsrun; }
trap pack EXIT
python3 -m pip install -q --no-deps --no-build-isolation -e . > $R/pip.log 2>&1 || { tail $R/pip.log; exit 1; }
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nproc; lscpu | grep 'Model name'; } | tee $R/machine.txt
MODEL=$HOME/anchor-llama8b-random
[ -f $MODEL/config.json ] || (timeout 200 python3 .anchors/make_model.py $MODEL > $R/make_model.log 2>&1 &)
if [ "${TESTS_S:-200}" -gt 0 ]; then  # -v: the log shows how far a capped run got
  TRITON_INTERPRET=0 timeout "${TESTS_S:-200}" python3 -m pytest -v -p no:cacheprovider tests/kernels --durations=15 \
    > $R/gputests.txt 2>&1
  grep -E "passed|failed|FAILED|ERROR" $R/gputests.txt | tail -8
fi
while [ ! -f $MODEL/config.json ] || pgrep -f make_model.py > /dev/null; do sleep 2; done
timeout 400 python3 bench/bench_qlora.py --model $MODEL --systems "${SYSTEMS:-hf,tunesmith,tunesmith_cpuemb}" \
  --configs 2x2048,1x8192 --warmup 3 --steps "${STEPS:-8}" --profile --timeout 160 --out $R/bench \
  2>&1 | grep -v -i -e warn -e "Loading weights" | tee $R/bench.log | grep "^|" | tail -12
if [ "$UNS" -gt 0 ]; then
  RES=$R/anchors OUT=$R/anchors_out timeout $((UNS + 20)) bash .anchors/run_remote.sh ts $UNS \
    "unsloth:2x2048,1x8192::--warmup+3+--steps+8:$UNS" > $R/anchors.log 2>&1
  tail -12 $R/anchors.log
fi
if [ -n "${MAXCTX:-}" ]; then
  timeout 200 python3 bench/bench_qlora.py --model $MODEL --systems tunesmith_cpuemb --configs "" \
    --maxctx "$MAXCTX" --timeout 190 --out $R/maxctx 2>&1 | grep -v -i -e warn -e "Loading weights" \
    | tee $R/maxctx.log | tail -4
fi
