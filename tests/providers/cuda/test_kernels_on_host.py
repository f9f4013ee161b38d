"""The CUDA provider's kernels, run with numpy as their array backend, against the CPU provider."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import onnxlite as ort

from ._models import CASES, node_model
from .conftest import CPU, CUDA, assert_close


def _no_opt() -> ort.SessionOptions:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return so


def run_case(
    providers: list[str],
    op: str,
    inputs: dict[str, np.ndarray],
    consts: dict[str, np.ndarray],
    attrs: dict[str, Any],
    domain: str,
    opset: int,
) -> tuple[Any, list[Any]]:
    n_out = 2 if op == "Split" else 1
    model = node_model(op, inputs, attrs, domain=domain, opset=opset, consts=consts, n_out=n_out)
    s = ort.InferenceSession(model, sess_options=_no_opt(), providers=providers)
    return s, s.run(None, inputs)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_op_matches_cpu_provider(host_cuda, case) -> None:  # type: ignore[no-untyped-def]
    _, op, inputs, consts, attrs, domain, opset = case
    s, got = run_case([CUDA], op, inputs, consts, attrs, domain, opset)
    ran = {st.node.op_type: st.provider for st in s._plan.steps}
    assert ran[op] == CUDA, f"{op} was not claimed by the CUDA provider"
    _, want = run_case([CPU], op, inputs, consts, attrs, domain, opset)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert isinstance(g, np.ndarray)
        rtol = 2e-3 if w.dtype == np.float16 else 1e-5
        assert_close(g, w, rtol=rtol, atol=rtol)
