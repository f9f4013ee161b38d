# ruff: noqa: E501  (one test case per row reads better than wrapped rows)
"""Single-node models for the CUDA provider's op tests (host and GPU)."""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import TensorProto, helper

from onnxlite.types import onnx_type

MS = "com.microsoft"
RNG = np.random.default_rng(0)


def f32(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def node_model(
    op: str,
    inputs: dict[str, np.ndarray],
    attrs: dict[str, Any] | None = None,
    *,
    n_out: int = 1,
    outputs: list[str] | None = None,
    domain: str = "",
    opset: int = 17,
    consts: dict[str, np.ndarray] | None = None,
) -> bytes:
    """One ``op`` node: ``inputs`` are graph inputs, ``consts`` initializers (in that order)."""
    consts = consts or {}
    names = list(inputs) + list(consts)
    outs = outputs or [f"y{i}" for i in range(n_out)]
    node = helper.make_node(op, names, outs, domain=domain, **(attrs or {}))
    g = helper.make_graph(
        [node],
        op,
        [helper.make_tensor_value_info(n, onnx_type(v.dtype), v.shape) for n, v in inputs.items()],
        [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outs if o],
        [helper.make_tensor(n, onnx_type(v.dtype), v.shape, v.flatten().tolist()) for n, v in consts.items()],
    )
    imports = [helper.make_opsetid("", opset)]
    if domain:
        imports.append(helper.make_opsetid(domain, 1))
    m = helper.make_model(g, opset_imports=imports)
    m.ir_version = 8
    return m.SerializeToString()


# (id, op, graph inputs, initializers, attributes, domain, opset)
CASES: list[tuple[str, str, dict[str, np.ndarray], dict[str, np.ndarray], dict[str, Any], str, int]] = [
    ("relu", "Relu", {"x": f32(2, 3, 4)}, {}, {}, "", 17),
    ("sigmoid", "Sigmoid", {"x": f32(5, 7) * 30}, {}, {}, "", 17),
    ("tanh", "Tanh", {"x": f32(5, 7)}, {}, {}, "", 17),
    ("leaky_relu", "LeakyRelu", {"x": f32(4, 6)}, {}, {"alpha": 0.2}, "", 17),
    ("elu", "Elu", {"x": f32(4, 6)}, {}, {"alpha": 0.5}, "", 17),
    ("hard_sigmoid", "HardSigmoid", {"x": f32(4, 6)}, {}, {}, "", 17),
    ("softplus", "Softplus", {"x": f32(4, 6) * 20}, {}, {}, "", 17),
    ("sqrt", "Sqrt", {"x": np.abs(f32(4, 6))}, {}, {}, "", 17),
    ("erf", "Erf", {"x": f32(4, 6)}, {}, {}, "", 17),
    ("gelu", "Gelu", {"x": f32(4, 6)}, {}, {}, "", 20),
    ("gelu_tanh", "Gelu", {"x": f32(4, 6)}, {}, {"approximate": "tanh"}, "", 20),
    ("clip", "Clip", {"x": f32(4, 6)}, {"lo": np.array(-0.5, np.float32), "hi": np.array(0.7, np.float32)}, {}, "", 17),
    ("add_bcast", "Add", {"a": f32(2, 3, 4), "b": f32(4)}, {}, {}, "", 17),
    ("sub", "Sub", {"a": f32(2, 3, 4), "b": f32(3, 1)}, {}, {}, "", 17),
    ("mul_f16", "Mul", {"a": f32(3, 4).astype(np.float16), "b": f32(3, 4).astype(np.float16)}, {}, {}, "", 17),
    ("div", "Div", {"a": f32(3, 4), "b": np.abs(f32(3, 4)) + 1}, {}, {}, "", 17),
    ("pow", "Pow", {"a": np.abs(f32(3, 4)), "b": f32(3, 4)}, {}, {}, "", 17),
    ("add_int64", "Add", {"a": np.array([2, 3], np.int64), "b": np.array([1, -1], np.int64)}, {}, {}, "", 17),
    ("less", "Less", {"a": f32(3, 4), "b": f32(3, 4)}, {}, {}, "", 17),
    ("sum3", "Sum", {"a": f32(3, 4), "b": f32(4), "c": f32(3, 1)}, {}, {}, "", 17),
    ("max2", "Max", {"a": f32(3, 4), "b": f32(3, 4)}, {}, {}, "", 17),
    ("where", "Where", {"c": f32(3, 4) > 0, "x": f32(3, 4), "y": f32(1, 4)}, {}, {}, "", 17),
    ("matmul_batched", "MatMul", {"a": f32(2, 3, 5, 8), "b": f32(8, 4)}, {}, {}, "", 17),
    ("matmul_1d", "MatMul", {"a": f32(8), "b": f32(8, 4)}, {}, {}, "", 17),
    ("gemm", "Gemm", {"a": f32(6, 5), "b": f32(4, 5), "c": f32(4)}, {}, {"transB": 1, "alpha": 0.5, "beta": 2.0}, "", 17),
    ("gemm_ta", "Gemm", {"a": f32(5, 6), "b": f32(5, 4)}, {}, {"transA": 1}, "", 17),
    ("fused_gemm", "FusedGemm", {"a": f32(6, 5), "b": f32(5, 4), "c": f32(6, 4)}, {},
     {"activation": "LeakyRelu", "activation_alpha": 0.1}, MS, 17),
    ("softmax", "Softmax", {"x": f32(2, 3, 7) * 10}, {}, {}, "", 17),
    ("softmax_axis1", "Softmax", {"x": f32(2, 3, 7)}, {}, {"axis": 1}, "", 17),
    ("softmax_v11", "Softmax", {"x": f32(2, 3, 7)}, {}, {"axis": 1}, "", 11),
    ("log_softmax", "LogSoftmax", {"x": f32(4, 9)}, {}, {}, "", 17),
    ("layer_norm", "LayerNormalization", {"x": f32(2, 5, 16), "s": f32(16), "b": f32(16)}, {}, {"epsilon": 1e-3}, "", 17),
    ("layer_norm_axis", "LayerNormalization", {"x": f32(2, 5, 16), "s": f32(5, 16)}, {}, {"axis": 1}, "", 17),
    ("skip_layer_norm", "SkipLayerNormalization",
     {"x": f32(2, 5, 16), "skip": f32(2, 5, 16), "g": f32(16), "be": f32(16), "bias": f32(16)}, {}, {}, MS, 17),
    ("bias_gelu", "BiasGelu", {"x": f32(2, 5, 16), "b": f32(16)}, {}, {}, MS, 17),
    ("fast_gelu", "FastGelu", {"x": f32(2, 5, 16), "b": f32(16)}, {}, {}, MS, 17),
    ("ms_gelu", "Gelu", {"x": f32(2, 5, 16)}, {}, {}, MS, 17),
    ("conv", "Conv", {"x": f32(2, 3, 9, 9)}, {"w": f32(4, 3, 3, 3), "b": f32(4)}, {"pads": [1, 1, 1, 1]}, "", 17),
    ("conv_strided_asym", "Conv", {"x": f32(1, 4, 10, 9)}, {"w": f32(6, 2, 3, 2)},
     {"group": 2, "strides": [2, 1], "pads": [0, 1, 2, 0], "dilations": [1, 2]}, "", 17),
    ("conv_same", "Conv", {"x": f32(1, 2, 7, 7)}, {"w": f32(3, 2, 4, 4)}, {"auto_pad": "SAME_LOWER", "strides": [2, 2]}, "", 17),
    ("conv_depthwise", "Conv", {"x": f32(1, 4, 6, 6)}, {"w": f32(4, 1, 3, 3)}, {"group": 4}, "", 17),
    ("conv_1x1", "Conv", {"x": f32(2, 8, 5, 5)}, {"w": f32(16, 8, 1, 1)}, {}, "", 17),
    ("conv_1d", "Conv", {"x": f32(2, 3, 11)}, {"w": f32(5, 3, 3)}, {"strides": [2]}, "", 17),
    ("fused_conv", "FusedConv", {"x": f32(1, 3, 8, 8), "w": f32(4, 3, 3, 3), "b": f32(4), "z": f32(1, 4, 6, 6)}, {},
     {"activation": "Relu"}, MS, 17),
    ("fused_conv_clip", "FusedConv", {"x": f32(1, 3, 8, 8), "w": f32(4, 3, 3, 3)}, {},
     {"activation": "Clip", "activation_params": [-0.5, 0.5]}, MS, 17),
    ("max_pool", "MaxPool", {"x": f32(2, 3, 9, 9)}, {}, {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}, "", 17),
    ("max_pool_ceil", "MaxPool", {"x": f32(1, 2, 8, 8)}, {}, {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}, "", 17),
    ("max_pool_dilated", "MaxPool", {"x": f32(1, 2, 9, 9)}, {}, {"kernel_shape": [2, 2], "dilations": [2, 2]}, "", 17),
    ("avg_pool", "AveragePool", {"x": f32(2, 3, 9, 9)}, {}, {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}, "", 17),
    ("avg_pool_incl", "AveragePool", {"x": f32(2, 3, 9, 9)}, {},
     {"kernel_shape": [3, 3], "pads": [1, 0, 1, 2], "count_include_pad": 1}, "", 17),
    ("avg_pool_ceil", "AveragePool", {"x": f32(1, 2, 8, 8)}, {}, {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}, "", 17),
    ("global_avg_pool", "GlobalAveragePool", {"x": f32(2, 3, 5, 5)}, {}, {}, "", 17),
    ("global_max_pool", "GlobalMaxPool", {"x": f32(2, 3, 5, 5)}, {}, {}, "", 17),
    ("batch_norm", "BatchNormalization", {"x": f32(2, 3, 4, 4)},
     {"s": f32(3), "b": f32(3), "m": f32(3), "v": np.abs(f32(3)) + 0.5}, {"epsilon": 1e-3}, "", 15),
    ("reshape", "Reshape", {"x": f32(2, 3, 4)}, {"s": np.array([0, -1], np.int64)}, {}, "", 17),
    ("flatten", "Flatten", {"x": f32(2, 3, 4)}, {}, {"axis": 2}, "", 17),
    ("transpose", "Transpose", {"x": f32(2, 3, 4)}, {}, {"perm": [2, 0, 1]}, "", 17),
    ("unsqueeze", "Unsqueeze", {"x": f32(2, 3)}, {"a": np.array([0, -1], np.int64)}, {}, "", 17),
    ("squeeze", "Squeeze", {"x": f32(2, 1, 3, 1)}, {"a": np.array([1], np.int64)}, {}, "", 17),
    ("concat", "Concat", {"a": f32(2, 3), "b": f32(2, 5)}, {}, {"axis": -1}, "", 17),
    ("split", "Split", {"x": f32(2, 6)}, {"s": np.array([2, 4], np.int64)}, {"axis": 1}, "", 17),
    ("slice", "Slice", {"x": f32(5, 6)},
     {"st": np.array([4, 1], np.int64), "en": np.array([-10**18, 6], np.int64),
      "ax": np.array([0, 1], np.int64), "sp": np.array([-2, 2], np.int64)}, {}, "", 17),
    ("gather", "Gather", {"x": f32(5, 4), "i": np.array([[0, -1], [3, 2]], np.int64)}, {}, {"axis": 0}, "", 17),
    ("gather_axis1", "Gather", {"x": f32(5, 4), "i": np.array(2, np.int64)}, {}, {"axis": 1}, "", 17),
    ("shape", "Shape", {"x": f32(2, 3, 4)}, {}, {"start": 1}, "", 17),
    ("cast", "Cast", {"x": f32(3, 4) * 10}, {}, {"to": int(TensorProto.INT32)}, "", 17),
    ("cast_f16", "Cast", {"x": f32(3, 4)}, {}, {"to": int(TensorProto.FLOAT16)}, "", 17),
    ("expand", "Expand", {"x": f32(3, 1)}, {"s": np.array([2, 3, 4], np.int64)}, {}, "", 17),
    ("constant_of_shape", "ConstantOfShape", {"s": np.array([2, 3], np.int64)}, {},
     {"value": helper.make_tensor("v", TensorProto.FLOAT, [1], [1.5])}, "", 17),
    ("range", "Range", {"a": np.array(1.0, np.float32), "b": np.array(7.5, np.float32), "c": np.array(1.5, np.float32)},
     {}, {}, "", 17),
]  # fmt: skip
