"""Random small graphs against onnxruntime (fixed seeds), with the default providers and with the
CPU provider alone, optimizations on: convolution blocks (BatchNormalization, per-channel
Mul/Add, activations, residual adds, pooling: what the fusions rewrite), attention and MLP blocks
(the LayerNorm, Gelu, scaled-product and MatMul + bias patterns), chains of shape and
element-wise ops, and convolution/pooling attributes (strides, pads, dilations, groups,
auto_pad, ceil_mode, count_include_pad).

Configurations where the ONNX spec, onnxruntime and onnx.reference disagree with one another
are drawn with explicit pads instead: auto_pad SAME with dilations or ceil_mode, and on
ConvTranspose and LpPool (onnxlite follows the spec's formulas there); so is SAME on a window
narrower than its stride, whose negative padding onnxruntime's pools refuse.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnxlite

ort = pytest.importorskip("onnxruntime")
I64 = np.int64


class _Graph:
    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.outputs: list[str] = []
        self._n = 0

    def _name(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n}"

    def const(self, value: object) -> str:
        name = self._name("c")
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], n_out: int = 1, **attrs: object) -> str:
        outs = [self._name("t") for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, **attrs))
        return outs[int(self.rng.integers(0, n_out))] if n_out > 1 else outs[0]

    def maybe_output(self, name: str) -> None:
        """Sometimes also a graph output: a fusion must then leave it computed."""
        if self.rng.random() < 0.15:
            self.outputs.append(name)

    def normal(self, *shape: int, scale: float = 1.0) -> np.ndarray:
        return (self.rng.standard_normal(shape) * scale).astype(np.float32)

    def model(self, x_dims: list[int | str], last: str, opset: int) -> bytes:
        outs = list(dict.fromkeys([last, *self.outputs]))
        g = helper.make_graph(
            self.nodes,
            "g",
            [helper.make_tensor_value_info("X", TensorProto.FLOAT, x_dims)],
            [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs],
            self.inits,
        )
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
        return m.SerializeToString()


def _conv_block(g: _Graph, x: str, c: int) -> tuple[str, int, int]:
    r = g.rng
    m, k = int(r.choice([4, 8, 16])), int(r.choice([1, 3]))
    group = c if c > 1 and r.random() < 0.3 else 1
    m = max(m // group, 1) * group
    ins = [x, g.const(g.normal(m, c // group, k, k, scale=0.3))]
    if r.random() < 0.7:
        ins.append(g.const(g.normal(m)))
    stride = int(r.choice([1, 1, 2]))
    y = g.op("Conv", ins, pads=[k // 2] * 4, group=group, strides=[stride] * 2)
    g.maybe_output(y)
    if r.random() < 0.6:
        pos = [g.const(np.abs(g.normal(m)) + 0.5) for _ in range(2)]
        y = g.op("BatchNormalization", [y, pos[0], g.const(g.normal(m)), g.const(g.normal(m)), pos[1]])
        g.maybe_output(y)
    if r.random() < 0.3:
        y = g.op("Add", [g.op("Mul", [y, g.const(g.normal(1, m, 1, 1))]), g.const(g.normal(1, m, 1, 1))])
    act = str(r.choice(["Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "none"]))
    if act == "Clip":
        y = g.op("Clip", [y, g.const(np.float32(0)), g.const(np.float32(6))])
    elif act != "none":
        y = g.op(act, [y])
    return y, m, stride


def _cnn(g: _Graph) -> tuple[bytes, np.ndarray]:
    r = g.rng
    n, c, hw = int(r.choice([1, 2])), int(r.choice([3, 4, 8])), int(r.choice([7, 8, 12]))
    y, m, _ = _conv_block(g, "X", c)
    if r.random() < 0.5:
        z, m2, stride = _conv_block(g, y, m)
        y = g.op("Add", [z, y]) if m2 == m and stride == 1 and r.random() < 0.6 else z
    pool = str(r.choice(["MaxPool", "AveragePool", "GlobalAveragePool", "none"]))
    if pool == "GlobalAveragePool":
        y = g.op(pool, [y])
    elif pool != "none":
        y = g.op(pool, [y], kernel_shape=[2, 2], strides=[2, 2])
    if r.random() < 0.4:
        y = g.op("Flatten", [y])
    return g.model([n, c, hw, hw], y, int(r.choice([13, 17, 18]))), g.normal(n, c, hw, hw)


def _reduce_mean(g: _Graph, x: str, opset: int) -> str:
    if opset < 18:
        return g.op("ReduceMean", [x], axes=[-1])
    return g.op("ReduceMean", [x, g.const(np.array([-1], I64))])


def _attention_mlp(g: _Graph) -> tuple[bytes, np.ndarray]:
    r = g.rng
    opset = int(r.choice([13, 17, 18]))
    n, s, d = int(r.choice([1, 2])), int(r.choice([5, 16])), int(r.choice([32, 64]))
    x = "X"
    if r.random() < 0.5:  # LayerNormalization spelled out
        dev = g.op("Sub", [x, _reduce_mean(g, x, opset)])
        var = _reduce_mean(g, g.op("Pow", [dev, g.const(np.float32(2))]), opset)
        std = g.op("Sqrt", [g.op("Add", [var, g.const(np.float32(1e-5))])])
        x = g.op("Add", [g.op("Mul", [g.op("Div", [dev, std]), g.const(g.normal(d))]), g.const(g.normal(d))])
        g.maybe_output(x)
    dh = int(r.choice([16, 32, 48]))
    q = g.op("Add", [g.op("MatMul", [x, g.const(g.normal(d, dh, scale=0.2))]), g.const(g.normal(dh))])
    g.maybe_output(q)
    if r.random() < 0.5:  # scaled dot product
        k = g.op("MatMul", [x, g.const(g.normal(d, dh, scale=0.2))])
        scores = g.op("MatMul", [q, g.op("Transpose", [k], perm=[0, 2, 1])])
        if r.random() < 0.5:
            scores = g.op("Div", [scores, g.const(np.float32(np.sqrt(dh)))])
        else:
            scores = g.op("Mul", [scores, g.const(np.float32(1 / np.sqrt(dh)))])
        if r.random() < 0.5:
            scores = g.op("Add", [scores, g.const(g.normal(1, s, s))])
        probs = g.op("Softmax", [scores], axis=-1)
        g.maybe_output(probs)
        q = g.op("MatMul", [probs, q])
    act = str(r.choice(["gelu", "Relu", "Tanh", "none"]))
    if act == "gelu":
        erf = g.op("Erf", [g.op("Div", [q, g.const(np.float32(np.sqrt(2)))])])
        q = g.op(
            "Mul", [g.op("Mul", [q, g.op("Add", [erf, g.const(np.float32(1))])]), g.const(np.float32(0.5))]
        )
    elif act != "none":
        q = g.op(act, [q])
    y = g.op("MatMul", [q, g.const(g.normal(dh, d, scale=0.2))])
    if r.random() < 0.5:
        y = g.op("Add", [y, x if r.random() < 0.5 else g.const(g.normal(d))])
    return g.model([n, s, d], y, opset), g.normal(n, s, d)


def _shape_chain(g: _Graph) -> tuple[bytes, np.ndarray]:
    """Shape and element-wise ops, the input's dims sometimes symbolic; ``cur`` tracks the shape."""
    r = g.rng
    opset = int(r.choice([13, 17, 18]))
    dims = [int(r.integers(1, 5)) for _ in range(int(r.integers(2, 5)))]
    x, cur = "X", list(dims)
    for _ in range(int(r.integers(2, 7))):
        rank, step = (
            len(cur),
            str(r.choice(["transpose", "reshape", "unsqueeze", "slice", "binary", "reduce"])),
        )
        if step == "transpose":
            perm = [int(p) for p in r.permutation(rank)]
            x, cur = g.op("Transpose", [x], perm=perm), [cur[p] for p in perm]
        elif step == "reshape":
            x, cur = (
                g.op("Reshape", [x, g.const(np.array([cur[0], -1], I64))]),
                [cur[0], int(np.prod(cur[1:]))],
            )
        elif step == "unsqueeze":
            axis = int(r.integers(0, rank + 1))
            x = g.op("Unsqueeze", [x, g.const(np.array([axis], I64))])
            cur.insert(axis, 1)
        elif step == "slice":
            axis = int(r.integers(0, rank))
            if cur[axis] < 2:
                continue
            start, st = int(r.integers(0, cur[axis] - 1)), int(r.choice([1, 2]))
            ins = [x, *(g.const(np.array([v], I64)) for v in (start, cur[axis], axis, st))]
            x, cur[axis] = g.op("Slice", ins), len(range(start, cur[axis], st))
        elif step == "binary":
            bshape = [d if r.random() < 0.5 else 1 for d in cur][int(r.integers(0, rank)) :]
            other = g.const(np.abs(g.normal(*bshape)) + 0.5)
            op = str(r.choice(["Add", "Mul", "Sub", "Div", "Max"]))
            x = g.op(op, [x, other] if r.random() < 0.7 else [other, x])
        else:
            axis, keep = int(r.integers(-rank, rank)), int(r.integers(0, 2))
            op = str(r.choice(["ReduceSum", "ReduceMax"]))
            if opset >= 18 or op == "ReduceSum":  # axes became an input (ReduceSum at opset 13)
                x = g.op(op, [x, g.const(np.array([axis], I64))], keepdims=keep)
            else:
                x = g.op(op, [x], axes=[axis], keepdims=keep)
            if keep:
                cur[axis % rank] = 1
            else:
                cur.pop(axis % rank)
            if not cur:
                x, cur = g.op("Reshape", [x, g.const(np.array([1], I64))]), [1]
        g.maybe_output(x)
    in_dims: list[int | str] = [f"d{i}" if r.random() < 0.3 else d for i, d in enumerate(dims)]
    return g.model(in_dims, x, opset), g.normal(*dims)


