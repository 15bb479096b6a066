#!/usr/bin/env bash
# Issue 15 point 2: where a DPO step's time goes, and what each lever buys, on the GPU machine
# (carry .whl and .anchors).  VARIANTS is a list of NAME=ARGS (ARGS joined by '+'), each a bench_rl.py run:
#   VARIANTS="base= phases=--phases device=--checkpointing+device" STEPS=8 bash bench/run_dpo_gpu.sh
# TESTS=1 runs the sampler's GPU tests first; PROFILE=1 adds a cProfile of the first variant's run;
# PROFILE_STEP=N a torch.profiler table of the first variant's step N (dpo_NAME.profile.txt);
# UNSLOTH=SECS runs Unsloth's DPO stage last (its results json is copied to $OUT).
export PYTHONPATH=$PWD/.whl/site HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTORCH_ALLOC_CONF=expandable_segments:True
W=/tmp/dpo_work; rm -rf $W; mkdir -p $W  # logs; only results go to $OUT (the tool returns 8 files)
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install -q --no-deps --no-build-isolation -e . > $W/pip.log 2>&1 || { tail $W/pip.log; exit 1; }
MODEL=$HOME/anchor-qwen3-4b-random
[ -f $MODEL/config.json ] || timeout 200 python3 .anchors/make_model.py $MODEL --arch qwen3-4b > $W/make_model.log 2>&1
if [ -n "${TESTS:-}" ]; then
  TRITON_INTERPRET=0 timeout ${TESTS_S:-150} python3 -m pytest -q -p no:cacheprovider tests/kernels/test_decode_gpu.py > $W/gpu_tests.log 2>&1
  echo "gpu tests rc=$?"; tail -15 $W/gpu_tests.log
fi
first=1
for v in ${VARIANTS:-base=}; do
  name=${v%%=*}; extra=${v#*=}; extra=${extra//+/ }
  echo "### dpo $name ($extra) $(date -u +%T)"
  prof=""; [ -n "${PROFILE:-}" ] && [ $first = 1 ] && prof="-m cProfile -o $W/dpo_$name.prof"
  pstep=0; [ $first = 1 ] && pstep=${PROFILE_STEP:-0}
  BENCH_PROFILE_STEP=$pstep timeout ${RUN_S:-200} python3 $prof bench/bench_rl.py --algo dpo --model $MODEL --steps ${STEPS:-8} $extra \
    --out $OUT/dpo_$name.json > $W/dpo_$name.log 2>&1
  echo "rc=$?"; grep -E "^step|^\{|Error|error:" $W/dpo_$name.log | cut -c1-400 | tail -12
  if [ -n "$prof" ]; then
    python3 -c "
import pstats; s=pstats.Stats('$W/dpo_$name.prof'); s.sort_stats('tottime').print_stats(45); s.sort_stats('cumulative').print_stats(90)" > $OUT/dpo_pstats.txt 2>&1
    rm -f $W/dpo_$name.prof
  fi
  first=0
done
if [ -n "${UNSLOTH:-}" ]; then
  rm -rf $W/rl; OUT=$W/rl bash bench/run_rl_gpu.sh "unsloth_dpo:$UNSLOTH"
  cp $W/rl/anchors_out/results_*.json $OUT/ 2>/dev/null
fi
true
