"""Typed, frozen configuration: ``extra_options`` is parsed once here, at the edge.

Unknown keys raise a ``ValueError`` naming the key and the accepted keys, so a typo cannot
silently change nothing.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from .types import CalibrationMethod, QuantFormat, QuantType


@dataclass(frozen=True)
class ExtraOptions:
    """onnxruntime's ``extra_options`` keys as typed fields (same names, same defaults).

    onnxlite adds the keys in :data:`ONNXLITE_KEYS` (not in onnxruntime).

    Accepted with no effect, and why: ``CalibStridedMinMax`` (calibration already streams with
    bounded memory); ``EnableSubgraph`` warns when set (If/Loop bodies stay float).
    ``UseQDQContribOps`` writes the Q/DQ nodes of the QDQ format in the com.microsoft domain, as
    onnxruntime does (16-bit and 4-bit types then need no opset 21; float8 stays standard).
    """

    ActivationSymmetric: bool = False
    WeightSymmetric: bool | None = None  # None: symmetric for signed weight types
    EnableSubgraph: bool = False
    ForceQuantizeNoInputCheck: bool = False
    MatMulConstBOnly: bool = False
    AddQDQPairToWeight: bool = False
    OpTypesToExcludeOutputQuantization: tuple[str, ...] = ()
    DedicatedQDQPair: bool = False
    QDQOpTypePerChannelSupportToAxis: tuple[tuple[str, int], ...] = ()
    QuantizeBias: bool = True
    CalibTensorRangeSymmetric: bool = False
    CalibMovingAverage: bool = False
    CalibMovingAverageConstant: float = 0.01
    CalibMaxIntermediateOutputs: int | None = None
    CalibPercentile: float = 99.999
    CalibNumBins: int | None = None
    CalibNumQuantizedBins: int = 128
    CalibStridedMinMax: int | None = None
    TensorQuantOverrides: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()
    MinimumRealRange: float | None = None
    QDQKeepRemovableActivations: bool = False
    UseQDQContribOps: bool = False
    # onnxlite's own keys
    ActivationPerRow: bool = False
    ExcludeActivationMatMul: bool = False
    UseContribOps: bool = False
    QOperatorStandardOnly: bool = False

    def weight_symmetric(self, weight_type: QuantType) -> bool:
        if self.WeightSymmetric is not None:
            return self.WeightSymmetric
        return weight_type in (QuantType.QInt8, QuantType.QInt16, QuantType.QInt4, QuantType.QFLOAT8E4M3FN)

    def per_channel_axis(self, op_type: str) -> int | None:
        return dict(self.QDQOpTypePerChannelSupportToAxis).get(op_type)

    def tensor_override(self, name: str) -> dict[str, Any] | None:
        for k, v in self.TensorQuantOverrides:
            if k == name:
                return dict(v)
        return None


ONNXLITE_KEYS = {
    "ActivationPerRow": "dynamic mode: quantize each activation row (token) with its own uint8 scale "
    "and zero point (symmetric, zero point 128, with ActivationSymmetric) instead of one per tensor",
    "ExcludeActivationMatMul": "keep MatMuls whose two inputs are both activations in float",
    "UseContribOps": "dynamic mode: emit com.microsoft DynamicQuantizeMatMul instead of standard ops",
    "QOperatorStandardOnly": "QOperator: only standard QLinearConv / QLinearMatMul; no com.microsoft ops",
}

_UNSUPPORTED = {
    "SmoothQuant": "SmoothQuant needs a calibration pass over weights; not implemented in onnxlite",
    "SmoothQuantAlpha": "SmoothQuant is not implemented in onnxlite",
    "SmoothQuantFolding": "SmoothQuant is not implemented in onnxlite",
}


def _as_bool(key: str, v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, (int,)) and v in (0, 1):
        return bool(v)
    if isinstance(v, str) and v.lower() in ("true", "false", "1", "0"):
        return v.lower() in ("true", "1")
    raise ValueError(f"extra_options[{key!r}] must be a bool, got {v!r}")


def parse_extra_options(opts: Mapping[str, Any] | None) -> ExtraOptions:
    """Validate and convert an ``extra_options`` dict into :class:`ExtraOptions`."""
    if opts is None:
        return ExtraOptions()
    if isinstance(opts, ExtraOptions):
        return opts
    known = {f.name: f for f in fields(ExtraOptions)}
    kw: dict[str, Any] = {}
    for key, v in opts.items():
        if key in _UNSUPPORTED:
            if v:
                raise ValueError(f"extra_options[{key!r}]: {_UNSUPPORTED[key]}")
            continue
        if key not in known:
            raise ValueError(f"unknown extra_options key {key!r}; accepted keys: {', '.join(sorted(known))}")
        default = known[key].default
        if key == "WeightSymmetric":
            kw[key] = None if v is None else _as_bool(key, v)
        elif isinstance(default, bool):
            kw[key] = _as_bool(key, v)
        elif key in ("CalibMovingAverageConstant", "CalibPercentile", "MinimumRealRange"):
            try:
                kw[key] = None if v is None else float(v)
            except (TypeError, ValueError):
                raise ValueError(f"extra_options[{key!r}] must be a number, got {v!r}") from None
        elif key in (
            "CalibMaxIntermediateOutputs",
            "CalibNumBins",
            "CalibNumQuantizedBins",
            "CalibStridedMinMax",
        ):
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v <= 0):
                raise ValueError(f"extra_options[{key!r}] must be a positive int, got {v!r}")
            kw[key] = v
        elif key == "OpTypesToExcludeOutputQuantization":
            if isinstance(v, str) or not isinstance(v, Sequence):
                raise ValueError(f"extra_options[{key!r}] must be a list of op types, got {v!r}")
            kw[key] = tuple(str(x) for x in v)
        elif key == "QDQOpTypePerChannelSupportToAxis":
            if not isinstance(v, Mapping):
                raise ValueError(f"extra_options[{key!r}] must be a dict op_type -> axis, got {v!r}")
            kw[key] = tuple((str(k), int(a)) for k, a in v.items())
        elif key == "TensorQuantOverrides":
            kw[key] = _parse_overrides(v)
    if kw.get("CalibMovingAverageConstant", 0.01) is not None and not (
        0.0 < kw.get("CalibMovingAverageConstant", 0.01) <= 1.0
    ):
        raise ValueError("extra_options['CalibMovingAverageConstant'] must be in (0, 1]")
    if not 0.0 < kw.get("CalibPercentile", 99.999) <= 100.0:
        raise ValueError("extra_options['CalibPercentile'] must be in (0, 100]")
    for key in ("EnableSubgraph",):
        if kw.get(key):
            warnings.warn(
                f"extra_options[{key!r}] is not implemented in onnxlite and has no effect", stacklevel=3
            )
    return ExtraOptions(**kw)


_OVERRIDE_KEYS = {"scale", "zero_point", "quant_type", "symmetric", "reduce_range", "rmin", "rmax", "axis"}


def _parse_overrides(v: Any) -> tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]:
    if not isinstance(v, Mapping):
        raise ValueError(f"extra_options['TensorQuantOverrides'] must be a dict, got {type(v).__name__}")
    out = []
    for name, lst in v.items():
        entries = lst if isinstance(lst, (list, tuple)) else [lst]
        if not entries or not isinstance(entries[0], Mapping):
            raise ValueError(f"TensorQuantOverrides[{name!r}] must be a list of dicts")
        if len(entries) > 1:
            raise ValueError(
                f"TensorQuantOverrides[{name!r}]: per-channel override lists are not supported; give one dict"
            )
        d = dict(entries[0])
        bad = set(d) - _OVERRIDE_KEYS
        if bad:
            raise ValueError(
                f"TensorQuantOverrides[{name!r}] has unknown keys {sorted(bad)}; "
                f"accepted: {sorted(_OVERRIDE_KEYS)}"
            )
        if "quant_type" in d and not isinstance(d["quant_type"], QuantType):
            d["quant_type"] = QuantType.from_string(str(d["quant_type"]))
        out.append((str(name), tuple(sorted(d.items()))))
    return tuple(out)


def _names(v: Sequence[str] | None) -> frozenset[str] | None:
    if v is None:
        return None
    if isinstance(v, str):
        raise ValueError(f"expected a list of names, got the string {v!r}")
    return frozenset(v)


@dataclass(frozen=True)
class QuantConfig:
    """Options shared by the static and the dynamic quantizers (onnxruntime's QuantConfig)."""

    activation_type: QuantType = QuantType.QUInt8
    weight_type: QuantType = QuantType.QInt8
    op_types_to_quantize: frozenset[str] | None = None
    nodes_to_quantize: frozenset[str] | None = None
    nodes_to_exclude: frozenset[str] = frozenset()
    per_channel: bool = False
    reduce_range: bool = False
    use_external_data_format: bool = False
    extra_options: ExtraOptions = field(default_factory=ExtraOptions)

    def __init__(
        self,
        activation_type: QuantType = QuantType.QUInt8,
        weight_type: QuantType = QuantType.QInt8,
        op_types_to_quantize: Sequence[str] | None = None,
        nodes_to_quantize: Sequence[str] | None = None,
        nodes_to_exclude: Sequence[str] | None = None,
        per_channel: bool = False,
        reduce_range: bool = False,
        use_external_data_format: bool = False,
        extra_options: Mapping[str, Any] | ExtraOptions | None = None,
    ) -> None:
        for name, q in (("activation_type", activation_type), ("weight_type", weight_type)):
            if not isinstance(q, QuantType):
                raise TypeError(f"{name} must be a QuantType, got {q!r}")
        s = object.__setattr__
        s(self, "activation_type", activation_type)
        s(self, "weight_type", weight_type)
        s(self, "op_types_to_quantize", _names(op_types_to_quantize))
        s(self, "nodes_to_quantize", _names(nodes_to_quantize))
        s(self, "nodes_to_exclude", _names(nodes_to_exclude) or frozenset())
        s(self, "per_channel", bool(per_channel))
        s(self, "reduce_range", bool(reduce_range))
        s(self, "use_external_data_format", bool(use_external_data_format))
        s(self, "extra_options", parse_extra_options(extra_options))  # type: ignore[arg-type]

    def selects(self, node_name: str, op_type: str) -> bool:
        if node_name in self.nodes_to_exclude:
            return False
        if self.nodes_to_quantize is not None and node_name not in self.nodes_to_quantize:
            return False
        return self.op_types_to_quantize is None or op_type in self.op_types_to_quantize


@dataclass(frozen=True, init=False)
class StaticQuantConfig(QuantConfig):
    calibration_data_reader: Any = None
    calibrate_method: CalibrationMethod = CalibrationMethod.MinMax
    quant_format: QuantFormat = QuantFormat.QDQ

    def __init__(
        self,
        calibration_data_reader: Any,
        calibrate_method: CalibrationMethod = CalibrationMethod.MinMax,
        quant_format: QuantFormat = QuantFormat.QDQ,
        activation_type: QuantType = QuantType.QInt8,
        weight_type: QuantType = QuantType.QInt8,
        op_types_to_quantize: Sequence[str] | None = None,
        nodes_to_quantize: Sequence[str] | None = None,
        nodes_to_exclude: Sequence[str] | None = None,
        per_channel: bool = False,
        reduce_range: bool = False,
        use_external_data_format: bool = False,
        calibration_providers: Sequence[str] | None = None,
        extra_options: Mapping[str, Any] | ExtraOptions | None = None,
    ) -> None:
        super().__init__(
            activation_type,
            weight_type,
            op_types_to_quantize,
            nodes_to_quantize,
            nodes_to_exclude,
            per_channel,
            reduce_range,
            use_external_data_format,
            extra_options,
        )
        if not isinstance(calibrate_method, CalibrationMethod):
            raise TypeError(f"calibrate_method must be a CalibrationMethod, got {calibrate_method!r}")
        if not isinstance(quant_format, QuantFormat):
            raise TypeError(f"quant_format must be a QuantFormat, got {quant_format!r}")
        object.__setattr__(self, "calibration_data_reader", calibration_data_reader)
        object.__setattr__(self, "calibrate_method", calibrate_method)
        object.__setattr__(self, "quant_format", quant_format)


@dataclass(frozen=True, init=False)
class DynamicQuantConfig(QuantConfig):
    def __init__(
        self,
        weight_type: QuantType = QuantType.QInt8,
        op_types_to_quantize: Sequence[str] | None = None,
        nodes_to_quantize: Sequence[str] | None = None,
        nodes_to_exclude: Sequence[str] | None = None,
        per_channel: bool = False,
        reduce_range: bool = False,
        use_external_data_format: bool = False,
        extra_options: Mapping[str, Any] | ExtraOptions | None = None,
    ) -> None:
        if not isinstance(extra_options, ExtraOptions):
            # as onnxruntime's quantize_dynamic: MatMuls of two activations stay float unless asked
            extra_options = {"MatMulConstBOnly": True, **(extra_options or {})}
        super().__init__(
            QuantType.QUInt8,
            weight_type,
            op_types_to_quantize,
            nodes_to_quantize,
            nodes_to_exclude,
            per_channel,
            reduce_range,
            use_external_data_format,
            extra_options,
        )
