"""``onnxlite quantize IN OUT --mode dynamic|static|int4|fp16 ...``: the command-line quantizer.

Calibration data is an ``.npz`` whose arrays are named by model input, with samples along the first
axis; it is cut into batches of ``--batch-size`` and fed one batch at a time (a progress bar shows on
stderr). A summary table (op type | count | int8 | float) and the sizes before and after close the run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from typing import Any, TextIO

import numpy as np

from . import positive_int, read_npz

RECIPE_EXTRA = {"MatMulConstBOnly": True, "ActivationPerRow": True}


class _Progress:
    def __init__(self, total: int | None, stream: TextIO, label: str = "calibrating") -> None:
        self.total = total
        self.stream = stream
        self.label = label
        self.t0 = time.perf_counter()

    def __call__(self, n: int) -> None:
        el = time.perf_counter() - self.t0
        if self.total:
            width = 30
            k = min(width, int(width * n / self.total))
            bar = "#" * k + "-" * (width - k)
            msg = f"\r{self.label} [{bar}] {n}/{self.total} batches  {el:5.1f}s"
        else:
            msg = f"\r{self.label} {n} batches  {el:5.1f}s"
        self.stream.write(msg)
        self.stream.flush()

    def done(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


class NpzBatches:
    """Re-iterable feeds from an .npz: arrays by input name, samples on axis 0, cut into batches."""

    def __init__(self, path: str, batch_size: int = 1, input_names: list[str] | None = None) -> None:
        self.arrays = read_npz(path, "calibration")
        if not self.arrays:
            raise ValueError(f"calibration file {path!r} holds no arrays")
        if input_names is not None:
            names = list(self.arrays)
            if not set(names) & set(input_names):
                if len(names) != len(input_names):
                    raise ValueError(
                        f"calibration file {path!r} has arrays {names}; the model's inputs are "
                        f"{input_names} (name the arrays after the inputs)"
                    )
                self.arrays = dict(zip(input_names, self.arrays.values()))
        sizes = {v.shape[0] if v.ndim else 1 for v in self.arrays.values()}
        if len(sizes) != 1:
            raise ValueError(
                f"calibration arrays disagree on the number of samples (axis 0): {sorted(sizes)}"
            )
        self.n = sizes.pop()
        self.batch_size = max(1, batch_size)

    def __len__(self) -> int:
        return (self.n + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        for i in range(0, self.n, self.batch_size):
            yield {k: v[i : i + self.batch_size] for k, v in self.arrays.items()}


def summary_table(before: dict[str, int], quantized: dict[str, int]) -> str:
    rows = [(op, n, quantized.get(op, 0), n - quantized.get(op, 0)) for op, n in sorted(before.items())]
    w = max([len("op type")] + [len(r[0]) for r in rows])
    lines = [
        f"{'op type':<{w}} | {'count':>5} | {'int8':>5} | {'float':>5}",
        f"{'-' * w}-+-------+-------+------",
    ]
    lines += [f"{op:<{w}} | {n:>5} | {q:>5} | {f:>5}" for op, n, q, f in rows]
    tq = sum(r[2] for r in rows)
    tn = sum(r[1] for r in rows)
    lines.append(f"{'-' * w}-+-------+-------+------")
    lines.append(f"{'total':<{w}} | {tn:>5} | {tq:>5} | {tn - tq:>5}")
    return "\n".join(lines)


def _size(path: str) -> int:
    total = os.path.getsize(path)
    data = path + ".data"
    if os.path.exists(data):
        total += os.path.getsize(data)
    return total


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def _extra(items: list[str] | None) -> dict[str, Any]:
    import json

    out: dict[str, Any] = {}
    for it in items or []:
        if "=" not in it:
            raise ValueError(f"--extra expects KEY=VALUE, got {it!r}")
        k, v = it.split("=", 1)
        try:
            out[k] = json.loads(v)
        except ValueError:
            out[k] = v
    return out


def cmd_quantize(args: argparse.Namespace, stream: TextIO | None = None) -> int:
    from ..quantization import CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static

    err = stream or sys.stderr
    out = stream or sys.stdout
    extra = _extra(args.extra)
    if args.recipe == "accurate":
        extra = {**RECIPE_EXTRA, **extra}
    per_channel = args.per_channel or args.recipe == "accurate"
    common = dict(
        op_types_to_quantize=args.op_types or None,
        per_channel=per_channel,
        reduce_range=args.reduce_range,
        weight_type=QuantType.from_string(args.weight_type),
        nodes_to_exclude=args.exclude_nodes or None,
        extra_options=extra,
    )
    t0 = time.perf_counter()
    if args.mode == "dynamic":
        rep = quantize_dynamic(args.input, args.output, **common)
        before, quantized = rep.op_counts, rep.quantized
    elif args.mode == "static":
        if not args.calibration:
            raise ValueError("--mode static needs --calibration DATA.npz")
        import onnx

        names = [i.name for i in onnx.load(args.input, load_external_data=False).graph.input]
        data = NpzBatches(args.calibration, args.batch_size, names)
        bar = _Progress(len(data), err)
        rep = quantize_static(
            args.input,
            args.output,
            data,
            quant_format=QuantFormat.from_string(args.format),
            activation_type=QuantType.from_string(args.activation_type),
            calibrate_method=CalibrationMethod[args.method],
            progress=bar,
            **common,
        )
        bar.done()
        before, quantized = rep.op_counts, rep.quantized
    elif args.mode == "int4":
        from ..quantization.nbits import quantize_matmul_nbits

        rep = quantize_matmul_nbits(
            args.input,
            args.output,
            block_size=args.block_size,
            is_symmetric=not args.asymmetric,
            nodes_to_exclude=args.exclude_nodes or None,
        )
        before, quantized = rep.op_counts, rep.quantized
    else:  # fp16
        from ..quantization.float16 import convert_model_float16

        rep = convert_model_float16(
            args.input,
            args.output,
            keep_io_types=args.keep_io_types,
            op_block_list=args.op_types or None,
            node_block_list=args.exclude_nodes or None,
        )
        before, quantized = rep.op_counts, rep.quantized
    dt = time.perf_counter() - t0
    table = summary_table(before, quantized)
    if args.mode in ("int4", "fp16"):
        table = table.replace("| int8 |", "| " + ("int4" if args.mode == "int4" else "fp16") + " |")
    a, b = _size(args.input), _size(args.output)
    print(table, file=out)
    print(f"size: {_mb(a)} -> {_mb(b)} ({b / a:.1%} of the original); {dt:.1f}s", file=out)
    print(f"wrote {args.output}", file=out)
    return 0


def add_quantize_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "quantize",
        help="quantize a model: dynamic or static INT8, int4 weight-only, or float16",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", help="float model (.onnx)")
    p.add_argument("output", help="where to write the quantized model")
    p.add_argument("--mode", choices=["dynamic", "static", "int4", "fp16"], default="dynamic")
    p.add_argument(
        "--calibration", metavar="DATA.npz", help="static mode: arrays named by input, samples on axis 0"
    )
    p.add_argument(
        "--batch-size", type=positive_int, default=1, help="calibration samples per run (default 1)"
    )
    p.add_argument("--format", choices=["QDQ", "QOperator"], default="QDQ", help="static output format")
    p.add_argument(
        "--method",
        choices=["MinMax", "Entropy", "Percentile", "Distribution"],
        default="MinMax",
        help="static calibration method",
    )
    p.add_argument("--per-channel", action="store_true", help="per-channel weight scales")
    p.add_argument("--reduce-range", action="store_true", help="7-bit weights (non-VNNI x86)")
    p.add_argument("--weight-type", default="QInt8", help="QInt8 (default), QUInt8, ...")
    p.add_argument("--activation-type", default="QInt8", help="static: QInt8 (default), QUInt8, QInt16, ...")
    p.add_argument(
        "--op-types", nargs="*", metavar="OP", help="only these op types (fp16: ops kept in float32)"
    )
    p.add_argument("--exclude-nodes", nargs="*", metavar="NAME", help="nodes to keep in float")
    p.add_argument("--extra", nargs="*", metavar="KEY=VALUE", help="extra_options (JSON values)")
    p.add_argument(
        "--recipe",
        choices=["ort", "accurate"],
        default="ort",
        help="dynamic: 'accurate' = per-channel weights, per-row symmetric activations, "
        "activation x activation MatMuls in float (what keeps MiniLM at 0.997 cosine)",
    )
    p.add_argument(
        "--block-size", type=positive_int, default=32, help="int4: block size along K (default 32)"
    )
    p.add_argument("--asymmetric", action="store_true", help="int4: asymmetric blocks (with zero points)")
    p.add_argument("--keep-io-types", action="store_true", help="fp16: keep float32 inputs and outputs")
    p.set_defaults(fn=cmd_quantize)
    return p
