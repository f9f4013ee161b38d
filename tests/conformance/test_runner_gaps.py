"""Backend cases whose stock comparison cannot work (see filters.jsonc), checked here correctly."""

from __future__ import annotations

import numpy as np
from onnx.backend.test.loader import load_model_tests

import onnxlite


def _case(name: str):  # type: ignore[no-untyped-def]
    return next(c for c in load_model_tests(kind="node") if c.name == name)


def test_loop16_seq_none() -> None:
    case = _case("test_loop16_seq_none")
    sess = onnxlite.InferenceSession(case.model)
    (inputs, expected) = case.data_sets[0]
    got = sess.run(None, dict(zip([i.name for i in sess.get_inputs()], inputs)))
    assert len(got) == len(expected) == 1
    assert isinstance(got[0], list) and len(got[0]) == len(expected[0])
    for g, w in zip(got[0], expected[0]):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_array_equal(g, w)
