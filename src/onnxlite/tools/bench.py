"""``onnxlite bench MODEL``: latency, throughput and memory of one model, as onnxruntime_perf_test.

Prints the session creation time, the total and average inference time, throughput, the peak RSS
of the process and the RSS increase of session creation and of inference, and the latency
min/mean/max/p50/p90/p95/p99/p999 in one table. ``--compare onnxruntime`` runs the same feeds in
onnxruntime in the same process, in turns with onnxlite's runs (alternating which goes first), and
adds its column and the ratio of the medians. ``--json`` prints the same report as JSON.
``-p`` turns on profiling and summarises the time by op type.

How memory is measured (Linux): before each measured step (session creation, each run), the
process's peak-RSS mark is reset (``echo 5 > /proc/self/clear_refs``) and the current RSS read
(``VmRSS``); after it, the peak (``VmHWM``) is read. The increase of a step is peak minus the RSS
before it, plus what the runtime's earlier runs kept (their RSS after minus before). This is exact
for the process's resident memory and attributes it to the runtime that ran, even when two
runtimes take turns. Where clear_refs is not writable, a thread samples ``VmRSS`` every 0.5 ms
instead (it may miss short peaks). ``peak_rss`` is ``resource.getrusage(RUSAGE_SELF).ru_maxrss``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import non_negative_float, non_negative_int, positive_int, read_npz

RUNTIMES = ("onnxlite", "onnxruntime")
PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p95", 95.0), ("p99", 99.0), ("p999", 99.9))


# ---------------------------------------------------------------------------------------------
# memory


def _status_kib(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_rss_bytes() -> int:
    """The process's peak resident set size so far (ru_maxrss; KiB on Linux, bytes on macOS)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(r if sys.platform == "darwin" else r * 1024)


class RssMeter:
    """Peak RSS increase of measured steps; see the module docstring for the method."""

    def __init__(self) -> None:
        self.method = "unavailable"
        self._sampler: _Sampler | None = None
        if _status_kib("VmRSS") is None:
            return
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.method = "clear_refs"
        except OSError:
            self._sampler = _Sampler()
            self.method = "sampling"

    def close(self) -> None:
        if self._sampler is not None:
            self._sampler.stop()

    def begin(self) -> int:
        """Mark the start of a step; return the current RSS in KiB."""
        if self.method == "clear_refs":
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        rss = _status_kib("VmRSS") or 0
        if self._sampler is not None:
            self._sampler.reset(rss)
        return rss

    def end(self) -> tuple[int, int]:
        """(peak RSS during the step, RSS now), in KiB."""
        rss = _status_kib("VmRSS") or 0
        if self.method == "clear_refs":
            peak = _status_kib("VmHWM") or rss
        elif self._sampler is not None:
            peak = self._sampler.peak
        else:
            peak = rss
        return max(peak, rss), rss


class _Sampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True, name="onnxlite-bench-rss")
        self.peak = 0
        self._stop_event = threading.Event()
        self.start()

    def reset(self, rss: int) -> None:
        self.peak = rss

    def run(self) -> None:
        while not self._stop_event.wait(0.0005):
            rss = _status_kib("VmRSS") or 0
            if rss > self.peak:
                self.peak = rss

    def stop(self) -> None:
        self._stop_event.set()


@dataclass
class _MemTrack:
    """One runtime's memory: what it kept so far and the largest step increase."""

    kept_kib: int = 0
    inference_kib: int = 0

    def add_run(self, before: int, peak: int, after: int) -> None:
        self.inference_kib = max(self.inference_kib, self.kept_kib + peak - before, 0)
        self.kept_kib += after - before


# ---------------------------------------------------------------------------------------------
# inputs


