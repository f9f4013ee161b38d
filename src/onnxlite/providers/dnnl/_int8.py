"""Integer convolution and matmul on oneDNN (u8/s8 activations, s8 weights, s32 accumulation).

QLinearConv / QLinearMatMul map onto oneDNN 3.x's quantization attributes: src, weights and
dst scales (weights per output channel or per tensor) and src/dst zero points, so that
``y = saturate(round((sx*sw*acc(x - zx, w) + sx*sw*b) / sy) + zy)``. ConvInteger and
MatMulInteger return the s32 accumulator with the src zero point applied. Weight zero points
must be zero (oneDNN has none for convolution weights); the provider declines other nodes.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np

from . import _lib as L
from ._conv import conv_geometry
from ._ops import _Cached
from ._prim import (
    MD,
    NP_OF,
    Attr,
    PrimitiveCache,
    channels_last_strides,
    check_output_size,
    create,
    empty,
    empty_on_zero_size,
    into,
    make_concat,
    make_reorder,
    plain_md,
    result,
    source,
)

SC, ZP = L.ARG_ATTR_SCALES, L.ARG_ATTR_ZERO_POINTS


def _vec(v: Any, dtype: Any) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(v, dtype=dtype).reshape(-1))


class _IntKernel:
    def __init__(self) -> None:
        self._cache: dict[Any, Any] = PrimitiveCache()
        self._packed: dict[Any, tuple[Any, np.ndarray]] = {}
        self._lock = threading.Lock()
        self._last: tuple[tuple[Any, ...], Any] | None = None

    def _derived(self, objs: tuple[Any, ...], make: Any) -> Any:
        """``make()``, computed again only when an object of ``objs`` changed since the last
        call: the scales and zero points are constants in practice, so their converted
        vectors are the same arrays every run (as a recorded replay of the kernel needs)."""
        last = self._last
        if last is not None and len(last[0]) == len(objs) and all(a is b for a, b in zip(last[0], objs)):
            return last[1]
        value = make()
        self._last = (objs, value)
        return value

    def _entry(self, key: Any, build: Any) -> Any:
        e = self._cache.get(key)
        if e is None:
            with self._lock:
                e = self._cache.get(key)
                if e is None:
                    e = self._cache[key] = build()
        return e

    def _weights(self, plain: MD, md: MD, w: Any) -> np.ndarray:
        hit = self._packed.get(md.key)
        if hit is not None and hit[0] is w:
            return hit[1]
        packed = into(plain, md, np.ascontiguousarray(w))
        self._packed[md.key] = (w, packed)
        return packed


def _attr(quant: bool, w_mask: int, src_zp: bool, dst_zp: bool, relu: bool = False) -> Attr:
    a = Attr()
    if relu:  # applied to the float result, before it is requantized
        a.eltwise(L.ELT_RELU, 0.0, 0.0)
    if quant:
        a.scales(L.ARG_SRC, 0).scales(L.ARG_WEIGHTS, w_mask).scales(L.ARG_DST, 0)
    if src_zp:
        a.zero_points(L.ARG_SRC, 0)
    if dst_zp:
        a.zero_points(L.ARG_DST, 0)
    return a


class IntConvKernel(_IntKernel):
    """QLinearConv (``quant``) or ConvInteger (s32 output)."""

    def __init__(
        self,
        quant: bool,
        *,
        group: int,
        strides: Any,
        dilations: Any,
        pads: Any,
        auto_pad: str,
        relu: bool = False,
        keep_blocked: bool = False,
    ) -> None:
        super().__init__()
        self.quant = quant
        self.relu = relu
        self.keep_blocked = keep_blocked
        self.group = int(group)
        self.strides, self.dilations, self.pads, self.auto_pad = strides, dilations, pads, auto_pad

    def _build(self, x: np.ndarray, w: np.ndarray, per_oc: bool, ydt: int, has_b: bool) -> Any:
        g = self.group
        nsp = w.ndim - 2
        if x.ndim != w.ndim or x.shape[1] != w.shape[1] * g or w.shape[0] % g:
            raise ValueError(f"input {list(x.shape)} does not match weights {list(w.shape)}")
        k = tuple(int(v) for v in w.shape[2:])
        s = list(self.strides or [1] * nsp)
        d = list(self.dilations or [1] * nsp)
        p = list(self.pads or [0] * (2 * nsp))
        out, pl, pr = conv_geometry(x.shape[2:], k, s, d, p, self.auto_pad)
        o = w.shape[0]
        check_output_size(out, (x.shape[0], o, *out), NP_OF[ydt], "Conv", x.shape)
        w_dims = (g, o // g, w.shape[1], *k) if g > 1 else tuple(w.shape)
        w_mask = (3 if g > 1 else 1) if per_oc else 0
        xdt = L.DT_OF[x.dtype]
        src_any, w_any = MD.any(x.shape, xdt), MD.any(w_dims, L.S8)
        dst_any = MD.any((x.shape[0], o, *out), ydt)
        b_md = plain_md((o,)) if has_b else None
        prim = create(
            "convolution_forward_primitive_desc_create",
            L.FORWARD_INFERENCE,
            L.CONV_DIRECT,
            src_any,
            w_any,
            b_md,
            dst_any,
            L.dims(s),
            L.dims([v - 1 for v in d]),
            L.dims(pl),
            L.dims(pr),
            _attr(self.quant, w_mask, True, self.quant, self.relu),
        )
        return (
            prim,
            prim.md(L.Q_SRC_MD),
            prim.md(L.Q_WEIGHTS_MD),
            MD.plain(w_dims, L.S8),
            b_md,
            prim.md(L.Q_DST_MD),
        )

    def _vectors(
        self, xs: Any, xzp: Any, ws: Any, ys: Any, yzp: Any, b: Any, bias_f32: Any
    ) -> tuple[Any, ...]:
        """The primitive's zero points, scales and float bias as contiguous vectors."""
        zx = _vec(0 if xzp is None else xzp, np.int32)
        if not self.quant:
            return zx, None, None, None, None, None
        xs_v, ws_v = _vec(xs, np.float32), _vec(ws, np.float32)
        ys_v, yzp_v = _vec(ys, np.float32), _vec(0 if yzp is None else yzp, np.int32)
        bias = None
        if bias_f32 is not None:
            bias = _vec(bias_f32, np.float32)
        elif b is not None:
            bias = _vec(
                (np.asarray(b, np.float64) * xs_v.astype(np.float64)[0] * ws_v.astype(np.float64)).astype(
                    np.float32
                ),
                np.float32,
            )
        return zx, xs_v, ws_v, ys_v, yzp_v, bias

    @empty_on_zero_size
    def run(
        self,
        x: Any,
        xs: Any,
        xzp: Any,
        w: Any,
        ws: Any,
        ys: Any,
        yzp: Any,
        b: Any,
        bias_f32: Any = None,
    ) -> Any:
        """``b``: int32 bias in the accumulator's scale; ``bias_f32``: a float bias as is."""
        xmd, xbuf = source(x)
        per_oc = self.quant and np.size(ws) > 1
        ydt = (
            L.DT_OF[np.asarray(yzp).dtype]
            if self.quant and yzp is not None
            else (L.DT_OF[x.dtype] if self.quant else L.S32)
        )
        has_b = b is not None or bias_f32 is not None
        key = (xmd.key, np.shape(w), per_oc, ydt, has_b)
        prim, smd, wmd, wplain, b_md, dmd = self._entry(
            key, lambda: self._build(x, np.asarray(w), per_oc, ydt, has_b)
        )
        src = into(xmd, smd, xbuf)
        dst = empty(dmd)
        args = [
            (L.ARG_SRC, smd, src),
            (L.ARG_WEIGHTS, wmd, self._weights(wplain, wmd, w)),
            (L.ARG_DST, dmd, dst),
        ]
        zx, xs_v, ws_v, ys_v, yzp_v, bias_v = self._derived(
            (xs, xzp, ws, ys, yzp, b, bias_f32), lambda: self._vectors(xs, xzp, ws, ys, yzp, b, bias_f32)
        )
        args.append((ZP | L.ARG_SRC, plain_md((1,), L.S32), zx))
        if self.quant and ws_v is not None:
            args += [
                (SC | L.ARG_SRC, plain_md((1,), L.F32), xs_v),
                (SC | L.ARG_WEIGHTS, plain_md((ws_v.size,), L.F32), ws_v),
                (SC | L.ARG_DST, plain_md((1,), L.F32), ys_v),
                (ZP | L.ARG_DST, plain_md((1,), L.S32), yzp_v),
            ]
            if bias_v is not None:
                args.append((L.ARG_BIAS, b_md, bias_v))
        prim.run(args)
        return result(dmd, dst, self.keep_blocked)


