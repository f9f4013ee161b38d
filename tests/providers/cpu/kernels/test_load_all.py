import pkgutil
import sys

import pytest

from onnxlite.providers.cpu import kernels


def test_load_all_imports_every_kernel_module_once(monkeypatch) -> None:
    kernels.load_all()
    names = [m.name for m in pkgutil.iter_modules(kernels.__path__) if not m.name.startswith("_")]
    assert names and all(f"{kernels.__name__}.{n}" in sys.modules for n in names)

    def listing(*a, **k):
        raise AssertionError("the package is listed again")

    monkeypatch.setattr(pkgutil, "iter_modules", listing)
    kernels.load_all()  # a session's providers call it again: nothing to do


def test_load_all_retries_after_a_failed_import(monkeypatch) -> None:
    monkeypatch.setattr(kernels, "_loaded", False)

    def failing(*a, **k):
        raise ImportError("broken")

    with monkeypatch.context() as mp:
        mp.setattr(kernels.importlib, "import_module", failing)
        with pytest.raises(ImportError):
            kernels.load_all()
    assert kernels._loaded is False  # not marked done: the next provider tries again
    kernels.load_all()
    assert kernels._loaded is True