def parse_free_dims(items: list[str] | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items or []:
        name, sep, value = item.rpartition(":")
        if not sep or not name:
            raise ValueError(f"-f expects name:value (a free dimension and its size), got {item!r}")
        try:
            out[name] = int(value)
        except ValueError:
            raise ValueError(f"-f {item!r}: the size {value!r} is not an integer") from None
        if out[name] < 1:
            raise ValueError(f"-f {item!r}: the size must be >= 1")
    return out


def random_feeds(inputs: list[Any], free_dims: dict[str, int], seed: int = 0) -> dict[str, Any]:
    """Random arrays for ``inputs`` (NodeArgs); symbolic dims from ``free_dims``, else 1."""
    from ..types import np_dtype_of_type_string

    rng = np.random.default_rng(seed)
    feeds: dict[str, Any] = {}
    for arg in inputs:
        shape = []
        for d in arg.shape or []:
            if isinstance(d, int) and d >= 0:
                shape.append(d)
            else:
                shape.append(free_dims.get(d, 1) if isinstance(d, str) else 1)
        try:
            dt = np_dtype_of_type_string(arg.type)
        except TypeError:
            raise ValueError(
                f"cannot generate a random value for input {arg.name!r} of type {arg.type}; "
                "give the inputs with --input FILE.npz"
            ) from None
        if dt.kind == "f":
            feeds[arg.name] = rng.standard_normal(shape).astype(dt)
        elif dt.kind == "b":
            feeds[arg.name] = rng.random(shape) > 0.5
        elif dt.kind in "iu":
            feeds[arg.name] = rng.integers(0, 10, shape).astype(dt)
        elif dt.kind in "OUS":
            feeds[arg.name] = np.full(shape, "a", dtype=object)
        else:
            feeds[arg.name] = rng.standard_normal(shape).astype(dt)
    return feeds


def file_feeds(inputs: list[Any], path: str) -> dict[str, Any]:
    """Feeds from an .npz: arrays named after the inputs, or as many arrays in the inputs' order."""
    data = read_npz(path)
    names = [i.name for i in inputs]
    if set(data) >= set(names):
        return {n: data[n] for n in names}
    if len(data) == len(names):  # positional: the arrays in the inputs' order
        return dict(zip(names, data.values()))
    raise ValueError(f"{path}: holds {sorted(data)}, the model's inputs are {names}")


# ---------------------------------------------------------------------------------------------
# the measurement


@dataclass
class Settings:
    repeat: int = 100
    duration: float = 10.0
    warmup: int = 1
    intra_op_num_threads: int = 0
    opt_level: int | None = None
    free_dims: dict[str, int] = field(default_factory=dict)
    input: str | None = None
    seed: int = 0
    compare: str | None = None
    providers: list[str] | None = None
    profile: bool = False
    profile_prefix: str | None = None


@dataclass
class _Runtime:
    name: str
    version: str = ""
    session: Any = None
    providers: list[str] = field(default_factory=list)
    create_s: float = 0.0
    create_kib: int = 0
    times: list[float] = field(default_factory=list)
    mem: _MemTrack = field(default_factory=_MemTrack)
    outputs: list[Any] = field(default_factory=list)
    error: str | None = None
    profile_file: str | None = None


def _session_options(module: Any, s: Settings, prefix: str | None) -> Any:
    so = module.SessionOptions()
    if s.intra_op_num_threads:
        so.intra_op_num_threads = s.intra_op_num_threads
    if s.opt_level is not None:
        so.graph_optimization_level = module.GraphOptimizationLevel(s.opt_level)
    for name, value in s.free_dims.items():
        so.add_free_dimension_override_by_name(name, value)
    if prefix is not None:
        so.enable_profiling = True
        so.profile_file_prefix = prefix
    return so


def _create(rt: _Runtime, module: Any, model: str, s: Settings, meter: RssMeter, prefix: str | None) -> None:
    so = _session_options(module, s, prefix)
    providers: list[str] | None
    if rt.name == "onnxruntime":
        available = module.get_available_providers()
        providers = [p for p in (s.providers or []) if p in available] or ["CPUExecutionProvider"]
    else:
        providers = s.providers
    before = meter.begin()
    t0 = time.perf_counter()
    rt.session = module.InferenceSession(model, sess_options=so, providers=providers)
    rt.create_s = time.perf_counter() - t0
    peak, _ = meter.end()
    # Linux syncs per-thread RSS counters lazily: a step that frees memory can read a few pages
    # below its start; an increase is never negative.
    rt.create_kib = max(0, peak - before)
    rt.mem.kept_kib = 0
    rt.version = str(module.__version__)
    rt.providers = list(rt.session.get_providers())


TURN_SETTLE_S = 0.06
TURN_S = 0.3


def _turn(rt: _Runtime, feeds: dict[str, Any], meter: RssMeter, want: int) -> None:
    """One runtime's turn: unrecorded runs for TURN_SETTLE_S (at least one), then recorded runs
    for TURN_S (at least one, and no more than ``want`` in all)."""
    t0 = time.perf_counter()
    while True:
        _timed_run(rt, feeds, meter, record=False)
        if time.perf_counter() - t0 >= TURN_SETTLE_S:
            break
    t1 = time.perf_counter()
    while len(rt.times) < want:
        _timed_run(rt, feeds, meter, record=True)
        if time.perf_counter() - t1 >= TURN_S:
            break


def _timed_run(rt: _Runtime, feeds: dict[str, Any], meter: RssMeter, record: bool) -> None:
    # The first run's outputs are kept (to compare runtimes); later ones are dropped before the
    # RSS is read, or every run would count its outputs as memory kept.
    keep = not rt.outputs
    before = meter.begin()
    t0 = time.perf_counter()
    outs = rt.session.run(None, feeds)
    dt = time.perf_counter() - t0
    if keep:
        rt.outputs = outs
    del outs
    peak, after = meter.end()
    rt.mem.add_run(before, peak, after)
    if record:
        rt.times.append(dt)


def latency_stats(times_s: list[float]) -> dict[str, float]:
    """min/mean/max/std and percentiles (linear interpolation), in milliseconds."""
    if not times_s:
        return {}
    ms = np.asarray(times_s, dtype=np.float64) * 1e3
    out = {"min": float(ms.min()), "mean": float(ms.mean()), "max": float(ms.max())}
    out["std"] = float(ms.std())
    for name, q in PERCENTILES:
        out[name] = float(np.percentile(ms, q))
    return out


def summarize_profile(path: str) -> dict[str, Any]:
    """Per op type (and provider, when not the CPU one): calls and milliseconds per run, share of
    kernel time; and the time of the runs spent outside kernels."""
    with open(path) as f:
        events = json.load(f)
    runs = [e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"]
    n_runs = max(len(runs), 1)
    by_op: dict[str, list[float]] = {}
    node_us = 0.0
    for e in events:
        if e.get("cat") != "Node" or not str(e.get("name", "")).endswith("_kernel_time"):
            continue
        args = e.get("args", {})
        op = str(args.get("op_name", "?"))
        provider = str(args.get("provider", ""))
        if provider and provider != "CPUExecutionProvider":  # e.g. "MatMul [Dnnl]"
            op += f" [{provider.removesuffix('ExecutionProvider')}]"
        entry = by_op.setdefault(op, [0.0, 0.0])
        entry[0] += 1
        entry[1] += float(e.get("dur", 0))
        node_us += float(e.get("dur", 0))
    run_us = float(sum(float(e.get("dur", 0)) for e in runs))
    ops = [
        {
            "op_type": op,
            "calls_per_run": c / n_runs,
            "ms_per_run": us / n_runs / 1e3,
            "share": us / node_us if node_us else 0.0,
        }
        for op, (c, us) in sorted(by_op.items(), key=lambda kv: -kv[1][1])
    ]
    return {
        "file": path,
        "runs": len(runs),
        "run_ms": run_us / n_runs / 1e3,
        "node_ms": node_us / n_runs / 1e3,
        # time in model_run not spent inside a kernel: the run loop, feeds checks, output copies
        "outside_nodes_ms": max(run_us - node_us, 0.0) / n_runs / 1e3,
        "op_types": ops,
    }


def _machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__}


def _runtime_report(rt: _Runtime) -> dict[str, Any]:
    if rt.error is not None:
        return {"available": False, "error": rt.error}
    total = float(sum(rt.times))
    n = len(rt.times)
    out: dict[str, Any] = {
        "available": True,
        "version": rt.version,
        "providers": rt.providers,
        "session_creation_ms": rt.create_s * 1e3,
        "runs": n,
        "total_ms": total * 1e3,
        "average_ms": total * 1e3 / n if n else None,
        "throughput_per_s": n / total if total > 0 else None,
        "latency_ms": latency_stats(rt.times),
        "session_rss_increase_bytes": rt.create_kib * 1024,
        "inference_rss_increase_bytes": rt.mem.inference_kib * 1024,
    }
    if rt.profile_file:
        out["profile"] = summarize_profile(rt.profile_file)
    return out


def _max_abs_diff(a: list[Any], b: list[Any]) -> float | None:
    worst = 0.0
    for x, y in zip(a, b):
        if not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray) or x.shape != y.shape:
            return None
        if x.dtype.kind in "fiub" and x.size:
            worst = max(worst, float(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64)))))
    return worst


