"""The ONNX backend test suite again with the CPU provider alone, so that the numpy kernels of the
ops the oneDNN provider claims in the default run (Conv, MatMul, pooling, normalizations...) meet
every case too. Same filters as the default run."""

from __future__ import annotations

import warnings

import onnx.backend.test

from .backend import CpuOnlyBackend
from .test_backend import load_filters

warnings.filterwarnings("ignore")

_filters = load_filters()
backend_test = onnx.backend.test.BackendTest(CpuOnlyBackend, __name__)
for _pattern in _filters.get("exclude", {}):
    backend_test.exclude(_pattern)
for _pattern in _filters.get("xfail", {}):
    backend_test.xfail(_pattern)

globals().update(backend_test.test_cases)
