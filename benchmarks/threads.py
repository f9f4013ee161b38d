"""One session run from several threads: the latency on the calling thread before and after an
application's thread pool has run it, and on the pool's threads.

    python benchmarks/threads.py [MODEL.onnx] [--pool 2] [--seconds 3]

The default model is the light SqueezeNet shipped with onnx. With oneDNN, one thread at a time
runs primitives on OpenMP's several threads (see ``onnxlite.providers.dnnl._prim``): the main
thread's latency should be the same before and after the pool's runs, and the pool's runs take
the one-thread twins.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import onnx

import onnxlite as ort


def _feeds(sess: ort.InferenceSession) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    out = {}
    for a in sess.get_inputs():
        shape = [d if isinstance(d, int) else 1 for d in a.shape]
        out[a.name] = rng.standard_normal(shape).astype(np.float32)
    return out


def _median_ms(sess: ort.InferenceSession, feeds: dict[str, Any], seconds: float) -> float:
    for _ in range(5):
        sess.run(None, feeds)
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        sess.run(None, feeds)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def main() -> None:
    light = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", nargs="?", default=os.path.join(light, "light_squeezenet.onnx"))
    ap.add_argument("--pool", type=int, default=2, help="threads of the application's pool")
    ap.add_argument("--seconds", type=float, default=3.0, help="timing per measurement")
    args = ap.parse_args()
    sess = ort.InferenceSession(args.model)
    feeds = _feeds(sess)
    print(f"{os.path.basename(args.model)} on {sess.get_providers()}")
    print(f"main thread:             {_median_ms(sess, feeds, args.seconds):.2f} ms")
    with ThreadPoolExecutor(args.pool) as pool:
        per_thread = list(pool.map(lambda _: _median_ms(sess, feeds, args.seconds), range(args.pool)))
        print("pool threads (at once):  " + ", ".join(f"{m:.2f} ms" for m in per_thread))
        # the pool's threads are still alive here, as an application's would be
        print(f"main thread after:       {_median_ms(sess, feeds, args.seconds):.2f} ms")


if __name__ == "__main__":
    main()