def _measure(
    runtimes: list[_Runtime], modules: dict[str, Any], model: str, s: Settings, meter: RssMeter
) -> tuple[dict[str, Any], str, list[_Runtime]]:
    """Create the sessions, warm up, then the timed runs; return (feeds, their source, runtimes run)."""
    prefix = (s.profile_prefix or "onnxlite_bench_profile") if s.profile else None
    for rt in runtimes:
        if rt.error is not None:
            continue
        try:
            _create(rt, modules[rt.name], model, s, meter, f"{prefix}_{rt.name}" if prefix else None)
        except Exception as e:
            if rt.name == "onnxlite":
                raise
            rt.error = f"session creation failed: {type(e).__name__}: {e}"

    inputs = runtimes[0].session.get_inputs()
    if s.input:
        feeds, source = file_feeds(inputs, s.input), s.input
    else:
        feeds, source = random_feeds(inputs, s.free_dims, s.seed), f"random (seed {s.seed})"

    active = [rt for rt in runtimes if rt.error is None]
    for rt in list(active):
        try:
            for _ in range(s.warmup):
                _timed_run(rt, feeds, meter, record=False)
        except Exception as e:
            if rt.name == "onnxlite":
                raise
            rt.error = f"run failed: {type(e).__name__}: {e}"
            active.remove(rt)

    start = time.perf_counter()
    want = max(s.repeat, 1)
    if len(active) == 1:
        (rt,) = active
        while len(rt.times) < want and (not rt.times or time.perf_counter() - start < s.duration):
            _timed_run(rt, feeds, meter, record=True)
    else:
        # Interleaved in turns, alternating which goes first, so drifts of a shared, noisy
        # machine hit both alike. A turn's first TURN_SETTLE_S is not recorded: onnxruntime's
        # pool spins for about 40 ms after a run and would take a core from the next runtime.
        i = 0
        while any(len(rt.times) < want for rt in active) and (
            i == 0 or time.perf_counter() - start < s.duration
        ):
            for rt in active if i % 2 == 0 else active[::-1]:
                _turn(rt, feeds, meter, want)
            i += 1

    if prefix is not None:
        for rt in active:
            rt.profile_file = rt.session.end_profiling() or None
    return feeds, source, active


