"""layernorm_fusion: decomposed layer normalization -> LayerNormalization (opset 17+)."""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnx
import pytest
from onnx import helper

from .helpers import F32, check_ort, check_same, make_model, ops, rand, run, run_lite

mk = helper.make_node


def _ln_nodes(
    square: str = "pow", divide: str = "div", affine: bool = True, axes: list[int] | None = None
) -> list:  # type: ignore[type-arg]
    axes = axes or [-1]
    nodes = [
        mk("ReduceMean", ["x", "axes"], ["m"]),
        mk("Sub", ["x", "m"], ["d"]),
        mk("Pow", ["d", "two"], ["sq"]) if square == "pow" else mk("Mul", ["d", "d"], ["sq"]),
        mk("ReduceMean", ["sq", "axes"], ["v"]),
        mk("Add", ["v", "eps"], ["ve"]),
        mk("Sqrt", ["ve"], ["sd"]),
    ]
    if divide == "div":
        nodes.append(mk("Div", ["d", "sd"], ["n" if affine else "y"]))
    else:
        nodes += [mk("Reciprocal", ["sd"], ["r"]), mk("Mul", ["d", "r"], ["n" if affine else "y"])]
    if affine:
        nodes += [mk("Mul", ["gamma", "n"], ["g"]), mk("Add", ["g", "beta"], ["y"])]
    return nodes


def _inits(axes: list[int] | None = None) -> dict[str, np.ndarray]:
    return {
        "axes": np.array(axes or [-1]),
        "two": np.array(2.0, F32),
        "eps": np.array(1e-5, F32),
        "gamma": rand(16, seed=1),
        "beta": rand(16, seed=2),
    }


@pytest.mark.parametrize(
    ("square", "divide", "affine"), [("pow", "div", True), ("mul", "recip", True), ("pow", "div", False)]
)
def test_decomposed_layernorm_fuses(square: str, divide: str, affine: bool) -> None:
    proto = make_model(
        _ln_nodes(square, divide, affine), {"x": (F32, ["N", 5, 16])}, ["y"], _inits(), opset=18
    )
    m, changed = run(proto, "layernorm_fusion", "dead_code")
    assert changed[0] == "layernorm_fusion" and ops(m) == ["LayerNormalization"]
    feeds = {"x": rand(3, 5, 16, scale=4) + 2}
    check_same(proto, m, feeds)
    check_ort(m, feeds, run_lite(proto, feeds))


def test_other_axes_or_old_opsets_are_left_alone() -> None:
    proto = make_model(_ln_nodes(axes=[1]), {"x": (F32, [2, 16, 16])}, ["y"], _inits([1]), opset=18)
    assert run(proto, "layernorm_fusion")[1] == []
    nodes = [n for n in _ln_nodes() if n.op_type != "ReduceMean"]
    nodes = [
        mk("ReduceMean", ["x"], ["m"], axes=[-1]),
        *nodes[:2],
        mk("ReduceMean", ["sq"], ["v"], axes=[-1]),
        *nodes[2:],
    ]
    proto = make_model(
        nodes, {"x": (F32, [2, 16])}, ["y"], {k: v for k, v in _inits().items() if k != "axes"}, opset=16
    )
    assert run(proto, "layernorm_fusion")[1] == []


def test_torch_exported_manual_layernorm() -> None:
    torch = pytest.importorskip("torch")

    class ManualLN(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.rand(16) + 0.5)
            self.bias = torch.nn.Parameter(torch.rand(16) - 0.5)

        def forward(self, x):  # type: ignore[no-untyped-def]
            mean = x.mean(-1, keepdim=True)
            var = (x - mean).pow(2).mean(-1, keepdim=True)
            return (x - mean) / torch.sqrt(var + 1e-6) * self.weight + self.bias

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            ManualLN(),
            (torch.randn(2, 3, 16),),
            buf,
            dynamo=False,
            opset_version=17,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "b"}, "y": {0: "b"}},
        )
    proto = onnx.load_from_string(buf.getvalue())
    m, changed = run(proto, "constant_folding", "cse", "layernorm_fusion", "dead_code")
    assert "layernorm_fusion" in changed and ops(m) == ["LayerNormalization"]
    feeds = {"x": rand(4, 3, 16, scale=3)}
    check_same(proto, m, feeds)
