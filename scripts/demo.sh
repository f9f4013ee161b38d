#!/usr/bin/env bash
# Install onnxlite into .venv and run the bundled SqueezeNet model on the bundled input:
# prints the outputs and the latency. Extra arguments go to `onnxlite run`.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet .
.venv/bin/onnxlite run "$@"
