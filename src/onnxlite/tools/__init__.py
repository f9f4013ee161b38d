"""The command-line tools behind ``onnxlite <command>`` (bench, inspect, ...)."""

from __future__ import annotations

import argparse
from typing import Any


def read_npz(path: str, what: str = "input") -> dict[str, Any]:
    """The arrays of an .npz file, by name; a clear error for anything else."""
    import numpy as np

    bad = ValueError(f"{what} file {path!r} is not an .npz of arrays (as np.savez writes)")
    try:
        f = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ValueError(f"{what} file {path!r} does not exist") from None
    except (OSError, ValueError):  # numpy's own message speaks of pickles: not the point here
        raise bad from None
    if not isinstance(f, np.lib.npyio.NpzFile):  # an .npy: one array, not named ones
        raise bad
    with f:
        return {k: f[k] for k in f.files}


def non_negative_int(text: str) -> int:
    """argparse type: an int >= 0."""
    v = int(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {v}")
    return v


def positive_int(text: str) -> int:
    """argparse type: an int >= 1."""
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def non_negative_float(text: str) -> float:
    """argparse type: a float >= 0."""
    v = float(text)
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return v
