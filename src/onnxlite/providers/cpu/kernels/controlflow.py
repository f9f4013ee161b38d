"""Control flow: If, Loop, Scan. Bodies are compiled Plans; outer-scope values arrive after the
node's own inputs (NodeInfo.implicit_inputs) and are passed to the body by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ....types import np_dtype
from ...registry import NodeInfo
from ..registry import kernel


def _outer(info: NodeInfo, values: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(info.implicit_inputs, values))


def _scalar_bool(x: Any) -> bool:
    a = np.asarray(x)
    if a.size != 1:
        raise ValueError(f"condition must hold one element, got shape {list(a.shape)}")
    return bool(a.reshape(-1)[0])


@kernel("If", since=1, factory=True)
def make_if(info: NodeInfo) -> Callable[..., Any]:
    then_b = info.subgraphs["then_branch"]
    else_b = info.subgraphs["else_branch"]
    single = info.n_outputs == 1

    def if_(cond: Any, *implicit: Any) -> Any:
        branch = then_b if _scalar_bool(cond) else else_b
        res = branch.run_subgraph((), _outer(info, implicit))
        return res[0] if single else tuple(res)

    return if_


def _empty_like_output(info: NodeInfo, k: int) -> np.ndarray:
    tp = info.output_types[k] if k < len(info.output_types) else None
    dtype: Any = np.float32
    dims: list[int] = [0]
    if tp is not None and tp.HasField("tensor_type"):
        if tp.tensor_type.elem_type:
            dtype = np_dtype(tp.tensor_type.elem_type)
        shape = tp.tensor_type.shape.dim
        if len(shape) > 1:
            dims += [d.dim_value if d.HasField("dim_value") else 0 for d in shape[1:]]
    return np.zeros(dims, dtype=dtype)


@kernel("Loop", since=1, factory=True)
def make_loop(info: NodeInfo) -> Callable[..., Any]:
    body = info.subgraphs["body"]
    n_explicit = len(info.inputs)
    n_carried = n_explicit - 2
    n_scan = info.n_outputs - n_carried

    def loop(max_trip: Any, cond: Any, *rest: Any) -> Any:
        carried = list(rest[:n_carried])
        outer = _outer(info, rest[n_carried:])
        trips = int(np.asarray(max_trip).reshape(-1)[0]) if max_trip is not None else None
        keep = _scalar_bool(cond) if cond is not None else True
        scans: list[list[Any]] = [[] for _ in range(n_scan)]
        i = 0
        while keep and (trips is None or i < trips):
            res = body.run_subgraph([np.array(i, dtype=np.int64), np.array(keep), *carried], outer)
            keep = _scalar_bool(res[0])
            carried = list(res[1 : 1 + n_carried])
            for k, v in enumerate(res[1 + n_carried :]):
                scans[k].append(v)
            i += 1
        outs: list[Any] = carried
        for k, items in enumerate(scans):
            if not items:
                outs.append(_empty_like_output(info, n_carried + k))
            elif isinstance(items[0], list):
                outs.append([x for seq in items for x in seq])
            else:
                outs.append(np.stack([np.asarray(x) for x in items]))
        return tuple(outs) if len(outs) != 1 else outs[0]

    return loop


def _run_scan(
    body: Any,
    outer: dict[str, Any],
    states: list[Any],
    scans: list[np.ndarray],
    in_axes: list[int],
    in_dirs: list[int],
    out_axes: list[int],
    out_dirs: list[int],
    n_out: int,
) -> list[Any]:
    n_state = len(states)
    length = scans[0].shape[in_axes[0]] if scans else 0
    for x, ax in zip(scans, in_axes):
        if x.shape[ax] != length:
            raise ValueError(f"scan inputs disagree on the sequence length: {x.shape[ax]} vs {length}")
    collected: list[list[Any]] = [[] for _ in range(n_out - n_state)]
    for t in range(length):
        slices = [
            np.take(x, length - 1 - t if d else t, axis=ax) for x, ax, d in zip(scans, in_axes, in_dirs)
        ]
        res = body.run_subgraph([*states, *slices], outer)
        states = list(res[:n_state])
        for k, v in enumerate(res[n_state:]):
            collected[k].append(np.asarray(v))
    outs: list[Any] = list(states)
    for k, items in enumerate(collected):
        if out_dirs[k]:
            items = items[::-1]
        stacked = np.stack(items) if items else np.zeros((0,), dtype=np.float32)
        ax = out_axes[k]
        if ax < 0:
            ax += stacked.ndim
        outs.append(np.moveaxis(stacked, 0, ax) if ax else stacked)
    return outs


@kernel("Scan", since=9, factory=True)
def make_scan(info: NodeInfo) -> Callable[..., Any]:
    body = info.subgraphs["body"]
    a = info.attrs
    m = int(a["num_scan_inputs"])
    n_explicit = len(info.inputs)
    n_state = n_explicit - m
    k_out = info.n_outputs - n_state
    in_axes_attr = list(a.get("scan_input_axes") or [0] * m)
    in_dirs = list(a.get("scan_input_directions") or [0] * m)
    out_axes_attr = list(a.get("scan_output_axes") or [0] * k_out)
    out_dirs = list(a.get("scan_output_directions") or [0] * k_out)

    def scan(*args: Any) -> Any:
        states = list(args[:n_state])
        scans = [np.asarray(x) for x in args[n_state:n_explicit]]
        outer = _outer(info, args[n_explicit:])
        in_axes = [ax + x.ndim if ax < 0 else ax for ax, x in zip(in_axes_attr, scans)]
        outs = _run_scan(
            body, outer, states, scans, in_axes, in_dirs, out_axes_attr, out_dirs, info.n_outputs
        )
        return tuple(outs) if len(outs) != 1 else outs[0]

    return scan


@kernel("Scan", since=8, factory=True)
def make_scan8(info: NodeInfo) -> Callable[..., Any]:
    body = info.subgraphs["body"]
    a = info.attrs
    m = int(a["num_scan_inputs"])
    n_explicit = len(info.inputs)
    n_state = n_explicit - 1 - m
    dirs = list(a.get("directions") or [0] * m)

    def scan8(seq_lens: Any, *args: Any) -> Any:
        states = [np.asarray(x) for x in args[:n_state]]
        scans = [np.asarray(x) for x in args[n_state : n_state + m]]
        outer = _outer(info, args[n_explicit - 1 :])
        batch = scans[0].shape[0]
        lens = np.asarray(seq_lens).reshape(-1) if seq_lens is not None else None
        per_batch = []
        for b in range(batch):
            n = int(lens[b]) if lens is not None else scans[0].shape[1]
            outs = _run_scan(
                body,
                outer,
                [s[b] for s in states],
                [x[b, :n] for x in scans],
                [0] * m,
                dirs,
                [0] * (info.n_outputs - n_state),
                [0] * (info.n_outputs - n_state),
                info.n_outputs,
            )
            per_batch.append(outs)
        result = tuple(np.stack([o[k] for o in per_batch]) for k in range(info.n_outputs))
        return result if len(result) != 1 else result[0]

    return scan8
