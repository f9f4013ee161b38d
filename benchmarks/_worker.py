"""Memory worker of benchmarks/run.py: one runtime, one model, in a fresh process.

    python benchmarks/_worker.py RUNTIME MODEL.onnx FEEDS.npz RUNS THREADS [PROVIDERS]

RUNTIME is ``onnxlite`` or ``onnxruntime``; THREADS its intra_op_num_threads (0: default);
PROVIDERS onnxlite's comma-separated providers (default: its own list).
The process imports numpy and that runtime only (onnxlite brings onnx with it; torch and the
other runtime are never imported), loads the feeds, creates the session and runs it RUNS times,
then prints one JSON line:

- ``base_kib``: RSS after the imports and the feeds, before the session;
- ``session_kib``: the peak RSS increase while the session is created (over ``base_kib``);
- ``inference_kib``: the peak RSS during the runs minus the RSS just before the first one (the
  first run is included: it is where an arena grows);
- ``peak_kib``: the process's peak RSS over its whole life (the largest ``VmHWM`` read; not
  ``ru_maxrss``, which Linux carries over from the parent process across fork and exec);
- ``create_ms``: the session creation time in this fresh process.

The peaks use Linux's resettable high-water mark: ``echo 5 > /proc/self/clear_refs`` resets
``VmHWM`` to the current RSS, so ``VmHWM`` read after a step is that step's peak.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np


def _kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def main(
    runtime: str, model: str, feeds_path: str, runs: int, threads: int, providers: list[str] | None
) -> dict[str, float]:
    if runtime == "onnxlite":
        import onnxlite as rt

    else:
        import onnxruntime as rt

        rt.set_default_logger_severity(3)
        providers = ["CPUExecutionProvider"]
    so = rt.SessionOptions()
    so.intra_op_num_threads = threads
    with np.load(feeds_path) as f:
        feeds = {k: f[k] for k in f.files}

    base = _kib("VmRSS")
    import_peak = _kib("VmHWM")
    _reset_peak()
    t0 = time.perf_counter()
    sess = rt.InferenceSession(model, sess_options=so, providers=providers)
    create_ms = (time.perf_counter() - t0) * 1e3
    session_peak = _kib("VmHWM")

    before = _kib("VmRSS")
    _reset_peak()
    for _ in range(runs):
        sess.run(None, feeds)
    inference_peak = _kib("VmHWM")
    return {
        "base_kib": base,
        "session_kib": session_peak - base,
        "inference_kib": inference_peak - before,
        "peak_kib": max(import_peak, session_peak, inference_peak),
        "create_ms": create_ms,
    }


if __name__ == "__main__":
    a = sys.argv[1:]
    eps = a[5].split(",") if len(a) > 5 else None
    print(json.dumps(main(a[0], a[1], a[2], int(a[3]), int(a[4]), eps)))
