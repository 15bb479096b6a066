# The decode token step, before and after, in one call (carry .whl, .anchors, .oldtree = git archive of
# the "before" commit): graph ms per token step and the eager step's kernel profile at 4 and 16 rows for
# the old code, this tree, and this tree with the rows kernel at 16 rows (--dense-from 17).  At most 8 files
# come back: the JSONs and kernel tables; logs go to stdout.
export PYTHONPATH=$PWD/.whl/site HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTORCH_ALLOC_CONF=expandable_segments:True
nvidia-smi --query-gpu=name --format=csv,noheader
MODEL=$HOME/anchor-qwen3-4b-random
[ -f $MODEL/config.json ] || timeout 200 python3 .anchors/make_model.py $MODEL --arch qwen3-4b > /tmp/make_model.log 2>&1
NEW=${NEW:-64}
show() { grep -E "^##|ms per|CUDA kernels" $1; grep -E "_rows_kernel|_xa_kernel|_nf4_rows|_reduce_kernel|aten::mm " $1 | cut -c1-60,150-220; }
python3 -m pip install -q --no-deps --no-build-isolation -e . > /tmp/pip.log 2>&1 || { tail /tmp/pip.log; exit 1; }
timeout 150 python3 bench/profile_decode.py --model $MODEL --seqs 4,16 --new $NEW --skip-shapes --out $OUT/new.json > /tmp/new.log 2>&1
echo "### new rc=$?"; show /tmp/new.log
timeout 100 python3 bench/profile_decode.py --model $MODEL --seqs 16 --new $NEW --skip-shapes --dense-from 17 --out $OUT/rows16.json > /tmp/nodot.log 2>&1
echo "### new, rows kernel at 16 rows rc=$?"; show /tmp/nodot.log
python3 -m pip install -q --no-deps --no-build-isolation -e .oldtree > /tmp/pip_old.log 2>&1 || tail /tmp/pip_old.log
timeout 150 python3 bench/profile_decode.py --model $MODEL --seqs 4,16 --new $NEW --skip-shapes --out $OUT/old.json > /tmp/old.log 2>&1
echo "### old rc=$?"; show /tmp/old.log
