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
