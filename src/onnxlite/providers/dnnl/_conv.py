"""Convolution (Conv, com.microsoft FusedConv) on oneDNN, with fused activation and sum."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _lib as L
from ._lib import DnnlError
from ._prim import (
    MD,
    Attr,
    DnnlTensor,
    Primitive,
    PrimitiveCache,
    channels_last_strides,
    check_output_size,
    create,
    empty,
    empty_on_zero_size,
    into,
    plain_md,
    result,
    same_array,
    source,
)

# ONNX activation name -> (oneDNN eltwise alg, default alpha, default beta)
ACTIVATIONS: dict[str, tuple[int, float, float]] = {
    "Relu": (L.ELT_RELU, 0.0, 0.0),
    "LeakyRelu": (L.ELT_RELU, 0.01, 0.0),
    "Sigmoid": (L.ELT_LOGISTIC, 0.0, 0.0),
    "Tanh": (L.ELT_TANH, 0.0, 0.0),
    "Clip": (L.ELT_CLIP, float("-inf"), float("inf")),
    "HardSigmoid": (L.ELT_HARDSIGMOID, 0.2, 0.5),
}


# how many of ``activation_params`` each activation takes (alpha, then beta)
_N_PARAMS = {"LeakyRelu": 1, "HardSigmoid": 2, "Clip": 2}


def fused_activation(name: str, params: Any) -> tuple[int, float, float] | None:
    """The post-op of FusedConv's ``activation`` attribute (None: not one oneDNN can fuse)."""
    if name in ("", "Identity"):
        return None
    alg, a, b = ACTIVATIONS[name]
    # only the activations with parameters read them: oneDNN's relu takes alpha as its
    # negative slope, so a Relu given stray parameters must not pass them on
    p = [float(v) for v in (params or [])][: _N_PARAMS.get(name, 0)]
    if p:
        a = p[0]
    if len(p) > 1:
        b = p[1]
    if name == "Clip":
        # oneDNN's clip takes finite bounds; the float32 range clips nothing.
        a = max(a, float(np.finfo(np.float32).min))
        b = min(b, float(np.finfo(np.float32).max))
    return alg, a, b


