"""QLinearConv, ConvInteger, QLinearMatMul and MatMulInteger on oneDNN against CPU."""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import check_op

rng = np.random.default_rng(3)


def u8(*shape: int) -> np.ndarray:
    return rng.integers(0, 256, shape).astype(np.uint8)


def s8(*shape: int) -> np.ndarray:
    return rng.integers(-127, 128, shape).astype(np.int8)


def f(v: float) -> np.ndarray:
    return np.array(v, np.float32)


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("x_type", ["u8", "s8"])
@pytest.mark.parametrize("attrs", [{"pads": [1, 1, 1, 1]}, {"group": 2, "strides": [2, 2]}])
def test_qlinear_conv(per_channel: bool, bias: bool, x_type: str, attrs: dict) -> None:
    x = u8(2, 8, 9, 9) if x_type == "u8" else s8(2, 8, 9, 9)
    zx = np.array(128 if x_type == "u8" else -3, x.dtype)
    g = attrs.get("group", 1)
    w = s8(16, 8 // g, 3, 3)
    ws = (rng.random(16) * 0.02 + 0.001).astype(np.float32) if per_channel else f(0.01)
    inits = {
        "xs": f(0.02),
        "zx": zx,
        "w": w,
        "ws": ws,
        "zw": np.zeros(ws.shape, np.int8),
        "ys": f(0.7),
        "zy": np.array(100, np.uint8),
    }
    names = ["x", "xs", "zx", "w", "ws", "zw", "ys", "zy"]
    if bias:
        inits["b"] = rng.integers(-2000, 2000, 16).astype(np.int32)
        names.append("b")
    check_op("QLinearConv", {"x": x}, attrs, inits=inits, inputs=names, lsb=1)


def test_qlinear_conv_weight_zero_point_stays_on_cpu() -> None:
    inits = {
        "xs": f(0.02),
        "zx": np.array(128, np.uint8),
        "w": s8(4, 3, 3, 3),
        "ws": f(0.01),
        "zw": np.array(1, np.int8),
        "ys": f(0.7),
        "zy": np.array(100, np.uint8),
    }
    check_op(
        "QLinearConv",
        {"x": u8(1, 3, 5, 5)},
        inits=inits,
        inputs=["x", "xs", "zx", "w", "ws", "zw", "ys", "zy"],
        on_dnnl=False,
        lsb=1,
    )


def test_conv_integer() -> None:
    check_op(
        "ConvInteger",
        {"x": u8(1, 4, 7, 7)},
        {"pads": [1, 1, 1, 1]},
        inits={"w": s8(6, 4, 3, 3), "zx": np.array(7, np.uint8)},
        lsb=1,
    )
    check_op("ConvInteger", {"x": s8(1, 4, 7, 7), "w": s8(6, 4, 3, 3)}, lsb=1)


@pytest.mark.parametrize("a_shape", [(5, 64), (2, 3, 64)])
@pytest.mark.parametrize("per_column", [False, True])
def test_qlinear_matmul(a_shape: tuple[int, ...], per_column: bool) -> None:
    bs = (rng.random(10) * 0.02 + 0.001).astype(np.float32) if per_column else f(0.01)
    inits = {
        "as": f(0.02),
        "za": np.array(120, np.uint8),
        "b": s8(64, 10),
        "bs": bs,
        "zb": np.zeros(bs.shape, np.int8),
        "ys": f(0.3),
        "zy": np.array(128, np.uint8),
    }
    check_op(
        "QLinearMatMul",
        {"a": u8(*a_shape)},
        inits=inits,
        inputs=["a", "as", "za", "b", "bs", "zb", "ys", "zy"],
        lsb=1,
    )


def test_matmul_integer() -> None:
    check_op("MatMulInteger", {"a": u8(3, 5, 32)}, inits={"b": s8(32, 7), "za": np.array(3, np.uint8)}, lsb=1)
    check_op("MatMulInteger", {"a": s8(4, 32), "b": s8(32, 7)}, lsb=1)
    check_op("MatMulInteger", {"a": u8(4, 32), "b": u8(32, 7)}, on_dnnl=False, lsb=1)


def _qdq_model(op: str, per_channel: bool, dq_twice: bool = False):  # type: ignore[no-untyped-def]
    from onnx import helper

    from .conftest import graph_model

    conv = op == "Conv"
    w = s8(8, 4, 3, 3) if conv else s8(16, 6)
    n_out = w.shape[0] if conv else w.shape[1]
    ws = (rng.random(n_out) * 0.02 + 0.002).astype(np.float32) if per_channel else f(0.01)
    inits = {
        "xs": f(0.03),
        "zx": np.array(110, np.uint8),
        "w": w,
        "ws": ws,
        "zw": np.zeros(ws.shape, np.int8),
        "ys": f(0.05),
        "zy": np.array(120, np.uint8),
    }
    nodes = [
        helper.make_node("DequantizeLinear", ["x", "xs", "zx"], ["xf"]),
        helper.make_node("DequantizeLinear", ["w", "ws", "zw"], ["wf"], axis=0 if conv else 1),
    ]
    if conv:
        inits["b"] = rng.standard_normal(n_out).astype(np.float32)
        nodes.append(helper.make_node("Conv", ["xf", "wf", "b"], ["yf"], pads=[1, 1, 1, 1]))
    else:
        nodes.append(helper.make_node("MatMul", ["xf", "wf"], ["yf"]))
    nodes.append(helper.make_node("QuantizeLinear", ["yf", "ys", "zy"], ["y"]))
    outs = ["y"]
    if dq_twice:
        nodes.append(helper.make_node("Relu", ["xf"], ["r"]))
        outs.append("r")
    x = u8(2, 4, 7, 7) if conv else u8(3, 5, 16)
    return graph_model(nodes, {"x": x}, outs, inits, opset=13), {"x": x}


@pytest.mark.parametrize("op", ["Conv", "MatMul"])
@pytest.mark.parametrize("per_channel", [False, True])
def test_qdq_group_runs_as_one_integer_primitive(op: str, per_channel: bool) -> None:
    from .conftest import DNNL, run_both, where

    model, feeds = _qdq_model(op, per_channel)
    got, want, sd = run_both(model, feeds)
    diff = np.abs(got[0].astype(np.int64) - want[0].astype(np.int64))
    assert got[0].dtype == want[0].dtype == np.uint8
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01
    assert set(where(sd).values()) == {DNNL}
    plans = [sd._providers[0]._plans[id(st.node)] for st in sd._plan.steps]
    assert [p.passthrough for p in plans] == [True, True, False, True]


def test_qdq_with_shared_dequantize_is_not_grouped() -> None:
    from .conftest import CPU, run_both, where

    model, feeds = _qdq_model("Conv", False, dq_twice=True)
    got, want, sd = run_both(model, feeds)
    np.testing.assert_array_equal(got[1], want[1])
    diff = np.abs(got[0].astype(np.int64) - want[0].astype(np.int64))
    assert diff.max() <= 1
    # The Conv is no group: its DequantizeLinear is a float op (a oneDNN reorder).
    conv = next(st.node for st in sd._plan.steps if st.node.op_type == "Conv")
    assert "qdq" not in sd._providers[0]._plans[id(conv)].extra
    assert CPU not in where(sd).values()


def _qdq_net(relu: bool, pool: bool):  # type: ignore[no-untyped-def]
    """x -> DQ -> (Conv a -> [Relu] -> Q, Conv b -> Q) -> DQ -> Conv c -> Q [-> DQ -> MaxPool -> Q]:
    a shared DequantizeLinear, two groups in a row, int32 biases, an 8-bit max pool."""
    from onnx import helper

    from .conftest import graph_model

    inits: dict[str, np.ndarray] = {"xs": f(0.03), "zx": np.array(110, np.uint8)}
    nodes = [helper.make_node("DequantizeLinear", ["x", "xs", "zx"], ["xf"])]

    def conv(name: str, src: str, cin: int, act: bool) -> str:
        w = s8(6, cin, 3, 3)
        ws = (rng.random(6) * 0.01 + 0.002).astype(np.float32)
        inits.update(
            {f"{name}w": w, f"{name}ws": ws, f"{name}ys": f(0.05), f"{name}zy": np.array(120, np.uint8)}
        )
        inits[f"{name}b"] = rng.integers(-500, 500, 6).astype(np.int32)
        inits[f"{name}bs"] = (ws * 0.03).astype(np.float32)
        nodes.append(helper.make_node("DequantizeLinear", [f"{name}w", f"{name}ws"], [f"{name}wf"], axis=0))
        nodes.append(helper.make_node("DequantizeLinear", [f"{name}b", f"{name}bs"], [f"{name}bf"], axis=0))
        nodes.append(
            helper.make_node("Conv", [src, f"{name}wf", f"{name}bf"], [f"{name}c"], pads=[1, 1, 1, 1])
        )
        out = f"{name}c"
        if act:
            nodes.append(helper.make_node("Relu", [out], [f"{name}r"]))
            out = f"{name}r"
        nodes.append(helper.make_node("QuantizeLinear", [out, f"{name}ys", f"{name}zy"], [f"{name}q"]))
        return f"{name}q"

    qa = conv("a", "xf", 4, relu)
    conv("b", "xf", 4, False)
    nodes.append(helper.make_node("DequantizeLinear", [qa, "ays", "azy"], ["af"]))
    y = conv("c", "af", 6, False)
    outs = [y, "bq"]
    if pool:
        nodes.append(helper.make_node("DequantizeLinear", [y, "cys", "czy"], ["cf"]))
        nodes.append(helper.make_node("MaxPool", ["cf"], ["p"], kernel_shape=[2, 2], strides=[2, 2]))
        nodes.append(helper.make_node("QuantizeLinear", ["p", "cys", "czy"], ["pq"]))
        outs = ["pq", "bq"]
    x = u8(1, 4, 9, 9)
    return graph_model(nodes, {"x": x}, outs, inits, opset=13), {"x": x}


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("pool", [False, True])
def test_qdq_groups_share_inputs_chain_and_pool_in_8_bits(relu: bool, pool: bool) -> None:
    from .conftest import DNNL, run_both, where

    model, feeds = _qdq_net(relu, pool)
    got, want, sd = run_both(model, feeds)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype == np.uint8
        diff = np.abs(g.astype(np.int64) - w.astype(np.int64))
        assert diff.max() <= 1 and (diff > 0).mean() < 0.02
    assert set(where(sd).values()) == {DNNL}
    plans = sd._providers[0]._plans
    heads = [st.node for st in sd._plan.steps if "qdq" in plans[id(st.node)].extra]
    assert len(heads) == 3
    if pool:  # the pool's DequantizeLinear and QuantizeLinear pass the 8-bit tensor on
        pq = next(st.node for st in sd._plan.steps if st.node.outputs[0] == "pq")
        assert plans[id(pq)].passthrough


def test_qdq_with_conv_relu_fused_by_the_optimizer() -> None:
    import onnxlite as ort

    from .conftest import CPU, DNNL

    model, feeds = _qdq_net(True, False)
    data = model.SerializeToString()
    sd = ort.InferenceSession(data, providers=[DNNL, CPU])
    sc = ort.InferenceSession(data, providers=[CPU])
    for g, w in zip(sd.run(None, feeds), sc.run(None, feeds)):
        diff = np.abs(g.astype(np.int64) - w.astype(np.int64))
        assert diff.max() <= 1 and (diff > 0).mean() < 0.02
    plans = sd._providers[0]._plans
    assert sum("qdq" in plans[id(st.node)].extra for st in sd._plan.steps) == 3


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_quantize_and_dequantize_linear(dtype: type) -> None:
    x = (rng.standard_normal((2, 3, 5, 7)) * 4).astype(np.float32)
    zp = np.array(7 if dtype == np.uint8 else -5, dtype)
    x[0, 0, 0, :3] = [0.025, -0.075, 0.125]  # ties: x / s = 0.5, -1.5, 2.5
    check_op("QuantizeLinear", {"x": x}, inits={"s": f(0.05), "z": zp}, lsb=0, opset=13)
    q = rng.integers(0, 256, (2, 3, 5, 7)) if dtype == np.uint8 else rng.integers(-128, 128, (2, 3, 5, 7))
    check_op("DequantizeLinear", {"q": q.astype(dtype)}, inits={"s": f(0.05), "z": zp}, rel=1e-6, opset=13)
    # per-axis scales stay on CPU
    check_op(
        "DequantizeLinear",
        {"q": q.astype(dtype)},
        inits={"s": np.full(3, 0.05, np.float32), "z": np.zeros(3, dtype)},
        on_dnnl=False,
        opset=13,
    )


def test_quantize_linear_of_a_blocked_value() -> None:
    """A float Conv's output in oneDNN's layout, quantized where it is (no reorder to plain)."""
    from onnx import helper

    from .conftest import DNNL, graph_model, run_both, where

    x = rng.standard_normal((1, 8, 6, 6)).astype(np.float32)
    inits = {"w": (rng.standard_normal((16, 8, 3, 3)) * 0.2).astype(np.float32), "s": f(0.05)}
    inits["z"] = np.array(-3, np.int8)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("QuantizeLinear", ["c", "s", "z"], ["q"]),
        helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"]),
    ]
    got, want, sd = run_both(graph_model(nodes, {"x": x}, ["y"], inits, opset=13), {"x": x})
    step = float(inits["s"])
    diff = np.abs(got[0] - want[0])
    assert diff.max() <= step * 1.001 and (diff > 0).mean() < 0.01  # float Conv rounding only
    assert where(sd)["q"] == DNNL


