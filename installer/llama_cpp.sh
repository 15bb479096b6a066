#!/usr/bin/env bash
# Builds and installs llama-cpp-python (chat, the GGUF export check, K-quant quantizing) into a venv
# in a form that runs on every x86-64 CPU Tunesmith supports, never with the build machine's CPU flags.
#   bash installer/llama_cpp.sh PYTHON        PYTHON: the venv's interpreter
# Environment: TUNESMITH_LLAMA_GPU=auto|cuda|cpu (default auto: CUDA when an NVIDIA GPU and nvcc are
# present), CUDA_ARCHS (e.g. "75;86;89"; default: the GPU's own), LLAMA_CPP_WHEELS (wheel cache folder),
# LLAMA_CPP_SOURCE (a local sdist, for machines without an index), LLAMA_CPP_EXTRA_CMAKE (more -D options,
# e.g. -DGGML_CUDA_NO_VMM=ON where no libcuda stub exists), LLAMA_CPP_PIP_OPTS (e.g. --no-build-isolation).
# Why these flags: installer/LLAMA_CPP.md. The wheel is cached under a name made of the version and
# the flags, so a wheel built natively (pip's own cache keys only on the version) is never reused.
set -euo pipefail
PY=${1:?usage: llama_cpp.sh PYTHON}
LLAMA_CPP_VERSION=${LLAMA_CPP_VERSION:-0.3.36}

# x86-64-v3 (AVX2, FMA, F16C, BMI2) and nothing newer. AVX-512 and AMX stay off: a native build on a CPU
# that reports AMX faults in libggml-cpu on every quantized matmul (STACK.md, 2026-12-06); AVX2 is the
# oldest CPU the product supports. Runtime dispatch (GGML_CPU_ALL_VARIANTS) would pick the AMX variant
# on exactly that CPU, so it is not used.
CPU_FLAGS="-DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_BMI2=ON -DGGML_FMA=ON"
CPU_FLAGS+=" -DGGML_F16C=ON -DGGML_AVX_VNNI=OFF -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF"
CPU_FLAGS+=" -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF"
CPU_FLAGS+=" -DGGML_AMX_BF16=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF"
case "$(uname -m)" in x86_64|amd64) ;; *) CPU_FLAGS="-DGGML_NATIVE=OFF" ;; esac

find_nvcc() {
  command -v nvcc 2>/dev/null && return 0
  for dir in "${CUDA_HOME:-}" /usr/local/cuda /opt/cuda; do
    [ -n "$dir" ] && [ -x "$dir/bin/nvcc" ] && { echo "$dir/bin/nvcc"; return 0; }
  done
  return 1
}

GPU_MODE=${TUNESMITH_LLAMA_GPU:-auto}
GPU_FLAGS=""
BUILD_KIND="cpu"
if [ "$GPU_MODE" != "cpu" ] && { [ "$GPU_MODE" = "cuda" ] || nvidia-smi -L >/dev/null 2>&1; }; then
  if NVCC=$(find_nvcc); then
    if [ -z "${CUDA_ARCHS:-}" ]; then
      # The GPU of this machine (setup_env runs on the user's machine); a bundle passes its own list.
      CUDA_ARCHS=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | tr -d '.' | sort -u | paste -sd';')
      CUDA_ARCHS=${CUDA_ARCHS:-"75;80;86;89;90"}
    fi
    GPU_FLAGS="-DGGML_CUDA=ON -DCMAKE_CUDA_COMPILER=$NVCC -DCMAKE_CUDA_ARCHITECTURES=$CUDA_ARCHS"
    BUILD_KIND="cuda-$(echo "$CUDA_ARCHS" | tr ';' '-')"
    echo "llama.cpp: building with CUDA for compute capability $CUDA_ARCHS (chat runs on the GPU)"
  else
    echo "llama.cpp: an NVIDIA GPU is present but no CUDA compiler (nvcc) was found, so chat will run on"
    echo "  the CPU. To chat on the GPU, install the CUDA toolkit and run this set-up again."
  fi
fi

CMAKE_FLAGS="$CPU_FLAGS $GPU_FLAGS ${LLAMA_CPP_EXTRA_CMAKE:-}"
TAG="$LLAMA_CPP_VERSION-$BUILD_KIND-$(echo "$CMAKE_FLAGS" | sha1sum | cut -c1-10)"
MARKER="$("$PY" -c 'import sys; print(sys.prefix)')/tunesmith-llama-cpp-build.txt"
if [ -f "$MARKER" ] && [ "$(head -n1 "$MARKER")" = "$TAG" ] && "$PY" -c "import llama_cpp" 2>/dev/null; then
  echo "llama-cpp-python $TAG already installed"
  exit 0
fi

WHEELS=${LLAMA_CPP_WHEELS:-${XDG_CACHE_HOME:-$HOME/.cache}/tunesmith/llama-cpp-wheels}/$TAG
if ! ls "$WHEELS"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  echo "Compiling llama.cpp ($TAG; 4-6 minutes on 2 cores, once per machine)"
  mkdir -p "$WHEELS.tmp"
  # shellcheck disable=SC2086  # LLAMA_CPP_PIP_OPTS holds several options
  CMAKE_ARGS="$CMAKE_FLAGS" FORCE_CMAKE=1 CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} \
    "$PY" -m pip wheel --disable-pip-version-check -q --no-deps --no-cache-dir --no-binary llama-cpp-python \
    ${LLAMA_CPP_PIP_OPTS:-} -w "$WHEELS.tmp" "${LLAMA_CPP_SOURCE:-llama-cpp-python==$LLAMA_CPP_VERSION}"
  rm -rf "$WHEELS" && mv "$WHEELS.tmp" "$WHEELS"   # only a finished build counts as cached
fi
# Its pure-Python dependencies (numpy, jinja2, diskcache, typing-extensions) come from the index.
"$PY" -m pip install --disable-pip-version-check -q --force-reinstall --no-deps "$WHEELS"/llama_cpp_python-*.whl
"$PY" -m pip install --disable-pip-version-check -q "numpy>=1.20" "jinja2>=2.11.3" "diskcache>=5.6.1" \
  "typing-extensions>=4.5"
printf '%s\n%s\n' "$TAG" "$CMAKE_FLAGS" > "$MARKER"
echo "llama-cpp-python installed: $TAG"
