"""Arrays derived from a kernel's weights (rearranged or transformed), computed once per weights.

Initializers reach a kernel as the same read-only array object on every run, so what a kernel
derives from them is kept by the array's id, with a weak reference that tells a reused id from
the original array and drops the entry when the weights go. Writeable weights (computed by the
graph, or fed) are derived afresh on every call.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable

import numpy as np


class DerivedWeights:
    """A cache of one kind of derived array, keyed by the weights it came from."""

    def __init__(self) -> None:
        self._cache: dict[int, tuple[weakref.ref, np.ndarray]] = {}
        self._lock = threading.Lock()

    def get(self, w: np.ndarray, make: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """``make(w)``, computed once while ``w`` is read-only and alive."""
        if w.flags.writeable:
            return make(w)
        key = id(w)
        hit = self._cache.get(key)
        if hit is not None and hit[0]() is w:
            return hit[1]
        derived = make(w)
        with self._lock:
            self._cache[key] = (weakref.ref(w, functools.partial(self._forget, key)), derived)
        return derived

    def drop(self, w: np.ndarray) -> None:
        """Forget what was derived from ``w``, if anything."""
        if self._cache:
            hit = self._cache.get(id(w))
            if hit is not None and hit[0]() is w:
                self._forget(id(w), hit[0])

    def _forget(self, key: int, ref: weakref.ref) -> None:
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] is ref:
                del self._cache[key]
