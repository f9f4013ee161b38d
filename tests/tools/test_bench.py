"""``onnxlite bench`` on a tiny model: the report's fields are present and consistent.

No timing is asserted (the machine is shared): only that the numbers exist, are ordered as
percentiles must be, and agree with each other.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnxlite
from onnxlite.tools import bench


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """y = relu(x @ W + b) with a symbolic batch dimension."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((8, 4)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["mm"], name="mm"),
            helper.make_node("Add", ["mm", "b"], ["pre"], name="add"),
            helper.make_node("Relu", ["pre"], ["y"], name="relu"),
        ],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("bench") / "tiny.onnx"
    onnx.save(model, str(path))
    return str(path)


def _has_ort() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _check_runtime(rep: dict, runs: int) -> None:
    assert rep["available"] is True
    assert rep["version"]
    assert rep["providers"] and rep["providers"][-1] == "CPUExecutionProvider"
    assert rep["session_creation_ms"] > 0
    assert rep["runs"] == runs
    lat = rep["latency_ms"]
    for key in ("min", "mean", "max", "p50", "p90", "p95", "p99", "p999"):
        assert np.isfinite(lat[key]) and lat[key] > 0, key
    assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["p999"] <= lat["max"]
    assert lat["min"] <= lat["mean"] <= lat["max"]
    assert rep["total_ms"] == pytest.approx(lat["mean"] * runs, rel=1e-6)
    assert rep["average_ms"] == pytest.approx(lat["mean"], rel=1e-6)
    assert rep["throughput_per_s"] == pytest.approx(1e3 / lat["mean"], rel=1e-6)
    assert rep["session_rss_increase_bytes"] >= 0
    assert rep["inference_rss_increase_bytes"] >= 0


def test_report_fields(model_path: str) -> None:
    r = bench.run_bench(model_path, bench.Settings(repeat=7, duration=60, warmup=2))
    assert r["model"] == model_path
    assert r["inputs"] == {"x": {"dtype": "float32", "shape": [1, 8]}}
    assert r["input_source"].startswith("random")
    assert set(r["runtimes"]) == {"onnxlite"}
    _check_runtime(r["runtimes"]["onnxlite"], runs=7)
    assert r["peak_rss_bytes"] > 0
    assert r["memory_method"] in ("clear_refs", "sampling", "unavailable")
    assert r["machine"]["cores"] >= 1
    assert "ratio_of_medians" not in r
    json.dumps(r)  # the report is JSON-serialisable as it is


def test_duration_bounds_the_runs_but_at_least_one(model_path: str) -> None:
    r = bench.run_bench(model_path, bench.Settings(repeat=10**9, duration=0.0, warmup=0))
    assert r["runtimes"]["onnxlite"]["runs"] == 1


def test_free_dimension_override_shapes_the_random_inputs(model_path: str) -> None:
    r = bench.run_bench(model_path, bench.Settings(repeat=2, free_dims={"batch": 3}))
    assert r["inputs"]["x"]["shape"] == [3, 8]
    assert r["settings"]["free_dimension_overrides"] == {"batch": 3}


def test_input_file(model_path: str, tmp_path) -> None:
    path = tmp_path / "in.npz"
    np.savez(path, x=np.ones((5, 8), np.float32))
    r = bench.run_bench(model_path, bench.Settings(repeat=2, input=str(path)))
    assert r["inputs"]["x"]["shape"] == [5, 8]
    assert r["input_source"] == str(path)


@pytest.mark.skipif(not _has_ort(), reason="onnxruntime is not installed")
def test_compare_onnxruntime(model_path: str) -> None:
    r = bench.run_bench(model_path, bench.Settings(repeat=6, compare="onnxruntime"))
    assert set(r["runtimes"]) == {"onnxlite", "onnxruntime"}
    for name in ("onnxlite", "onnxruntime"):
        _check_runtime(r["runtimes"][name], runs=6)
    lite, ort = (r["runtimes"][n]["latency_ms"]["p50"] for n in ("onnxlite", "onnxruntime"))
    assert r["ratio_of_medians"] == pytest.approx(lite / ort)
    assert r["max_abs_diff"] is not None and r["max_abs_diff"] < 1e-4
    assert r["settings"]["interleaved"] is True
    text = bench.format_report(r)
    assert "onnxruntime" in text and "ratio of medians onnxlite/onnxruntime" in text