class IntMatMulKernel(_IntKernel):
    """QLinearMatMul (``quant``) or MatMulInteger: A (..., M, K) by a 2-D B (K, N)."""

    def __init__(self, quant: bool, relu: bool = False) -> None:
        super().__init__()
        self.quant = quant
        self.relu = relu

    def _build(self, m: int, k: int, n: int, adt: int, per_n: bool, ydt: int) -> Any:
        amd = plain_md((m, k), adt)
        prim = create(
            "matmul_primitive_desc_create",
            amd,
            MD.any((k, n), L.S8),
            None,
            plain_md((m, n), ydt),
            _attr(self.quant, 2 if per_n else 0, True, self.quant, self.relu),
        )
        return prim, amd, prim.md(L.Q_WEIGHTS_MD), plain_md((k, n), L.S8), plain_md((m, n), ydt)

    def run(self, a: Any, as_: Any, azp: Any, b: Any, bs: Any, ys: Any, yzp: Any) -> Any:
        a = np.ascontiguousarray(a)
        k, n = np.shape(b)
        if a.ndim < 2 or a.shape[-1] != k:
            raise ValueError(f"shapes {list(a.shape)} and {[k, n]} do not match")
        m = math.prod(a.shape[:-1])
        per_n = self.quant and np.size(bs) > 1
        ydt = (
            (L.DT_OF[np.asarray(yzp).dtype] if yzp is not None else L.DT_OF[a.dtype])
            if (self.quant)
            else L.S32
        )
        out_dt = {L.U8: np.uint8, L.S8: np.int8, L.S32: np.int32}[ydt]
        if m == 0:
            return np.zeros((*a.shape[:-1], n), out_dt)
        prim, amd, wmd, wplain, dmd = self._entry(
            (m, k, n, a.dtype, per_n, ydt),
            lambda: self._build(m, k, n, L.DT_OF[a.dtype], per_n, ydt),
        )
        dst = np.empty((m, n), out_dt)
        za, as_v, bs_v, ys_v, yzp_v = self._derived(
            (azp, as_, bs, ys, yzp),
            lambda: (
                _vec(0 if azp is None else azp, np.int32),
                *(_vec(v, np.float32) if self.quant else None for v in (as_, bs, ys)),
                _vec(0 if yzp is None else yzp, np.int32) if self.quant else None,
            ),
        )
        args = [
            (L.ARG_SRC, amd, a),
            (L.ARG_WEIGHTS, wmd, self._weights(wplain, wmd, b)),
            (L.ARG_DST, dmd, dst),
            (ZP | L.ARG_SRC, plain_md((1,), L.S32), za),
        ]
        if self.quant and bs_v is not None:
            args += [
                (SC | L.ARG_SRC, plain_md((1,), L.F32), as_v),
                (SC | L.ARG_WEIGHTS, plain_md((bs_v.size,), L.F32), bs_v),
                (SC | L.ARG_DST, plain_md((1,), L.F32), ys_v),
                (ZP | L.ARG_DST, plain_md((1,), L.S32), yzp_v),
            ]
        prim.run(args)
        return dst.reshape(*a.shape[:-1], n)


