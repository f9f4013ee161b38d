"""contrib_qdq_to_standard: com.microsoft QuantizeLinear/DequantizeLinear become the standard ops
where the model's opset has them for the same types; float16 and newer types stay."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from .helpers import F32, check_ort, check_same, make_model, rand, run, run_lite

MS = "com.microsoft"


def _qdq(scale, zp, *, opset=17, axis=None, shape=(2, 3, 4), xtype=F32):
    attrs = {} if axis is None else {"axis": axis}
    ins = ["s"] if zp is None else ["s", "z"]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", *ins], ["q"], domain=MS, **attrs),
        helper.make_node("DequantizeLinear", ["q", *ins], ["y"], domain=MS, **attrs),
    ]
    inits = {"s": scale} if zp is None else {"s": scale, "z": zp}
    return make_model(
        nodes, {"x": (xtype, list(shape))}, {"y": (xtype, list(shape))}, inits, opset=opset, ms=True
    )


def _domains(m) -> list[str]:
    return [n.domain for n in m.graph.nodes]


@pytest.mark.parametrize(
    ("scale", "zp", "opset", "axis", "moved"),
    [
        (np.array(0.05, F32), np.array(3, np.uint8), 17, None, True),
        (np.array(0.05, F32), np.array(-3, np.int8), 10, None, True),
        (np.array(0.05, F32), None, 17, None, False),  # the DequantizeLinear's input type is unknown
        (np.array([0.05, 0.1, 0.2], F32), np.array([1, 2, 3], np.int8), 17, 1, True),
        (np.array([0.05, 0.1, 0.2], F32), np.array([1, 2, 3], np.int8), 12, 1, False),  # per-axis: 13
        (np.array([0.05, 0.1, 0.2, 0.3], F32), np.array([1, 2, 3, 4], np.int8), 17, -1, True),
        (np.array(0.001, F32), np.array(100, np.int16), 17, None, False),  # 16 bits: opset 21
        (np.array(0.001, F32), np.array(100, np.uint16), 21, None, True),
    ],
)
def test_contrib_qdq_becomes_standard_where_the_opset_has_it(scale, zp, opset, axis, moved) -> None:
    proto = _qdq(scale, zp, opset=opset, axis=axis)
    m, changed = run(proto, "contrib_qdq_to_standard")
    want = [""] * 2 if moved else [MS] * 2
    if zp is None:  # the QuantizeLinear alone: uint8 output without a zero point
        want = ["", MS]
    assert _domains(m) == want and bool(changed) == (want != [MS, MS])
    feeds = {"x": rand(2, 3, 4, scale=2.0)}
    check_same(proto, m, feeds, rel=0)
    if want == ["", ""]:
        check_ort(m, feeds, run_lite(proto, feeds), rel=0)  # the standard ops, as onnxruntime runs them


def test_a_zero_point_fed_at_run_time_keeps_the_contrib_op() -> None:
    # its type (int16 here, which opset 17's standard ops lack) is not known to the pass
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], domain=MS)]
    proto = make_model(
        nodes,
        {"x": (F32, [4]), "z": (np.int16, [])},
        {"y": (np.int16, [4])},
        {"s": np.array(0.1, F32)},
        ms=True,
    )
    m, changed = run(proto, "contrib_qdq_to_standard")
    assert _domains(m) == [MS] and not changed


def test_float16_stays_contrib() -> None:
    # the contrib QuantizeLinear divides float16 in float32, the standard one in float16
    proto = _qdq(np.array(0.05, np.float16), np.array(3, np.uint8), xtype=np.float16)
    m, changed = run(proto, "contrib_qdq_to_standard")
    assert _domains(m) == [MS, MS] and not changed


def test_contrib_qdq_conv_reaches_the_integer_kernels(tmp_path) -> None:
    import onnxlite
    from onnxlite.quantization import quantize_static

    pytest.importorskip("onnxlite.providers.dnnl")
    if "DnnlExecutionProvider" not in onnxlite.get_available_providers():
        pytest.skip("oneDNN is not installed")
    w = np.random.default_rng(0).standard_normal((8, 3, 3, 3)).astype(F32)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["y"]),
    ]
    src = tmp_path / "conv.onnx"
    import onnx

    onnx.save(make_model(nodes, {"x": (F32, [1, 3, 16, 16])}, ["y"], {"w": w}), src)
    feeds = [{"x": rand(1, 3, 16, 16, seed=i)} for i in range(4)]
    for contrib in (False, True):
        out = tmp_path / f"q{contrib}.onnx"
        quantize_static(src, out, feeds, extra_options={"UseQDQContribOps": contrib})
        sess = onnxlite.InferenceSession(str(out))
        convs = [p for n, p in sess._plan.assignment if n.op_type == "Conv"]
        assert convs == ["DnnlExecutionProvider"], (contrib, convs)