@pytest.mark.parametrize(
    ("shapes", "axis", "dtype"),
    [
        ([(1, 8, 5, 5), (1, 16, 5, 5)], 1, np.uint8),  # channels: the convolutions' layout
        ([(2, 3, 4, 5), (2, 3, 2, 5), (2, 3, 1, 5)], -2, np.int8),
        ([(3, 4), (3, 0), (3, 6)], 1, np.uint8),  # an empty input
    ],
)
def test_dequantize_concat_quantize_requantizes_in_8_bits(
    shapes: list[tuple[int, ...]], axis: int, dtype: type
) -> None:
    from onnx import helper

    from .conftest import DNNL, graph_model, run_both, where

    info = np.iinfo(dtype)
    feeds = {f"x{i}": rng.integers(info.min, info.max + 1, s).astype(dtype) for i, s in enumerate(shapes)}
    # scales as calibration gives them (not simple ratios of each other, whose exact ties after
    # the rescale may round either way); the last input already at the output's scale
    inits: dict[str, np.ndarray] = {"ys": f(0.0371), "yz": np.array(3, dtype)}
    nodes = []
    for i in range(len(shapes)):
        inits[f"s{i}"] = f(float(rng.uniform(0.005, 0.05)))
        inits[f"z{i}"] = np.array(-5 + 7 * i, dtype) if dtype is np.int8 else np.array(100 + 9 * i, dtype)
        nodes.append(helper.make_node("DequantizeLinear", [f"x{i}", f"s{i}", f"z{i}"], [f"d{i}"]))
    last = len(shapes) - 1
    inits[f"s{last}"], inits[f"z{last}"] = inits["ys"], inits["yz"]
    nodes.append(helper.make_node("Concat", [f"d{i}" for i in range(len(shapes))], ["c"], axis=axis))
    nodes.append(helper.make_node("QuantizeLinear", ["c", "ys", "yz"], ["y"]))
    model = graph_model(nodes, feeds, ["y"], inits, opset=13)
    (got,), (want,), sd = run_both(model, feeds)
    assert got.dtype == want.dtype == dtype and got.shape == want.shape
    diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
    assert diff.max(initial=0) <= 1 and (diff > 0).mean() < 0.01  # a rescaled tie may round up
    assert where(sd)["c"] == DNNL
    plans = sd._providers[0]._plans
    assert "qconcat" in plans[id(next(st.node for st in sd._plan.steps if st.node.outputs[0] == "c"))].extra


