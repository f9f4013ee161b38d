"""numpy kernels of the CPU provider, one op family per module; importing this package registers them."""

from __future__ import annotations

import importlib
import pkgutil

_loaded = False


def load_all() -> None:
    """Import every kernel module of this package (each registers its kernels).

    Done once per process: listing the package's files cost a few hundred microseconds, and
    every session creation makes two CPU providers (a 4-layer MLP's session: a fifth of it).
    """
    global _loaded
    if _loaded:
        return
    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")
    _loaded = True
