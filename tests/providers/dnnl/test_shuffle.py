"""Channel shuffle (Reshape, Transpose, Reshape) as one oneDNN shuffle."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from .conftest import CPU, DNNL, assert_close, graph_model, run_both, where


def _model(groups: int, shape1: list[int], shape2: list[int], perm: list[int], escape: bool = False):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    c = 12
    inits = {
        "w": rng.standard_normal((c, 4, 3, 3)).astype(np.float32),
        "w2": rng.standard_normal((c, c, 1, 1)).astype(np.float32),
        "s1": np.array(shape1, np.int64),
        "s2": np.array(shape2, np.int64),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Reshape", ["c", "s1"], ["g"]),
        helper.make_node("Transpose", ["g"], ["t"], perm=perm),
        helper.make_node("Reshape", ["t", "s2"], ["sh"]),
        helper.make_node("Conv", ["sh", "w2"], ["y"]),
    ]
    x = rng.standard_normal((2, 4, 5, 6)).astype(np.float32)
    return graph_model(nodes, {"x": x}, ["y", "t"] if escape else ["y"], inits), x


@pytest.mark.parametrize(
    ("groups", "shape1", "shape2"),
    [
        (3, [2, 3, 4, 5, 6], [2, 12, 5, 6]),
        (4, [0, 4, -1, 5, 6], [0, -1, 5, 6]),
        (2, [2, 2, 6, 5, 6], [2, 12, 5, 6]),
    ],
)
def test_channel_shuffle_runs_as_one_oneDNN_step(groups: int, shape1: list[int], shape2: list[int]) -> None:
    model, x = _model(groups, shape1, shape2, [0, 2, 1, 3, 4])
    got, want, sess = run_both(model, {"x": x})
    assert_close(got[0], want[0], rel=1e-5)
    ran = where(sess)
    assert ran["g"] == ran["t"] == ran["sh"] == DNNL
    assert all(p == DNNL for p in ran.values())


def test_other_transposes_and_escaping_values_stay_with_the_cpu_provider() -> None:
    model, x = _model(3, [2, 3, 4, 5, 6], [2, 12, 5, 6], [0, 1, 2, 4, 3])  # not a shuffle
    got, want, sess = run_both(model, {"x": x.copy()})
    assert_close(got[0], want[0], rel=1e-5)
    assert where(sess)["t"] == CPU
    model, x = _model(3, [2, 3, 4, 5, 6], [2, 12, 5, 6], [0, 2, 1, 3, 4], escape=True)
    got, want, sess = run_both(model, {"x": x})
    assert_close(got[0], want[0], rel=1e-5)
    assert_close(got[1], want[1], rel=1e-5)
    assert where(sess)["t"] == CPU


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize(("n", "c", "groups"), [(1, 12, 3), (2, 16, 4), (3, 10, 2)])
def test_shuffle_kernel_in_channels_last_and_plain_layouts(
    channels_last: bool, n: int, c: int, groups: int
) -> None:
    from onnxlite.providers.dnnl import _lib as L
    from onnxlite.providers.dnnl._ops import ShuffleKernel, _channels_last_rows
    from onnxlite.providers.dnnl._prim import MD, DnnlTensor

    h, w = 5, 3
    x = np.random.default_rng(c).standard_normal((n, c, h, w)).astype(np.float32)
    want = x.reshape(n, groups, c // groups, h, w).transpose(0, 2, 1, 3, 4).reshape(n, c, h, w)
    if channels_last:
        md = MD.plain((n, c, h, w), L.F32, strides=(c * h * w, 1, w * c, c))
        assert _channels_last_rows(md) == n * h * w
        src = DnnlTensor(np.ascontiguousarray(x.transpose(0, 2, 3, 1)).reshape(-1), md)
    else:
        md = MD.plain((n, c, h, w))
        assert _channels_last_rows(md) is None
        src = DnnlTensor(x.copy().reshape(-1), md)
    got = ShuffleKernel(groups, keep_blocked=False)(src)
    np.testing.assert_array_equal(np.asarray(got), want)