def conv_geometry(
    in_spatial: tuple[int, ...],
    kernel: tuple[int, ...],
    strides: list[int],
    dilations: list[int],
    pads: list[int],
    auto_pad: str,
) -> tuple[list[int], list[int], list[int]]:
    """(output spatial dims, pads begin, pads end) for ONNX Conv/Pool attributes."""
    n = len(in_spatial)
    out, pl, pr = [], [], []
    for i in range(n):
        dk = (kernel[i] - 1) * dilations[i] + 1
        size, s = in_spatial[i], strides[i]
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            o = -(-size // s)
            total = max(0, (o - 1) * s + dk - size)
            small = total // 2
            b, e = (small, total - small) if auto_pad == "SAME_UPPER" else (total - small, small)
        elif auto_pad == "VALID":
            b = e = 0
            o = (size - dk) // s + 1
        else:
            b, e = pads[i], pads[i + n]
            o = (size + b + e - dk) // s + 1
        out.append(o)
        pl.append(b)
        pr.append(e)
    return out, pl, pr


# The execute argument of the first binary post-op's second source (Z).
_ARG_Z = L.ARG_POST_OP_BASE | L.ARG_SRC_1


@dataclass
class _ConvEntry:
    prim: Primitive
    src_md: MD
    w_md: MD
    w_plain: MD
    b_md: MD | None
    dst_md: MD


class ConvKernel:
    """One Conv node: a primitive per input layout and weight shape; weights reordered into
    oneDNN's layout once per weights object (an initializer is the same object every run)."""

    def __init__(
        self,
        *,
        group: int,
        strides: list[int] | None,
        dilations: list[int] | None,
        pads: list[int] | None,
        auto_pad: str,
        post: list[tuple[str, Any]],
        keep_blocked: bool,
        reorder_weights: bool = True,
    ) -> None:
        self.reorder_weights = reorder_weights
        self.group = int(group)
        self.strides_attr, self.dilations_attr, self.pads_attr = strides, dilations, pads
        self.auto_pad = auto_pad
        self.post = post  # [("sum", None) | ("eltwise", (alg, a, b))] in order
        self.keep_blocked = keep_blocked
        self._cache: dict[Any, _ConvEntry | None] = PrimitiveCache()
        self._packed: dict[Any, tuple[Any, np.ndarray]] = {}
        # (stand-in, layout, packed weights) once the plan hands the kernel a stand-in for them
        self._adopted: tuple[Any, MD, np.ndarray] | None = None
        self._lock = threading.Lock()
        # (input layout, weights, bias, entry, weights and bias arguments, output bytes) of the
        # last call that needed no reorder: the next call with the same objects goes straight on
        self._hot: tuple[Any, ...] | None = None
        # the same for the last call with a Z (a residual sum) that needed no reorder: (input
        # layout, weights, bias, Z layout, own_z, entry, weights and bias arguments, output
        # bytes, or None when the sum is made in Z's own buffer)
        self._hot_z: tuple[Any, ...] | None = None

    def _entry(
        self, xmd: MD, wshape: tuple[int, ...], has_b: bool, zmd: MD | None = None
    ) -> _ConvEntry | None:
        """The primitive for this input layout and weight shape; with ``zmd``, the variant that
        reads Z (laid out as ``zmd``) through a binary-add post-op instead of summing into a
        copy of it, or None when oneDNN has no fast implementation of that variant."""
        key = (xmd.key, wshape, has_b, None if zmd is None else zmd.key)
        if key in self._cache:
            return self._cache[key]
        with self._lock:
            if key not in self._cache:
                self._cache[key] = self._build(xmd, wshape, has_b, zmd)
            return self._cache[key]

    def _entry_sum(self, xmd: MD, wshape: tuple[int, ...], has_b: bool) -> _ConvEntry:
        e = self._entry(xmd, wshape, has_b)
        assert e is not None
        return e

    def _build(
        self, xmd: MD, wshape: tuple[int, ...], has_b: bool, zmd: MD | None = None
    ) -> _ConvEntry | None:
        shape = xmd.shape
        g = self.group
        if len(wshape) < 3 or len(shape) != len(wshape) or shape[1] != wshape[1] * g:
            raise ValueError(
                f"Conv input shape {list(shape)} does not match weights {list(wshape)} with group={g}"
            )
        if wshape[0] % g:
            raise ValueError(f"Conv weights {list(wshape)}: {wshape[0]} outputs, group={g}")
        nsp = len(wshape) - 2
        kernel = tuple(int(k) for k in wshape[2:])
        strides = list(self.strides_attr or [1] * nsp)
        dilations = list(self.dilations_attr or [1] * nsp)
        pads = list(self.pads_attr or [0] * (2 * nsp))
        out, pl, pr = conv_geometry(shape[2:], kernel, strides, dilations, pads, self.auto_pad)
        o, ig = wshape[:2]
        check_output_size(out, (shape[0], o, *out), np.float32, "Conv", shape)
        w_dims = (g, o // g, ig, *kernel) if g > 1 else tuple(wshape)
        b_md = MD.plain((o,)) if has_b else None
        dst_shape = (shape[0], o, *out)
        attr = Attr()
        for kind, p in self.post:
            if kind == "sum" and zmd is not None:
                attr.binary(L.BINARY_ADD, zmd)
            elif kind == "sum":
                attr.sum(1.0)
            else:
                attr.eltwise(*p)
        w_any = MD.any(w_dims) if self.reorder_weights else MD.plain(w_dims)

        def make(src_md: MD, dst_md: MD) -> Primitive:
            return create(
                "convolution_forward_primitive_desc_create",
                L.FORWARD_INFERENCE,
                L.CONV_DIRECT,
                src_md,
                w_any,
                b_md,
                dst_md,
                L.dims(strides),
                L.dims([d - 1 for d in dilations]),
                L.dims(pl),
                L.dims(pr),
                attr,
            )

        prim = make(MD.any(shape), MD.any(dst_shape))
        if "gemm" in prim.impl and len(shape) >= 3:
            # The GEMM-based convolution (channel counts the direct kernels do not take, as
            # ShuffleNet's first grouped 1x1) picks plain NCHW, and its neighbours, channels-last,
            # then pay two reorders (0.8 ms for 1x112x56x56): it runs channels-last as well.
            try:
                nhwc = make(
                    MD.plain(shape, strides=channels_last_strides(shape)),
                    MD.plain(dst_shape, strides=channels_last_strides(dst_shape)),
                )
            except DnnlError:
                nhwc = None
            if nhwc is not None and not nhwc.impl.startswith("ref"):
                prim = nhwc
        if zmd is not None and prim.impl.startswith("ref"):
            return None  # a reference loop: the copy and a sum post-op are far faster
        return _ConvEntry(
            prim,
            prim.md(L.Q_SRC_MD),
            prim.md(L.Q_WEIGHTS_MD),
            MD.plain(w_dims),
            b_md,
            prim.md(L.Q_DST_MD),
        )

    def _empty(self, shape: tuple[int, ...], wshape: tuple[int, ...]) -> np.ndarray:
        nsp = len(wshape) - 2
        out, _, _ = conv_geometry(
            shape[2:],
            tuple(int(k) for k in wshape[2:]),
            list(self.strides_attr or [1] * nsp),
            list(self.dilations_attr or [1] * nsp),
            list(self.pads_attr or [0] * (2 * nsp)),
            self.auto_pad,
        )
        return np.zeros((shape[0], wshape[0], *out), np.float32)

    def _weights(self, e: _ConvEntry, w: Any) -> np.ndarray:
        k = e.w_md.key
        hit = self._packed.get(k)
        if hit is not None and same_array(hit[0], w):
            return hit[1]
        ad = self._adopted
        if ad is not None and w is ad[0]:  # the original is gone: reorder the packed copy
            packed = ad[2] if ad[1].key == k else into(ad[1], e.w_md, ad[2])
            self._packed[k] = (w, packed)
            return packed
        packed = into(e.w_plain, e.w_md, np.ascontiguousarray(w, dtype=np.float32))
        if packed is w:
            packed = np.ascontiguousarray(w, dtype=np.float32)
        self._packed[k] = (w, packed)
        return packed

    def prepack(self, x_shape: tuple[int, ...], w: np.ndarray, has_b: bool) -> None:
        """Reorder constant weights now, at session creation, for a known input shape (the
        primitive's weights layout does not depend on the input's layout)."""
        e = self._entry_sum(plain_md(tuple(x_shape)), tuple(w.shape), has_b)
        self._weights(e, w)

    def adopt(self, w: np.ndarray, stand_in: np.ndarray) -> bool:
        """From now on ``stand_in`` (an array of w's shape holding no data) means the weights
        ``w`` packed by :meth:`prepack`; the kernel drops its references to ``w``."""
        self._hot = self._hot_z = None
        for entry in self._cache.values():
            if entry is None:
                continue
            hit = self._packed.get(entry.w_md.key)
            if hit is not None and same_array(hit[0], w):
                self._adopted = (stand_in, entry.w_md, hit[1])
                self._packed = {
                    key: (stand_in, p) for key, (ww, p) in self._packed.items() if same_array(ww, w)
                }
                return True
        return False

    def into_z(self, x: Any, w: Any = None, b: Any = None, z: Any = None) -> Any:
        """``self(x, w, b, z)`` for a Z that nothing else reads: the sum is made in its buffer."""
        return self(x, w, b, z, own_z=True)

    @empty_on_zero_size
    def __call__(self, x: Any, w: Any = None, b: Any = None, z: Any = None, own_z: bool = False) -> Any:
        hot = self._hot
        if (
            hot is not None
            and z is None
            and type(x) is DnnlTensor
            and x.md is hot[0]
            and w is hot[1]
            and b is hot[2]
        ):
            # the steady state: the same layout in, the same weights, nothing to look up
            e = hot[3]
            dst = np.empty(hot[5], np.uint8)
            e.prim.run([(L.ARG_SRC, e.src_md, x.buf), *hot[4], (L.ARG_DST, e.dst_md, dst)])
            return result(e.dst_md, dst, self.keep_blocked)
        hz = self._hot_z
        if (
            hz is not None
            and type(x) is DnnlTensor
            and type(z) is DnnlTensor
            and x.md is hz[0]
            and w is hz[1]
            and b is hz[2]
            and z.md is hz[3]
            and own_z is hz[4]
            and (hz[7] is not None or z.buf.flags.writeable)
        ):
            # a residual block's steady state: the sum in Z's buffer, or Z read by a post-op
            e = hz[5]
            if hz[7] is None:
                dst = z.buf
                e.prim.run([(L.ARG_SRC, e.src_md, x.buf), *hz[6], (L.ARG_DST, e.dst_md, dst)])
            else:
                dst = np.empty(hz[7], np.uint8)
                e.prim.run(
                    [(L.ARG_SRC, e.src_md, x.buf), *hz[6], (_ARG_Z, z.md, z.buf), (L.ARG_DST, e.dst_md, dst)]
                )
            return result(e.dst_md, dst, self.keep_blocked)
        if 0 in np.shape(x) and np.ndim(w) == np.ndim(x):
            return self._empty(np.shape(x), np.shape(w))
        xmd, xbuf = source(x)
        wshape, has_b = tuple(np.shape(w)), b is not None
        e = self._entry_sum(xmd, wshape, has_b)
        z_arg = None
        if z is not None:
            zmd, zbuf = source(z)
            if zmd.shape != e.dst_md.shape:
                raise ValueError(f"FusedConv Z shape {list(zmd.shape)} != {list(e.dst_md.shape)}")
            dst = into(zmd, e.dst_md, zbuf)
            if dst is zbuf and not (own_z and zbuf.flags.writeable):
                # Z is another's: read it through a binary post-op rather than sum into a copy
                eb = self._entry(xmd, wshape, has_b, zmd)
                if eb is None:
                    dst = zbuf.copy()
                else:
                    e, z_arg = eb, (_ARG_Z, zmd, zbuf)
                    dst = empty(e.dst_md)
        else:
            dst = empty(e.dst_md)
        wp = self._weights(e, w)
        src = into(xmd, e.src_md, xbuf)
        args = [(L.ARG_SRC, e.src_md, src), (L.ARG_WEIGHTS, e.w_md, wp)]
        if e.b_md is not None:
            args.append((L.ARG_BIAS, e.b_md, np.ascontiguousarray(b, dtype=np.float32)))
        if z_arg is not None:
            args.append(z_arg)
        args.append((L.ARG_DST, e.dst_md, dst))
        e.prim.run(args)
        if type(x) is DnnlTensor and src is xbuf and not e.dst_md.is_plain():
            if z is None:
                self._hot = (xmd, w, b, e, tuple(args[1:-1]), e.dst_md.nbytes)
            elif type(z) is DnnlTensor and (z_arg is not None or dst is z.buf):
                wb = tuple(args[1:-2] if z_arg is not None else args[1:-1])
                out_bytes = e.dst_md.nbytes if z_arg is not None else None
                self._hot_z = (xmd, w, b, z.md, own_z, e, wb, out_bytes)
        return result(e.dst_md, dst, self.keep_blocked)
