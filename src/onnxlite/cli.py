"""The ``onnxlite`` command line.

onnxlite run [MODEL] [--input FILE.npz] [--repeat N]   run a model, print outputs and latency
onnxlite inspect MODEL [--providers A,B]             inputs, outputs, provider assignment
onnxlite bench MODEL [-r N] [--compare onnxruntime]   latency percentiles, throughput, memory
onnxlite quantize IN OUT --mode dynamic|static ...    INT8 quantization
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from importlib import resources
from typing import Any

import numpy as np

from .tools import non_negative_int

DEFAULT_MODEL = "squeezenet.onnx"
DEFAULT_INPUT = "squeezenet_input.npz"


def _data_path(name: str) -> str:
    return str(resources.files("onnxlite") / "data" / name)


def _default_feeds(sess: Any) -> dict[str, np.ndarray]:
    """The bundled picture, scaled to [0, 1] floats for the bundled model."""
    with np.load(_data_path(DEFAULT_INPUT)) as f:
        image = f["image"].astype(np.float32) / 255.0
    return {sess.get_inputs()[0].name: image}


def _random_feeds(sess: Any, seed: int = 0) -> dict[str, np.ndarray]:
    from .types import np_dtype_of_type_string

    rng = np.random.default_rng(seed)
    feeds = {}
    for i in sess.get_inputs():
        shape = [d if isinstance(d, int) else 1 for d in (i.shape or [])]
        dt = np_dtype_of_type_string(i.type)
        if dt.kind == "f":
            feeds[i.name] = rng.standard_normal(shape).astype(dt)
        elif dt.kind == "b":
            feeds[i.name] = rng.random(shape) > 0.5
        else:
            feeds[i.name] = rng.integers(0, 10, shape).astype(dt)
    return feeds


def _describe(name: str, value: Any) -> str:
    if isinstance(value, np.ndarray):
        line = f"  {name}: {value.dtype}{list(value.shape)}"
        if value.dtype.kind == "f" and value.size:
            flat = value.reshape(-1)
            top = np.argsort(flat)[::-1][:5]
            line += f"  top-5 {[(int(i), round(float(flat[i]), 4)) for i in top]}"
        return line
    return f"  {name}: {type(value).__name__}"


def cmd_run(args: argparse.Namespace) -> int:
    import onnxlite

    model = args.model or _data_path(DEFAULT_MODEL)
    t0 = time.perf_counter()
    sess = onnxlite.InferenceSession(model)
    t_create = time.perf_counter() - t0
    if args.input:
        from .tools.bench import file_feeds

        feeds = file_feeds(sess.get_inputs(), args.input)
    elif args.model is None:
        feeds = _default_feeds(sess)
    else:
        feeds = _random_feeds(sess)
    outputs = sess.run(None, feeds)
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        sess.run(None, feeds)
        times.append((time.perf_counter() - t) * 1e3)
    print(f"model: {os.path.basename(model)}  (onnxlite {onnxlite.__version__}, {sess.get_providers()[0]})")
    print("inputs:")
    for n, v in feeds.items():
        print(f"  {n}: {v.dtype}{list(v.shape)}")
    print("outputs:")
    for o, v in zip(sess.get_outputs(), outputs):
        print(_describe(o.name, v))
    print(f"session creation: {t_create * 1e3:.1f} ms")
    if times:
        print(
            f"latency over {len(times)} runs: median {statistics.median(times):.2f} ms, "
            f"min {min(times):.2f} ms, max {max(times):.2f} ms"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="onnxlite", description="onnxlite command line")
    sub = ap.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a model (the bundled SqueezeNet by default)")
    run.add_argument("model", nargs="?", help="path of an .onnx model")
    run.add_argument("--input", help=".npz file with the input arrays (by input name or in order)")
    run.add_argument(
        "--repeat", type=non_negative_int, default=20, help="timed runs after the first (default 20)"
    )
    run.set_defaults(fn=cmd_run)
    from .tools.bench import add_bench_parser
    from .tools.inspect import add_inspect_parser
    from .tools.quantize import add_quantize_parser

    add_bench_parser(sub)
    add_inspect_parser(sub)
    add_quantize_parser(sub)
    args = ap.parse_args(argv)
    try:
        return int(args.fn(args))
    except Exception as e:  # the CLI reports errors as one line, not a traceback
        from .errors import OnnxliteError

        if isinstance(e, (OnnxliteError, ValueError, OSError)):
            print(f"onnxlite: error: {type(e).__name__}: {e}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
