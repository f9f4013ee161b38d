"""quant_pre_process: basic graph clean-up and shape inference before quantization.

Clean-up folds Constant nodes into initializers (so quantizers see weights as constants) and
removes Identity nodes; shape inference records value types, which the quantizers use to tell
float tensors from integer ones. onnxruntime's symbolic shape inference is not available here:
``skip_symbolic_shape`` is accepted and has no effect.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..ir.graph import Model


def fold_constants(model: Model) -> int:
    """Constant nodes -> initializers; Identity nodes removed. Returns the number of nodes removed."""
    g = model.graph
    outputs = {o.name for o in g.outputs}
    n_before = len(g.nodes)
    keep = []
    rename: dict[str, str] = {}
    for n in g.nodes:
        if n.op_type == "Constant" and not n.domain and len(n.attrs) == 1:
            ((k, v),) = n.attrs.items()
            val = None
            if k == "value" and isinstance(v, np.ndarray):
                val = v
            elif k == "value_float":
                val = np.array(v, dtype=np.float32)
            elif k == "value_int":
                val = np.array(v, dtype=np.int64)
            elif k == "value_floats":
                val = np.array(v, dtype=np.float32)
            elif k == "value_ints":
                val = np.array(v, dtype=np.int64)
            if val is not None:
                g.initializers[n.outputs[0]] = val
                continue
        if (
            n.op_type == "Identity"
            and not n.domain
            and n.outputs[0] not in outputs
            and n.inputs[0] not in outputs
        ):
            rename[n.outputs[0]] = rename.get(n.inputs[0], n.inputs[0])
            continue
        keep.append(n)
    for n in keep:
        n.inputs = [rename.get(x, x) for x in n.inputs]
    g.nodes = keep
    return n_before - len(keep)


def quant_pre_process(
    input_model_path: Any,
    output_model_path: str | os.PathLike[str],
    skip_optimization: bool = False,
    skip_onnx_shape: bool = False,
    skip_symbolic_shape: bool = False,
    auto_merge: bool = False,
    int_max: int = 2**31 - 1,
    guess_output_rank: bool = False,
    verbose: int = 0,
    save_as_external_data: bool = False,
    all_tensors_to_one_file: bool = False,
    external_data_location: str | None = None,
    external_data_size_threshold: int = 1024,
) -> None:
    import onnx

    from ..ir.save import model_to_proto
    from ._rewrite import load_ir

    model = load_ir(input_model_path)
    if not skip_optimization:
        removed = fold_constants(model)
        if verbose:
            print(f"quant_pre_process: folded or removed {removed} nodes")
    proto = model_to_proto(model)
    if not skip_onnx_shape:
        try:
            proto = onnx.shape_inference.infer_shapes(proto, check_type=False, strict_mode=False)
        except Exception as e:  # shape inference is best effort, as in onnxruntime
            if verbose:
                print(f"quant_pre_process: shape inference failed: {e}")
    path = os.fspath(output_model_path)
    if save_as_external_data:
        onnx.save_model(
            proto,
            path,
            save_as_external_data=True,
            all_tensors_to_one_file=all_tensors_to_one_file,
            location=external_data_location or os.path.basename(path) + ".data",
            size_threshold=external_data_size_threshold,
        )
    else:
        onnx.save_model(proto, path)
