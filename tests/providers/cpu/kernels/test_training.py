"""ai.onnx.preview.training optimizer kernels against onnx.reference."""

from __future__ import annotations

import numpy as np
import pytest
from tests.oracle import check_node, node_model, run_onnxlite, run_reference

DOMAIN = "ai.onnx.preview.training"
RNG = np.random.default_rng(7)


def rand(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def optimizer_inputs(groups: list[str], n: int, t: int, dtype=np.float32):
    inputs = {"R": np.array(0.1, dtype=np.float32), "T": np.array(t, dtype=np.int64)}
    shapes = [(3,), (2, 4), (1,)][:n]
    for g in groups:
        for i, shape in enumerate(shapes):
            v = rand(*shape, dtype=dtype)
            inputs[f"{g}{i}"] = np.abs(v) if g == "H" else v
    return inputs


def outs(groups: list[str], n: int):
    return tuple(f"{g}{i}_new" for g in groups for i in range(n))


@pytest.mark.parametrize("n", [1, 3])
@pytest.mark.parametrize("t", [0, 5])
def test_adagrad(n, t):
    inputs = optimizer_inputs(["X", "G", "H"], n, t)
    attrs = {"decay_factor": 0.1, "epsilon": 1e-5, "norm_coefficient": 0.01}
    check_node("Adagrad", inputs, attrs, outputs=outs(["X", "H"], n), domain=DOMAIN, rtol=1e-5, atol=1e-6)


def check_adam(inputs, attrs, n):
    # onnx.reference returns float64 for a single float32 group (numpy 2 promotion), so compare
    # values against it and check the spec's dtype separately.
    m = node_model("Adam", inputs, attrs, outputs=outs(["X", "V", "H"], n), domain=DOMAIN)
    got, want = run_onnxlite(m, inputs), run_reference(m, inputs)
    assert len(got) == len(want) == 3 * n
    for g, w in zip(got, want):
        assert g.dtype == np.float32 and g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n", [1, 2])
@pytest.mark.parametrize("t", [0, 3])
@pytest.mark.parametrize("post", [0.0, 0.05])
def test_adam(n, t, post):
    inputs = optimizer_inputs(["X", "G", "V", "H"], n, t)
    attrs = {"alpha": 0.8, "beta": 0.95, "norm_coefficient": 0.001, "norm_coefficient_post": post}
    check_adam(inputs, attrs, n)


def test_adam_defaults():
    check_adam(optimizer_inputs(["X", "G", "V", "H"], 1, 1), {}, 1)


@pytest.mark.parametrize("mode", ["standard", "nesterov"])
@pytest.mark.parametrize("n", [1, 3])
@pytest.mark.parametrize("t", [0, 2])
def test_momentum(mode, n, t):
    inputs = optimizer_inputs(["X", "G", "V"], n, t)
    attrs = {"alpha": 0.9, "beta": 0.5, "mode": mode, "norm_coefficient": 0.01}
    check_node("Momentum", inputs, attrs, outputs=outs(["X", "V"], n), domain=DOMAIN, rtol=1e-5)


def test_double_tensors_keep_dtype():
    inputs = optimizer_inputs(["X", "G", "H"], 2, 1, dtype=np.float64)
    m = node_model("Adagrad", inputs, {}, outputs=outs(["X", "H"], 2), domain=DOMAIN)
    got = run_onnxlite(m, inputs)
    assert [g.dtype for g in got] == [np.float64] * 4


def test_inputs_not_mutated():
    inputs = optimizer_inputs(["X", "G", "V"], 1, 1)
    before = {k: v.copy() for k, v in inputs.items()}
    attrs = {"alpha": 0.9, "beta": 0.5, "mode": "standard", "norm_coefficient": 0.0}
    m = node_model("Momentum", inputs, attrs, outputs=outs(["X", "V"], 1), domain=DOMAIN)
    run_onnxlite(m, inputs)
    for k, v in before.items():
        np.testing.assert_array_equal(inputs[k], v)


def test_momentum_requires_attributes():
    from onnxlite.providers.cpu.kernels.training import momentum

    with pytest.raises(ValueError):
        momentum(np.float32(0.1), np.int64(1), rand(2), rand(2), rand(2), alpha=0.9)