def run_bench(model: str, s: Settings) -> dict[str, Any]:
    """Benchmark ``model`` and return the report (what ``--json`` prints)."""
    import onnxlite

    runtimes = [_Runtime("onnxlite")]
    modules: dict[str, Any] = {"onnxlite": onnxlite}
    if s.compare:
        if s.compare != "onnxruntime":
            raise ValueError(f"--compare supports 'onnxruntime', got {s.compare!r}")
        cmp = _Runtime("onnxruntime")
        try:
            import onnxruntime

            modules["onnxruntime"] = onnxruntime
        except ImportError as e:
            cmp.error = f"onnxruntime is not installed ({e})"
        runtimes.append(cmp)

    meter = RssMeter()
    try:
        feeds, source, active = _measure(runtimes, modules, model, s, meter)
    finally:
        meter.close()

    report: dict[str, Any] = {
        "model": model,
        "inputs": {k: {"dtype": str(v.dtype), "shape": list(v.shape)} for k, v in feeds.items()},
        "input_source": source,
        "settings": {
            "repeat": s.repeat,
            "duration_s": s.duration,
            "warmup": s.warmup,
            "intra_op_num_threads": s.intra_op_num_threads,
            "graph_optimization_level": s.opt_level,
            "free_dimension_overrides": s.free_dims,
            "providers": s.providers,
            "profiling": s.profile,
            "interleaved": len(active) > 1,
        },
        "machine": _machine(),
        "memory_method": meter.method,
        "peak_rss_bytes": peak_rss_bytes(),
        "runtimes": {rt.name: _runtime_report(rt) for rt in runtimes},
    }
    if len(active) == 2:
        a, b = (report["runtimes"][n]["latency_ms"]["p50"] for n in RUNTIMES)
        report["ratio_of_medians"] = a / b if b > 0 else None
        report["max_abs_diff"] = _max_abs_diff(active[0].outputs, active[1].outputs)
    return report


