"""One benchmark row per model on an NVIDIA GPU: onnxlite's CUDAExecutionProvider against
onnxruntime-gpu's CUDAExecutionProvider, or against torch on CUDA where onnxruntime has no CUDA.

    python benchmarks/gpu.py [--repeat 30] [--models resnet50,bert4]

Models: ``light_resnet50`` (onnx's test data, batch 1) and ``bert4``, four BERT-base encoder
layers (hidden 768, 12 heads, FFN 3072) at batch 8 x sequence 128 with random weights, built
here as an ONNX graph and, for the torch reference, as the same computation in torch. Latencies
are medians of ``--repeat`` runs after warm-up, host arrays in and out; a markdown table is
printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

import onnxlite

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
H, HEADS, FFN, LAYERS, BATCH, SEQ = 768, 12, 3072, 4, 8, 128


def bert_weights(seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)

    def w(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    return [
        {
            "wqkv": w(H, 3 * H),
            "bqkv": w(3 * H),
            "wo": w(H, H),
            "bo": w(H),
            "g1": 1 + w(H),
            "b1": w(H),
            "w1": w(H, FFN),
            "c1": w(FFN),
            "w2": w(FFN, H),
            "c2": w(H),
            "g2": 1 + w(H),
            "b2": w(H),
        }
        for _ in range(LAYERS)
    ]


def bert_onnx(weights: list[dict[str, np.ndarray]]) -> bytes:
    nodes: list[Any] = []
    inits: list[Any] = []

    def const(name: str, v: np.ndarray) -> str:
        inits.append(onnx.numpy_helper.from_array(v, name))
        return name

    def add(op: str, ins: list[str], out: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, ins, [out], **attrs))
        return out

    hd = H // HEADS
    heads = const("heads", np.array([0, 0, HEADS, hd], np.int64))
    merged = const("merged", np.array([0, 0, H], np.int64))
    scale = const("scale", np.array(1 / np.sqrt(hd), np.float32))
    half, one, rt2 = (
        const(n, np.array(v, np.float32)) for n, v in (("half", 0.5), ("one", 1.0), ("rt2", np.sqrt(2)))
    )
    x = "x"
    for i, p in enumerate(weights):
        n = {k: const(f"l{i}_{k}", v) for k, v in p.items()}
        qkv = add("Add", [add("MatMul", [x, n["wqkv"]], f"l{i}_qkv0"), n["bqkv"]], f"l{i}_qkv")
        parts = [f"l{i}_{c}" for c in "qkv"]
        nodes.append(
            helper.make_node("Split", [qkv, const(f"l{i}_sp", np.array([H] * 3, np.int64))], parts, axis=2)
        )
        q, k, v = (
            add("Transpose", [add("Reshape", [t, heads], f"{t}_r")], f"{t}_t", perm=[0, 2, 1, 3])
            for t in parts
        )
        kt = add("Transpose", [k], f"l{i}_kt", perm=[0, 1, 3, 2])
        s = add("Mul", [add("MatMul", [q, kt], f"l{i}_s0"), scale], f"l{i}_s")
        a = add("MatMul", [add("Softmax", [s], f"l{i}_p", axis=-1), v], f"l{i}_a")
        a = add("Reshape", [add("Transpose", [a], f"l{i}_at", perm=[0, 2, 1, 3]), merged], f"l{i}_am")
        o = add("Add", [add("MatMul", [a, n["wo"]], f"l{i}_o0"), n["bo"]], f"l{i}_o")
        h1 = add(
            "LayerNormalization",
            [add("Add", [o, x], f"l{i}_r1"), n["g1"], n["b1"]],
            f"l{i}_h1",
            epsilon=1e-12,
        )
        f = add("Add", [add("MatMul", [h1, n["w1"]], f"l{i}_f0"), n["c1"]], f"l{i}_f")
        e = add("Erf", [add("Div", [f, rt2], f"l{i}_fd")], f"l{i}_e")
        g = add("Mul", [add("Mul", [f, add("Add", [e, one], f"l{i}_e1")], f"l{i}_g0"), half], f"l{i}_g")
        f2 = add("Add", [add("MatMul", [g, n["w2"]], f"l{i}_f20"), n["c2"]], f"l{i}_f2")
        x = add(
            "LayerNormalization",
            [add("Add", [f2, h1], f"l{i}_r2"), n["g2"], n["b2"]],
            f"l{i}_out",
            epsilon=1e-12,
        )
    g = helper.make_graph(
        nodes,
        "bert4",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [BATCH, SEQ, H])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [BATCH, SEQ, H])],
        inits,
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m.SerializeToString()


def bert_torch(weights: list[dict[str, np.ndarray]]) -> Callable[[np.ndarray], Any]:
    import torch

    dev = torch.device("cuda")
    ws = [{k: torch.from_numpy(v).to(dev) for k, v in p.items()} for p in weights]
    hd = H // HEADS

    @torch.inference_mode()
    def run(x_np: np.ndarray) -> Any:
        x = torch.from_numpy(x_np).to(dev)
        for p in ws:
            q, k, v = (x @ p["wqkv"] + p["bqkv"]).split(H, dim=2)
            q, k, v = (t.reshape(BATCH, SEQ, HEADS, hd).transpose(1, 2) for t in (q, k, v))
            a = torch.softmax(q @ k.transpose(-1, -2) / hd**0.5, dim=-1) @ v
            o = a.transpose(1, 2).reshape(BATCH, SEQ, H) @ p["wo"] + p["bo"]
            h1 = torch.nn.functional.layer_norm(o + x, (H,), p["g1"], p["b1"], 1e-12)
            f = torch.nn.functional.gelu(h1 @ p["w1"] + p["c1"])
            x = torch.nn.functional.layer_norm(f @ p["w2"] + p["c2"] + h1, (H,), p["g2"], p["b2"], 1e-12)
        return x.cpu().numpy()

    return run


def resnet_torch() -> Callable[[np.ndarray], Any] | None:
    try:
        import torch
        import torchvision
    except ImportError:
        return None
    net = torchvision.models.resnet50().eval().cuda()

    @torch.inference_mode()
    def run(x: np.ndarray) -> Any:
        return net(torch.from_numpy(x).cuda()).cpu().numpy()

    return run


def median_ms(fn: Callable[[], Any], repeat: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def ort_cuda_session(model: Any) -> Any:
    try:
        import onnxruntime
    except ImportError:
        return None
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        return None
    s = onnxruntime.InferenceSession(model, providers=["CUDAExecutionProvider"])
    return s if s.get_providers()[0] == "CUDAExecutionProvider" else None


def bench(name: str, repeat: int) -> tuple[Any, ...]:
    """(model, nodes on CUDA, nodes, onnxlite ms, reference name, reference ms, max abs diff)."""
    if name == "resnet50":
        model: Any = os.path.join(LIGHT, "light_resnet50.onnx")
        torch_ref = resnet_torch
    else:
        weights = bert_weights()
        model = bert_onnx(weights)

        def torch_ref() -> Callable[[np.ndarray], Any] | None:
            return bert_torch(weights)

    lite = onnxlite.InferenceSession(model, providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    inp = lite.get_inputs()[0]
    feed = {inp.name: np.random.default_rng(0).standard_normal(inp.shape).astype(np.float32)}
    steps = [st for st in lite._plan.steps if not st.node.op_type.startswith("Memcpy")]
    on_gpu = sum(st.provider == "CUDAExecutionProvider" for st in steps)
    t_lite = median_ms(lambda: lite.run(None, feed), repeat)
    y = lite.run(None, feed)[0]
    ref_name, t_ref, diff = "n/a", float("nan"), float("nan")
    ort_s = ort_cuda_session(model)
    if ort_s is not None:
        ref_name = "onnxruntime-gpu CUDA"
        t_ref = median_ms(lambda: ort_s.run(None, feed), repeat)
        diff = float(np.abs(ort_s.run(None, feed)[0] - y).max())
    else:
        fn = torch_ref()
        if fn is not None:
            x = feed[inp.name]
            ref_name = "torch CUDA"
            t_ref = median_ms(lambda: fn(x), repeat)
            if name != "resnet50":  # the same weights: comparable outputs
                diff = float(np.abs(fn(x) - y).max())
    return name, on_gpu, len(steps), t_lite, ref_name, t_ref, diff


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--models", default="resnet50,bert4")
    args = ap.parse_args()
    rows = [bench(name, args.repeat) for name in args.models.split(",")]
    try:
        import cupy

        gpu = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    except Exception:
        gpu = "?"
    print(f"\nGPU: {gpu}; medians of {args.repeat} runs, host arrays in and out\n")
    print(
        "| model | nodes on CUDA | onnxlite CUDA (ms) | reference | reference (ms) | ratio | max abs diff |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, on_gpu, n, t_lite, ref_name, t_ref, diff in rows:
        print(
            f"| {name} | {on_gpu}/{n} | {t_lite:.2f} | {ref_name} | {t_ref:.2f} | "
            f"{t_lite / t_ref:.2f}x | {diff:.2g} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
