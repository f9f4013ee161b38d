"""Convolution, pooling and batch normalisation over an array namespace.

Conv runs on cuDNN where CuPy exposes it (``cupyx.cudnn``, CuPy 13 and older); otherwise, and on
the host, as im2col (one strided slice per kernel tap) followed by one batched GEMM (cuBLAS on
the GPU) over the groups. Pools combine one strided slice per tap.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..cpu.kernels.conv import conv_geometry, spatial_attrs
from ..registry import NodeInfo
from ._backend import Backend, builds, compute_dtype
from ._math import MS, Act, activation

log = logging.getLogger("onnxlite")


def _pad(m: Any, x: Any, pb: Sequence[int], pe: Sequence[int], value: float) -> Any:
    if not any(pb) and not any(pe):
        return x
    widths = [(0, 0), (0, 0), *zip(pb, pe)]
    return m.pad(x, widths, mode="constant", constant_values=value)


def _taps(
    k: Sequence[int], s: Sequence[int], d: Sequence[int], out: Sequence[int]
) -> list[tuple[slice, ...]]:
    """The strided source slices of every kernel tap, row-major over the kernel."""
    return [
        (
            slice(None),
            slice(None),
            *(slice(o * di, o * di + (q - 1) * si + 1, si) for o, di, q, si in zip(offs, d, out, s)),
        )
        for offs in itertools.product(*(range(ki) for ki in k))
    ]


class ConvKernel:
    """Conv / FusedConv: ``act(conv(x, w) + b + z)``."""

    def __init__(self, info: NodeInfo, be: Backend, act: Act | None) -> None:
        a = info.attrs
        self.be = be
        self.act = act
        self.group = int(a.get("group", 1))
        self.kernel_shape = a.get("kernel_shape")
        self.strides, self.dilations = a.get("strides"), a.get("dilations")
        self.pads, self.auto_pad = a.get("pads"), a.get("auto_pad", "NOTSET")
        self.use_cudnn = be.cudnn is not None
        self._lock = threading.Lock()

    def __call__(self, x: Any, w: Any, b: Any = None, z: Any = None) -> Any:
        be = self.be
        m = be.ns(x, w, b, z)
        x, w = m.asarray(x), m.asarray(w)
        nd = x.ndim - 2
        k, s, d = spatial_attrs(nd, self.kernel_shape, self.strides, self.dilations, w.shape[2:])
        out, pb, pe = conv_geometry(x.shape[2:], k, s, d, self.pads, self.auto_pad)
        g = self.group
        if x.shape[1] != w.shape[1] * g or w.shape[0] % g or tuple(w.shape[2:]) != k:
            raise ValueError(
                f"Conv input {list(x.shape)} does not match weights {list(w.shape)} "
                f"(group={g}, kernel_shape={list(k)})"
            )
        y = None
        if self.use_cudnn and m is be.xp and nd in (2, 3) and x.dtype == w.dtype and min(out, default=1) > 0:
            y = self._cudnn(m, x, w, b, k, s, d, out, pb, pe)
        if y is None:
            y = self._gemm(m, x, w, k, s, d, out, pb, pe)
            if b is not None:
                y += m.asarray(b).reshape((1, -1) + (1,) * nd)
        if z is not None:
            y += m.asarray(z)
        return y if self.act is None else self.act(m, y)

    def _gemm(self, m: Any, x: Any, w: Any, k: Any, s: Any, d: Any, out: Any, pb: Any, pe: Any) -> Any:
        n, c = x.shape[:2]
        o, g = w.shape[0], self.group
        cg, og = c // g, o // g
        kk, ll = math.prod(k), math.prod(out)
        ct = compute_dtype(x.dtype)
        xp_ = _pad(m, x, pb, pe, 0)
        if kk == 1:
            cols = xp_[_taps(k, s, d, out)[0]].reshape(n, g, cg, ll)
        else:
            cols = m.stack([xp_[t] for t in _taps(k, s, d, out)], axis=2)  # (N, C, K, *out)
            cols = cols.reshape(n, g, cg * kk, ll)
        wm = w.reshape(g, og, cg * kk)
        # (G, Og, Cg*K) @ (N, G, Cg*K, L) -> (N, G, Og, L): one batched GEMM
        y = m.matmul(wm.astype(ct, copy=False), cols.astype(ct, copy=False))
        return y.astype(x.dtype, copy=False).reshape(n, o, *out)

    def _cudnn(
        self, m: Any, x: Any, w: Any, b: Any, k: Any, s: Any, d: Any, out: Any, pb: Any, pe: Any
    ) -> Any:
        # cuDNN pads symmetrically: the excess of the larger side is padded on the input
        pads = tuple(min(bb, e) for bb, e in zip(pb, pe))
        x = _pad(m, x, [bb - p for bb, p in zip(pb, pads)], [e - p for e, p in zip(pe, pads)], 0)
        y = m.empty((x.shape[0], w.shape[0], *out), dtype=x.dtype)
        bias = None if b is None else m.ascontiguousarray(m.asarray(b, dtype=x.dtype))
        try:
            self.be.cudnn.convolution_forward(
                m.ascontiguousarray(x),
                m.ascontiguousarray(w),
                bias,
                y,
                pads,
                tuple(s),
                tuple(d),
                self.group,
                auto_tune=self.be.conv_auto_tune,
                # float32 stays float32: no TF32 tensor-core rounding
                tensor_core="auto" if x.dtype == np.float16 else "never",
            )
        except (ImportError, OSError, RuntimeError) as e:
            # cuDNN present in CuPy but not loadable here: the GEMM path for this node from now on
            with self._lock:
                if self.use_cudnn:
                    log.warning("CUDAExecutionProvider: cuDNN convolution failed (%s); using GEMM", e)
                self.use_cudnn = False
            return None
        return y


@builds("Conv")
def build_conv(info: NodeInfo, be: Backend) -> Callable[..., Any]:
    return ConvKernel(info, be, None)


@builds("FusedConv", domain=MS)
def build_fused_conv(info: NodeInfo, be: Backend) -> Callable[..., Any]:
    params = [float(v) for v in (info.attrs.get("activation_params") or [])]
    params += [None] * (2 - len(params))  # type: ignore[list-item]
    act = activation(info.attrs.get("activation", ""), params[0], params[1])
    return ConvKernel(info, be, act)


# --------------------------------------------------------------------------- pooling


class PoolKernel:
    """MaxPool (values only) and AveragePool, any rank, dilations and ceil_mode."""

    def __init__(self, info: NodeInfo, be: Backend) -> None:
        a = info.attrs
        self.be = be
        self.max = info.op_type == "MaxPool"
        self.kernel_shape = list(a["kernel_shape"])
        self.strides, self.dilations = a.get("strides"), a.get("dilations")
        self.pads, self.auto_pad = a.get("pads"), a.get("auto_pad", "NOTSET")
        self.ceil_mode = int(a.get("ceil_mode", 0))
        self.include_pad = bool(int(a.get("count_include_pad", 0)))
        self._counts: dict[tuple[Any, ...], Any] = {}

    def __call__(self, x: Any) -> Any:
        m = self.be.ns(x)
        nd = x.ndim - 2
        k, s, d = spatial_attrs(nd, self.kernel_shape, self.strides, self.dilations)
        out, pb, pe = conv_geometry(x.shape[2:], k, s, d, self.pads, self.auto_pad, self.ceil_mode)
        # the last (ceil_mode) windows may reach past the end padding
        need = [(o - 1) * si + (ki - 1) * di + 1 for o, si, ki, di in zip(out, s, k, d)]
        extra = [max(0, nn - (n + b + e)) for nn, n, b, e in zip(need, x.shape[2:], pb, pe)]
        pe2 = [e + x_ for e, x_ in zip(pe, extra)]
        taps = _taps(k, s, d, out)
        if self.max:
            low = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
            xp_ = _pad(m, x, pb, pe2, low)
            y = xp_[taps[0]].copy()
            for t in taps[1:]:
                m.maximum(y, xp_[t], out=y)
            return y
        ct = compute_dtype(x.dtype)
        xp_ = _pad(m, x.astype(ct, copy=False), pb, pe2, 0)
        y = xp_[taps[0]].copy()
        for t in taps[1:]:
            y += xp_[t]
        y /= self._window_counts(m, tuple(x.shape[2:]), k, s, d, out, pb, pe, pe2, ct)
        return y.astype(x.dtype, copy=False)

    def _window_counts(
        self,
        m: Any,
        shape: tuple[int, ...],
        k: Any,
        s: Any,
        d: Any,
        out: Any,
        pb: Any,
        pe: Any,
        pe2: Any,
        ct: Any,
    ) -> Any:
        """Divisor of every output: taps inside the input (or inside the pads when counted)."""
        key = (shape, m is self.be.xp)
        hit = self._counts.get(key)
        if hit is not None:
            return hit
        padded = [b + n + e for b, n, e in zip(pb, shape, pe2)]
        mask = np.zeros((1, 1, *padded), dtype=ct)
        if self.include_pad:  # the explicit pads count, the ceil_mode extension does not
            region = tuple(slice(0, b + n + e) for b, n, e in zip(pb, shape, pe))
        else:
            region = tuple(slice(b, b + n) for b, n in zip(pb, shape))
        where: tuple[Any, ...] = (0, 0, *region)
        mask[where] = 1
        counts = sum(mask[t] for t in _taps(k, s, d, out))
        counts = np.maximum(counts, 1)
        dev = m.asarray(counts)
        self._counts[key] = dev
        return dev


@builds("MaxPool", "AveragePool")
def build_pool(info: NodeInfo, be: Backend) -> Callable[..., Any]:
    return PoolKernel(info, be)


@builds("GlobalAveragePool", "GlobalMaxPool")
def build_global_pool(info: NodeInfo, be: Backend) -> Callable[..., Any]:
    is_max = info.op_type == "GlobalMaxPool"

    def global_pool(x: Any) -> Any:
        axes = tuple(range(2, x.ndim))
        if is_max:
            return x.max(axis=axes, keepdims=True)
        ct = compute_dtype(x.dtype)
        return x.astype(ct, copy=False).mean(axis=axes, keepdims=True).astype(x.dtype, copy=False)

    return global_pool


@builds("BatchNormalization")
def build_batch_norm(info: NodeInfo, be: Backend) -> Callable[..., Any]:
    eps = float(info.attrs.get("epsilon", 1e-5))

    def batch_norm(x: Any, scale: Any, b: Any, mean: Any, var: Any) -> Any:
        m = be.ns(x, scale, b, mean, var)
        x = m.asarray(x)
        ct = compute_dtype(x.dtype)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        a = m.asarray(scale).astype(ct) / m.sqrt(m.asarray(var).astype(ct) + eps)
        c = m.asarray(b).astype(ct) - m.asarray(mean).astype(ct) * a
        y = x.astype(ct, copy=False) * a.reshape(shape) + c.reshape(shape)
        return y.astype(x.dtype, copy=False)

    return batch_norm
