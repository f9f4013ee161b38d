"""onnxruntime.quantization's entry points: quantize_dynamic, quantize_static, quantize."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._rewrite import Rewriter, load_ir, save_model, upgrade_opset
from .options import DynamicQuantConfig, QuantConfig, StaticQuantConfig
from .types import CalibrationMethod, QuantFormat, QuantType


@dataclass
class QuantizeReport:
    """What a quantizer did: node counts per op type before, and which were quantized."""

    op_counts: dict[str, int] = field(default_factory=dict)
    quantized: dict[str, int] = field(default_factory=dict)
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)


def _count(nodes: Sequence[Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for n in nodes:
        out[n.op_type] = out.get(n.op_type, 0) + 1
    return out


def quantize_dynamic(
    model_input: str | os.PathLike[str] | Any,
    model_output: str | os.PathLike[str],
    op_types_to_quantize: Sequence[str] | None = None,
    per_channel: bool = False,
    reduce_range: bool = False,
    weight_type: QuantType = QuantType.QInt8,
    nodes_to_quantize: Sequence[str] | None = None,
    nodes_to_exclude: Sequence[str] | None = None,
    use_external_data_format: bool = False,
    extra_options: Mapping[str, Any] | None = None,
) -> QuantizeReport:
    cfg = DynamicQuantConfig(
        weight_type,
        op_types_to_quantize,
        nodes_to_quantize,
        nodes_to_exclude,
        per_channel,
        reduce_range,
        use_external_data_format,
        extra_options,
    )
    return _run_dynamic(model_input, model_output, cfg)


def _run_dynamic(model_input: Any, model_output: Any, cfg: QuantConfig) -> QuantizeReport:
    from .dynamic import DynamicQuantizer

    model = load_ir(model_input)
    report = QuantizeReport(op_counts=_count(model.graph.nodes))
    rw = Rewriter(model)
    q = DynamicQuantizer(rw, cfg)
    q.run()
    report.quantized = _count(q.quantized)
    if model.opsets.get("", 1) < 11:
        raise ValueError("dynamic quantization needs opset >= 11 (DynamicQuantizeLinear)")
    save_model(model, os.fspath(model_output), use_external_data_format=cfg.use_external_data_format)
    return report


def quantize_static(
    model_input: str | os.PathLike[str] | Any,
    model_output: str | os.PathLike[str],
    calibration_data_reader: Any,
    quant_format: QuantFormat = QuantFormat.QDQ,
    op_types_to_quantize: Sequence[str] | None = None,
    per_channel: bool = False,
    reduce_range: bool = False,
    activation_type: QuantType = QuantType.QInt8,
    weight_type: QuantType = QuantType.QInt8,
    nodes_to_quantize: Sequence[str] | None = None,
    nodes_to_exclude: Sequence[str] | None = None,
    use_external_data_format: bool = False,
    calibrate_method: CalibrationMethod = CalibrationMethod.MinMax,
    calibration_providers: Sequence[str] | None = None,
    extra_options: Mapping[str, Any] | None = None,
    progress: Callable[[int], None] | None = None,
) -> QuantizeReport:
    cfg = StaticQuantConfig(
        calibration_data_reader,
        calibrate_method,
        quant_format,
        activation_type,
        weight_type,
        op_types_to_quantize,
        nodes_to_quantize,
        nodes_to_exclude,
        per_channel,
        reduce_range,
        use_external_data_format,
        calibration_providers,
        extra_options,
    )
    return _run_static(model_input, model_output, cfg, progress)


def _run_static(
    model_input: Any, model_output: Any, cfg: StaticQuantConfig, progress: Callable[[int], None] | None = None
) -> QuantizeReport:
    from .static import StaticQuantizer, required_opset

    model = load_ir(model_input)
    report = QuantizeReport(op_counts=_count(model.graph.nodes))
    if model.opsets.get("", 1) < required_opset(cfg):
        model = upgrade_opset(model, required_opset(cfg))
    q = StaticQuantizer(model, cfg)
    report.ranges = q.calibrate(cfg.calibration_data_reader, progress)
    q.run()
    report.quantized = _count(q.quantized)
    save_model(q.model, os.fspath(model_output), use_external_data_format=cfg.use_external_data_format)
    return report


def quantize(model_input: Any, model_output: Any, quant_config: QuantConfig) -> QuantizeReport:
    """Static or dynamic quantization, by the type of ``quant_config``."""
    if isinstance(quant_config, StaticQuantConfig):
        return _run_static(model_input, model_output, quant_config)
    if isinstance(quant_config, DynamicQuantConfig):
        return _run_dynamic(model_input, model_output, quant_config)
    raise TypeError(
        f"quant_config must be a StaticQuantConfig or DynamicQuantConfig, got {type(quant_config).__name__}"
    )
