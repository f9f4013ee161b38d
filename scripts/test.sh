#!/usr/bin/env bash
# Install onnxlite with its test dependencies into .venv, lint and type-check it, run the tests.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"
# Frameworks for the model tests (torch exports, scikit-learn conversions); torch is pinned to
# its 2.13.0 CPU build.
.venv/bin/python -m pip install --quiet -r requirements-models.txt
.venv/bin/ruff check src tests examples benchmarks
.venv/bin/mypy
.venv/bin/python -m pytest tests -rfE "$@"
