#!/usr/bin/env bash
# The headline run on a lent GPU machine (the device tool): carry .whl/ (bash ../shared/device/prepare-wheels.sh:
# bitsandbytes, trl, peft, unsloth, ... for a machine without network), then from the repo root
#   bash bench/run_device.sh
# It installs the project, runs the GPU kernel tests (capped), and `python -m bench qlora` with the stock
# recipe, Tunesmith and Unsloth on 2x2048 and 1x8192.  On a machine of your own with the project and
# Unsloth installed, the one command is the `python -m bench qlora` line below.
# Output: $OUT/summary.txt (the table) and $OUT/run.tgz (every JSON and log).
set -u
OUT=${OUT:-/tmp/tunesmith-bench-out}; mkdir -p "$OUT"
R=/tmp/tsrun; rm -rf $R; mkdir -p $R
export PYTHONPATH=$PWD/.whl/site HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTORCH_ALLOC_CONF=expandable_segments:True
pack() { cp $R/bench/table.md "$OUT/summary.txt" 2>/dev/null; tar czf "$OUT/run.tgz" -C /tmp tsrun; }
trap pack EXIT
python3 -m pip install -q --no-deps --no-build-isolation -e . > $R/pip.log 2>&1 || { tail $R/pip.log; exit 1; }
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nproc; } | tee $R/machine.txt
if [ "${TESTS_S:-90}" -gt 0 ]; then
  TRITON_INTERPRET=0 timeout "${TESTS_S:-90}" python3 -m pytest -q -p no:cacheprovider tests/kernels \
    > $R/gputests.txt 2>&1
  tail -2 $R/gputests.txt
fi
timeout "${BENCH_S:-480}" python3 -m bench qlora --systems "${SYSTEMS:-hf,tunesmith,unsloth}" \
  --configs "${CONFIGS:-2x2048,1x8192}" --warmup 3 --steps "${STEPS:-8}" --timeout "${SYSTEM_S:-170}" \
  --out $R/bench 2>&1 | grep -v -i -e warn -e "Loading weights" | tee $R/bench.log | grep -E "^\||^###|^gpu|built" | tail -14