# ---------------------------------------------------------------------------------------------
# printing


def _mib(b: Any) -> str:
    return "-" if b is None else f"{b / 2**20:.1f}"


def _num(v: Any) -> str:
    if v is None:
        return "-"
    a = abs(v)
    return format(v, ".4f" if a < 1 else ".3f" if a < 100 else ".1f")


def format_report(r: dict[str, Any]) -> str:
    cols = [n for n in RUNTIMES if n in r["runtimes"]]
    ok = [n for n in cols if r["runtimes"][n]["available"]]
    lines = [f"model: {r['model']}"]
    lines.append(
        "inputs: "
        + ", ".join(f"{k} {v['dtype']}{v['shape']}" for k, v in r["inputs"].items())
        + f"  ({r['input_source']})"
    )
    st = r["settings"]
    lines.append(
        f"settings: up to {st['repeat']} runs or {st['duration_s']:g} s, warmup {st['warmup']}, "
        f"intra_op_num_threads {st['intra_op_num_threads'] or 'default'}, optimization level "
        f"{st['graph_optimization_level'] if st['graph_optimization_level'] is not None else 'default'}"
        + (", runtimes interleaved" if st["interleaved"] else "")
        + (", PROFILED runs (per-node timing adds overhead)" if st["profiling"] else "")
    )
    for n in cols:
        rt = r["runtimes"][n]
        if rt["available"]:
            lines.append(f"{n}: {rt['version']} {', '.join(rt['providers'])}")
        else:
            lines.append(f"{n}: unavailable: {rt['error']}")

    rows: list[tuple[str, list[str]]] = []

    def row(label: str, key: Any, fmt: Any = _num) -> None:
        rows.append((label, [fmt(key(r["runtimes"][n])) for n in ok]))

    row("session creation (ms)", lambda x: x["session_creation_ms"])
    row("inference runs", lambda x: x["runs"], lambda v: str(v))
    row("total inference (ms)", lambda x: x["total_ms"])
    row("average inference (ms)", lambda x: x["average_ms"])
    row("throughput (inferences/s)", lambda x: x["throughput_per_s"])
    for key in ["min", "mean", *(p for p, _ in PERCENTILES), "max"]:
        row(f"latency {key} (ms)", lambda x, k=key: x["latency_ms"].get(k))
    row("RSS increase, session (MiB)", lambda x: x["session_rss_increase_bytes"], _mib)
    row("RSS increase, inference (MiB)", lambda x: x["inference_rss_increase_bytes"], _mib)

    width = max(len(label) for label, _ in rows) + 2
    cw = max(12, *(len(n) + 2 for n in ok))
    header = "".ljust(width) + "".join(n.rjust(cw) for n in ok)
    if len(ok) == 2:
        header += "ratio".rjust(9)
    lines.append("")
    lines.append(header)
    lines.append("-" * len(header))
    for label, vals in rows:
        line = label.ljust(width) + "".join(v.rjust(cw) for v in vals)
        if len(ok) == 2 and ("latency" in label or "inference (ms)" in label or "creation" in label):
            try:
                a, b = float(vals[0]), float(vals[1])
                line += f"{a / b:8.2f}x" if b > 0 else "-".rjust(9)
            except ValueError:
                pass
        lines.append(line)
    lines.append("")
    lines.append(
        f"peak RSS of the process (ru_maxrss): {_mib(r['peak_rss_bytes'])} MiB"
        f"   (RSS increases measured by {r['memory_method']})"
    )
    if r.get("ratio_of_medians") is not None:
        diff = r.get("max_abs_diff")
        lines.append(
            f"ratio of medians onnxlite/onnxruntime: {r['ratio_of_medians']:.2f}x"
            + (f"   outputs max |diff|: {diff:.3g}" if diff is not None else "")
        )
    for n in ok:
        prof = r["runtimes"][n].get("profile")
        if prof:
            lines.append("")
            lines.extend(format_profile(n, prof))
    return "\n".join(lines)


