#!/usr/bin/env bash
# One GPU-machine run for issue 16's 64K at 12 GiB: the pinned pool's and attention's GPU tests, the
# attention backward's own memory whole against over KV-head groups (bench/attention_backward_memory.py),
# then 8B QLoRA at 12 GiB / 32 GiB through bench/run_long_context_gpu.sh; where its first length runs out
# of memory, bench/probe_long_memory.py (4 layers, the same cap) lists what was alive at the failing request.
# From the repo root with .whl and .anchors carried.  Results in $OUT.
#   bash bench/run_attention_split_gpu.sh [LENGTHS]      (default 65536,73728,81920)
set -u
R=$OUT; mkdir -p "$R"
export PYTHONPATH=$PWD/.whl/site HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTORCH_ALLOC_CONF=expandable_segments:True
python3 -m pip install -q --no-deps --no-build-isolation -e . > "$R/pip.log" 2>&1 || { tail "$R/pip.log"; exit 1; }
TRITON_INTERPRET=0 timeout 180 python3 -m pytest -q -p no:cacheprovider --tb=short -rfs \
  tests/kernels/test_pinned_pool_gpu.py tests/kernels/test_attention.py > "$R/gputests.txt" 2>&1
grep -E "passed|failed|^FAILED|^E " "$R/gputests.txt" | head -30
timeout 150 python3 bench/attention_backward_memory.py --lengths 8192,65536 --out "$R/attention_backward.json" \
  > "$R/attention_backward.log" 2>&1; grep -v Warn "$R/attention_backward.log" | tail -12
LENGTHS=${1:-65536,73728,81920}
bash bench/run_long_context_gpu.sh "tunesmith:12:32:$LENGTHS:300"
if grep -q '"status": "oom"' "$R/tunesmith_cap12_ram32.json" 2>/dev/null; then
  timeout 150 python3 bench/probe_long_memory.py --layers 4 --lengths "${LENGTHS%%,*}" --gpu-cap-gib 12 \
    --held-gib 4.4 --out "$R/probe.json" > "$R/probe.log" 2>&1
  grep -E '"tokens"|"loss"|asked|"at"|peak_over|largest' -A0 "$R/probe.log" | head -20
  python3 -c "import json;r=json.load(open('$R/probe.json'))['lengths'][-1];print(r['largest_alive_GiB']);print(list(r['alive_at_peak_H'].items())[:14])"
fi
