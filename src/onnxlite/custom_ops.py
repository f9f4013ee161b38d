"""Custom operators: Python kernels that users register for their own ops, or to replace a
built-in kernel. They run on the CPU provider and take precedence over its built-in kernels.

    import onnxlite

    @onnxlite.register_custom_op("Swish2", domain="my.ops")
    def swish2(x, *, beta=1.0):
        return x / (1 + np.exp(-beta * x))

The kernel contract is the built-in kernels' (see ``onnxlite.providers.registry``): inputs as
positional arguments, attributes as keyword-only arguments with defaults; ``factory=True``
registers a function that receives the node's NodeInfo and returns the kernel. A model using the
op imports the domain (``opset_import``); ``since`` is the first opset version of that domain the
kernel serves.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from typing import Any

from .errors import InvalidArgument, NoSuchFile, NotImplemented_
from .providers.cpu.registry import CUSTOM_KERNELS


def register_custom_op(
    op_type: str,
    fn: Callable[..., Any] | None = None,
    *,
    domain: str = "",
    since: int = 1,
    factory: bool = False,
) -> Any:
    """Register ``fn`` as the kernel of ``domain:op_type``; usable as a decorator."""
    if not op_type or not isinstance(op_type, str):
        raise InvalidArgument("register_custom_op needs an op type name")

    def deco(f: Callable[..., Any]) -> Callable[..., Any]:
        if not callable(f):
            raise InvalidArgument(f"the kernel for {op_type!r} must be callable, got {f!r}")
        CUSTOM_KERNELS.register(op_type, f, since=since, domain=domain, factory=factory)
        return f

    return deco if fn is None else deco(fn)


def unregister_custom_op(op_type: str, domain: str = "") -> None:
    """Remove every custom kernel registered for ``domain:op_type``."""
    CUSTOM_KERNELS.unregister(domain, op_type)


def load_custom_ops_file(path: str) -> None:
    """Execute a Python file that registers custom ops (SessionOptions.register_custom_ops_library)."""
    if not path.endswith(".py"):
        raise NotImplemented_(
            f"cannot load custom op library {path!r}: onnxlite runs Python kernels only; pass a .py "
            "file that calls onnxlite.register_custom_op, or register kernels in code"
        )
    if not os.path.exists(path):
        raise NoSuchFile(f"custom op library {path!r} does not exist")
    name = "onnxlite_custom_ops_" + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InvalidArgument(f"cannot import custom op library {path!r}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
