"""oneDNN kernels other than convolution: eltwise, pooling, normalizations, softmax, matmul."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from . import _lib as L
from ._conv import conv_geometry
from ._lib import DnnlError
from ._prim import (
    MD,
    NP_OF,
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
    make_concat,
    make_reorder,
    plain_md,
    result,
    same_array,
    source,
    to_plain,
)
from ._replay import replay_safe

F32_MAX = float(np.finfo(np.float32).max)
_NOMINAL_ROWS = 64  # rows of the matmul primitive that picks the weights' layout


class _Cached:
    """Primitives per input layout key, built under a lock (kernels run on several threads)."""

    def __init__(self) -> None:
        self._cache: dict[Any, Any] = PrimitiveCache()
        self._lock = threading.Lock()

    def entry(self, key: Any, build: Callable[[], Any]) -> Any:
        e = self._cache.get(key)
        if e is None:
            with self._lock:
                e = self._cache.get(key)
                if e is None:
                    e = self._cache[key] = build()
        return e


class EltwiseKernel(_Cached):
    """An elementwise activation in whatever layout its input comes in."""

    def __init__(self, alg: int, alpha: float, beta: float, keep_blocked: bool) -> None:
        super().__init__()
        self.alg, self.alpha, self.beta = alg, alpha, beta
        self.keep_blocked = keep_blocked

    def __call__(self, x: Any, *unused: Any) -> Any:
        if not isinstance(x, DnnlTensor) and np.ndim(x) == 0:
            return self(np.reshape(x, (1,))).reshape(())
        xmd, xbuf = source(x)
        if 0 in xmd.shape:
            return np.empty(xmd.shape, np.float32)
        prim = self.entry(
            xmd.key,
            lambda: create(
                "eltwise_forward_primitive_desc_create",
                L.FORWARD_INFERENCE,
                self.alg,
                xmd,
                xmd,
                self.alpha,
                self.beta,
                Attr(),
            ),
        )
        dst = empty(xmd)
        prim.run([(L.ARG_SRC, xmd, xbuf), (L.ARG_DST, xmd, dst)])
        return result(xmd, dst, self.keep_blocked)


class ShuffleKernel(_Cached):
    """A channel shuffle (Reshape to groups, Transpose, Reshape back) as oneDNN's shuffle, in
    whatever layout its input comes in: channel c of the output is channel
    (c mod groups) * (C / groups) + c // groups of the input."""

    def __init__(self, groups: int, keep_blocked: bool) -> None:
        super().__init__()
        self.groups = groups
        self.keep_blocked = keep_blocked

    def __call__(self, x: Any, *unused: Any) -> Any:
        xmd, xbuf = source(x)
        prim, src, dst_md = self.entry(xmd.key, lambda: self._build(xmd))
        dst = empty(xmd)
        prim.run([(L.ARG_SRC, src, xbuf), (L.ARG_DST, dst_md, dst)])
        return result(xmd, dst, self.keep_blocked)

    def _build(self, xmd: MD) -> tuple[Primitive, MD, MD]:
        c = xmd.shape[1]
        g = self.groups
        rows = _channels_last_rows(xmd)
        if rows is not None:
            # Channels innermost (the layout oneDNN's convolutions pick here): output channel
            # j * g + i is input channel i * (C / g) + j, a transpose of each row's (g, C / g)
            # block, which a strided reorder does 1.7-2x faster than oneDNN's reference shuffle
            # (the only shuffle it has for this layout).
            src = MD.plain((rows, c // g, g), strides=(c, 1, c // g))
            dst_md = MD.plain((rows, c // g, g))
            return make_reorder(src, dst_md, Attr()), src, dst_md
        prim = create(
            "shuffle_forward_primitive_desc_create",
            L.FORWARD_INFERENCE,
            xmd,
            xmd,
            1,
            c // g,  # oneDNN's group_size: channels per group
            Attr(),
        )
        return prim, xmd, xmd


def _channels_last_rows(md: MD) -> int | None:
    """N * spatial size when ``md`` is a dense float32 (N, C, ...) laid out channels innermost
    (NHWC), else None."""
    shape, dt, kind, strides, blocks = md.key[:5]
    if dt != L.F32 or kind != 2 or blocks or len(shape) < 3 or shape[1] == 0:
        return None
    if tuple(strides) != channels_last_strides(shape):
        return None
    return math.prod(shape) // shape[1] or None


class ClipKernel(EltwiseKernel):
    """Clip with min/max as inputs (opset 11+): one primitive per bounds seen."""

    def __init__(self, keep_blocked: bool) -> None:
        super().__init__(L.ELT_CLIP, -F32_MAX, F32_MAX, keep_blocked)
        self._by_bounds: dict[tuple[float, float], EltwiseKernel] = {}

    def __call__(self, x: Any, *bounds: Any) -> Any:
        lo = -F32_MAX if len(bounds) < 1 or bounds[0] is None else float(bounds[0])
        hi = F32_MAX if len(bounds) < 2 or bounds[1] is None else float(bounds[1])
        lo, hi = max(lo, -F32_MAX), min(hi, F32_MAX)
        if lo > hi:  # ONNX: every value becomes max
            return np.full(np.shape(x), hi, np.float32)
        k = self._by_bounds.get((lo, hi))
        if k is None:
            with self._lock:
                k = self._by_bounds.setdefault((lo, hi), EltwiseKernel(L.ELT_CLIP, lo, hi, self.keep_blocked))
        return k(x)


@replay_safe
def identity(x: Any, *unused: Any) -> Any:
    """A node whose work a fused producer already did (Relu after Conv)."""
    return x


class PoolKernel(_Cached):
    def __init__(
        self,
        alg: int,
        *,
        kernel_shape: list[int] | None,
        strides: list[int] | None,
        pads: list[int] | None,
        dilations: list[int] | None,
        auto_pad: str,
        ceil_mode: int,
        keep_blocked: bool,
    ) -> None:
        super().__init__()
        self.alg = alg
        self.kernel_shape = kernel_shape  # None: global pooling
        self.strides, self.pads, self.dilations = strides, pads, dilations
        self.auto_pad, self.ceil_mode = auto_pad, ceil_mode
        self.keep_blocked = keep_blocked

    def _build(self, xmd: MD) -> tuple[Primitive, MD]:
        sp = xmd.shape[2:]
        n = len(sp)
        if self.kernel_shape is None:
            k, s, d, pl, pr, out = list(sp), [1] * n, [1] * n, [0] * n, [0] * n, [1] * n
        else:
            k = list(self.kernel_shape)
            s = list(self.strides or [1] * n)
            d = list(self.dilations or [1] * n)
            pads = list(self.pads or [0] * (2 * n))
            out, pl, pr = conv_geometry(sp, tuple(k), s, d, pads, self.auto_pad)
            if self.ceil_mode and self.auto_pad in ("NOTSET", "VALID"):
                for i in range(n):
                    dk = (k[i] - 1) * d[i] + 1
                    o = -(-(sp[i] + pl[i] + pr[i] - dk) // s[i]) + 1
                    if (o - 1) * s[i] >= sp[i] + pl[i]:
                        o -= 1  # the last window must start inside the input or its left pad
                    out[i] = o
                    pr[i] = max(pr[i], (o - 1) * s[i] + dk - sp[i] - pl[i])
        check_output_size(out, (*xmd.shape[:2], *out), NP_OF[xmd.dt], "pooling", xmd.shape)
        dst_any = MD.any((xmd.shape[0], xmd.shape[1], *out), xmd.dt)  # 8-bit in QDQ models
        prim = create(
            "pooling_forward_primitive_desc_create",
            L.FORWARD_INFERENCE,
            self.alg,
            xmd,
            dst_any,
            L.dims(s),
            L.dims(k),
            L.dims([v - 1 for v in d]),
            L.dims(pl),
            L.dims(pr),
            Attr(),
        )
        return prim, prim.md(L.Q_DST_MD)

    @empty_on_zero_size
    def __call__(self, x: Any) -> Any:
        if self.kernel_shape is None and 0 in np.shape(x)[2:]:
            # a global pool over empty maps (oneDNN has no primitive for it): the numpy kernel's
            # answer, so that both providers agree (NaN averages; no maximum at all)
            from ..cpu.kernels import pool as cpu_pool

            fn = cpu_pool.global_max_pool if self.alg == L.POOL_MAX else cpu_pool.global_average_pool
            return fn(np.asarray(x))
        if np.shape(x)[0] == 0:  # an empty batch: the output shape of a batch of one
            one = source(np.zeros((1, *np.shape(x)[1:]), np.float32))[0]
            _, dmd = self.entry(one.key, lambda: self._build(one))
            return np.zeros((0, *dmd.shape[1:]), np.float32)
        xmd, xbuf = source(x)
        prim, dmd = self.entry(xmd.key, lambda: self._build(xmd))
        dst = empty(dmd)
        prim.run([(L.ARG_SRC, xmd, xbuf), (L.ARG_DST, dmd, dst)])
        return result(dmd, dst, self.keep_blocked)


class BatchNormKernel(_Cached):
    """Inference batch normalization (running statistics), any input layout."""

    def __init__(self, epsilon: float, keep_blocked: bool, relu: bool = False) -> None:
        super().__init__()
        self.epsilon = float(epsilon)
        self.keep_blocked = keep_blocked
        self.flags = L.USE_GLOBAL_STATS | L.USE_SCALE | L.USE_SHIFT | (L.FUSE_NORM_RELU * relu)

    def __call__(self, x: Any, scale: Any, bias: Any, mean: Any, var: Any) -> Any:
        if 0 in np.shape(x):
            return np.zeros(np.shape(x), np.float32)
        xmd, xbuf = source(x)
        c = xmd.shape[1]
        prim = self.entry(
            xmd.key,
            lambda: create(
                "batch_normalization_forward_primitive_desc_create",
                L.FORWARD_INFERENCE,
                xmd,
                xmd,
                self.epsilon,
                self.flags,
                Attr(),
            ),
        )
        cmd = plain_md((c,))
        dst = empty(xmd)
        args = [(L.ARG_SRC, xmd, xbuf), (L.ARG_DST, xmd, dst)]
        for arg, v in ((L.ARG_SCALE, scale), (L.ARG_SHIFT, bias), (L.ARG_MEAN, mean), (L.ARG_VARIANCE, var)):
            args.append((arg, cmd, np.ascontiguousarray(v, np.float32).reshape(c)))
        prim.run(args)
        return result(xmd, dst, self.keep_blocked)


def _plain(x: Any) -> np.ndarray:
    if type(x) is DnnlTensor:  # straight to the reorder: numpy's __array__ protocol costs ~10 us
        a = to_plain(x)
        return a if a.dtype == np.float32 else a.astype(np.float32)
    return np.ascontiguousarray(np.asarray(x), dtype=np.float32)


class SoftmaxKernel(_Cached):
    """Softmax / LogSoftmax; opset < 13 coerces the input to 2-D at ``axis``."""

    def __init__(self, alg: int, axis: int, coerce_2d: bool) -> None:
        super().__init__()
        self.alg, self.axis, self.coerce_2d = alg, axis, coerce_2d

    def __call__(self, x: Any) -> Any:
        x = _plain(x)
        shape = x.shape
        ax = self.axis + x.ndim if self.axis < 0 else self.axis
        if self.coerce_2d:
            x2 = x.reshape(math.prod(shape[:ax]), math.prod(shape[ax:]))
            ax = 1
        else:
            x2 = x
        if x2.size == 0:
            return np.empty(shape, np.float32)
        md = plain_md(x2.shape)
        prim = self.entry(
            md.key,
            lambda: create(
                "softmax_forward_primitive_desc_create",
                L.FORWARD_INFERENCE,
                self.alg,
                md,
                md,
                ax,
                Attr(),
            ),
        )
        dst = np.empty(x2.shape, np.float32)
        prim.run([(L.ARG_SRC, md, x2), (L.ARG_DST, md, dst)])
        return dst.reshape(shape)


def _layer_norm(md: MD, epsilon: float, flags: int) -> Primitive:
    """oneDNN's inference layer normalization over the rows of ``md``."""
    return create(
        "layer_normalization_forward_primitive_desc_create",
        L.FORWARD_INFERENCE,
        md,
        md,
        None,
        epsilon,
        flags,
        Attr(),
    )


class LayerNormKernel(_Cached):
    """LayerNormalization over the trailing dims from ``axis`` (flattened to one)."""

    def __init__(self, axis: int, epsilon: float) -> None:
        super().__init__()
        self.axis, self.epsilon = axis, float(epsilon)

    def __call__(self, x: Any, scale: Any, bias: Any = None) -> Any:
        x = _plain(x)
        shape = x.shape
        ax = self.axis + x.ndim if self.axis < 0 else self.axis
        rows, cols = math.prod(shape[:ax]), math.prod(shape[ax:])
        if rows * cols == 0:
            return np.empty(shape, np.float32)
        s = np.broadcast_to(np.asarray(scale, np.float32), shape[ax:]).reshape(cols)
        s = np.ascontiguousarray(s)
        flags = L.USE_SCALE
        if bias is not None:
            b = np.ascontiguousarray(np.broadcast_to(np.asarray(bias, np.float32), shape[ax:]).reshape(cols))
            flags |= L.USE_SHIFT
        md = plain_md((rows, cols))
        prim = self.entry((md.key, flags), lambda: _layer_norm(md, self.epsilon, flags))
        dst = np.empty((rows, cols), np.float32)
        cmd = plain_md((cols,))
        args = [(L.ARG_SRC, md, x.reshape(rows, cols)), (L.ARG_DST, md, dst), (L.ARG_SCALE, cmd, s)]
        if bias is not None:
            args.append((L.ARG_SHIFT, cmd, b))
        prim.run(args)
        return dst.reshape(shape)


# The execute argument of the first post-op's second source (a binary post-op's operand).
_ARG_POST_SRC = L.ARG_POST_OP_BASE | L.ARG_SRC_1


class SkipLayerNormKernel(_Cached):
    """com.microsoft SkipLayerNormalization: LayerNorm(input + skip (+ bias)) over the last axis.

    One binary primitive adds the skip (and the bias, as a post-op), one layer normalization
    primitive normalizes the sum; the sum is also the node's fourth output. The mean and inverse
    standard deviation outputs are not produced (the provider claims nodes that use neither).
    """

    def __init__(self, epsilon: float) -> None:
        super().__init__()
        self.epsilon = float(epsilon)

    def __call__(self, x: Any, skip: Any, gamma: Any, beta: Any = None, bias: Any = None) -> Any:
        x, sk = _plain(x), _plain(skip)
        shape = x.shape
        cols = shape[-1] if shape else 0
        if sk.shape != shape or x.size == 0:
            from ..cpu.kernels.contrib import skip_layer_normalization

            return skip_layer_normalization(x, sk, gamma, beta, bias, epsilon=self.epsilon)
        rows = x.size // cols
        md, vmd, cmd = plain_md((rows, cols)), plain_md((1, cols)), plain_md((cols,))
        flags = L.USE_SCALE | (L.USE_SHIFT if beta is not None else 0)
        has_bias = bias is not None

        def build() -> tuple[Primitive, Primitive]:
            attr = Attr()
            if has_bias:
                attr.binary(L.BINARY_ADD, vmd)
            add = create("binary_primitive_desc_create", L.BINARY_ADD, md, md, md, attr)
            return add, _layer_norm(md, self.epsilon, flags)

        add, norm = self.entry((md.key, has_bias, flags), build)
        total = np.empty((rows, cols), np.float32)
        args = [(L.ARG_SRC, md, x.reshape(rows, cols)), (L.ARG_SRC_1, md, sk.reshape(rows, cols))]
        args.append((L.ARG_DST, md, total))
        if has_bias:
            args.append((_ARG_POST_SRC, vmd, _vector(bias, cols).reshape(1, cols)))
        add.run(args)
        y = np.empty((rows, cols), np.float32)
        nargs = [(L.ARG_SRC, md, total), (L.ARG_DST, md, y), (L.ARG_SCALE, cmd, _vector(gamma, cols))]
        if beta is not None:
            nargs.append((L.ARG_SHIFT, cmd, _vector(beta, cols)))
        norm.run(nargs)
        return y.reshape(shape), None, None, total.reshape(shape)


def _vector(v: Any, n: int) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(v, np.float32)).reshape(n)


class MatMulKernel(_Cached):
    """MatMul / Gemm through oneDNN's matmul primitive.

    With 2-D weights (``packed=True``) the left operand is flattened to 2-D. Weights that are an
    initializer (``reorder_weights``: the same object every run) are reordered once into the
    layout oneDNN prefers, with Gemm's transB and alpha folded in; weights computed at run time
    are read in place (transB through strides). Otherwise both operands are runtime tensors with
    numpy batch broadcasting. ``trans_a`` transposes the left operand through its strides.
    """

    def __init__(
        self,
        packed: bool,
        *,
        reorder_weights: bool = True,
        trans_a: bool = False,
        trans_b: bool = False,
        alpha: float = 1.0,
        beta: float = 1.0,
        post: tuple[int, float, float] | None = None,
    ) -> None:
        super().__init__()
        self.packed = packed
        self.reorder_weights = reorder_weights
        self.trans_a, self.trans_b = trans_a, trans_b
        self.alpha, self.beta = alpha, beta
        self.post = post
        self._state: Any = None
        self._adopted: Any = None  # the packed state a stand-in for the weights stands for
        self._w_layout: MD | None = None

    def _attr(self) -> Any:
        a = Attr()
        if self.post is not None:
            a.eltwise(*self.post)
        return a

    def _bind(self, b: Any, c: Any) -> Any:
        """Weights (buffer, plain md) and bias for these B and C objects; cached per object."""
        ad = self._adopted
        if ad is not None and b is ad[0] and same_array(ad[1], c):
            return ad
        st = self._state
        if st is not None and same_array(st[0], b) and same_array(st[1], c):
            return st
        w = np.asarray(b, np.float32)
        if self.alpha != 1.0:
            w = w * np.float32(self.alpha)
        w = np.ascontiguousarray(w)
        if self.trans_b:  # read through strides: no transposed copy
            n, k = w.shape
            w_md = MD.plain((k, n), strides=(1, k))
        else:
            w_md = plain_md(w.shape)
        bias = None
        if c is not None and self.beta != 0.0:
            cc = np.asarray(c, np.float32) * np.float32(self.beta)
            bias = np.ascontiguousarray(cc.reshape((1,) * (2 - cc.ndim) + cc.shape))
        st = self._state = (b, c, w, w_md, bias, {})  # {weights layout key: packed weights}
        return st

    def _build_const(self, a_shape: tuple[int, ...], w_md: MD, bshape: Any) -> Any:
        k, n = w_md.shape
        m = a_shape[1] if self.trans_a else math.prod(a_shape[:-1])
        amd = MD.plain((m, k), strides=(1, m)) if self.trans_a else plain_md((m, k))
        b_md = plain_md(bshape) if bshape is not None else None
        dst_md = plain_md((m, n))
        wq = MD.any((k, n)) if self.reorder_weights else w_md
        if self.reorder_weights and self._w_layout is not None:
            try:  # the layout the weights were packed in at session creation
                prim = create("matmul_primitive_desc_create", amd, self._w_layout, b_md, dst_md, self._attr())
                return amd, prim, self._w_layout, b_md, dst_md, m
            except DnnlError:
                pass
        prim = create("matmul_primitive_desc_create", amd, wq, b_md, dst_md, self._attr())
        return amd, prim, prim.md(L.Q_WEIGHTS_MD), b_md, dst_md, m

    def prepack(self, b: np.ndarray, c: Any) -> None:
        """Pack constant 2-D weights now, at session creation, in the layout oneDNN picks for
        them (asked with a nominal row count); later primitives, for any row count, are made
        for that layout, so the weights are packed once whatever the input shapes."""
        if not (self.packed and self.reorder_weights) or np.ndim(b) != 2:
            return
        _, _, w, w_src, bias, packed = self._bind(b, c)
        k = w_src.shape[0]
        a_shape = (k, _NOMINAL_ROWS) if self.trans_a else (_NOMINAL_ROWS, k)
        _, _, w_md, _, _, _ = self._build_const(a_shape, w_src, None if bias is None else bias.shape)
        self._w_layout = w_md
        packed[w_md.key] = into(w_src, w_md, w)

    def adopt(self, b: np.ndarray, stand_in: np.ndarray) -> bool:
        """From now on ``stand_in`` (an array of b's shape holding no data) means the weights
        ``b`` packed by :meth:`prepack`; the kernel drops its references to ``b``."""
        st = self._state
        if st is None or self._w_layout is None or not same_array(st[0], b):
            return False
        self._adopted = (stand_in, st[1], None, st[3], st[4], st[5])
        self._state = None
        return True

    def _const(self, a: np.ndarray, b: Any, c: Any) -> np.ndarray:
        _, _, w, w_src, bias, packed = self._bind(b, c)
        k, n = w_src.shape
        if a.shape[0 if self.trans_a else -1] != k or a.ndim < (2 if self.trans_a else 1):
            raise ValueError(f"MatMul/Gemm shapes {list(a.shape)} and {[k, n]} do not match")
        if a.size == 0:
            m = a.shape[1] if self.trans_a else math.prod(a.shape[:-1])
            out = np.zeros((m, n), np.float32) + (0 if bias is None else bias)
            return out if self.trans_a else out.reshape(*a.shape[:-1], n)
        bshape = None if bias is None else bias.shape
        amd, prim, w_md, b_md, dst_md, m = self.entry(
            (a.shape, w_src.key, bshape), lambda: self._build_const(a.shape, w_src, bshape)
        )
        wp = packed.get(w_md.key)
        if wp is None:
            if w is None:  # adopted: the original is gone, reorder the packed copy
                assert self._w_layout is not None
                wp = into(self._w_layout, w_md, packed[self._w_layout.key])
            else:
                wp = into(w_src, w_md, w)
            packed[w_md.key] = wp
        dst = np.empty((m, n), np.float32)
        args = [(L.ARG_SRC, amd, a), (L.ARG_WEIGHTS, w_md, wp), (L.ARG_DST, dst_md, dst)]
        if b_md is not None:
            args.append((L.ARG_BIAS, b_md, bias))
        prim.run(args)
        return dst if self.trans_a else dst.reshape(*a.shape[:-1], n)

    def __call__(self, a: Any, b: Any, c: Any = None) -> Any:
        a = _plain(a)
        if self.packed and np.ndim(b) == 2 and (self.trans_a or a.ndim >= 1):
            return self._const(a, b, c)
        bb = _plain(b)
        nd = max(a.ndim, bb.ndim)
        a2 = a.reshape((1,) * (nd - a.ndim) + a.shape)
        b2 = bb.reshape((1,) * (nd - bb.ndim) + bb.shape)
        batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
        out_shape = (*batch, a2.shape[-2], b2.shape[-1])
        if a2.shape[-1] != b2.shape[-2]:
            raise ValueError(f"MatMul shapes {list(a.shape)} and {list(bb.shape)} do not match")
        if 0 in out_shape or a2.shape[-1] == 0:
            return np.matmul(a, bb)

        def build_rt() -> Any:
            amd, bmd, dmd = plain_md(a2.shape), plain_md(b2.shape), plain_md(out_shape)
            prim = create("matmul_primitive_desc_create", amd, bmd, None, dmd, self._attr())
            return prim, amd, bmd, dmd

        prim, amd, bmd, dmd = self.entry((a2.shape, b2.shape), build_rt)
        dst = np.empty(out_shape, np.float32)
        prim.run([(L.ARG_SRC, amd, a2), (L.ARG_WEIGHTS, bmd, b2), (L.ARG_DST, dmd, dst)])
        return dst


class LRNKernel(_Cached):
    """LRN across channels (odd sizes: a centred window, as ONNX's)."""

    def __init__(self, size: int, alpha: float, beta: float, bias: float, keep: bool) -> None:
        super().__init__()
        self.size, self.alpha, self.beta, self.bias = int(size), alpha, beta, bias
        self.keep_blocked = keep

    def __call__(self, x: Any) -> Any:
        xmd, xbuf = source(x)
        prim = self.entry(
            xmd.key,
            lambda: create(
                "lrn_forward_primitive_desc_create",
                L.FORWARD_INFERENCE,
                L.LRN_ACROSS_CHANNELS,
                xmd,
                xmd,
                self.size,
                self.alpha,
                self.beta,
                self.bias,
                Attr(),
            ),
        )
        dst = empty(xmd)
        prim.run([(L.ARG_SRC, xmd, xbuf), (L.ARG_DST, xmd, dst)])
        return result(xmd, dst, self.keep_blocked)


class BinaryKernel(_Cached):
    """Add / Sub / Mul / Div (and Sum, pairwise) in the layout of the full-shape operand.

    The other operand may broadcast to it (a per-channel scale, say); it is then read as a plain
    tensor. Shapes that broadcast both ways are computed by numpy on plain arrays.
    """

    NUMPY = {
        L.BINARY_ADD: np.add,
        L.BINARY_MUL: np.multiply,
        L.BINARY_SUB: np.subtract,
        L.BINARY_DIV: np.divide,
    }
    COMMUTATIVE = (L.BINARY_ADD, L.BINARY_MUL)

    def __init__(self, alg: int, keep_blocked: bool, post: tuple[int, float, float] | None = None) -> None:
        super().__init__()
        self.alg = alg
        self.keep_blocked = keep_blocked
        self.post = post
        # (A's layout, B: the constant array itself or None for a tensor, that tensor's layout,
        # B's layout as the primitive reads it, B's buffer for a constant, primitive,
        # keep_blocked) of the last two-operand call: the next call with the same layouts (and
        # the same constant) goes straight on
        self._hot: tuple[Any, ...] | None = None
        self._post_kernel: EltwiseKernel | None = None  # the post-op after a numpy result

    def _numpy(self, a: Any, b: Any, post: Any) -> Any:
        y = self.NUMPY[self.alg](np.asarray(a), np.asarray(b))
        if post is None:
            return y
        if self._post_kernel is None:  # made once: a primitive per call costs far more
            alg, alpha, beta = post
            self._post_kernel = EltwiseKernel(alg, alpha, beta, False)
        return self._post_kernel(y)

    def _binary(self, a: Any, b: Any, last: bool) -> Any:
        post = self.post if last else None
        sa, sb = tuple(np.shape(a)), tuple(np.shape(b))
        swap = sa != sb and self.alg in self.COMMUTATIVE and len(sb) >= len(sa)
        swap = swap and np.broadcast_shapes(sa, sb) == sb
        if swap:
            a, b, sa, sb = b, a, sb, sa
        if not sa or 0 in sa or len(sb) > len(sa) or np.broadcast_shapes(sa, sb) != sa:
            return self._numpy(a, b, post)
        amd, abuf = source(a)
        if sa == sb:
            bmd, bbuf = source(b)
            bbuf = into(bmd, amd, bbuf)
            bmd = amd
        else:
            bb = np.ascontiguousarray(np.asarray(b), dtype=np.float32)
            bb = bb.reshape((1,) * (len(sa) - len(sb)) + sb)
            bmd, bbuf = plain_md(bb.shape), bb

        def build() -> Primitive | None:
            attr = Attr()
            if post is not None:
                attr.eltwise(*post)
            p = create("binary_primitive_desc_create", self.alg, amd, bmd, amd, attr)
            # oneDNN's reference kernel (some broadcasts over blocked layouts) is far slower
            # than numpy on plain arrays.
            return None if p.impl.startswith("ref") else p

        prim = self.entry((amd.key, bmd.key, last), build)
        if prim is None:
            return self._numpy(a, b, post)
        dst = empty(amd)
        prim.run([(L.ARG_SRC, amd, abuf), (L.ARG_SRC_1, bmd, bbuf), (L.ARG_DST, amd, dst)])
        keep = self.keep_blocked or not last
        if last and not swap and type(a) is DnnlTensor:
            if type(b) is DnnlTensor and bbuf is b.buf:
                self._hot = (amd, None, b.md, bmd, None, prim, keep)
            elif isinstance(b, np.ndarray) and not b.flags.writeable:  # a constant: same every run
                self._hot = (amd, b, None, bmd, bbuf, prim, keep)
        return result(amd, dst, keep)

    def __call__(self, *xs: Any) -> Any:
        hot = self._hot
        if hot is not None and len(xs) == 2:
            a, b = xs
            amd, const, b_layout, bmd, const_buf, prim, keep = hot
            if type(a) is DnnlTensor and a.md is amd:
                if const is None:
                    bbuf = b.buf if type(b) is DnnlTensor and b.md is b_layout else None
                else:
                    bbuf = const_buf if b is const else None
                if bbuf is not None:
                    dst = empty(amd)
                    prim.run([(L.ARG_SRC, amd, a.buf), (L.ARG_SRC_1, bmd, bbuf), (L.ARG_DST, amd, dst)])
                    return result(amd, dst, keep)
        acc = xs[0]
        for i, x in enumerate(xs[1:]):
            acc = self._binary(acc, x, i == len(xs) - 2)
        return acc


class ConcatKernel(_Cached):
    """Concat along ``axis`` with every input in its own layout; oneDNN picks the output's."""

    def __init__(self, axis: int, keep_blocked: bool) -> None:
        super().__init__()
        self.axis = axis
        self.keep_blocked = keep_blocked
        # (the inputs' layouts, primitive, output layout) of the last call whose inputs were all
        # oneDNN tensors concatenated as they came: the next such call goes straight on
        self._hot: tuple[Any, ...] | None = None

    def _build(self, mds: list[MD], axis: int) -> tuple[Primitive, MD, list[MD | None]]:
        """The concat primitive, its output layout, and per input the layout to reorder it
        into first (None: as it comes). Inputs in different layouts (a pooled map in oneDNN's
        blocked layout beside convolution outputs in channels-last) get oneDNN's reference
        concat, 3-5x slower than its copy-based one: such inputs go channels-last first."""
        prim, dmd = self._make(mds, axis)
        if prim.impl.startswith("ref") and axis == 1 and len(mds[0].shape) >= 3:
            targets = [
                None if _channels_last_rows(m) else MD.plain(m.shape, strides=channels_last_strides(m.shape))
                for m in mds
            ]
            prim2, dmd2 = self._make([m if t is None else t for m, t in zip(mds, targets)], axis)
            if not prim2.impl.startswith("ref"):
                return prim2, dmd2, targets
        return prim, dmd, [None] * len(mds)

    def _make(self, mds: list[MD], axis: int) -> tuple[Primitive, MD]:
        shape = list(mds[0].shape)
        shape[axis] = sum(m.shape[axis] for m in mds)
        prim = make_concat(mds, axis, MD.any(tuple(shape)))
        return prim, prim.md(L.Q_DST_MD)

    def __call__(self, *xs: Any) -> Any:
        hot = self._hot
        if hot is not None and len(xs) == len(hot[0]):
            mds = hot[0]
            if all(type(x) is DnnlTensor and x.md is m for x, m in zip(xs, mds)):
                dmd = hot[2]
                dst = empty(dmd)
                args = [(L.ARG_MULTIPLE_SRC + i, m, x.buf) for i, (m, x) in enumerate(zip(mds, xs))]
                args.append((L.ARG_DST, dmd, dst))
                hot[1].run(args)
                return result(dmd, dst, self.keep_blocked)
        srcs = [source(x) for x in xs]
        mds = [m for m, _ in srcs]
        nd = len(mds[0].shape)
        axis = self.axis + nd if self.axis < 0 else self.axis
        keep = [i for i, m in enumerate(mds) if m.shape[axis] > 0]
        if (
            nd == 0
            or any(len(m.shape) != nd for m in mds)
            or any(0 in m.shape[:axis] + m.shape[axis + 1 :] for m in mds)
            or any(m.dt != L.F32 for m in mds)
            or not keep
        ):
            return np.concatenate([np.asarray(x) for x in xs], axis=axis)
        mds = [mds[i] for i in keep]
        bufs = [srcs[i][1] for i in keep]
        prim, dmd, targets = self.entry((tuple(m.key for m in mds), axis), lambda: self._build(mds, axis))
        for i, t in enumerate(targets):
            if t is not None:
                bufs[i], mds[i] = into(mds[i], t, bufs[i]), t
        dst = empty(dmd)
        args = [(L.ARG_MULTIPLE_SRC + i, m, b) for i, (m, b) in enumerate(zip(mds, bufs))]
        args.append((L.ARG_DST, dmd, dst))
        prim.run(args)
        as_they_came = all(t is None for t in targets) and all(type(x) is DnnlTensor for x in xs)
        if len(keep) == len(xs) and as_they_came:
            self._hot = (tuple(mds), prim, dmd)
        return result(dmd, dst, self.keep_blocked)
