"""Random small convolution networks (branches joined by Concat, pooling, a Gemm head),
quantized to QDQ by onnxlite's quantize_static, run on oneDNN's integer kernels five times each
(the later runs replay a recorded segment) against onnxruntime on the same QDQ model; fixed seeds.

Integer paths may round a step apart, so each output is judged against the float model too:
onnxlite's error may not exceed twice onnxruntime's plus 2% of the output's range.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnxlite
from onnxlite.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

from .conftest import CPU, DNNL

ort = pytest.importorskip("onnxruntime")


class _Reader(CalibrationDataReader):
    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._it = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)


def _network(rng: np.random.Generator) -> tuple[onnx.ModelProto, tuple[int, ...]]:
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []

    def const(a: Any) -> str:
        name = f"c{len(inits)}"
        inits.append(numpy_helper.from_array(np.asarray(a, np.float32), name))
        return name

    def op(op_type: str, inputs: list[str], **attrs: Any) -> str:
        out = f"t{len(nodes)}"
        nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    n, ch, hw = int(rng.choice([1, 2])), int(rng.choice([3, 8, 16])), int(rng.choice([6, 8, 12]))
    x, c, size = "X", ch, hw
    for _ in range(int(rng.integers(1, 4))):
        m, k = int(rng.choice([8, 16, 32, 64])), int(rng.choice([1, 3]))
        y = op(
            "Conv",
            [x, const(rng.standard_normal((m, c, k, k)) * 0.3), const(rng.standard_normal(m) * 0.1)],
            pads=[k // 2] * 4,
        )
        if rng.random() < 0.7:
            y = op("Relu", [y])
        if rng.random() < 0.4:
            side = op(
                "Relu", [op("Conv", [x, const(rng.standard_normal((m, c, 1, 1)) * 0.3), const(np.zeros(m))])]
            )
            y, m = op("Concat", [y, side], axis=1), 2 * m
        if rng.random() < 0.3 and size >= 2:  # (onnxruntime pools a 1x1 map to 1x1, not 0x0)
            y, size = op("MaxPool", [y], kernel_shape=[2, 2], strides=[2, 2]), size // 2
        x, c = y, m
    if rng.random() < 0.5:
        x = op("Flatten", [op("GlobalAveragePool", [x])])
        x = op(
            "Gemm",
            [x, const(rng.standard_normal((10, c)) * 0.2), const(rng.standard_normal(10) * 0.1)],
            transB=1,
        )
    shape = (n, ch, hw, hw)
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, None)],
        inits,
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), shape


@pytest.mark.parametrize("seed", range(24 * int(os.environ.get("ONNXLITE_RANDOM_SCALE", "1"))))
def test_random_qdq_network(seed: int, tmp_path: Any) -> None:
    rng = np.random.default_rng(1000 + seed)
    model, shape = _network(rng)
    fp, qp = os.path.join(tmp_path, "f.onnx"), os.path.join(tmp_path, "q.onnx")
    onnx.save(model, fp)
    feeds = [{"X": rng.standard_normal(shape).astype(np.float32)} for _ in range(4)]
    act = QuantType.QUInt8 if rng.random() < 0.5 else QuantType.QInt8
    quantize_static(
        fp,
        qp,
        _Reader(feeds),
        quant_format=QuantFormat.QDQ,
        per_channel=bool(rng.random() < 0.5),
        activation_type=act,
    )
    x = feeds[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = ort.InferenceSession(qp, providers=["CPUExecutionProvider"]).run(None, x)[0]
        ref = ort.InferenceSession(fp, providers=["CPUExecutionProvider"]).run(None, x)[0]
    sess = onnxlite.InferenceSession(qp, providers=[DNNL, CPU])
    assert any(st.provider == DNNL for st in sess._plan.steps)
    runs = [sess.run(None, x)[0] for _ in range(5)]
    for r in runs[1:]:
        np.testing.assert_array_equal(r, runs[0])
    scale = float(np.abs(ref).max()) + 1e-6
    err_lite = float(np.abs(runs[0] - ref).max()) / scale
    err_ort = float(np.abs(want - ref).max()) / scale
    assert err_lite <= 2 * err_ort + 0.02, (err_lite, err_ort)
