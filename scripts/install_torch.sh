#!/usr/bin/env bash
# Install PyTorch into the given Python's environment: the CPU build where no NVIDIA GPU is present
# (a plain `pip install torch` on Linux pulls a multi-GB CUDA build), the default build otherwise.
# Usage: scripts/install_torch.sh .venv/bin/python
#
# TORCH_SPEC is a range, not a pin, so that every platform finds a wheel: the newest releases have
# no Intel-macOS wheels (the last is torch 2.2.2, for Python <= 3.12), and pyproject.toml asks for
# torch>=2.2. Pin it for a reproducible environment, e.g. TORCH_SPEC='torch==2.13.0'.
set -euo pipefail
PY=${1:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch>=2.2,<3}
if "$PY" -c "import torch" 2>/dev/null; then
  echo "torch $("$PY" -c 'import torch; print(torch.__version__)') is already installed"
  exit 0
fi
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then
  "$PY" -m pip install "$TORCH_SPEC"
elif "$PY" -m pip install --no-index --no-deps "$TORCH_SPEC" 2>/dev/null; then
  # a CPU wheel from a local wheel folder configured for pip (find-links); now its dependencies
  "$PY" -m pip install "$TORCH_SPEC"
elif [ "$(uname -s)" = "Linux" ]; then
  "$PY" -m pip install "$TORCH_SPEC" --index-url https://download.pytorch.org/whl/cpu \
    --extra-index-url https://pypi.org/simple
else
  # macOS and Windows wheels on PyPI are CPU (and MPS) builds already
  "$PY" -m pip install "$TORCH_SPEC"
fi
