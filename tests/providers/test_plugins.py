"""Third-party providers join through the `onnxlite.execution_providers` entry-point group."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from typing import Any

import numpy as np
import pytest

import onnxlite as ort
from onnxlite import providers as providers_mod
from onnxlite.providers.base import ExecutionProvider
from onnxlite.providers.registry import KernelRegistry
from tests.fresh import fresh_stdout
from tests.models.builders import mlp, mlp_reference

plugin_kernels = KernelRegistry("AcmeExecutionProvider")


@plugin_kernels.kernel("Sigmoid", since=6)
def acme_sigmoid(x: Any) -> Any:
    return 1 / (1 + np.exp(-x))


class AcmeProvider(ExecutionProvider):
    """What a plugin package ships: a named provider with its kernels."""

    name = "AcmeExecutionProvider"
    registry = plugin_kernels


@pytest.fixture
def plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    eps = [
        EntryPoint("acme", "tests.providers.test_plugins:AcmeProvider", providers_mod.ENTRY_POINT_GROUP),
        EntryPoint("broken", "tests.providers.test_plugins:NoSuchThing", providers_mod.ENTRY_POINT_GROUP),
    ]

    def fake_entry_points(group: str) -> list[EntryPoint]:
        return eps if group == providers_mod.ENTRY_POINT_GROUP else []

    monkeypatch.setattr("importlib.metadata.entry_points", fake_entry_points)
    monkeypatch.setattr(providers_mod, "_plugins_loaded", False)
    # only the built-in CPU provider besides the plugin, so that the plugin's claims are its own
    cpu = {"CPUExecutionProvider": providers_mod.PROVIDER_CLASSES["CPUExecutionProvider"]}
    monkeypatch.setattr(providers_mod, "PROVIDER_CLASSES", cpu)
    monkeypatch.setattr(providers_mod, "_BUILTIN", {})


def test_plugin_provider_is_listed_and_used(plugin) -> None:  # type: ignore[no-untyped-def]
    with pytest.warns(UserWarning, match="broken"):
        available = ort.get_available_providers()
    assert available == ["AcmeExecutionProvider", "CPUExecutionProvider"]
    assert "AcmeExecutionProvider" in ort.get_all_providers()
    s = ort.InferenceSession(mlp())
    assert s.get_providers() == ["AcmeExecutionProvider", "CPUExecutionProvider"]
    where = {st.node.op_type: st.provider for st in s._plan.steps}
    assert where["Sigmoid"] == "AcmeExecutionProvider" and where["Relu"] == "CPUExecutionProvider"
    x = np.ones((2, 4), np.float32)
    np.testing.assert_allclose(s.run(["z"], {"x": x})[0], mlp_reference(x)[1], rtol=1e-6)


def test_built_in_providers_load_when_first_named() -> None:
    # a fresh interpreter: the oneDNN and CUDA providers' modules (kernels, library bindings)
    # are not imported by a session on the CPU provider alone, and are by a listing
    code = (
        "import sys, onnxlite as ort\n"
        "from tests.models.builders import mlp\n"
        "ort.InferenceSession(mlp(), providers=['CPUExecutionProvider'])\n"
        "mods = lambda: sorted(m for m in sys.modules if m.split('.')[2:3] in (['dnnl'], ['cuda']))\n"
        "print(mods())\n"
        "print(ort.get_available_providers()[-1], 'onnxlite.providers.dnnl.provider' in mods())\n"
    )
    out = fresh_stdout(code)
    assert out.splitlines() == ["[]", "CPUExecutionProvider True"]


seg_kernels = KernelRegistry("SegmentingExecutionProvider")


@seg_kernels.kernel("Sigmoid", since=6)
def seg_sigmoid(x: Any) -> Any:
    return 1 / (1 + np.exp(-x))


@seg_kernels.kernel("Relu", since=6)
def seg_relu(x: Any) -> Any:
    if np.isnan(x).any():
        raise ValueError("a NaN reached Relu")
    return np.maximum(x, 0)


class SegmentingProvider(ExecutionProvider):
    """A provider that runs its consecutive steps as one callable (``segment``)."""

    name = "SegmentingExecutionProvider"
    registry = seg_kernels
    calls = 0  # how many times a segment ran

    def segmentable(self, fn: Any) -> bool:
        return True

    def segment(self, steps: Any, indices: Any, constants: Any) -> Any:
        from onnxlite.plan import SegmentStepError, store

        def run(vals: list[Any]) -> None:
            SegmentingProvider.calls += 1
            for (fn, ins, outs, free), index in zip(steps, indices):
                try:
                    res = fn(*[vals[i] for i in ins])
                except Exception as e:
                    raise SegmentStepError(index, e) from e
                store(vals, outs, res)
                for f in free:
                    vals[f] = None

        return run


def test_a_provider_may_run_its_steps_as_segments(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from onnx import TensorProto, helper

    monkeypatch.setitem(providers_mod.PROVIDER_CLASSES, SegmentingProvider.name, SegmentingProvider)
    nodes = [
        helper.make_node("Sigmoid", ["x"], ["a"]),
        helper.make_node("Relu", ["a"], ["b"]),
        helper.make_node("Sigmoid", ["b"], ["y"]),
    ]
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()
    providers = [SegmentingProvider.name, "CPUExecutionProvider"]
    s = ort.InferenceSession(model, providers=providers)
    x = np.linspace(-2, 2, 6, dtype=np.float32).reshape(2, 3)
    before = SegmentingProvider.calls
    (y,) = s.run(None, {"x": x})
    want = 1 / (1 + np.exp(-np.maximum(1 / (1 + np.exp(-x)), 0)))
    np.testing.assert_allclose(y, want, rtol=1e-6)
    assert SegmentingProvider.calls == before + 1  # one callable for the three steps
    # a failing step inside a segment is reported as that node's failure
    with pytest.raises(ort.Fail, match=r"Relu.*a NaN reached Relu"):
        s.run(None, {"x": np.full((2, 3), np.nan, np.float32)})
    # the profiler times each node, not the segment
    so = ort.SessionOptions()
    so.enable_profiling = True
    so.profile_file_prefix = str(tmp_path / "p")
    sp = ort.InferenceSession(model, sess_options=so, providers=providers)
    sp.run(None, {"x": x})
    import json

    with open(sp.end_profiling()) as f:
        ops = [
            e["args"]["op_name"] for e in json.load(f) if e.get("cat") == "Node" and "op_name" in e["args"]
        ]
    assert sorted(ops) == ["Relu", "Sigmoid", "Sigmoid"]
