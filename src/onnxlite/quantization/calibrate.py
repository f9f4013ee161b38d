"""Calibration: strategies fed by an iterable of feed dicts, keeping running statistics only.

Each calibrator keeps, per tensor, a fixed-size state (min/max, or a histogram of a fixed number of
bins that is re-binned when the range grows), so memory is bounded by the number of tensors and
never by the number of calibration batches.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from .types import CalibrationMethod


class CalibrationDataReader(abc.ABC):
    """onnxruntime's reader: ``get_next()`` returns a feed dict, or None when exhausted."""

    @abc.abstractmethod
    def get_next(self) -> dict[str, Any] | None:
        raise NotImplementedError

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    def __next__(self) -> dict[str, Any]:
        r = self.get_next()
        if r is None:
            raise StopIteration
        return r

    def __len__(self) -> int:  # unknown by default; readers may override
        raise TypeError("this reader has no length")

    def set_range(self, start_index: int, end_index: int) -> None:
        raise NotImplementedError


def iter_feeds(data: Any) -> Iterator[Mapping[str, Any]]:
    """Feeds from a CalibrationDataReader, or any iterable of dicts; TypeError for anything else."""
    if hasattr(data, "get_next") and not isinstance(data, CalibrationDataReader):
        items: Any = iter(data.get_next, None)
    else:
        try:
            items = iter(data)
        except TypeError:
            raise TypeError(
                "the calibration data must be a CalibrationDataReader (get_next() returning feed "
                f"dicts) or an iterable of feed dicts, got {type(data).__name__}"
            ) from None
    for i, r in enumerate(items):
        if not isinstance(r, Mapping):
            raise TypeError(
                f"calibration feed {i} is of type {type(r).__name__}: the reader must give dicts of "
                "input name -> array"
            )
        yield r


# -- strategies ---------------------------------------------------------------------------------


class Calibrator(abc.ABC):
    """A strategy: ``update(name, array)`` batch by batch, then ``ranges()`` -> {name: (rmin, rmax)}."""

    @abc.abstractmethod
    def update(self, name: str, x: np.ndarray) -> None: ...

    @abc.abstractmethod
    def ranges(self) -> dict[str, tuple[float, float]]: ...

    def state_bytes(self) -> int:
        """Bytes of statistics kept (for tests and the CLI)."""
        return 0


class MinMaxCalibrator(Calibrator):
    def __init__(
        self, *, symmetric: bool = False, moving_average: bool = False, averaging_constant: float = 0.01
    ) -> None:
        self.symmetric = symmetric
        self.moving_average = moving_average
        self.c = averaging_constant
        self._s: dict[str, list[float]] = {}

    def update(self, name: str, x: np.ndarray) -> None:
        if x.size == 0:
            return
        lo, hi = float(np.min(x)), float(np.max(x))
        cur = self._s.get(name)
        if cur is None:
            self._s[name] = [lo, hi]
        elif self.moving_average:
            cur[0] += self.c * (lo - cur[0])
            cur[1] += self.c * (hi - cur[1])
        else:
            cur[0] = min(cur[0], lo)
            cur[1] = max(cur[1], hi)

    def ranges(self) -> dict[str, tuple[float, float]]:
        out = {}
        for k, (lo, hi) in self._s.items():
            if self.symmetric:
                m = max(abs(lo), abs(hi))
                lo, hi = -m, m
            out[k] = (lo, hi)
        return out

    def state_bytes(self) -> int:
        return 16 * len(self._s)


