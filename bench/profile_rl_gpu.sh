# Issue 15 profile (RL run 3): where a GRPO decode step and a DPO step go, on the GPU machine (carry .whl, .anchors).
export PYTHONPATH=$PWD/.whl/site HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTORCH_ALLOC_CONF=expandable_segments:True
python3 -m pip install -q --no-deps --no-build-isolation -e . > $OUT/pip.log 2>&1 || { tail $OUT/pip.log; exit 1; }
MODEL=$HOME/anchor-qwen3-4b-random
[ -f $MODEL/config.json ] || timeout 200 python3 .anchors/make_model.py $MODEL --arch qwen3-4b > $OUT/make_model.log 2>&1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 240 python3 bench/profile_decode.py --model $MODEL --out $OUT/decode.json > $OUT/decode.log 2>&1; echo decode rc=$?
grep -v "^\s*$" $OUT/decode.log | grep -v Warning | head -80
BENCH_PROFILE_STEP=3 timeout 240 python3 -m cProfile -o $OUT/dpo.prof bench/bench_rl.py --algo dpo --model $MODEL --steps 5 --out $OUT/dpo.json > $OUT/dpo.log 2>&1; echo dpo rc=$?
grep -E "^step|median" $OUT/dpo.log | tail -8
python3 -c "
import pstats; s=pstats.Stats('$OUT/dpo.prof'); s.sort_stats('tottime').print_stats(35); s.sort_stats('cumulative').print_stats(60)" > $OUT/dpo_pstats.txt 2>&1
head -c 6000 $OUT/dpo.profile.txt
