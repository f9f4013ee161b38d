#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: install what is missing, run the CUDA provider's tests and
# print a benchmark row (onnxlite CUDA against onnxruntime-gpu, or torch where it is missing).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo "nvidia-smi: not found"
# onnxlite itself (its dependencies are usually there already; offline machines keep --no-deps)
$PY -c "import onnxlite" 2>/dev/null \
  || $PY -m pip install --quiet -e . 2>/dev/null \
  || $PY -m pip install --quiet --no-deps -e .
$PY -c "import pytest" 2>/dev/null || $PY -m pip install --quiet pytest
if ! $PY -c "import cupy" 2>/dev/null; then
  cuda_major=$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: \([0-9]*\).*/\1/p' | head -1)
  if [ "${cuda_major:-12}" -ge 13 ]; then pkg=cupy-cuda13x; else pkg=cupy-cuda12x; fi
  $PY -m pip install --quiet "$pkg" || echo "could not install $pkg"
fi
$PY - <<'PY'
import onnxlite as ort
from onnxlite.providers.cuda._backend import load_error
print("onnxlite", ort.__version__, "providers:", ort.get_available_providers())
print("CUDA provider:", load_error() or "usable")
PY
status=0
timeout 240 $PY -m pytest tests/providers/cuda -rfEs -q -p no:cacheprovider || status=$?
timeout 150 $PY benchmarks/gpu.py --repeat 30 || echo "benchmark failed"
exit $status
