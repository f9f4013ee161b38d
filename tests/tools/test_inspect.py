"""`onnxlite inspect`: the provider assignment table."""

from __future__ import annotations

import onnx

from onnxlite.cli import main
from tests.models.builders import mlp


def test_inspect_prints_inputs_outputs_and_assignment(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "m.onnx"
    onnx.save(mlp(), path)
    assert main(["inspect", str(path), "--providers", "CPUExecutionProvider", "-o", "0"]) == 0
    out = capsys.readouterr().out
    assert "x: tensor(float) ['N', 4]" in out
    assert "y: tensor(float) ['N', 3]" in out
    row = next(line for line in out.splitlines() if line.strip().startswith("CPUExecutionProvider"))
    assert row.split()[1] == "4"
    for op in ("MatMul(1)", "Add(1)", "Relu(1)", "Sigmoid(1)"):
        assert op in row


def test_inspect_unknown_provider_is_an_error_line(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "m.onnx"
    onnx.save(mlp(), path)
    assert main(["inspect", str(path), "--providers", "BogusExecutionProvider"]) == 1
    assert "Unknown execution provider" in capsys.readouterr().err


def test_run_command_on_bundled_model(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["run", "--repeat", "2"]) == 0
    out = capsys.readouterr().out
    assert "softmaxout_1: float32[1, 1000, 1, 1]" in out
    assert "latency over 2 runs" in out
