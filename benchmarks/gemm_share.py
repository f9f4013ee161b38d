"""How much of the numpy provider's run time is BLAS products, against onnxruntime's whole run.

For each model: the numpy provider's median run (BLAS on its own threads, the mode the thread
policy picks for the convolutional networks), the part of it spent inside matrix products
(``numpy.matmul`` and ``cblas_sgemm`` calls, timed around each call), and onnxruntime's median
run (CPUExecutionProvider) in the same process. ``products / ort`` is how fast the numpy
provider could be if everything but its products were free: the floor BLAS sets.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/gemm_share.py [MODEL ...]

MODEL: names from ``benchmarks/run.py --list`` (default: the nine light models; the transformers
are exported into ``benchmarks/.cache`` on first use, as for ``run.py``).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from models import BenchModel, all_models


class _Timed:
    """Wraps a function, adding the time of each call to ``total``."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.total = 0.0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.total += time.perf_counter() - t


def _median_ms(run: Any, seconds: float, at_least: int = 10) -> tuple[float, list[float]]:
    times: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < at_least:
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return float(np.median(times)) * 1e3, times


def _measure(
    model: BenchModel, seconds: float, onnxlite: Any, onnxruntime: Any, timers: tuple[_Timed, ...]
) -> tuple[float, float, float]:
    """(numpy provider run, its products, onnxruntime run), medians in ms."""
    path = str(model.path())
    feeds = model.feeds()
    lite = onnxlite.InferenceSession(path, providers=["CPUExecutionProvider"])
    ort = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    for _ in range(3):
        lite.run(None, feeds)
        ort.run(None, feeds)
    shares: list[float] = []

    def lite_run() -> None:
        before = sum(t.total for t in timers)
        lite.run(None, feeds)
        shares.append(sum(t.total for t in timers) - before)

    lite_ms, _ = _median_ms(lite_run, seconds)
    ort_ms, _ = _median_ms(lambda: ort.run(None, feeds), seconds)
    return lite_ms, float(np.median(shares)) * 1e3, ort_ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    models = {m.name: m for m in all_models()}
    ap.add_argument("models", nargs="*", default=[n for n, m in models.items() if m.family == "light"])
    ap.add_argument("--seconds", type=float, default=5.0, help="timed runs per runtime and model")
    args = ap.parse_args()

    import onnxruntime

    import onnxlite
    from onnxlite import threads
    from onnxlite.providers.cpu import cblas

    # BLAS on its own threads in every run: products timed on the calling thread, none on workers
    threads.ThreadPolicy.choose = lambda self, now=None: threads.BLAS  # type: ignore[method-assign]
    matmul, sgemm = _Timed(np.matmul), _Timed(cblas.sgemm)
    np.matmul = matmul  # type: ignore[assignment]
    cblas.sgemm = sgemm  # type: ignore[assignment]

    rows, ratios = [], {"products": [], "run": []}
    unknown = sorted(set(args.models) - set(models))
    if unknown:
        ap.error(f"unknown model(s) {unknown}; known: {sorted(models)}")
    timers = (matmul, sgemm)
    for name in args.models:
        lite_ms, prod_ms, ort_ms = _measure(models[name], args.seconds, onnxlite, onnxruntime, timers)
        ratios["products"].append(prod_ms / ort_ms)
        ratios["run"].append(lite_ms / ort_ms)
        rows.append(
            f"| {name} | {lite_ms:.2f} | {prod_ms:.2f} ({prod_ms / lite_ms:.0%}) | {ort_ms:.2f} "
            f"| {prod_ms / ort_ms:.2f} | {lite_ms / ort_ms:.2f} |"
        )
        print(rows[-1], flush=True)

    def geo(v: list[float]) -> float:
        return math.exp(sum(math.log(x) for x in v) / len(v))

    print()
    print("| model | numpy provider ms | in BLAS products ms | onnxruntime ms | products / ort | run / ort |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"| geometric mean | | | | {geo(ratios['products']):.2f} | {geo(ratios['run']):.2f} |")


if __name__ == "__main__":
    main()