def _conv_pool(g: _Graph) -> tuple[bytes, np.ndarray]:
    r = g.rng
    n, c, h, w = (
        int(r.choice([1, 2])),
        int(r.choice([1, 3, 4, 8, 16])),
        int(r.integers(5, 20)),
        int(r.integers(5, 20)),
    )
    kind = str(r.choice(["Conv", "Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool"]))
    k, s = [int(r.integers(1, 5)) for _ in range(2)], [int(r.integers(1, 4)) for _ in range(2)]
    dil = [int(r.integers(1, 3)) for _ in range(2)] if r.random() < 0.3 else [1, 1]
    # maps at least as large as the dilated window: onnxruntime refuses an empty output, which
    # ONNX's formula gives (onnxlite returns it)
    h, w = max(h, (k[0] - 1) * dil[0] + 1), max(w, (k[1] - 1) * dil[1] + 1)
    attrs: dict[str, object] = {"kernel_shape": k, "strides": s}
    auto_pad = str(r.choice(["NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]))
    if auto_pad == "NOTSET":
        attrs["pads"] = [int(r.integers(0, kk)) for kk in (*k, *k)] if r.random() < 0.6 else [0] * 4
    else:
        attrs["auto_pad"] = auto_pad
    if kind in ("Conv", "ConvTranspose", "MaxPool") and dil != [1, 1]:
        attrs["dilations"] = dil
    if kind in ("MaxPool", "AveragePool") and r.random() < 0.4:
        attrs["ceil_mode"] = 1
    if kind == "AveragePool" and r.random() < 0.5:
        attrs["count_include_pad"] = 1
    if kind == "LpPool":
        attrs["p"] = int(r.choice([1, 2, 3]))
    odd = kind in ("ConvTranspose", "LpPool") or dil != [1, 1] or "ceil_mode" in attrs
    # (and a window narrower than its stride: onnxruntime's pools refuse SAME's negative padding)
    if auto_pad.startswith("SAME") and (odd or any(kk < ss for kk, ss in zip(k, s))):
        # (see the module docstring) explicit pads instead
        attrs["pads"] = [kk // 2 for kk in (*k, *k)]
        del attrs["auto_pad"]
    ins = ["X"]
    if kind.startswith("Conv"):
        group = int(r.choice([1, 1, c]))
        m = int(r.choice([1, 4, 8])) * group
        wshape = (m, c // group, *k) if kind == "Conv" else (c, m // group, *k)
        ins += [g.const(g.normal(*wshape, scale=0.3))] + ([g.const(g.normal(m))] if r.random() < 0.6 else [])
        attrs["group"] = group
    y = g.op(kind, ins, **attrs)
    if kind == "Conv" and r.random() < 0.5:
        y = g.op(str(r.choice(["Relu", "Sigmoid", "Tanh"])), [y])
    return g.model([n, c, h, w], y, 18), g.normal(n, c, h, w)


_BUILDERS: dict[str, Callable[[_Graph], tuple[bytes, np.ndarray]]] = {
    "cnn": _cnn,
    "attention_mlp": _attention_mlp,
    "shape_chain": _shape_chain,
    "conv_pool": _conv_pool,
}
# ONNXLITE_RANDOM_SCALE=N runs N times as many seeds (a longer hunt after a kernel change).
_SCALE = int(os.environ.get("ONNXLITE_RANDOM_SCALE", "1"))
_CASES = [
    (kind, seed)
    for kind, count in (("cnn", 60), ("attention_mlp", 60), ("shape_chain", 80), ("conv_pool", 120))
    for seed in range(count * _SCALE)
]


@pytest.mark.parametrize(("kind", "seed"), _CASES)
def test_random_graph_matches_onnxruntime(kind: str, seed: int) -> None:
    model, x = _BUILDERS[kind](_Graph(np.random.default_rng(seed)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"X": x})
        for providers in (None, ["CPUExecutionProvider"]):
            got = onnxlite.InferenceSession(model, providers=providers).run(None, {"X": x})
            for g, w in zip(got, want):
                assert g.shape == w.shape
                np.testing.assert_allclose(g, w, rtol=1e-3, atol=1e-4)
