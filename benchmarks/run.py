"""onnxlite against onnxruntime and onnx.reference, model by model.

Run it with numpy's BLAS left to pick its own kernel (the machine may force one through
OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE; unset them for this command only):

    pip install -r benchmarks/requirements.txt
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/run.py            # everything
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/run.py --quick    # a few minutes
    python benchmarks/run.py --models light_squeezenet,mlp_64x4_b1 --repeat 50

Method (see benchmarks/README.md):
- latency: ONE process, the same feeds for every runtime, runs interleaved in turns (blocks of
  about 0.3 s per runtime, alternating which goes first; the runs starting in the first 0.06 s of
  a turn are not counted, because onnxruntime's thread pool spins for about 40 ms after each run
  and would take a core from the next runtime's runs), after one warm-up run each; the median of
  each runtime's counted runs is reported. onnxruntime gets
  providers=["CPUExecutionProvider"], both get their default SessionOptions (default graph
  optimizations).
- onnx.reference runs only within a per-model time budget (--ref-budget): its first run is
  interrupted (SIGALRM) when it exceeds the budget and the model is marked "skipped"; otherwise it
  gets as many single runs, spread over the model's time, as the rest of the budget allows.
- session creation: measured in the same process (median of up to three creations when cheap).
- memory: one fresh subprocess per runtime per model (benchmarks/_worker.py) so that the two
  runtimes' allocations do not mix: peak RSS of that process (ru_maxrss) and the peak RSS increase
  during its runs, from Linux's resettable high-water mark (/proc/self/clear_refs, VmHWM).
Writes benchmarks/results/latest.{md,json,png}.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import models as bench_models  # noqa: E402

RESULTS = HERE / "results"
RUNTIMES = ("onnxlite", "onnxruntime", "reference")


class _Timeout(Exception):
    pass


def _alarm(_signum: int, _frame: Any) -> None:
    raise _Timeout


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# environment


def _git_describe() -> str:
    try:
        res = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=HERE, capture_output=True, text=True, check=False
        )
    except OSError:
        return "unknown"
    return res.stdout.strip() or "unknown"


def environment() -> dict[str, Any]:
    import onnx
    import onnxruntime
    from threadpoolctl import threadpool_info

    import onnxlite

    cpu = platform.processor() or platform.machine()
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    blas = [
        {k: p.get(k) for k in ("internal_api", "version", "architecture", "num_threads", "filepath")}
        for p in threadpool_info()
        if p.get("user_api") == "blas"
    ]
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": np.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "onnxlite": onnxlite.__version__,
        "blas": blas,
        "lite_available_providers": onnxlite.get_available_providers(),
        "openblas_env": {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS")},
        "loadavg_start": os.getloadavg(),
        "git": _git_describe(),
    }


# ---------------------------------------------------------------------------------------------
# one model


def _max_abs_diff(a: list[Any], b: list[Any]) -> float:
    worst = 0.0
    for x, y in zip(a, b):
        x, y = np.asarray(x), np.asarray(y)
        if x.shape != y.shape:
            return float("inf")
        if x.size:
            worst = max(worst, float(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64)))))
    return worst


THREADS = 0  # --threads: 0 leaves every runtime at its default
LITE_PROVIDERS: list[str] | None = None  # --lite-providers: None is onnxlite's default list


def _create(runtime: str, path: str) -> Any:
    if runtime == "onnxlite":
        import onnxlite

        so = onnxlite.SessionOptions()
        so.intra_op_num_threads = THREADS
        return onnxlite.InferenceSession(path, sess_options=so, providers=LITE_PROVIDERS)
    if runtime == "onnxruntime":
        import onnxruntime

        so = onnxruntime.SessionOptions()
        so.intra_op_num_threads = THREADS
        return onnxruntime.InferenceSession(path, sess_options=so, providers=["CPUExecutionProvider"])
    from onnx.reference import ReferenceEvaluator

    return ReferenceEvaluator(path)


def _assignment(sess: Any) -> dict[str, int]:
    """Nodes per execution provider in an onnxlite session (its plan's node assignment)."""
    counts: dict[str, int] = {}
    for _node, provider in getattr(getattr(sess, "_plan", None), "assignment", []):
        counts[provider] = counts.get(provider, 0) + 1
    return counts or {p: 0 for p in sess.get_providers()}


def _eps(counts: dict[str, int]) -> str:
    return " ".join(f"{p.removesuffix('ExecutionProvider')}:{n}" for p, n in counts.items() if n)


def _timed(sess: Any, feeds: dict[str, np.ndarray]) -> tuple[float, list[Any]]:
    t0 = time.perf_counter()
    out = sess.run(None, feeds)
    return time.perf_counter() - t0, out


# A runtime's idle threads can keep a core busy after its run: onnxruntime's thread pool spins
# for about 40 ms of CPU time after each run (measured with time.process_time() around a sleep),
# which would take a core from whichever runtime runs next. So the runtimes take turns in
# blocks, and the runs that start within SETTLE_S of a runtime's turn are not counted.
SETTLE_S = 0.06
BLOCK_S = 0.3


def _block(sess: Any, feeds: dict[str, np.ndarray]) -> list[float]:
    """One turn of a runtime: unmeasured runs for SETTLE_S, then measured runs for BLOCK_S (at
    least one of each)."""
    t0 = time.perf_counter()
    out: list[float] = []
    while True:
        start = time.perf_counter()
        dt, _ = _timed(sess, feeds)
        if start - t0 >= SETTLE_S:
            out.append(dt)
        if out and time.perf_counter() - t0 >= SETTLE_S + BLOCK_S:
            return out


def _create_timed(runtime: str, path: str) -> tuple[Any, float]:
    """The session and its creation time: median of three creations when one takes under 1 s."""
    times = []
    sess = None
    for _ in range(3):
        sess = None
        gc.collect()
        t0 = time.perf_counter()
        sess = _create(runtime, path)
        times.append(time.perf_counter() - t0)
        if times[0] > 1.0:
            break
    return sess, statistics.median(times)


def _memory(runtime: str, path: str, feeds_path: Path, runs: int) -> dict[str, Any]:
    cmd = [sys.executable, str(HERE / "_worker.py"), runtime, path, str(feeds_path), str(runs), str(THREADS)]
    if runtime == "onnxlite" and LITE_PROVIDERS:
        cmd.append(",".join(LITE_PROVIDERS))
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
    except subprocess.TimeoutExpired:
        return {"error": "memory worker timed out"}
    if res.returncode != 0:
        return {"error": res.stderr.strip().splitlines()[-1] if res.stderr.strip() else "failed"}
    return json.loads(res.stdout.strip().splitlines()[-1])


def bench_model(m: bench_models.BenchModel, args: argparse.Namespace) -> dict[str, Any]:
    path = str(m.path())
    feeds = m.feeds()
    row: dict[str, Any] = {
        "model": m.name,
        "family": m.family,
        "note": m.note,
        "inputs": {k: [str(v.dtype), list(v.shape)] for k, v in feeds.items()},
        "notes": [],
        "loadavg_1min": os.getloadavg()[0],
    }
    sessions: dict[str, Any] = {}
    first: dict[str, float] = {}
    outputs: dict[str, list[Any]] = {}
    create_s: dict[str, float] = {}

    for rt in ("onnxlite", "onnxruntime"):
        sessions[rt], create_s[rt] = _create_timed(rt, path)
        first[rt], outputs[rt] = _timed(sessions[rt], feeds)  # warm-up
    row["lite_assignment"] = _assignment(sessions["onnxlite"])

    budget = args.ref_budget
    if budget > 0:
        t_start = time.perf_counter()
        old = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, budget)
        try:
            sess = _create("reference", path)
            create_s["reference"] = time.perf_counter() - t_start
            first["reference"], outputs["reference"] = _timed(sess, feeds)
            sessions["reference"] = sess
        except _Timeout:
            row["reference_status"] = "skipped"
            row["notes"].append(f"onnx.reference skipped: its first run exceeded the {budget:g} s budget")
        except Exception as e:
            row["reference_status"] = "failed"
            where = [
                f.filename for f in traceback.extract_tb(e.__traceback__) if "/reference/ops/" in f.filename
            ]
            at = f" (in onnx/reference/ops/{os.path.basename(where[-1])})" if where else ""
            row["notes"].append(f"onnx.reference failed: {type(e).__name__}: {str(e)[:120]}{at}")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
        used = time.perf_counter() - t_start
    else:
        row["reference_status"] = "not run"
        row["notes"].append("onnx.reference not run (--ref-budget 0)")

    ref_runs = 0
    if "reference" in sessions:
        ref_runs = int((budget - used) // max(first["reference"], 1e-9))
        if ref_runs <= 0:
            row["notes"].append("onnx.reference: 1 run (its first; the budget allowed no more)")
    samples: dict[str, list[float]] = {"onnxlite": [], "onnxruntime": [], "reference": []}
    if "reference" in sessions and ref_runs <= 0:
        samples["reference"] = [first["reference"]]
    want = args.repeat or args.min_reps
    log(f"  {m.name}: blocks of {BLOCK_S:g} s per runtime, {SETTLE_S:g} s settling each")
    gc.collect()
    t_loop = time.perf_counter()
    i = 0
    while True:
        done = min(len(samples["onnxlite"]), len(samples["onnxruntime"]))
        spent = time.perf_counter() - t_loop
        if done >= want and (args.repeat or spent > args.time_per_model or done >= args.max_reps):
            break
        if not args.repeat and done >= args.min_reps // 2 and spent > 2 * args.time_per_model:
            row["notes"].append(f"stopped after {done} runs each (twice the planned time)")
            break
        order = ["onnxlite", "onnxruntime"]
        if i % 2:
            order.reverse()
        for rt in order:
            samples[rt] += _block(sessions[rt], feeds)
        # onnx.reference: single runs spread over the planned time (its runs take seconds).
        n_ref = len(samples["reference"])
        if n_ref < ref_runs and spent >= n_ref * args.time_per_model / ref_runs:
            samples["reference"].append(_timed(sessions["reference"], feeds)[0])
        i += 1

    row["max_abs_diff_vs_ort"] = _max_abs_diff(outputs["onnxlite"], outputs["onnxruntime"])
    if "reference" in outputs:
        row["reference_max_abs_diff_vs_ort"] = _max_abs_diff(outputs["reference"], outputs["onnxruntime"])
    sessions.clear()
    outputs.clear()
    gc.collect()

    for rt in RUNTIMES:
        s = samples[rt]
        if not s:
            continue
        ms = np.asarray(s) * 1e3
        q25, q50, q75 = np.percentile(ms, [25, 50, 75])
        row[rt] = {
            "runs": len(s),
            "median_ms": float(q50),
            "min_ms": float(ms.min()),
            "iqr_rel": float((q75 - q25) / q50) if q50 > 0 else None,
            "create_ms": create_s[rt] * 1e3,
        }
    row["ratio_lite_ort"] = row["onnxlite"]["median_ms"] / row["onnxruntime"]["median_ms"]
    if "reference" in row:
        row["speedup_vs_reference"] = row["reference"]["median_ms"] / row["onnxlite"]["median_ms"]

    if args.memory_runs > 0:
        feeds_path = bench_models.save_feeds(m)
        for rt in ("onnxlite", "onnxruntime"):
            row[rt]["memory"] = _memory(rt, path, feeds_path, args.memory_runs)
    return row


# ---------------------------------------------------------------------------------------------
# report


def geomean(xs: list[float]) -> float | None:
    xs = [x for x in xs if x and x > 0 and math.isfinite(x)]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def _f(v: Any, nd: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if v >= 100:
            return f"{v:.0f}"
        if v >= 10:
            return f"{v:.1f}"
        if v >= 0.1:
            return f"{v:.{nd}f}"
        return f"{v:.3f}"
    return str(v)


def _mib(mem: dict[str, Any] | None, key: str) -> str:
    if not mem or "error" in mem:
        return "-"
    return f"{mem[key] / 1024:.0f}"


def markdown(env: dict[str, Any], rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    blas = (
        "; ".join(
            f"{b['internal_api']} {b['version']} kernel {b['architecture']}, {b['num_threads']} threads"
            for b in env["blas"]
        )
        or "none found"
    )
    ob = env["openblas_env"]
    lines = [
        "# onnxlite benchmark: latest results",
        "",
        f"- date: {env['date']}" + ("  (--quick: few repetitions, rough numbers)" if args.quick else ""),
        f"- machine: {env['cpu']}, {env['cores']} cores; {env['platform']}",
        f"- versions: onnxlite {env['onnxlite']}, onnxruntime {env['onnxruntime']}, numpy {env['numpy']}, "
        f"onnx {env['onnx']}, Python {env['python']}; onnxlite source: git {env['git']}",
        f"- BLAS (threadpoolctl): {blas}",
        "- OPENBLAS_* environment: "
        + (
            ", ".join(f"{k}={v}" for k, v in ob.items())
            if ob
            else "none set (numpy's BLAS picked its kernel)"
        ),
        f"- load average at start / end: {env['loadavg_start'][0]:.2f} / {env.get('loadavg_end', [0])[0]:.2f}"
        " (the machine is shared: other sessions may run tests; see the IQR columns for the spread)",
        f"- command: `{env['command']}`",
        f"- threads: {args.threads or 'each runtime default'}; onnxlite providers: "
        f"{','.join(args.lite_providers) if args.lite_providers else 'its default list'} "
        f"(available: {', '.join(env['lite_available_providers'])}); wall time {env.get('wall_s', 0):.0f} s",
        "",
        "Latency: medians of runs in one process, same feeds, the runtimes taking turns of about 0.3 s "
        "(the first 0.06 s of each turn not counted: onnxruntime's pool spins about 40 ms after a run), "
        "after one warm-up run; "
        "onnxruntime with CPUExecutionProvider; default session options for both. "
        "ratio = onnxlite / onnxruntime (lower is better, 1 = parity); "
        "speedup = onnx.reference / onnxlite. Creation: session creation in the same process. "
        "Memory: a fresh process per runtime per model: its peak RSS (largest VmHWM) and the peak "
        "RSS increase during its runs, run RSS+ (VmHWM after /proc/self/clear_refs). "
        "IQR/median: the spread of the runs. load: the 1-minute load average when the model started "
        f"(the machine has {env['cores']} cores; above that, runs compete for CPU).",
        "",
        "| model | onnxlite ms | onnxruntime ms | onnx.reference ms | ratio lite/ort | speedup vs reference "
        "| create lite ms | create ort ms | peak RSS lite MiB | peak RSS ort MiB | run RSS+ lite MiB "
        "| run RSS+ ort MiB | runs (lite/ort/ref) | IQR/median lite / ort | max abs diff vs ort | load "
        "| onnxlite nodes per EP |",
        "|---" * 17 + "|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | error: {r['error']} |" + " |" * 15)
            continue
        lite, ort, ref = r["onnxlite"], r["onnxruntime"], r.get("reference")
        lines.append(
            "| "
            + " | ".join(
                [
                    r["model"],
                    _f(lite["median_ms"]),
                    _f(ort["median_ms"]),
                    _f(ref["median_ms"]) if ref else r.get("reference_status", "-"),
                    f"{r['ratio_lite_ort']:.2f}",
                    f"{r['speedup_vs_reference']:.2f}" if "speedup_vs_reference" in r else "-",
                    _f(lite["create_ms"], 1),
                    _f(ort["create_ms"], 1),
                    _mib(lite.get("memory"), "peak_kib"),
                    _mib(ort.get("memory"), "peak_kib"),
                    _mib(lite.get("memory"), "inference_kib"),
                    _mib(ort.get("memory"), "inference_kib"),
                    f"{lite['runs']}/{ort['runs']}/{ref['runs'] if ref else 0}",
                    f"{lite['iqr_rel'] * 100:.0f}% / {ort['iqr_rel'] * 100:.0f}%",
                    f"{r['max_abs_diff_vs_ort']:.1e}",
                    f"{r['loadavg_1min']:.1f}",
                    _eps(r.get("lite_assignment", {})),
                ]
            )
            + " |"
        )
    ok = [r for r in rows if "error" not in r]
    g_ratio = geomean([r["ratio_lite_ort"] for r in ok])
    g_speed = geomean([r.get("speedup_vs_reference", 0) for r in ok])
    lines += [
        "",
        f"**Geometric mean of ratio onnxlite/onnxruntime: {_f(g_ratio)}** over {len(ok)} models"
        + (
            f"; of speedup vs onnx.reference: {_f(g_speed)} over "
            f"{sum('speedup_vs_reference' in r for r in ok)} models."
            if g_speed
            else "."
        ),
    ]
    fams = sorted({r["family"] for r in ok})
    lines.append(
        "By family (ratio onnxlite/onnxruntime): "
        + ", ".join(f"{f} {_f(geomean([r['ratio_lite_ort'] for r in ok if r['family'] == f]))}" for f in fams)
        + "."
    )
    notes = [f"- {r['model']}: {n}" for r in rows for n in r.get("notes", [])]
    mem_err = [
        f"- {r['model']}: {rt} memory worker: {r[rt]['memory']['error']}"
        for r in ok
        for rt in ("onnxlite", "onnxruntime")
        if "error" in r[rt].get("memory", {})
    ]
    if notes or mem_err:
        lines += ["", "Notes:", *notes, *mem_err]
    lines += ["", "![ratios](latest.png)", ""]
    return "\n".join(lines)


def chart(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    ok = [r for r in rows if "error" not in r]
    names = [r["model"] for r in ok]
    y = np.arange(len(ok))
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.45 * len(ok) + 1.8), sharey=True)
    ratios = [r["ratio_lite_ort"] for r in ok]
    # bars grow from parity (1.0) to the value, left when onnxlite is faster, right when slower
    axes[0].barh(
        y, [v - 1 for v in ratios], left=1.0, color=["tab:green" if v <= 1 else "tab:orange" for v in ratios]
    )
    axes[0].axvline(1.0, color="k", lw=0.8)
    axes[0].set_xscale("log")
    axes[0].set_title("onnxlite / onnxruntime latency (median, lower is better)")
    for i, v in enumerate(ratios):
        axes[0].text(v, i, f" {v:.2f}", va="center", fontsize=8)
    speed = [r.get("speedup_vs_reference", 0.0) for r in ok]
    axes[1].barh(y, [max(s, 1.0) - 1 for s in speed], left=1.0, color="tab:blue")
    axes[1].axvline(1.0, color="k", lw=0.8)
    axes[1].set_xscale("log")
    axes[1].set_title("onnx.reference / onnxlite latency (speedup)")
    for i, v in enumerate(speed):
        status = ok[i].get("reference_status", "n/a")
        axes[1].text(max(v, 1.0), i, f" {v:.1f}x" if v else f" {status}", va="center", fontsize=8)
    axes[0].set_xlim(min(*ratios, 1.0) / 1.3, max(*ratios, 1.0) * 1.5)
    axes[1].set_xlim(1.0 / 1.3, max(*speed, 1.0) * 1.6)
    for ax in axes:
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes[0].set_yticks(y, names)
    axes[0].invert_yaxis()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", help="comma-separated model names (default: all); --list shows them")
    ap.add_argument("--list", action="store_true", help="list the models and exit")
    ap.add_argument(
        "--repeat", type=int, help="at least this many counted runs per runtime and model (default: by time)"
    )
    ap.add_argument("--quick", action="store_true", help="few repetitions and small budgets: a smoke run")
    ap.add_argument(
        "--time-per-model",
        type=float,
        help="adaptive repetitions: aim at this many seconds of onnxlite+onnxruntime runs (default 30)",
    )
    ap.add_argument("--ref-budget", type=float, help="onnx.reference time budget per model, s (default 60)")
    ap.add_argument("--memory-runs", type=int, help="runs in each memory worker; 0 skips memory (default 2)")
    ap.add_argument(
        "--threads",
        type=int,
        default=0,
        help="intra-op threads for every runtime (onnxruntime's intra_op_num_threads, numpy's BLAS "
        "threads for onnxlite and onnx.reference); default 0: each runtime's own default",
    )
    ap.add_argument(
        "--lite-providers",
        type=lambda v: [p.strip() for p in v.split(",") if p.strip()],
        help="onnxlite's providers, e.g. CPUExecutionProvider for numpy only (default: onnxlite's "
        "default list, which includes DnnlExecutionProvider where oneDNN is installed)",
    )
    ap.add_argument("--out", type=Path, default=RESULTS, help="results folder (default benchmarks/results)")
    args = ap.parse_args(argv)
    quick = args.quick
    args.time_per_model = args.time_per_model or (3.0 if quick else 30.0)
    args.min_reps, args.max_reps = (3, 500) if quick else (10, 20000)
    args.ref_budget = args.ref_budget if args.ref_budget is not None else (10.0 if quick else 60.0)
    args.memory_runs = args.memory_runs if args.memory_runs is not None else (1 if quick else 2)

    all_models = bench_models.all_models()
    if args.list:
        for m in all_models:
            print(f"{m.name:24s} {m.note}")
        return 0
    if args.models:
        wanted = [s.strip() for s in args.models.split(",") if s.strip()]
        unknown = sorted(set(wanted) - {m.name for m in all_models})
        if unknown:
            ap.error(f"unknown models {unknown}; known: {[m.name for m in all_models]}")
        all_models = [m for m in all_models if m.name in wanted]

    global THREADS, LITE_PROVIDERS
    THREADS = args.threads
    LITE_PROVIDERS = args.lite_providers
    if THREADS:
        from threadpoolctl import threadpool_limits

        threadpool_limits(THREADS, user_api="blas")  # for onnx.reference; onnxlite limits its own runs
    import onnxruntime

    onnxruntime.set_default_logger_severity(3)  # the light models' unused-initializer warnings
    env = environment()
    env["command"] = " ".join(
        [*(f"{k}={v}" for k, v in env["openblas_env"].items()), "python", "benchmarks/run.py", *sys.argv[1:]]
    )
    if env["openblas_env"]:
        log(
            "note: OPENBLAS_* is set "
            f"({env['openblas_env']}): numpy's BLAS kernel is forced. For a benchmark against current "
            "numpy run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/run.py"
        )
    log(f"BLAS: {env['blas']}")

    # Warm both runtimes' imports and kernel registries so that the first model's session creation
    # is not charged with them.
    warm = next(m for m in bench_models.all_models() if m.family == "micro")
    for rt in ("onnxlite", "onnxruntime"):
        _create(rt, str(warm.path())).run(None, warm.feeds())

    rows = []
    t_all = time.perf_counter()
    for m in all_models:
        log(f"[{m.name}] {m.note}")
        try:
            rows.append(bench_model(m, args))
        except Exception as e:
            log(f"  failed: {type(e).__name__}: {e}")
            rows.append({"model": m.name, "family": m.family, "error": f"{type(e).__name__}: {e}"[:200]})
            continue
        r = rows[-1]
        ref = r.get("reference", {}).get("median_ms")
        lite, ort = r["onnxlite"]["median_ms"], r["onnxruntime"]["median_ms"]
        log(
            f"  onnxlite {lite:.3f} ms, onnxruntime {ort:.3f} ms, "
            f"ratio {r['ratio_lite_ort']:.2f}" + (f", onnx.reference {ref:.1f} ms" if ref else "")
        )
    env["loadavg_end"] = os.getloadavg()
    env["wall_s"] = time.perf_counter() - t_all

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps({"environment": env, "models": rows}, indent=1))
    md = markdown(env, rows, args)
    (args.out / "latest.md").write_text(md)
    try:
        chart(
            rows,
            args.out / "latest.png",
            f"onnxlite {env['onnxlite']}, {env['cpu']} x{env['cores']}, {env['date']}",
        )
    except ImportError as e:
        log(f"no chart: {e} (pip install matplotlib)")
    print(md)
    log(f"wrote {args.out}/latest.md, latest.json, latest.png in {env['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