@pytest.mark.parametrize("pixels", [(6, 6), (1, 27), (3, 16)])
def test_int8_1x1_conv_writes_only_its_destination(
    pixels: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # oneDNN 3.2's AMX 1x1 integer convolution wrote past its destination at these sizes
    # (heap corruption, or the next tensor of a segment overwritten): it is skipped
    from onnxlite.providers.dnnl import _int8, _prim

    guards: list[tuple[int, np.ndarray]] = []

    def guarded_empty(md: _prim.MD) -> np.ndarray:
        size = max(md.nbytes, 1)
        big = np.full(size + 4096, 0xAB, np.uint8)
        guards.append((size, big))
        view = big[:size]
        return view.view(_prim.NP_OF[md.dt]).reshape(md.shape) if md.is_plain() else view

    monkeypatch.setattr(_int8, "empty", guarded_empty)
    x = u8(1, 64, *pixels)
    inits = {
        "xs": f(0.02),
        "zx": np.array(128, np.uint8),
        "w": s8(32, 64, 1, 1),
        "ws": f(0.01),
        "zw": np.array(0, np.int8),
        "ys": f(0.7),
        "zy": np.array(100, np.uint8),
    }
    names = ["x", "xs", "zx", "w", "ws", "zw", "ys", "zy"]
    check_op("QLinearConv", {"x": x}, inits=inits, inputs=names, lsb=1)
    assert guards and all((big[size:] == 0xAB).all() for size, big in guards)
