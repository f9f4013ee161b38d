"""The provider contract and the partitioner, with a toy provider that claims only Relu."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import onnxlite as ort
from onnxlite import providers as providers_mod
from onnxlite.errors import EPFail
from onnxlite.providers.base import ExecutionProvider
from onnxlite.providers.registry import KernelRegistry
from tests.models.builders import mlp, mlp_reference


def _unoptimized(so: ort.SessionOptions | None = None) -> ort.SessionOptions:
    """These tests follow the model's own nodes (MatMul, Add, ...): no fusions."""
    so = so or ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return so


X = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
TOY = "XnnpackExecutionProvider"  # a name onnxruntime knows; the toy stands in for it here

toy_kernels = KernelRegistry(TOY)
calls: list[str] = []


@toy_kernels.kernel("Relu", since=6)
def toy_relu(x: Any) -> Any:
    calls.append("relu")
    return np.maximum(x, 0)


class ToyProvider(ExecutionProvider):
    name = TOY
    registry = toy_kernels


class BrokenProvider(ToyProvider):
    def kernel(self, info, node, opsets):  # type: ignore[no-untyped-def]
        raise EPFail("the toy library failed to compile the group")


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> type[ExecutionProvider]:
    monkeypatch.setitem(providers_mod.PROVIDER_CLASSES, TOY, ToyProvider)
    calls.clear()
    return ToyProvider


def test_toy_provider_claims_its_nodes_and_cpu_takes_the_rest(toy) -> None:  # type: ignore[no-untyped-def]
    s = ort.InferenceSession(mlp(), sess_options=_unoptimized(), providers=[TOY, "CPUExecutionProvider"])
    assert s.get_providers() == [TOY, "CPUExecutionProvider"]
    where = {st.node.op_type: st.provider for st in s._plan.steps}
    assert where == {
        "MatMul": "CPUExecutionProvider",
        "Add": "CPUExecutionProvider",
        "Relu": TOY,
        "Sigmoid": "CPUExecutionProvider",
    }
    y, _ = s.run(None, {"x": X})
    assert calls == ["relu"]
    np.testing.assert_allclose(y, mlp_reference(X)[0], rtol=1e-5)


def test_default_providers_are_the_available_ones(toy) -> None:  # type: ignore[no-untyped-def]
    available = ort.get_available_providers()
    assert TOY in available and available[-1] == "CPUExecutionProvider"
    rank = [ort.get_all_providers().index(p) for p in available]
    assert rank == sorted(rank)  # onnxruntime's priority order
    s = ort.InferenceSession(mlp())
    assert s.get_providers()[-1] == "CPUExecutionProvider"


def test_disable_cpu_ep_fallback_names_unsupported_nodes(toy) -> None:  # type: ignore[no-untyped-def]
    so = ort.SessionOptions()
    so.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    with pytest.raises(EPFail) as ei:
        ort.InferenceSession(mlp(), sess_options=_unoptimized(so), providers=[TOY])
    msg = str(ei.value)
    assert "matmul" in msg and "sigmoid" in msg and "relu" not in msg


def test_cpu_fallback_without_the_config(toy) -> None:  # type: ignore[no-untyped-def]
    s = ort.InferenceSession(mlp(), sess_options=_unoptimized(), providers=[TOY])
    assert s.get_providers() == [TOY, "CPUExecutionProvider"]
    np.testing.assert_allclose(s.run(["z"], {"x": X})[0], mlp_reference(X)[1], rtol=1e-5)


def test_provider_failing_at_build_falls_back_to_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(providers_mod.PROVIDER_CLASSES, TOY, BrokenProvider)
    with pytest.warns(UserWarning, match="falling back"):
        s = ort.InferenceSession(mlp(), sess_options=_unoptimized(), providers=[TOY, "CPUExecutionProvider"])
    assert s.get_providers() == ["CPUExecutionProvider"]
    np.testing.assert_allclose(s.run(["y"], {"x": X})[0], mlp_reference(X)[0], rtol=1e-5)


