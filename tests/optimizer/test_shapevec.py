"""_shapevec: shape vectors with run-time dims, their origins, and decided comparisons."""

from __future__ import annotations

import numpy as np
from onnx import helper

from onnxlite.ir.load import load_model
from onnxlite.optimizer._graphutil import GraphIndex
from onnxlite.optimizer._shapevec import ShapeVecs
from onnxlite.optimizer.base import PassContext

from .helpers import F32, I64, make_model

mk = helper.make_node


def _vecs(nodes, inits, x_shape):  # type: ignore[no-untyped-def]
    proto = make_model(nodes, {"x": (F32, x_shape)}, {"y": (np.bool_, None)}, inits)
    m = load_model(proto.SerializeToString())
    idx = GraphIndex(m.graph, PassContext.for_model(m))
    return ShapeVecs(idx), idx


def test_shape_slice_concat_where_and_equal() -> None:
    nodes = [
        mk("Shape", ["x"], ["s"]),
        mk("Slice", ["s", "st", "en"], ["tail"]),  # [3, 4]
        mk("Gather", ["s", "i0"], ["n"], axis=0),
        mk("Unsqueeze", ["n", "ax"], ["un"]),
        mk("Concat", ["un", "m1", "tail"], ["t"], axis=0),  # [N, -1, 3, 4]
        mk("Equal", ["t", "m1s"], ["eq"]),
        mk("Where", ["eq", "ones", "t"], ["w"]),
        mk("Equal", ["t", "t"], ["y"]),
    ]
    inits = {
        "st": np.array([1], I64),
        "en": np.array([10], I64),
        "i0": np.array(0, I64),
        "ax": np.array([0], I64),
        "m1": np.array([-1], I64),
        "m1s": np.array([-1, -1, -1, -1], I64),
        "ones": np.array([1, 1, 1, 1], I64),
    }
    vecs, idx = _vecs(nodes, inits, ["N", 3, 4])
    t = vecs.get("t")
    assert (
        t is not None and t.values == (None, -1, 3, 4) and t.origin(0) == ("x", 0) and t.origin(2) == ("x", 1)
    )
    eq = vecs.equal(idx.producer["eq"])
    assert eq is not None and eq.tolist() == [False, True, False, False]
    # the Where cannot be decided until eq is a constant: it is the folder's job to get there
    assert vecs.get("w") is None
    # comparing a run-time dim with itself is undecidable here (it needs a value, not a sign)
    assert vecs.equal(idx.producer["y"]) is None
