"""INT8 against fp32, onnxlite (default providers: oneDNN first) against onnxruntime (CPU).

Two models, each in fp32 and INT8, all four sessions timed in one process on the same feeds,
in turns (each repetition gives every session a turn of about 0.3 s, rotating which goes first;
the runs in a turn's first 0.06 s are not counted), medians:

- ``bert_base_b1``: BERT-base, sequence 128, batch 1 (``benchmarks/models.py``). INT8 is dynamic
  quantization of the same fp32 file, each runtime's ``quantize_dynamic`` with its defaults
  (both set ``MatMulConstBOnly``: the attention MatMuls between two activations stay float).
- ``squeezenet_qdq``: onnx's light SqueezeNet 1.0 with seeded random weights in place of its
  constant ones (so that the outputs mean something), converted to opset 13; INT8 is static QDQ
  quantization (per-channel weights, 8 random calibration images) by
  ``onnxlite.quantization.quantize_static``, the same QDQ file for both runtimes.

Accuracy: the largest difference between an INT8 output and the same runtime's fp32 output,
relative to the fp32 output's largest magnitude. Results: ``benchmarks/results/quant/latest.md``.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/quant.py [--repeat N]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import models  # noqa: E402  (the benchmark's model helpers, beside this file)

CACHE = models.CACHE
OUT = HERE / "results" / "quant"
TURN_S, SETTLE_S = 0.3, 0.06


def _bert() -> tuple[Path, Path, Path, dict[str, np.ndarray]]:
    from onnxruntime.quantization import quantize_dynamic as ort_quantize_dynamic

    from onnxlite.quantization import quantize_dynamic

    fp32 = models._bert_path()
    lite = CACHE / "bert_base.int8.onnxlite.onnx"
    ort = CACHE / "bert_base.int8.onnxruntime.onnx"
    if not lite.exists() or lite.stat().st_mtime < fp32.stat().st_mtime:
        quantize_dynamic(str(fp32), str(lite))
    if not ort.exists() or ort.stat().st_mtime < fp32.stat().st_mtime:
        ort_quantize_dynamic(str(fp32), str(ort))
    return fp32, lite, ort, models._bert_feeds(1)()


def _squeezenet_fp32(path: Path) -> None:
    """The light SqueezeNet with random weights, initializers out of the inputs, opset 13."""
    from onnx import numpy_helper, version_converter

    src = models.LIGHT_DIR / "light_squeezenet.onnx"
    model = onnx.load(str(src))
    g = model.graph
    rng = np.random.default_rng(0)
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    new_inits = []
    keep = []
    for n in g.node:
        if n.op_type == "ConstantOfShape" and n.input[0] in inits:
            shape = tuple(int(d) for d in inits[n.input[0]])
            if len(shape) == 4:  # He-normal conv weights
                v = rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))
            else:
                v = rng.standard_normal(shape) * 0.01
            new_inits.append(numpy_helper.from_array(v.astype(np.float32), n.output[0]))
        else:
            keep.append(n)
    del g.node[:]
    g.node.extend(keep)
    g.initializer.extend(new_inits)
    names = {i.name for i in g.initializer}
    ins = [x for x in g.input if x.name not in names]
    del g.input[:]
    g.input.extend(ins)
    model.ir_version = max(model.ir_version, 7)  # initializers need not be graph inputs
    model = version_converter.convert_version(model, 13)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _squeezenet() -> tuple[Path, Path, Path, dict[str, np.ndarray]]:
    from onnxlite.quantization import CalibrationDataReader, QuantFormat, quantize_static

    fp32 = CACHE / "squeezenet_random.onnx"
    qdq = CACHE / "squeezenet_random.qdq.onnx"
    if not fp32.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        _squeezenet_fp32(fp32)
    model = onnx.load(str(fp32), load_external_data=False)
    x = model.graph.input[0]
    shape = [d.dim_value for d in x.type.tensor_type.shape.dim]
    feeds = {x.name: np.random.default_rng(1).random(shape, dtype=np.float32)}
    if not qdq.exists():

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                rng = np.random.default_rng(2)
                self.it = iter([{x.name: rng.random(shape, dtype=np.float32)} for _ in range(8)])

            def get_next(self) -> dict[str, np.ndarray] | None:
                return next(self.it, None)

        quantize_static(str(fp32), str(qdq), Reader(), quant_format=QuantFormat.QDQ, per_channel=True)
    return fp32, qdq, qdq, feeds


def _sessions(fp32: Path, lite_q: Path, ort_q: Path) -> dict[str, Any]:
    import onnxruntime

    import onnxlite

    cpu = ["CPUExecutionProvider"]
    return {
        "onnxlite fp32": onnxlite.InferenceSession(str(fp32)),
        "onnxlite int8": onnxlite.InferenceSession(str(lite_q)),
        "onnxruntime fp32": onnxruntime.InferenceSession(str(fp32), providers=cpu),
        "onnxruntime int8": onnxruntime.InferenceSession(str(ort_q), providers=cpu),
    }


def _rel(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.abs(x - y).max() / max(np.abs(y).max(), 1e-30)) for x, y in zip(a, b))


def measure(name: str, prep: Callable[[], tuple[Path, Path, Path, dict[str, np.ndarray]]], reps: int) -> dict:
    fp32, lite_q, ort_q, feeds = prep()
    sess = _sessions(fp32, lite_q, ort_q)
    outs = {k: s.run(None, feeds) for k, s in sess.items()}  # warm-up, and the outputs
    times: dict[str, list[float]] = {k: [] for k in sess}
    keys = list(sess)
    for i in range(reps):
        k0 = i % len(keys)
        for k in keys[k0:] + keys[:k0]:
            # Turns as in run.py: onnxruntime's pool spins about 40 ms after its runs, taking a
            # core from whichever session ran next (onnxlite's fp32 SqueezeNet took 15-18 ms
            # instead of 3.5 when single runs alternated); the runs of a turn's first SETTLE_S
            # are not counted. Not idle pauses either: after 60 ms idle, a run on this kind of
            # virtual machine takes several times as long for both runtimes.
            start = time.perf_counter()
            counted = 0
            while True:
                t0 = time.perf_counter()
                sess[k].run(None, feeds)
                t1 = time.perf_counter()
                if t0 - start >= SETTLE_S:
                    times[k].append(t1 - t0)
                    counted += 1
                if t1 - start >= TURN_S and counted:
                    break
    med = {k: 1000 * float(np.median(v)) for k, v in times.items()}
    iqr = {k: float(np.subtract(*np.percentile(v, [75, 25])) / np.median(v)) for k, v in times.items()}
    placed: dict[str, int] = {}
    for st in sess["onnxlite int8"]._plan.steps:
        placed[st.provider] = placed.get(st.provider, 0) + 1
    return {
        "name": name,
        "median_ms": med,
        "iqr": iqr,
        "err_lite": _rel(outs["onnxlite int8"], outs["onnxlite fp32"]),
        "err_ort": _rel(outs["onnxruntime int8"], outs["onnxruntime fp32"]),
        "fp32_lite_vs_ort": _rel(outs["onnxlite fp32"], outs["onnxruntime fp32"]),
        "placed": placed,
        "runs": min(len(v) for v in times.values()),  # counted runs, the fewest of the sessions
        "load": os.getloadavg()[0],
    }


def render(results: list[dict], command: str, wall: float) -> str:
    import onnxruntime

    import onnxlite

    cpu = platform.processor() or platform.machine()
    with open("/proc/cpuinfo") as f:
        cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    try:
        import subprocess

        git = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=HERE, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        git = "unknown"
    lines = [
        "# onnxlite INT8 benchmark",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}",
        f"- machine: {cpu}, {os.cpu_count()} cores; {platform.platform()}",
        f"- versions: onnxlite {onnxlite.__version__} (git {git}), onnxruntime {onnxruntime.__version__}, "
        f"numpy {np.__version__}, Python {platform.python_version()}",
        f"- command: `{command}`; wall time {wall:.0f} s",
        "- onnxlite: default providers (DnnlExecutionProvider, then CPUExecutionProvider); "
        "onnxruntime: CPUExecutionProvider; default session options for both",
        "",
        "Medians of runs in one process, same feeds, in turns of 0.3 s per session per "
        "repetition, the first 0.06 s of a turn not counted (IQR/median in brackets). "
        "int8 speedup = fp32 ms / int8 ms of the same runtime; lite/ort = onnxlite ms / "
        "onnxruntime ms. Error: max |int8 - fp32| / max |fp32| over the outputs, same runtime.",
        "",
        "| model | onnxlite fp32 ms | onnxlite int8 ms | onnxruntime fp32 ms | onnxruntime int8 ms "
        "| int8 speedup lite / ort | int8 lite/ort | int8 error lite / ort | runs | load |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        m, q = r["median_ms"], r["iqr"]

        def cell(k: str, m: dict = m, q: dict = q) -> str:
            return f"{m[k]:.1f} ({q[k]:.0%})"

        lines.append(
            f"| {r['name']} | {cell('onnxlite fp32')} | {cell('onnxlite int8')} "
            f"| {cell('onnxruntime fp32')} | {cell('onnxruntime int8')} "
            f"| {m['onnxlite fp32'] / m['onnxlite int8']:.2f}x / "
            f"{m['onnxruntime fp32'] / m['onnxruntime int8']:.2f}x "
            f"| {m['onnxlite int8'] / m['onnxruntime int8']:.2f} "
            f"| {r['err_lite']:.1e} / {r['err_ort']:.1e} | {r['runs']} | {r['load']:.1f} |"
        )
    lines += ["", "Nodes of the onnxlite INT8 sessions per provider:"]
    for r in results:
        lines.append(f"- {r['name']}: " + ", ".join(f"{k}: {v}" for k, v in sorted(r["placed"].items())))
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=30, help="turns per session per model")
    ap.add_argument("--out", type=Path, default=OUT, help="folder of latest.md")
    args = ap.parse_args()
    import onnxruntime

    import onnxlite

    # Load oneDNN (and its OpenMP runtime, with sleeping idle threads) before the model helpers
    # import torch, whose libgomp.so.1 would otherwise be the one loaded, with spinning threads.
    onnxlite.get_available_providers()

    onnxruntime.set_default_logger_severity(3)
    t0 = time.perf_counter()
    results = []
    for name, prep in (("bert_base_b1", _bert), ("squeezenet_qdq", _squeezenet)):
        r = measure(name, prep, args.repeat)
        results.append(r)
        print(name, {k: round(v, 1) for k, v in r["median_ms"].items()}, flush=True)
    command = "python benchmarks/quant.py" + (f" --repeat {args.repeat}" if args.repeat != 30 else "")
    blas_env = sorted(k for k in os.environ if k.startswith("OPENBLAS"))
    # numpy's OpenBLAS should pick its own kernel (see README.md): record how it was run
    command = (
        f"OPENBLAS_* set: {', '.join(blas_env)}; "
        if blas_env
        else "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "
    ) + command
    text = render(results, command, time.perf_counter() - t0)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
