#!/usr/bin/env bash
# One GPU-machine run of issue 16's longest-context check: 8B QLoRA (the anchor harness's random
# Llama-3.1-8B folder, built with max_position_embeddings 262,144 so no system rescales RoPE), batch 1,
# the GPU capped with --gpu-cap-gib (a consumer card) and, for Tunesmith, the host memory of a desktop
# emulated with TUNESMITH_HOST_RAM_GIB (its pinned budget and stash cap; kernels/memory/host_budget.py).
# The harness records peak allocated GPU memory, peak RSS and pinned host bytes per length.
# From the repo root with .whl and .anchors carried.  Results in $OUT.
#
#   bash bench/run_long_context_gpu.sh STAGE ...
#     STAGE = tunesmith:CAP:RAM:LENGTHS[:SECONDS]   e.g. tunesmith:24:64:163840
#           = unsloth:CAP:-:LENGTHS[:SECONDS]       e.g. unsloth:24:-:81920,98304
#   PROBE=1 first runs bench/probe_long_memory.py (4 layers, where a step's GPU memory goes).
set -u
R=$OUT; mkdir -p "$R"
export PYTHONPATH=$PWD/.whl/site HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTORCH_ALLOC_CONF=expandable_segments:True
export UNSLOTH_DISABLE_STATISTICS=1 TOKENIZERS_PARALLELISM=false
python3 -m pip install -q --no-deps --no-build-isolation -e . > "$R/pip.log" 2>&1 || { tail "$R/pip.log"; exit 1; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader; free -g | head -2
if [ "${PROBE:-0}" = 1 ]; then
  timeout 200 python3 bench/probe_long_memory.py --layers 4 --lengths 16384,65536 --out "$R/probe.json" \
    > "$R/probe.log" 2>&1; tail -60 "$R/probe.log"
fi
MODEL=$HOME/anchor-llama8b-262k
[ -f $MODEL/config.json ] || timeout 200 python3 .anchors/make_model.py $MODEL --max-pos 262144 > "$R/make_model.log" 2>&1
for stage in "$@"; do
  IFS=':' read -r SYS CAP RAM LENGTHS SECS <<< "$stage"
  NAME="${SYS}_cap${CAP}_ram${RAM}"
  echo "### $NAME lengths $LENGTHS $(date -u +%T)"
  if [ "$SYS" = tunesmith ]; then
    TUNESMITH_HOST_RAM_GIB=$RAM timeout ${SECS:-300} python3 .anchors/qlora_bench.py --system tunesmith \
      --model $MODEL --configs "" --maxctx "$LENGTHS" --gpu-cap-gib "$CAP" --host-ram-guard-gib 4 --no-skip \
      --out "$R/$NAME.json" > "$R/$NAME.log" 2>&1
  else
    MAXLEN=$(echo "$LENGTHS" | tr ',' '\n' | sort -n | tail -1)
    timeout ${SECS:-300} python3 .anchors/qlora_bench.py --system unsloth --model $MODEL --configs "" \
      --maxctx "$LENGTHS" --max-seq-length "$MAXLEN" --gpu-cap-gib "$CAP" --host-ram-guard-gib 4 --no-skip \
      --out "$R/$NAME.json" > "$R/$NAME.log" 2>&1
  fi
  python3 - "$R/$NAME.json" <<'EOF'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except (OSError, ValueError) as e:
    print("no result:", e); sys.exit()
print("load", {k: round(v, 2) for k, v in r.get("load", {}).items() if isinstance(v, float)},
      "host", {k: round(v, 2) for k, v in r.get("load", {}).get("host", {}).items() if "peak" in k})
for m in r.get("maxctx", []):
    flat = {}
    for k, v in m.items():
        flat.update(v if isinstance(v, dict) else {k: v})
    keep = ("seq", "status", "step_s", "forward_s", "backward_s", "loss", "peak_alloc_GiB", "peak_alloc_forward_GiB",
            "phase", "error")
    print({k: (round(v, 2) if isinstance(v, float) else (v[:300] if isinstance(v, str) else v)) for k, v in flat.items()
           if k in keep or k.startswith(("host_rss_peak", "host_pinned", "host_VmPin", "host_sys_used_over"))})
EOF
  grep -iE "Error|Traceback|HostMemoryShort|GUARD" "$R/$NAME.log" | tail -4
done
