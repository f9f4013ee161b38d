"""INT8 quantization with onnxruntime.quantization's names: dynamic, static (QDQ / QOperator),
int4 weight-only MatMulNBits and float16 conversion. Depends only on onnxlite's ir and session."""

from .api import QuantizeReport, quantize, quantize_dynamic, quantize_static
from .calibrate import (
    CalibrationDataReader,
    Calibrator,
    HistogramCalibrator,
    MinMaxCalibrator,
    create_calibrator,
)
from .float16 import convert_float_to_float16, convert_model_float16
from .nbits import MatMul4BitsQuantizer, quantize_matmul_nbits
from .options import DynamicQuantConfig, ExtraOptions, QuantConfig, StaticQuantConfig, parse_extra_options
from .preprocess import quant_pre_process
from .types import CalibrationMethod, QuantFormat, QuantType

__all__ = [
    "CalibrationDataReader",
    "CalibrationMethod",
    "Calibrator",
    "DynamicQuantConfig",
    "ExtraOptions",
    "HistogramCalibrator",
    "MatMul4BitsQuantizer",
    "MinMaxCalibrator",
    "QuantConfig",
    "QuantFormat",
    "QuantType",
    "QuantizeReport",
    "StaticQuantConfig",
    "convert_float_to_float16",
    "convert_model_float16",
    "create_calibrator",
    "parse_extra_options",
    "quant_pre_process",
    "quantize",
    "quantize_dynamic",
    "quantize_matmul_nbits",
    "quantize_static",
]
