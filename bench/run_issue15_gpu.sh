# Issue 15 measurement (RL run 5): GPU tests of the sampler, then ours and Unsloth on GRPO (carry .whl, .anchors).
export PYTHONPATH=$PWD/.whl/site HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTORCH_ALLOC_CONF=expandable_segments:True
python3 -m pip install -q --no-deps --no-build-isolation -e . > $OUT/pip.log 2>&1 || { tail $OUT/pip.log; exit 1; }
nvidia-smi --query-gpu=name --format=csv,noheader
MODEL=$HOME/anchor-qwen3-4b-random
[ -f $MODEL/config.json ] || timeout 200 python3 .anchors/make_model.py $MODEL --arch qwen3-4b > $OUT/make_model.log 2>&1
TRITON_INTERPRET=0 timeout 60 python3 -m pytest -x -q -p no:cacheprovider tests/kernels/test_decode_gpu.py > $OUT/gpu_tests.log 2>&1; tail -2 $OUT/gpu_tests.log
OUT=$OUT/rl bash bench/run_rl_gpu.sh "ours_grpo_fast:5 unsloth_grpo:100 ours_grpo_fast_heavy:4" 2>&1 | grep -E "###|^step|median_step|\] step [0-9]"