class QConcatKernel(_Cached):
    """A Concat between DequantizeLinear and QuantizeLinear nodes (see ``_qdq.QConcat``) on the
    8-bit tensors: an input whose scale and zero point differ from the output's is requantized,
    ``(x - zp_i) * s_i / s + zp``, by a oneDNN reorder, and a oneDNN concat joins the 8-bit
    tensors (channels innermost for a 4-D concat along channels, the layout of the integer
    convolutions around it). oneDNN adds the zero point before rounding (to nearest even): a
    value exactly between two steps after the rescale may round the other way (one step, as
    onnxruntime's QLinearConcat may). The reorder writes a dense tensor: oneDNN 3.2's applies
    zero points to the last row only when writing into a strided part of a larger one.
    """

    def __init__(
        self, axis: int, scales: list[float], zps: list[int], ys: float, yzp: np.ndarray, keep_blocked: bool
    ) -> None:
        super().__init__()
        self.axis = axis
        self.dtype = np.dtype(yzp.dtype)
        self.keep_blocked = keep_blocked
        # the reorders' scales and zero points: the same arrays every run; None: as it comes
        same = [np.float32(sc) == np.float32(ys) and z == int(yzp) for sc, z in zip(scales, zps)]
        self._src = [
            None if eq else (np.array([sc], np.float32), np.array([z], np.int32))
            for sc, z, eq in zip(scales, zps, same)
        ]
        self._dst = (np.array([ys], np.float32), np.array([int(yzp)], np.int32))

    def _build(self, mds: list[MD], axis: int) -> tuple[Any, MD, list[Any]]:
        dt = L.DT_OF[self.dtype]
        shape = list(mds[0].shape)
        shape[axis] = sum(m.shape[axis] for m in mds)
        full = tuple(shape)
        strides = channels_last_strides(full) if len(full) == 4 and axis == 1 else None
        out_md = MD.plain(full, dt, strides=strides)
        requant: list[Any] = []  # per input: (reorder, its output layout) or None
        for m, sz in zip(mds, self._src):
            if sz is None or not m.shape[axis]:
                requant.append(None)
                continue
            attr = Attr().scales(L.ARG_SRC, 0).zero_points(L.ARG_SRC, 0)
            attr.scales(L.ARG_DST, 0).zero_points(L.ARG_DST, 0)
            requant.append((make_reorder(m, m, attr), m))
        concat = make_concat([m for m in mds if m.shape[axis]], axis, out_md)
        return concat, out_md, requant

    def __call__(self, *xs: Any) -> Any:
        srcs = [source(x) for x in xs]
        mds = [m for m, _ in srcs]
        nd = len(mds[0].shape)
        axis = self.axis + nd if self.axis < 0 else self.axis
        if any(len(m.shape) != nd or m.dt != L.DT_OF[self.dtype] for m in mds) or not 0 <= axis < nd:
            raise ValueError(f"QLinear Concat inputs {[list(m.shape) for m in mds]} on axis {self.axis}")
        concat, out_md, requant = self.entry(
            (tuple(m.key for m in mds), axis), lambda: self._build(mds, axis)
        )
        if 0 in out_md.shape:
            return np.empty(out_md.shape, self.dtype)
        f32, s32 = plain_md((1,), L.F32), plain_md((1,), L.S32)
        ys, yzp = self._dst
        args: list[tuple[int, MD, Any]] = []
        for i, ((m, buf), rq) in enumerate(zip(srcs, requant)):
            if not m.shape[axis]:
                continue
            if rq is not None:
                prim, rmd = rq
                sz = self._src[i]
                assert sz is not None
                s, z = sz
                out = empty(rmd)
                prim.run(
                    [
                        (L.ARG_SRC, m, buf),
                        (L.ARG_DST, rmd, out),
                        (SC | L.ARG_SRC, f32, s),
                        (ZP | L.ARG_SRC, s32, z),
                        (SC | L.ARG_DST, f32, ys),
                        (ZP | L.ARG_DST, s32, yzp),
                    ]
                )
                buf = out
            args.append((L.ARG_MULTIPLE_SRC + len(args), m, buf))
        dst = empty(out_md)
        args.append((L.ARG_DST, out_md, dst))
        concat.run(args)
        return result(out_md, dst, self.keep_blocked)
