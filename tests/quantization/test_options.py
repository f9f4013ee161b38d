import dataclasses

import pytest

from onnxlite.quantization import (
    CalibrationMethod,
    DynamicQuantConfig,
    QuantFormat,
    QuantType,
    StaticQuantConfig,
    parse_extra_options,
)
from onnxlite.quantization.types import qrange


def test_enums_match_onnxruntime():
    ortq = pytest.importorskip("onnxruntime.quantization")
    for ours, theirs in (
        (QuantType, ortq.QuantType),
        (QuantFormat, ortq.QuantFormat),
        (CalibrationMethod, ortq.CalibrationMethod),
    ):
        assert {m.name: m.value for m in ours} == {m.name: m.value for m in theirs}
    assert QuantType.from_string("QInt8") is QuantType.QInt8
    with pytest.raises(ValueError, match="QInt8"):
        QuantType.from_string("int8")


def test_extra_options_parsed_once_into_frozen_config():
    x = parse_extra_options(
        {
            "ActivationSymmetric": True,
            "CalibMovingAverageConstant": 0.1,
            "OpTypesToExcludeOutputQuantization": ["Conv"],
            "QDQOpTypePerChannelSupportToAxis": {"MatMul": 1},
            "TensorQuantOverrides": {"t": [{"rmin": -1.0, "rmax": 1.0}]},
        }
    )
    assert x.ActivationSymmetric and x.CalibMovingAverageConstant == 0.1
    assert x.OpTypesToExcludeOutputQuantization == ("Conv",)
    assert x.per_channel_axis("MatMul") == 1
    assert x.tensor_override("t") == {"rmin": -1.0, "rmax": 1.0}
    with pytest.raises(dataclasses.FrozenInstanceError):
        x.ActivationSymmetric = False  # type: ignore[misc]


def test_unknown_and_bad_keys_are_clear_errors():
    with pytest.raises(ValueError, match="unknown extra_options key 'ActivationSymetric'"):
        parse_extra_options({"ActivationSymetric": True})
    with pytest.raises(ValueError, match="must be a bool"):
        parse_extra_options({"QuantizeBias": "maybe"})
    with pytest.raises(ValueError, match="SmoothQuant"):
        parse_extra_options({"SmoothQuant": True})
    with pytest.raises(ValueError, match="unknown keys"):
        parse_extra_options({"TensorQuantOverrides": {"t": [{"scal": 1.0}]}})


def test_configs():
    c = StaticQuantConfig(
        [], per_channel=True, nodes_to_exclude=["a"], extra_options={"WeightSymmetric": False}
    )
    assert c.per_channel and c.nodes_to_exclude == frozenset({"a"})
    assert c.extra_options.weight_symmetric(QuantType.QInt8) is False
    assert not c.selects("a", "Conv") and c.selects("b", "Conv")
    d = DynamicQuantConfig(op_types_to_quantize=["MatMul"])
    assert d.selects("x", "MatMul") and not d.selects("x", "Conv")
    with pytest.raises(TypeError):
        StaticQuantConfig([], activation_type="QInt8")  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.per_channel = True  # type: ignore[misc]


def test_qrange():
    assert qrange(QuantType.QInt8) == (-128, 127)
    assert qrange(QuantType.QInt8, symmetric=True) == (-127, 127)
    assert qrange(QuantType.QUInt8, reduce_range=True) == (0, 127)
    assert qrange(QuantType.QInt8, reduce_range=True) == (-64, 64)
    assert qrange(QuantType.QInt4) == (-8, 7)
    assert qrange(QuantType.QUInt16) == (0, 65535)
