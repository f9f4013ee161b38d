"""numpy kernels of the CPU provider, one op family per module; importing this package registers them."""

from __future__ import annotations

import importlib
import pkgutil


def load_all() -> None:
    """Import every kernel module of this package (each registers its kernels)."""
    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")
