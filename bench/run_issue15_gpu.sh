# Issue 15 measurement on the GPU machine (carry .whl, .anchors, and .oldtree for the "before" code):
#   STAGES="ours_grpo_fast:5 unsloth_grpo:100" bash bench/run_issue15_gpu.sh
# 1. the decode token step of the code in .oldtree (git archive of the "before" commit), if carried;
# 2. this tree: the sampler's GPU tests; bench/run_rl_gpu.sh with $STAGES (ours and Unsloth on the same
#    machine); then the decode profile (SEQS batch sizes, one model load); DPO_PROFILE=1: a DPO profile.
export PYTHONPATH=$PWD/.whl/site HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTORCH_ALLOC_CONF=expandable_segments:True
nvidia-smi --query-gpu=name --format=csv,noheader
MODEL=$HOME/anchor-qwen3-4b-random
[ -f $MODEL/config.json ] || timeout 200 python3 .anchors/make_model.py $MODEL --arch qwen3-4b > $OUT/make_model.log 2>&1
SEQS=${SEQS:-4,16}; NEW=${NEW:-128}
if [ -d .oldtree ]; then
  mkdir -p $OUT/old
  python3 -m pip install -q --no-deps --no-build-isolation -e .oldtree > $OUT/old/pip.log 2>&1 || tail $OUT/old/pip.log
  timeout 200 python3 bench/profile_decode.py --model $MODEL --seqs $SEQS --new $NEW --out $OUT/old/decode.json > $OUT/old/decode.log 2>&1
  echo "old decode rc=$?"; grep -E "^##|ms per|CUDA kernels" $OUT/old/decode.log
fi
python3 -m pip install -q --no-deps --no-build-isolation -e . > $OUT/pip.log 2>&1 || { tail $OUT/pip.log; exit 1; }
TRITON_INTERPRET=0 timeout ${TESTS_S:-120} python3 -m pytest -q -p no:cacheprovider tests/kernels/test_decode_gpu.py > $OUT/gpu_tests.log 2>&1; tail -3 $OUT/gpu_tests.log
[ -n "${STAGES:-}" ] && OUT=$OUT/rl bash bench/run_rl_gpu.sh "$STAGES" 2>&1 | grep -E "###|^step|median_step|\] step [0-9]|Error"
timeout 200 python3 bench/profile_decode.py --model $MODEL --seqs $SEQS --new $NEW --out $OUT/decode.json > $OUT/decode.log 2>&1
echo "new decode rc=$?"; grep -E "^##|ms per|CUDA kernels|whole" $OUT/decode.log
if [ -n "${DPO_PROFILE:-}" ]; then  # where a DPO step's host time goes (cProfile of steps 1-5, torch profile of step 3)
  BENCH_PROFILE_STEP=3 timeout 200 python3 -m cProfile -o $OUT/dpo.prof bench/bench_rl.py --algo dpo --model $MODEL --steps 5 --out $OUT/dpo.json > $OUT/dpo.log 2>&1; echo "dpo rc=$?"
  grep -E "^step|median" $OUT/dpo.log | tail -6
  python3 -c "
import pstats; s=pstats.Stats('$OUT/dpo.prof'); s.sort_stats('tottime').print_stats(40); s.sort_stats('cumulative').print_stats(80)" > $OUT/dpo_pstats.txt 2>&1
fi
true
