#!/usr/bin/env bash
# One GPU-machine run of the RL benchmark (issue 6), from the repo root with .whl and .anchors carried:
# our engine (bench/bench_rl.py) and plain TRL (the anchor harness's rl_bench.py, `trl` system) on the
# same random Qwen3-4B folder, in the same call.  Everything lands in $OUT.
#   bash bench/run_rl_gpu.sh "STAGE ..."
# STAGE = ours_ALGO[_fast|_slow][_TAG]:STEPS  or  trl_ALGO:SECONDS  or  unsloth_ALGO[_heavy]:SECONDS
# (ALGO = dpo | grpo; _heavy = 2 prompts x 8 completions x 512 tokens, the issue-15 heavier workload,
# also for ours with RL_ARGS="--num-generations 8 --grpo-batch 16 --max-completion-length 512"), e.g.
#   bash bench/run_rl_gpu.sh "ours_dpo:6 trl_dpo:90 ours_grpo_fast:6 unsloth_grpo:220"
set -u
R=$OUT; mkdir -p $R
export PYTHONPATH=$PWD/.whl/site HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTORCH_ALLOC_CONF=expandable_segments:True
python3 -m pip install -q --no-deps --no-build-isolation -e . > $R/pip.log 2>&1 || { tail $R/pip.log; exit 1; }
MODEL=$HOME/anchor-qwen3-4b-random
[ -f $MODEL/config.json ] || timeout 200 python3 .anchors/make_model.py $MODEL --arch qwen3-4b > $R/make_model.log 2>&1
for st in $1; do
  name=${st%%:*}; arg=${st#*:}
  echo "### $name $(date -u +%T)"
  case $name in
    ours_*)
      algo=$(echo $name | cut -d_ -f2); mode=$(echo $name | cut -d_ -f3)
      fast=on; [ "$mode" = slow ] && fast=off
      extra=""; case $name in *_heavy*) extra="--num-generations 8 --grpo-batch 16 --max-completion-length 512";; esac
      timeout 400 python3 bench/bench_rl.py --algo $algo --model $MODEL --steps $arg --fast-rollout $fast \
        $extra --out $R/$name.json > $R/$name.log 2>&1
      grep -E "^step|^\{|Error|error:|\[warning\]|rollout|Log-probs" $R/$name.log | tail -14 ;;
    trl_*)
      algo=${name#trl_}
      ARCH=qwen3-4b MODEL=$MODEL RES=$R/anchors OUT=$R/anchors_out timeout $((arg + 30)) \
        bash .anchors/run_remote.sh $name $((arg + 20)) "${algo}_trl::::$arg" > $R/$name.log 2>&1
      grep -E "step [0-9]|median|peak|Error" $R/$name.log | tail -12 ;;
    unsloth_*)
      algo=$(echo $name | cut -d_ -f2); extra="--steps+6"
      case $name in *_heavy*) extra="--steps+5+--num-generations+8+--grpo-batch+16+--max-completion-length+512+--max-seq-length+1024";; esac
      ARCH=qwen3-4b MODEL=$MODEL RES=$R/anchors OUT=$R/anchors_out timeout $((arg + 60)) \
        bash .anchors/run_remote.sh $name $((arg + 40)) "${algo}_unsloth:::$extra:$arg" > $R/$name.log 2>&1
      grep -E "step [0-9]|median|peak|Error" $R/$name.log | tail -12 ;;
  esac
done
