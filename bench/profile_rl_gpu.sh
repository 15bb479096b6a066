# Issue 15 profile (RL runs 3 and 6): where a GRPO decode step and a DPO step go, on the GPU machine
# (carry .whl, .anchors).  SEQS: the decode batch sizes to profile (default 4; "4 16" for both workloads).
export PYTHONPATH=$PWD/.whl/site HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTORCH_ALLOC_CONF=expandable_segments:True
python3 -m pip install -q --no-deps --no-build-isolation -e . > $OUT/pip.log 2>&1 || { tail $OUT/pip.log; exit 1; }
MODEL=$HOME/anchor-qwen3-4b-random
[ -f $MODEL/config.json ] || timeout 200 python3 .anchors/make_model.py $MODEL --arch qwen3-4b > $OUT/make_model.log 2>&1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
for s in ${SEQS:-4}; do
  timeout 240 python3 bench/profile_decode.py --model $MODEL --seqs $s --new ${NEW:-256} --out $OUT/decode_$s.json > $OUT/decode_$s.log 2>&1
  echo "decode seqs=$s rc=$?"
  grep -E "ms per|kernels|group|head" $OUT/decode_$s.log
done
BENCH_PROFILE_STEP=3 timeout 240 python3 -m cProfile -o $OUT/dpo.prof bench/bench_rl.py --algo dpo --model $MODEL --steps 5 --out $OUT/dpo.json > $OUT/dpo.log 2>&1; echo dpo rc=$?
grep -E "^step|median" $OUT/dpo.log | tail -8
python3 -c "
import pstats; s=pstats.Stats('$OUT/dpo.prof'); s.sort_stats('tottime').print_stats(40); s.sort_stats('cumulative').print_stats(80)" > $OUT/dpo_pstats.txt 2>&1
head -c 3000 $OUT/dpo.profile.txt
