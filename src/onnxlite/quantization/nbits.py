"""Int4 weight-only quantization of MatMul weights: com.microsoft MatMulNBits (block-wise along K,
symmetric or with zero points), or standard opset-21 blocked DequantizeLinear + MatMul (QDQ)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import ml_dtypes
import numpy as np

from ..ir.graph import Node
from ._rewrite import Rewriter, load_ir, save_model
from .api import QuantizeReport, _count
from .types import QuantFormat


def quantize_blockwise_4bits(
    w: np.ndarray, block_size: int, is_symmetric: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """W [K, N] -> (q [N, nb, block_size] uint8 values 0..15, scales [N, nb], zero points [N, nb]).

    Symmetric follows onnxruntime: the value of largest magnitude maps to -8 (zero point 8).
    """
    k, n = w.shape
    nb = -(-k // block_size)
    wp = np.zeros((nb * block_size, n), dtype=np.float32)
    wp[:k] = w
    blocks = wp.T.reshape(n, nb, block_size)
    if is_symmetric:
        idx = np.abs(blocks).argmax(axis=2)
        vmax = np.take_along_axis(blocks, idx[..., None], axis=2)[..., 0]
        scale = vmax / -8.0
        zp = np.full((n, nb), 8.0, dtype=np.float32)
    else:
        vmin = np.minimum(blocks.min(axis=2), 0.0)
        vmax = np.maximum(blocks.max(axis=2), 0.0)
        scale = (vmax - vmin) / 15.0
        safe = np.where(scale != 0, scale, 1.0)
        zp = np.clip(np.round(-vmin / safe), 0, 15)
    safe = np.where(scale != 0, scale, 1.0)
    q = np.clip(np.round(blocks / safe[..., None]) + zp[..., None], 0, 15).astype(np.uint8)
    return q, scale.astype(np.float32), zp.astype(np.uint8)


def _pack(v: np.ndarray) -> np.ndarray:
    """Pairs of 4-bit values along the last axis into bytes, low nibble first."""
    if v.shape[-1] % 2:
        v = np.concatenate([v, np.zeros((*v.shape[:-1], 1), dtype=v.dtype)], axis=-1)
    return (v[..., 0::2] | (v[..., 1::2] << 4)).astype(np.uint8)


def quantize_matmul_nbits(
    model_input: Any,
    model_output: str | os.PathLike[str],
    block_size: int = 32,
    is_symmetric: bool = True,
    accuracy_level: int | None = None,
    nodes_to_exclude: Sequence[str] | None = None,
    nodes_to_include: Sequence[str] | None = None,
    quant_format: QuantFormat = QuantFormat.QOperator,
    bits: int = 4,
) -> QuantizeReport:
    """Replace MatMuls with a constant 2-D float weight by MatMulNBits (QOperator) or by an int4
    blocked DequantizeLinear feeding the MatMul (QDQ, opset 21)."""
    if bits != 4:
        raise ValueError(f"only 4-bit weights are supported, got bits={bits}")
    if block_size < 16 or block_size & (block_size - 1):
        raise ValueError(f"block_size must be a power of 2 >= 16, got {block_size}")
    model = load_ir(model_input)
    report = QuantizeReport(op_counts=_count(model.graph.nodes))
    rw = Rewriter(model)
    excl = set(nodes_to_exclude or ())
    incl = None if nodes_to_include is None else set(nodes_to_include)
    new_nodes: list[Node] = []
    done: list[Node] = []
    for n in model.graph.nodes:
        w = rw.const(n.inputs[1]) if n.op_type == "MatMul" and not n.domain else None
        if (
            w is None
            or w.ndim != 2
            or w.dtype != np.float32
            or n.name in excl
            or (incl is not None and n.name not in incl)
        ):
            new_nodes.append(n)
            continue
        k, nn = w.shape
        q, scale, zp = quantize_blockwise_4bits(w, block_size, is_symmetric)
        wn = n.inputs[1]
        if quant_format is QuantFormat.QOperator:
            rw.use_domain("com.microsoft")
            ins = [n.inputs[0], rw.init(f"{wn}_Q4", _pack(q)), rw.init(f"{wn}_scales", scale.reshape(-1))]
            if not is_symmetric:
                ins.append(rw.init(f"{wn}_zero_points", _pack(zp).reshape(-1)))
            attrs: dict[str, Any] = {"K": k, "N": nn, "bits": 4, "block_size": block_size}
            if accuracy_level is not None:
                attrs["accuracy_level"] = accuracy_level
            new_nodes.append(
                Node(
                    "MatMulNBits",
                    ins,
                    list(n.outputs),
                    attrs=attrs,
                    name=rw.unique(n.name + "_Q4"),
                    domain="com.microsoft",
                )
            )
        else:
            nb = scale.shape[1]
            qk = q.astype(np.int16).reshape(nn, nb * block_size)[:, :k].T  # [K, N]
            if is_symmetric:
                vals = (qk - 8).astype(ml_dtypes.int4)
                zpa = np.zeros((nb, nn), dtype=ml_dtypes.int4)
            else:
                vals = qk.astype(ml_dtypes.uint4)
                zpa = zp.T.astype(ml_dtypes.uint4)
            ins = [
                rw.init(f"{wn}_Q4", vals),
                rw.init(f"{wn}_scales", np.ascontiguousarray(scale.T)),
                rw.init(f"{wn}_zero_points", zpa),
            ]
            dq = rw.node(
                "DequantizeLinear", ins, name=f"{wn}_DequantizeLinear", axis=0, block_size=block_size
            )
            new_nodes += [dq, Node("MatMul", [n.inputs[0], dq.outputs[0]], list(n.outputs), name=n.name)]
            if model.opsets.get("", 1) < 21:
                model.opsets[""] = 21
                model.ir_version = max(model.ir_version, 10)
        done.append(n)
    model.graph.nodes = new_nodes
    rw.drop_unused_initializers()
    report.quantized = _count(done)
    save_model(model, os.fspath(model_output))
    return report


class MatMul4BitsQuantizer:
    """onnxruntime's class-shaped entry point: ``MatMul4BitsQuantizer(model, ...).process()`` then
    ``.save(path)`` (the model is written on save)."""

    def __init__(
        self,
        model: Any,
        block_size: int = 128,
        is_symmetric: bool = False,
        accuracy_level: int | None = None,
        nodes_to_exclude: Sequence[str] | None = None,
        nodes_to_include: Sequence[str] | None = None,
        quant_format: QuantFormat = QuantFormat.QOperator,
    ) -> None:
        self.model_input = model
        self.kw = dict(
            block_size=block_size,
            is_symmetric=is_symmetric,
            accuracy_level=accuracy_level,
            nodes_to_exclude=nodes_to_exclude,
            nodes_to_include=nodes_to_include,
            quant_format=quant_format,
        )
        self._bytes: bytes | None = None

    def process(self) -> None:
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "m.onnx")
            quantize_matmul_nbits(self.model_input, p, **self.kw)  # type: ignore[arg-type]
            with open(p, "rb") as f:
                self._bytes = f.read()

    def save(self, path: str | os.PathLike[str]) -> None:
        if self._bytes is None:
            raise RuntimeError("call process() before save()")
        with open(path, "wb") as f:
            f.write(self._bytes)
