"""The engine of `onnxlite quantize` (wired into onnxlite.cli by the lead)."""

import argparse
import io

import numpy as np
import onnx
import pytest

from onnxlite.tools.quantize import NpzBatches, add_quantize_parser, cmd_quantize, summary_table

from ._models import convnet, mlp


def _parse(argv):
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="command")
    add_quantize_parser(sub)
    return ap.parse_args(["quantize", *argv])


def test_static_with_progress_and_summary(tmp_path):
    src, out, data = tmp_path / "c.onnx", tmp_path / "q.onnx", tmp_path / "cal.npz"
    onnx.save(convnet(), src)
    np.savez(data, x=np.random.default_rng(0).random((12, 3, 16, 16), dtype=np.float32))
    args = _parse(
        [
            str(src),
            str(out),
            "--mode",
            "static",
            "--calibration",
            str(data),
            "--batch-size",
            "4",
            "--per-channel",
            "--format",
            "QOperator",
        ]
    )
    buf = io.StringIO()
    assert cmd_quantize(args, buf) == 0
    text = buf.getvalue()
    assert "calibrating [" in text and "3/3 batches" in text
    assert "| count |  int8 | float" in text
    assert any(
        line.startswith("Conv ") and line.endswith("|     2 |     2 |     0") for line in text.splitlines()
    )
    assert "size:" in text and out.exists()


@pytest.mark.parametrize("mode", ["dynamic", "int4", "fp16"])
def test_other_modes(tmp_path, mode):
    src, out = tmp_path / "m.onnx", tmp_path / "q.onnx"
    onnx.save(mlp(), src)
    extra = (
        ["--recipe", "accurate"] if mode == "dynamic" else ["--block-size", "16"] if mode == "int4" else []
    )
    buf = io.StringIO()
    assert cmd_quantize(_parse([str(src), str(out), "--mode", mode, *extra]), buf) == 0
    assert "MatMul" in buf.getvalue() and out.exists()


def test_errors(tmp_path):
    src = tmp_path / "c.onnx"
    onnx.save(convnet(), src)
    with pytest.raises(ValueError, match="--calibration"):
        cmd_quantize(_parse([str(src), str(tmp_path / "q.onnx"), "--mode", "static"]), io.StringIO())
    with pytest.raises(ValueError, match="unknown extra_options key"):
        cmd_quantize(_parse([str(src), str(tmp_path / "q.onnx"), "--extra", "Nope=1"]), io.StringIO())
    bad = tmp_path / "bad.npz"
    np.savez(bad, a=np.zeros((2, 1)), b=np.zeros((3, 1)))
    with pytest.raises(ValueError, match="disagree"):
        NpzBatches(str(bad))


def test_summary_table():
    t = summary_table({"Conv": 3, "Relu": 2}, {"Conv": 2})
    assert "Conv    |     3 |     2 |     1" in t and "total   |     5 |     2 |     3" in t