class _Hist:
    """A histogram over [-amax, amax] with a fixed number of bins, merged as batches arrive."""

    __slots__ = ("amax", "count", "hi", "lo", "n", "nonfinite", "s1", "s2")

    def __init__(self, bins: int) -> None:
        self.count = np.zeros(bins, dtype=np.float64)
        self.amax = 0.0
        self.lo = np.inf
        self.hi = -np.inf
        self.n = 0
        self.s1 = 0.0
        self.s2 = 0.0
        self.nonfinite = False

    def add(self, x: np.ndarray) -> None:
        x = x.astype(np.float32, copy=False).ravel()
        fin = np.isfinite(x)
        if not fin.all():
            # +-inf (masks) or NaN: keep them in the seen range, so the tensor is left in float
            bad = x[~fin]
            self.lo = min(self.lo, float(np.nanmin(bad)) if not np.isnan(bad).all() else -np.inf)
            self.hi = max(self.hi, float(np.nanmax(bad)) if not np.isnan(bad).all() else np.inf)
            self.nonfinite = True
            x = x[fin]
        if not x.size:
            return
        lo, hi = float(x.min()), float(x.max())
        self.lo, self.hi = min(self.lo, lo), max(self.hi, hi)
        self.n += x.size
        self.s1 += float(x.sum(dtype=np.float64))
        self.s2 += float(np.dot(x.astype(np.float64), x.astype(np.float64)))
        amax = max(abs(lo), abs(hi), 1e-12)
        bins = self.count.size
        if amax > self.amax:
            if self.amax > 0 and self.count.any():
                # re-bin the old histogram into the wider range (bin centres move to new bins)
                old_edges = np.linspace(-self.amax, self.amax, bins + 1)
                centres = 0.5 * (old_edges[:-1] + old_edges[1:])
                idx = np.clip(((centres + amax) / (2 * amax) * bins).astype(np.int64), 0, bins - 1)
                new = np.zeros(bins, dtype=np.float64)
                np.add.at(new, idx, self.count)
                self.count = new
            self.amax = amax
        h, _ = np.histogram(x, bins=bins, range=(-self.amax, self.amax))
        self.count += h

    def edges(self) -> np.ndarray:
        return np.linspace(-self.amax, self.amax, self.count.size + 1)


