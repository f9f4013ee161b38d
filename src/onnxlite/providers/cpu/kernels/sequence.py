"""Sequences (Python lists of arrays) and optionals (a value or None)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ....types import np_dtype
from ...registry import NodeInfo
from ..registry import kernel


def _pos(position: Any, length: int, insert: bool = False) -> int:
    p = int(np.asarray(position).reshape(-1)[0])
    hi = length if insert else length - 1
    if p < -length or p > hi:
        raise IndexError(f"sequence position {p} is out of range for a sequence of length {length}")
    return p + length if p < 0 else p


@kernel("SequenceEmpty", since=11)
def sequence_empty(*, dtype: int = 1) -> list[Any]:
    np_dtype(dtype)  # validates the type
    return []


@kernel("SequenceConstruct", since=11)
def sequence_construct(*inputs: Any) -> list[Any]:
    return list(inputs)


@kernel("SequenceAt", since=11)
def sequence_at(seq: list[Any], position: Any) -> Any:
    return seq[_pos(position, len(seq))]


@kernel("SequenceInsert", since=11)
def sequence_insert(seq: list[Any], tensor: Any, position: Any = None) -> list[Any]:
    out = list(seq)
    if position is None:
        out.append(tensor)
    else:
        out.insert(_pos(position, len(seq), insert=True), tensor)
    return out


@kernel("SequenceErase", since=11)
def sequence_erase(seq: list[Any], position: Any = None) -> list[Any]:
    out = list(seq)
    del out[-1 if position is None else _pos(position, len(seq))]
    return out


@kernel("SequenceLength", since=11)
def sequence_length(seq: list[Any]) -> np.ndarray:
    return np.array(len(seq), dtype=np.int64)


@kernel("SplitToSequence", since=11)
def split_to_sequence(x: np.ndarray, split: Any = None, *, axis: int = 0, keepdims: int = 1) -> list[Any]:
    x = np.asarray(x)
    ax = axis + x.ndim if axis < 0 else axis
    n = x.shape[ax]
    if split is None:
        parts = [np.take(x, i, axis=ax) if not keepdims else np.take(x, [i], axis=ax) for i in range(n)]
        return parts
    s = np.asarray(split).astype(np.int64)
    if s.ndim == 0:
        step = int(s)
        bounds = list(range(step, n, step))
    else:
        if int(s.sum()) != n:
            raise ValueError(f"split sizes {s.tolist()} do not add up to the axis length {n}")
        bounds = np.cumsum(s)[:-1].tolist()
    return list(np.split(x, bounds, axis=ax))


@kernel("ConcatFromSequence", since=11)
def concat_from_sequence(seq: list[Any], *, axis: int, new_axis: int = 0) -> np.ndarray:
    if not seq:
        raise ValueError("ConcatFromSequence needs a non-empty sequence")
    if new_axis:
        ax = axis + seq[0].ndim + 1 if axis < 0 else axis
        return np.stack(seq, axis=ax)
    return np.concatenate(seq, axis=axis)


@kernel("SequenceMap", since=17, factory=True)
def make_sequence_map(info: NodeInfo) -> Callable[..., Any]:
    body = info.subgraphs["body"]
    n_explicit = len(info.inputs)
    names = info.implicit_inputs

    def sequence_map(*args: Any) -> Any:
        inputs = args[:n_explicit]
        outer = dict(zip(names, args[n_explicit:]))
        length = len(inputs[0])
        outs: list[list[Any]] = [[] for _ in range(info.n_outputs)]
        for i in range(length):
            row = [x[i] if isinstance(x, list) else x for x in inputs]
            for k, v in enumerate(body.run_subgraph(row, outer)):
                outs[k].append(v)
        return outs[0] if info.n_outputs == 1 else tuple(outs)

    return sequence_map


@kernel("Optional", since=15)
def optional(input: Any = None, *, type: Any = None) -> Any:
    return input


@kernel("OptionalHasElement", since=15)
def optional_has_element(input: Any = None) -> np.ndarray:
    return np.array(input is not None)


@kernel("OptionalGetElement", since=15)
def optional_get_element(input: Any) -> Any:
    if input is None:
        raise ValueError("OptionalGetElement on an empty optional")
    return input