def test_profiler_shows_the_provider_of_each_node(toy, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    so = ort.SessionOptions()
    so.enable_profiling = True
    so.profile_file_prefix = str(tmp_path / "p")
    s = ort.InferenceSession(mlp(), sess_options=_unoptimized(so), providers=[TOY, "CPUExecutionProvider"])
    s.run(None, {"x": X})
    with open(s.end_profiling()) as f:
        events = [e for e in json.load(f) if e["cat"] == "Node"]
    assert {e["args"]["op_name"]: e["args"]["provider"] for e in events}["Relu"] == TOY


class DevArray:
    """A value on the toy device: the CPU must never see one."""

    def __init__(self, a: Any) -> None:
        self.a = a


dev_kernels = KernelRegistry("ToyDevice")


@dev_kernels.kernel("Relu", since=6)
def dev_relu(x: DevArray) -> DevArray:
    assert isinstance(x, DevArray)
    return DevArray(np.maximum(x.a, 0))


@dev_kernels.kernel("Sigmoid", since=6)
def dev_sigmoid(x: DevArray) -> DevArray:
    assert isinstance(x, DevArray)
    return DevArray(1 / (1 + np.exp(-x.a)))


class DeviceProvider(ExecutionProvider):
    name = TOY
    device = "toydev"
    registry = dev_kernels

    def to_device(self, value: Any) -> DevArray:
        assert isinstance(value, np.ndarray)
        return DevArray(value)

    def to_cpu(self, value: Any) -> Any:
        assert isinstance(value, DevArray)
        return value.a


def test_copies_at_device_boundaries_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(providers_mod.PROVIDER_CLASSES, TOY, DeviceProvider)
    s = ort.InferenceSession(mlp(), sess_options=_unoptimized(), providers=[TOY, "CPUExecutionProvider"])
    ops = [st.node.op_type for st in s._plan.steps]
    # h goes to the device once (shared by Relu and Sigmoid); y and z come back to the host.
    assert ops.count("MemcpyFromHost") == 1
    assert ops.count("MemcpyToHost") == 2
    y, z = s.run(None, {"x": X})
    assert isinstance(y, np.ndarray) and isinstance(z, np.ndarray)
    want = mlp_reference(X)
    np.testing.assert_allclose(y, want[0], rtol=1e-5)
    np.testing.assert_allclose(z, want[1], rtol=1e-5)


class CompilingProvider(ExecutionProvider):
    """Claims Add -> Relu as one group and compiles it into a single callable."""

    name = TOY
    registry = toy_kernels
    compiled: list[tuple[list[str], list[str]]] = []

    def capability(self, graph, candidates, opsets):  # type: ignore[no-untyped-def]
        ops = {graph.nodes[i].op_type: i for i in candidates}
        return [[ops["Add"], ops["Relu"]]]

    def compile(self, graph, group):  # type: ignore[no-untyped-def]
        from onnxlite.providers.base import group_io

        ins, outs = group_io(graph, group)
        self.compiled.append((ins, outs))

        def add_relu(h0: Any, b: Any) -> tuple[Any, ...]:
            h = h0 + b
            return h, np.maximum(h, 0)

        return add_relu


def test_compiled_group_is_one_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(providers_mod.PROVIDER_CLASSES, TOY, CompilingProvider)
    CompilingProvider.compiled.clear()
    s = ort.InferenceSession(mlp(), sess_options=_unoptimized(), providers=[TOY, "CPUExecutionProvider"])
    # the group reads h0 and b; h is read outside it (Sigmoid) and y is a graph output
    assert CompilingProvider.compiled == [(["h0", "b"], ["h", "y"])]
    assert [st.provider for st in s._plan.steps].count(TOY) == 1
    y, z = s.run(None, {"x": X})
    np.testing.assert_allclose(y, mlp_reference(X)[0], rtol=1e-5)
    np.testing.assert_allclose(z, mlp_reference(X)[1], rtol=1e-5)


def test_verbose_session_log_shows_the_assignment(toy, capsys, caplog) -> None:  # type: ignore[no-untyped-def]
    import logging

    so = _unoptimized()
    so.log_severity_level = 0
    # no logging configured (pytest's capture handler taken away): the log goes to stderr
    logger = logging.getLogger("onnxlite")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(logger, "hasHandlers", lambda: False)
        ort.InferenceSession(mlp(), sess_options=so, providers=[TOY, "CPUExecutionProvider"])
    err = capsys.readouterr().err
    assert "session built: 4 nodes, 0 device copies" in err
    assert f"{TOY}: 1 nodes in 1 group(s) of 1: Relu(1)" in err
    assert "CPUExecutionProvider: 3 nodes: Add(1), MatMul(1), Sigmoid(1)" in err
    # with logging set up, the record goes to its handlers whatever the logger's own level
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(logger, "level", logging.ERROR)
        ort.InferenceSession(mlp(), sess_options=so, providers=[TOY, "CPUExecutionProvider"])
    assert any("session built" in r.getMessage() for r in caplog.records)
    # the default severity (warning) logs nothing
    caplog.clear()
    ort.InferenceSession(mlp(), sess_options=_unoptimized(), providers=[TOY, "CPUExecutionProvider"])
    assert not any("session built" in r.getMessage() for r in caplog.records)
    assert "session built" not in capsys.readouterr().err
