#!/usr/bin/env bash
# One GPU-machine run of the llama.cpp chat benchmark (issue 12), from the repo root with .llw carried
# (made by bench/prepare_llama_carry.sh):
# .llw holds llama-cpp-python's sdist (stripped of its docs, test models and web UI to fit the carry
# limit), gguf and diskcache wheels. Builds llama.cpp with CUDA through installer/llama_cpp.sh (the same
# script the README's command runs; the GPU machine has nvcc, CMake and ninja but no index, hence the
# local source and --no-build-isolation), then bench/bench_llama_chat.py: an 8B Q4_K_M GGUF on the GPU
# and on the CPU. Everything lands in $OUT.
#   bash bench/run_llama_gpu.sh
set -u
R=$OUT; mkdir -p "$R"
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-deps --no-index .llw/gguf-*.whl .llw/diskcache-*.whl > "$R/pip.log" 2>&1 \
  || { tail "$R/pip.log"; exit 1; }
nvidia-smi --query-gpu=name,compute_cap,driver_version --format=csv,noheader | tee "$R/gpu.txt"
command -v nvcc && nvcc --version | tail -1
# cuBLAS: the CUDA toolkit's own, else the pip package torch uses (headers and libraries under nvidia/cu13).
CUBLAS=$(python3 -c "import nvidia, pathlib; p = pathlib.Path(list(nvidia.__path__)[0]); print(next(iter(p.glob('*/include/cublas_v2.h'))).parent.parent)" 2>/dev/null)
EXTRA="-DGGML_CUDA_NO_VMM=ON"
if [ ! -e /usr/local/cuda/lib64/libcublas.so ] && [ -n "$CUBLAS" ]; then
  TK=/tmp/cudatk; mkdir -p $TK/lib64 $TK/include
  ln -sf /usr/local/cuda/bin $TK/bin; ln -sf /usr/local/cuda/nvvm $TK/nvvm; ln -sf /usr/local/cuda/targets $TK/targets
  cp -rs /usr/local/cuda/include/. $TK/include/ 2>/dev/null; cp -rs /usr/local/cuda/lib64/. $TK/lib64/ 2>/dev/null
  cp -rsf "$CUBLAS"/include/. $TK/include/
  for l in libcublas libcublasLt; do ln -sf "$CUBLAS/lib/$l.so.13" $TK/lib64/$l.so; done
  export CUDA_HOME=$TK CUDAToolkit_ROOT=$TK PATH=$TK/bin:$PATH
  export LD_LIBRARY_PATH="$CUBLAS/lib:${LD_LIBRARY_PATH:-}"
  EXTRA="$EXTRA -DCUDAToolkit_ROOT=$TK"
  echo "cuBLAS from $CUBLAS"
fi
start=$(date +%s)
TUNESMITH_LLAMA_GPU=cuda CUDA_ARCHS=${CUDA_ARCHS:-90} LLAMA_CPP_SOURCE=$(ls .llw/llama_cpp_python-*.tar.gz) \
  LLAMA_CPP_EXTRA_CMAKE="$EXTRA" LLAMA_CPP_PIP_OPTS=--no-build-isolation LLAMA_CPP_WHEELS=/tmp/llw \
  timeout 420 bash installer/llama_cpp.sh python3 > "$R/build.log" 2>&1 || { tail -30 "$R/build.log"; exit 1; }
echo "llama.cpp built and installed in $(( $(date +%s) - start )) s"
ls -la /tmp/llw/*/ | tee -a "$R/build.log"
B=(python3 bench/bench_llama_chat.py --out /tmp/llama8b-q4km.gguf --prompt 512 --gen 128 --cpu-gen 32)
timeout 200 "${B[@]}" --only gpu 2>&1 | tee "$R/bench.jsonl"
CUDA_VISIBLE_DEVICES="" timeout 200 "${B[@]}" --only cpu 2>&1 | tee -a "$R/bench.jsonl"
