# The NF4 rows kernel's forms at decode shapes, then the whole token step (issue 15), in one call
# (carry .whl and .anchors).  SWEEP_S bounds the sweep; the model is made meanwhile.
#   SWEEP_S=300 DENSE_FROM=9 bash bench/run_rows_sweep_gpu.sh
export PYTHONPATH=$PWD/.whl/site HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTORCH_ALLOC_CONF=expandable_segments:True
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install -q --no-deps --no-build-isolation -e . > /tmp/pip.log 2>&1 || { tail /tmp/pip.log; exit 1; }
MODEL=$HOME/anchor-qwen3-4b-random
[ -f $MODEL/config.json ] || (timeout 200 python3 .anchors/make_model.py $MODEL --arch qwen3-4b > /tmp/make_model.log 2>&1 &)
SWEEP_S=${SWEEP_S:-300}
timeout $SWEEP_S python3 bench/sweep_rows.py --out $OUT/sweep.jsonl --budget-s $((SWEEP_S - 30)) ${SWEEP_ARGS:-} > /tmp/sweep.log 2>&1
echo "### sweep rc=$?"; grep -v '^{' /tmp/sweep.log | tail -5
python3 bench/sweep_rows.py --out $OUT/sweep.jsonl --summary
while [ ! -f $MODEL/config.json ] || pgrep -f make_model.py > /dev/null; do sleep 2; done
for form in ${FORMS_16:-"dense:${DENSE_FROM:-9}"}; do
  dense=${form#dense:}
  timeout 150 python3 bench/profile_decode.py --model $MODEL --seqs ${SEQS:-16} --new 32 --skip-shapes \
    --dense-from $dense --out /tmp/p.json > /tmp/p.log 2>&1
  echo "### profile $form rc=$?"; grep -E "^form|ms per|CUDA kernels" /tmp/p.log
  grep -E "_rows_kernel|_xa_kernel|dequant|aten::mm |nvjet" /tmp/p.log | cut -c1-60,150-230 | head -8
done
