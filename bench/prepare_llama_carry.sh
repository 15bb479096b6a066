#!/usr/bin/env bash
# Fills .llw/ for bench/run_llama_gpu.sh (run here, with PyPI; the GPU machine has no index):
# llama-cpp-python's sdist without its docs, test models, web UI and git history (76 MB -> 9 MB, under
# the device tool's 64 MiB carry limit; none of it is compiled), and the gguf and diskcache wheels.
#   bash bench/prepare_llama_carry.sh          then carry ".llw" in the device call
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
VERSION=${LLAMA_CPP_VERSION:-0.3.36}
grep -qx '/.llw/' .git/info/exclude 2>/dev/null || { mkdir -p .git/info; echo '/.llw/' >> .git/info/exclude; }
WORK=$(mktemp -d)
python3 -m pip download -q --no-deps --no-binary :all: -d "$WORK" "llama-cpp-python==$VERSION"
tar xzf "$WORK"/llama_cpp_python-"$VERSION".tar.gz -C "$WORK"
SRC=$WORK/llama_cpp_python-$VERSION
rm -rf "$SRC/.git" "$SRC"/vendor/llama.cpp/{models,docs,benches,tests,examples,tools/ui} "$SRC"/vendor/llama.cpp/tools/mtmd/test-*.mp4
rm -rf .llw && mkdir -p .llw
tar czf ".llw/llama_cpp_python-$VERSION.tar.gz" -C "$WORK" "llama_cpp_python-$VERSION"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux2014_x86_64 -d .llw gguf==0.19.0 diskcache==5.6.3
rm -rf "$WORK"
du -sh .llw