class HistogramCalibrator(Calibrator):
    """Entropy, Percentile and Distribution: merged fixed-size histograms per tensor."""

    def __init__(
        self,
        method: CalibrationMethod,
        *,
        num_bins: int | None = None,
        num_quantized_bins: int = 128,
        percentile: float = 99.999,
        symmetric: bool = False,
    ) -> None:
        self.method = method
        self.bins = num_bins or (2048 if method is CalibrationMethod.Percentile else 512)
        self.nq = num_quantized_bins
        self.percentile = percentile
        self.symmetric = symmetric
        self._h: dict[str, _Hist] = {}

    def update(self, name: str, x: np.ndarray) -> None:
        h = self._h.get(name)
        if h is None:
            h = self._h[name] = _Hist(self.bins)
        h.add(x)

    def state_bytes(self) -> int:
        return sum(h.count.nbytes + 64 for h in self._h.values())

    def ranges(self) -> dict[str, tuple[float, float]]:
        out = {}
        for k, h in self._h.items():
            if h.nonfinite:
                out[k] = (h.lo, h.hi)  # not representable: the quantizer leaves the tensor float
                continue
            if h.n == 0:
                continue
            if self.method is CalibrationMethod.Percentile:
                lo, hi = self._percentile(h)
            elif self.method is CalibrationMethod.Entropy:
                t = self._entropy_threshold(h)
                lo, hi = max(h.lo, -t), min(h.hi, t)
            else:  # Distribution: mean +- k std, clipped to the seen range
                mean = h.s1 / h.n
                std = float(np.sqrt(max(h.s2 / h.n - mean * mean, 0.0)))
                lo, hi = max(h.lo, mean - 6 * std), min(h.hi, mean + 6 * std)
            if self.symmetric:
                m = max(abs(lo), abs(hi))
                lo, hi = -m, m
            out[k] = (float(lo), float(hi))
        return out

    def _percentile(self, h: _Hist) -> tuple[float, float]:
        cdf = np.cumsum(h.count)
        total = cdf[-1]
        edges = h.edges()
        if self.symmetric:
            nb = h.count.size // 2
            absc = h.count[nb:] + h.count[:nb][::-1]
            c = np.cumsum(absc) / total
            i = int(np.searchsorted(c, self.percentile / 100.0))
            t = float(edges[nb + min(i, nb - 1) + 1])
            return -t, t
        tail = (100.0 - self.percentile) / 100.0 / 2
        lo_i = int(np.searchsorted(cdf / total, tail))
        hi_i = int(np.searchsorted(cdf / total, 1.0 - tail))
        lo = max(h.lo, float(edges[lo_i]))
        hi = min(h.hi, float(edges[min(hi_i + 1, edges.size - 1)]))
        return lo, hi

    def _entropy_threshold(self, h: _Hist) -> float:
        """TensorRT-style KL-divergence threshold search on the |x| histogram."""
        nb = h.count.size // 2
        absc = h.count[nb:] + h.count[:nb][::-1]
        width = h.amax / nb
        nq = min(self.nq, nb)
        best_t, best_kl = h.amax, np.inf
        step = max(1, (nb - nq) // 128)
        for i in range(nq, nb + 1, step):
            ref = absc[:i].copy()
            ref[i - 1] += absc[i:].sum()
            if ref.sum() == 0:
                continue
            # quantize ref into nq bins then expand back
            chunks = np.array_split(np.arange(i), nq)
            q = np.zeros(i)
            for c in chunks:
                seg = absc[c]
                nz = seg > 0
                if nz.any():
                    q[c[nz]] = seg.sum() / nz.sum()
            p = ref / ref.sum()
            qs = q.sum()
            if qs == 0:
                continue
            q = q / qs
            m = p > 0
            kl = float(np.sum(p[m] * np.log(p[m] / np.maximum(q[m], 1e-12))))
            if kl < best_kl:
                best_kl, best_t = kl, (i + 0.5) * width
        return float(best_t)


def create_calibrator(
    method: CalibrationMethod,
    *,
    symmetric: bool = False,
    moving_average: bool = False,
    averaging_constant: float = 0.01,
    percentile: float = 99.999,
    num_bins: int | None = None,
    num_quantized_bins: int = 128,
) -> Calibrator:
    if method is CalibrationMethod.MinMax:
        return MinMaxCalibrator(
            symmetric=symmetric, moving_average=moving_average, averaging_constant=averaging_constant
        )
    return HistogramCalibrator(
        method,
        num_bins=num_bins,
        num_quantized_bins=num_quantized_bins,
        percentile=percentile,
        symmetric=symmetric,
    )


# -- running the model ----------------------------------------------------------------------------


def collect(
    model_proto: Any,
    tensors: list[str],
    data: Any,
    calibrator: Calibrator,
    *,
    max_outputs: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, tuple[float, float]]:
    """Run the model on each feed with ``tensors`` exposed as outputs; feed them to the strategy.

    ``max_outputs`` splits the tensors into groups, one pass over the data per group (onnxruntime's
    CalibMaxIntermediateOutputs); each pass needs the data again, so ``data`` must then be re-iterable.
    """
    import onnx

    from ..session import InferenceSession

    groups = (
        [tensors]
        if not max_outputs
        else [tensors[i : i + max_outputs] for i in range(0, len(tensors), max_outputs)]
    )
    if len(groups) > 1 and (hasattr(data, "get_next") or iter(data) is data):
        raise ValueError("CalibMaxIntermediateOutputs needs re-iterable calibration data (a list of feeds)")
    for names in groups:
        m = onnx.ModelProto()
        m.CopyFrom(model_proto)
        existing = {o.name for o in m.graph.output}
        for t in names:
            if t not in existing:
                m.graph.output.append(onnx.ValueInfoProto(name=t))
        sess = InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        input_names = {i.name for i in sess.get_inputs()}
        wanted = set(names)
        out_names = [o.name for o in sess.get_outputs()]
        n = 0
        for feed in iter_feeds(data):
            f = {k: v for k, v in feed.items() if k in input_names}
            if not f and feed:
                raise ValueError(
                    f"calibration feed {n} holds {sorted(feed)}; the model's inputs are {sorted(input_names)}"
                )
            outs = sess.run(None, f)
            for t, v in zip(out_names, outs):
                if t in wanted and isinstance(v, np.ndarray) and v.dtype.kind == "f":
                    calibrator.update(t, v)
            del outs
            n += 1
            if progress is not None:
                progress(n)
        if n == 0:
            raise ValueError("the calibration data reader gave no feeds")
    return calibrator.ranges()
