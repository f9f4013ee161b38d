"""The ONNX backend test suite (node, simple, pytorch-converted, pytorch-operator and light-model
cases) run through onnxlite's public API. Exclusions and known failures are listed, each with its
reason, in filters.jsonc beside this file."""

from __future__ import annotations

import json
import os
import re
import warnings

import onnx.backend.test

from .backend import OnnxliteBackend

warnings.filterwarnings("ignore")

_HERE = os.path.dirname(__file__)


def load_filters(path: str = os.path.join(_HERE, "filters.jsonc")) -> dict[str, dict[str, str]]:
    """The filters file: JSON with // comments; sections 'exclude' and 'xfail', pattern -> reason."""
    with open(path) as f:
        text = re.sub(r"^\s*//.*$", "", f.read(), flags=re.M)
    data = json.loads(text)
    for section in ("exclude", "xfail"):
        for pattern, reason in data.get(section, {}).items():
            if not reason or not reason.strip():
                raise ValueError(f"filters.jsonc: {section} entry {pattern!r} has no reason")
    return data


_filters = load_filters()
backend_test = onnx.backend.test.BackendTest(OnnxliteBackend, __name__)
for _pattern in _filters.get("exclude", {}):
    backend_test.exclude(_pattern)
for _pattern in _filters.get("xfail", {}):
    backend_test.xfail(_pattern)

globals().update(backend_test.test_cases)