def format_profile(name: str, prof: dict[str, Any], top: int = 12) -> list[str]:
    lines = [
        f"{name} profile ({prof['file']}, {prof['runs']} runs): {prof['run_ms']:.2f} ms per run, "
        f"{prof['node_ms']:.2f} ms in kernels, {prof['outside_nodes_ms']:.2f} ms outside them"
    ]
    lines.append(f"  {'op type':<28}{'calls/run':>10}{'ms/run':>11}{'share':>8}")
    for op in prof["op_types"][:top]:
        lines.append(
            f"  {op['op_type']:<28}{op['calls_per_run']:>10.1f}{op['ms_per_run']:>11.3f}"
            f"{op['share'] * 100:>7.1f}%"
        )
    rest = prof["op_types"][top:]
    if rest:
        ms = sum(o["ms_per_run"] for o in rest)
        share = sum(o["share"] for o in rest)
        lines.append(f"  {f'({len(rest)} more op types)':<28}{'':>10}{ms:>11.3f}{share * 100:>7.1f}%")
    return lines


# ---------------------------------------------------------------------------------------------
# command line


def settings_from_args(args: argparse.Namespace) -> Settings:
    return Settings(
        repeat=args.repeat,
        duration=args.duration,
        warmup=args.warmup,
        intra_op_num_threads=args.intra_op_num_threads,
        opt_level=args.opt_level,
        free_dims=parse_free_dims(args.free_dim),
        input=args.input,
        seed=args.seed,
        compare=args.compare,
        providers=args.providers.split(",") if args.providers else None,
        profile=args.profile,
        profile_prefix=args.profile_prefix,
    )


def cmd_bench(args: argparse.Namespace) -> int:
    if args.input and args.generate_inputs:
        raise ValueError("give either --input FILE.npz or -I (random inputs), not both")
    report = run_bench(args.model, settings_from_args(args))
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(format_report(report))
    return 0


def add_bench_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``bench`` subcommand (with ``fn=cmd_bench``) to an argparse subparsers object."""
    p = subparsers.add_parser(
        "bench",
        help="measure a model's latency, throughput and memory (as onnxruntime_perf_test)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    p.add_argument("model", help="path of an .onnx model")
    p.add_argument("-r", "--repeat", type=positive_int, default=100, help="timed runs at most (default 100)")
    p.add_argument(
        "-t",
        "--duration",
        type=non_negative_float,
        default=10.0,
        help="stop starting new runs after this many seconds (default 10; at least one run)",
    )
    p.add_argument("--warmup", type=non_negative_int, default=1, help="untimed runs first (default 1)")
    p.add_argument(
        "-x",
        "--intra-op-num-threads",
        dest="intra_op_num_threads",
        type=non_negative_int,
        default=0,
        help="SessionOptions.intra_op_num_threads (default 0: the runtime's choice)",
    )
    p.add_argument(
        "-o",
        "--opt-level",
        type=int,
        choices=[0, 1, 2, 3, 99],
        help="graph optimization level (0 off, 1 basic, 2 extended, 99 all; default: the runtime's)",
    )
    p.add_argument(
        "-f",
        "--free-dim",
        action="append",
        metavar="NAME:VALUE",
        help="free dimension override by name, e.g. -f batch:8 (repeatable)",
    )
    p.add_argument(
        "-I", "--generate-inputs", action="store_true", help="random inputs (the default without --input)"
    )
    p.add_argument("--input", help=".npz file with the inputs (by input name or in order)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    p.add_argument(
        "--compare",
        choices=["onnxruntime"],
        help="also run the same feeds in onnxruntime, interleaved, and report the ratio",
    )
    p.add_argument("--providers", help="comma-separated execution providers, in priority order")
    p.add_argument(
        "-p", "--profile", action="store_true", help="enable profiling and summarise the time per op type"
    )
    p.add_argument("--profile-prefix", help="file prefix of the profiles (default onnxlite_bench_profile)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(fn=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point: ``python -m onnxlite.tools.bench MODEL ...``."""
    ap = argparse.ArgumentParser(prog="onnxlite")
    sub = ap.add_subparsers(dest="command", required=True)
    add_bench_parser(sub)
    args = ap.parse_args(["bench", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.fn(args))
    except (ValueError, OSError) as e:
        print(f"onnxlite bench: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