def test_compare_reports_onnxruntime_unavailable(model_path: str, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    r = bench.run_bench(model_path, bench.Settings(repeat=2, compare="onnxruntime"))
    assert r["runtimes"]["onnxruntime"]["available"] is False
    assert "not installed" in r["runtimes"]["onnxruntime"]["error"]
    _check_runtime(r["runtimes"]["onnxlite"], runs=2)
    assert "ratio_of_medians" not in r
    assert "onnxruntime: unavailable" in bench.format_report(r)


def test_profile_summary(model_path: str, tmp_path) -> None:
    prefix = str(tmp_path / "prof")
    # level 0 keeps the model's own MatMul/Add/Relu (the optimizer would fuse them into FusedGemm);
    # the CPU provider alone, so that no op type carries another provider's tag ("MatMul [Dnnl]")
    settings = bench.Settings(
        repeat=3,
        warmup=1,
        profile=True,
        profile_prefix=prefix,
        opt_level=0,
        providers=["CPUExecutionProvider"],
    )
    r = bench.run_bench(model_path, settings)
    prof = r["runtimes"]["onnxlite"]["profile"]
    assert prof["file"].startswith(prefix)
    assert prof["runs"] == 4  # the warmup run is profiled too
    ops = {o["op_type"]: o for o in prof["op_types"]}
    assert set(ops) == {"MatMul", "Add", "Relu"}
    assert all(o["calls_per_run"] == 1 for o in ops.values())
    assert sum(o["share"] for o in ops.values()) == pytest.approx(1.0, abs=1e-6) or prof["node_ms"] == 0
    assert "profile" in bench.format_report(r)


def test_cli_text_and_json(model_path: str, capsys) -> None:
    assert bench.main([model_path, "-r", "3", "--warmup", "1", "-I", "-f", "batch:2"]) == 0
    text = capsys.readouterr().out
    for label in (
        "session creation (ms)",
        "total inference (ms)",
        "average inference (ms)",
        "throughput (inferences/s)",
        "latency min (ms)",
        "latency p50 (ms)",
        "latency p999 (ms)",
        "RSS increase, inference (MiB)",
        "peak RSS of the process",
    ):
        assert label in text, label
    assert "x float32[2, 8]" in text

    assert bench.main([model_path, "-r", "2", "--json", "-o", "99", "-x", "1"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["runtimes"]["onnxlite"]["runs"] == 2
    assert r["settings"]["graph_optimization_level"] == 99
    assert r["settings"]["intra_op_num_threads"] == 1


def test_cli_errors(model_path: str, capsys) -> None:
    assert bench.main([model_path, "-f", "batch"]) == 1
    assert "name:value" in capsys.readouterr().err
    assert bench.main([model_path, "-f", "batch:0"]) == 1
    with pytest.raises(SystemExit):
        bench.main([model_path, "--compare", "tensorflow"])
    for bad in (["-r", "0"], ["--warmup", "-1"], ["-t", "-2"], ["-x", "-1"]):
        with pytest.raises(SystemExit):
            bench.main([model_path, *bad])
        assert "must be >= " in capsys.readouterr().err


def test_input_files_that_are_not_npz(model_path: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    sess = onnxlite.InferenceSession(model_path)
    with pytest.raises(ValueError, match="does not exist"):
        bench.file_feeds(sess.get_inputs(), str(tmp_path / "missing.npz"))
    (tmp_path / "model.onnx").write_bytes(b"not an npz")
    with pytest.raises(ValueError, match=r"is not an \.npz of arrays"):
        bench.file_feeds(sess.get_inputs(), str(tmp_path / "model.onnx"))


def test_add_bench_parser() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="command")
    bench.add_bench_parser(sub)
    args = ap.parse_args(["bench", "m.onnx", "-r", "5", "-t", "2", "-f", "batch:4", "-f", "seq:16"])
    assert args.fn is bench.cmd_bench
    settings = bench.settings_from_args(args)
    assert (settings.repeat, settings.duration) == (5, 2.0)
    assert settings.free_dims == {"batch": 4, "seq": 16}


def test_memory_tracking_arithmetic() -> None:
    t = bench._MemTrack()
    t.add_run(before=100, peak=150, after=110)  # a 50 KiB peak, 10 KiB kept
    t.add_run(before=200, peak=230, after=200)  # 30 KiB on top of the 10 kept
    assert (t.inference_kib, t.kept_kib) == (50, 10)
    t.add_run(before=300, peak=360, after=300)
    assert t.inference_kib == 70


def test_stats_percentiles() -> None:
    s = bench.latency_stats([i / 1e3 for i in range(1, 101)])  # 1..100 ms
    assert s["min"] == 1 and s["max"] == 100
    assert s["p50"] == pytest.approx(50.5)
    assert s["p99"] == pytest.approx(99.01)
