#!/usr/bin/env bash
# One GPU-machine run of the host-memory budget check (issue 13): 8B QLoRA at batch 1 with the GPU
# capped at 24 GiB (an RTX 4090), the kernels patched as the engine does (the anchor harness's
# `tunesmith` system), the kernels' host budget set to 32 and to 64 GiB (TUNESMITH_HOST_BUDGET_GIB);
# the harness records peak RSS and torch's pinned host bytes. From the repo root, .whl and .anchors
# carried.  Results in $OUT.
#   bash bench/run_host_budget_gpu.sh "BUDGET:LENGTHS ..."     e.g. "32:65536,98304 64:65536,98304"
set -u
R=$OUT; mkdir -p "$R"
export PYTHONPATH=$PWD/.whl/site HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTORCH_ALLOC_CONF=expandable_segments:True
python3 -m pip install -q --no-deps --no-build-isolation -e . > "$R/pip.log" 2>&1 || { tail "$R/pip.log"; exit 1; }
MODEL=$HOME/anchor-llama8b-random
[ -f $MODEL/config.json ] || timeout 200 python3 .anchors/make_model.py $MODEL > "$R/make_model.log" 2>&1
free -g | head -2
for stage in $1; do
  budget=${stage%%:*}; lengths=${stage#*:}
  echo "### budget $budget GiB, lengths $lengths $(date -u +%T)"
  TUNESMITH_HOST_BUDGET_GIB=$budget timeout ${STAGE_S:-300} python3 .anchors/qlora_bench.py --system tunesmith \
    --model $MODEL --configs "" --maxctx "$lengths" --gpu-cap-gib 24 --host-ram-guard-gib 8 --no-skip \
    --out "$R/budget$budget.json" > "$R/budget$budget.log" 2>&1
  python3 - "$R/budget$budget.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
for m in r.get("maxctx", []):
    flat = {}
    for k, v in m.items():
        flat.update(v if isinstance(v, dict) else {k: v})
    keep = ("seq", "status", "step_s", "loss", "peak_alloc_GiB", "error")
    print({k: (round(v, 2) if isinstance(v, float) else v) for k, v in flat.items()
           if k in keep or k.startswith(("host_rss_peak", "host_pinned", "rss_peak", "used_peak"))})
EOF
  grep -iE "error|Traceback|HostMemoryShort" "$R/budget$budget.log" | tail -3
done
