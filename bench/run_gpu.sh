#!/usr/bin/env bash
# One full GPU-machine run (from the repo root, .whl and .anchors carried): GPU kernel tests, the
# QLoRA benchmark (hf, tunesmith, tunesmith_cpuemb), then Unsloth from the shared anchor harness on
# the same model folder.  Everything lands in $OUT/run.tgz plus $OUT/summary.txt.
#   bash bench/run_gpu.sh [ANCHOR_STAGE_SECONDS]   (0: no Unsloth)
set -u
UNS=${1:-260}
R=/tmp/tsrun; mkdir -p $R
export PYTHONPATH=$PWD/.whl/site HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTORCH_ALLOC_CONF=expandable_segments:True
python3 -m pip install -q --no-deps --no-build-isolation -e . > $R/pip.log 2>&1 || { tail $R/pip.log; exit 1; }
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nproc; free -g | head -2; } | tee $R/machine.txt
TRITON_INTERPRET=0 timeout 200 python3 -m pytest -q -p no:cacheprovider tests/kernels 2>&1 | tail -4 | tee $R/gputests.txt
MODEL=$HOME/anchor-llama8b-random
[ -f $MODEL/config.json ] || timeout 200 python3 .anchors/make_model.py $MODEL > $R/make_model.log 2>&1
timeout 400 python3 bench/bench_qlora.py --model $MODEL --systems "${SYSTEMS:-hf,tunesmith,tunesmith_cpuemb}" --hf-maxctx "${HF_MAXCTX:-}" \
  --configs 2x2048,1x8192 --maxctx "${MAXCTX-131072}" --warmup 3 --steps 8 --profile --timeout 160 --out $R/bench \
  2>&1 | grep -v -i -e warn -e "Loading weights" | tee $R/bench.log | grep -v "^\s*$" | tail -30
if [ "$UNS" -gt 0 ]; then
  RES=$R/anchors OUT=$R/anchors_out timeout $((UNS + 20)) bash .anchors/run_remote.sh ts $UNS \
    "unsloth:2x2048,1x8192::--warmup+3+--steps+8:$UNS" > $R/anchors.log 2>&1
  tail -12 $R/anchors.log
fi
cp $R/bench/table.md $OUT/summary.txt 2>/dev/null
tar czf $OUT/run.tgz -C /tmp tsrun
