"""attention_fusion: BERT self-attention subgraphs -> com.microsoft Attention."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from .helpers import F32, I64, check_ort, check_same, make_model, ops, rand, run, run_lite

mk = helper.make_node
H, N, S = 16, 4, 6
D = H // N


def _proj(p: str, k_perm: list[int]) -> list:  # type: ignore[type-arg]
    return [
        mk("MatMul", ["x", f"w{p}"], [f"{p}m"]),
        mk("Add", [f"b{p}", f"{p}m"], [f"{p}a"]),
        mk("Reshape", [f"{p}a", "split"], [f"{p}r"]),
        mk("Transpose", [f"{p}r"], [f"{p}t"], perm=k_perm),
    ]


def _model(mask: str = "hf", scale: str = "div", guard: bool = False, axis: int = -1):  # type: ignore[no-untyped-def]
    nodes = [*_proj("q", [0, 2, 1, 3]), *_proj("k", [0, 2, 3, 1]), *_proj("v", [0, 2, 1, 3])]
    q, k = "qt", "kt"
    if scale == "qk":  # torch's scaled_dot_product_attention export: both sides by d**-0.25
        nodes += [mk("Mul", ["qt", "root"], ["qs"]), mk("Mul", ["kt", "root"], ["ks"])]
        q, k = "qs", "ks"
    nodes.append(mk("MatMul", [q, k], ["qk"]))
    scores = "qk"
    if scale == "div":
        nodes.append(mk("Div", ["qk", "sqrt_d"], ["qkd"]))
        scores = "qkd"
    inputs = {"x": (F32, ["B", S, H])}
    if mask == "hf":  # (1 - mask[:, None, None, :]) * -10000
        nodes += [
            mk("Unsqueeze", ["mask", "ax1"], ["m1"]),
            mk("Unsqueeze", ["m1", "ax2"], ["m2"]),
            mk("Cast", ["m2"], ["mf"], to=TensorProto.FLOAT),
            mk("Sub", ["one", "mf"], ["inv"]),
            mk("Mul", ["inv", "big"], ["ext"]),
            mk("Add", [scores, "ext"], ["sm_in"]),
        ]
        inputs["mask"] = (I64, ["B", S])
        scores = "sm_in"
    elif mask == "bias":
        nodes.append(mk("Add", [scores, "abias"], ["sm_in"]))
        inputs["abias"] = (F32, ["B", 1, S, S])
        scores = "sm_in"
    nodes.append(mk("Softmax", [scores], ["p"], axis=axis))
    probs = "p"
    if guard:
        nodes += [mk("IsNaN", ["p"], ["isnan"]), mk("Where", ["isnan", "zero", "p"], ["pg"])]
        probs = "pg"
    nodes += [
        mk("MatMul", [probs, "vt"], ["ctx"]),
        mk("Transpose", ["ctx"], ["ctx_t"], perm=[0, 2, 1, 3]),
        mk("Reshape", ["ctx_t", "merge"], ["y"]),
    ]
    inits = {
        "split": np.array([0, 0, N, -1], I64),
        "merge": np.array([0, 0, H], I64),
        "sqrt_d": np.array(np.sqrt(D), F32),
        "root": np.array(D**-0.25, F32),
        "ax1": np.array([1], I64),
        "ax2": np.array([2], I64),
        "one": np.array(1.0, F32),
        "big": np.array(-10000.0, F32),
        "zero": np.array([0.0], F32),
    }
    for i, p in enumerate("qkv"):
        inits[f"w{p}"] = rand(H, H, seed=10 + i, scale=0.5)
        inits[f"b{p}"] = rand(H, seed=20 + i, scale=0.5)
    return make_model(nodes, inputs, {"y": (F32, ["B", S, H])}, inits)


def _feeds(mask: str) -> dict[str, np.ndarray]:
    feeds = {"x": rand(3, S, H, seed=1)}
    m = np.ones((3, S), I64)
    m[1, 4:] = 0
    if mask == "hf":
        feeds["mask"] = m
    elif mask == "bias":
        feeds["abias"] = np.where(m[:, None, None, :] > 0, 0.0, -np.inf).astype(F32).repeat(S, axis=2)
    return feeds


@pytest.mark.parametrize(
    ("mask", "scale", "guard"), [("hf", "div", False), ("bias", "qk", True), ("none", "div", False)]
)
def test_attention_fuses(mask: str, scale: str, guard: bool) -> None:
    proto = _model(mask, scale, guard=guard)
    m, changed = run(proto, "attention_fusion", "dead_code")
    assert changed[0] == "attention_fusion"
    expected = ["Attention", "IsNaN", "Where"] if guard else ["Attention"]
    assert sorted(ops(m)) == sorted(expected + (["Cast"] if mask == "hf" else []))
    att = next(n for n in m.graph.nodes if n.op_type == "Attention")
    assert att.attrs["num_heads"] == N and "scale" not in att.attrs
    if mask == "hf":
        assert att.attrs["mask_filter_value"] == -10000.0
    feeds = _feeds(mask)
    check_same(proto, m, feeds)
    check_ort(m, feeds, run_lite(proto, feeds))


def test_fully_masked_rows_keep_the_guarded_zeros() -> None:
    proto = _model("bias", "qk", guard=True)
    m, _ = run(proto, "attention_fusion", "dead_code")
    feeds = _feeds("bias")
    feeds["abias"][2] = -np.inf  # the third sequence attends to nothing
    want = run_lite(proto, feeds)
    assert not np.isnan(want[0]).any() and (want[0][2] == 0).all()
    check_same(proto, m, feeds)
    check_ort(m, feeds, want)


def test_key_transposed_by_a_pair_after_transpose_fold() -> None:
    proto = _model("none")
    # K as [0, 2, 1, 3] then [0, 1, 3, 2]: transpose_fold composes them into [0, 2, 3, 1]
    g = proto.graph
    kt = next(n for n in g.node if n.output[0] == "kt")
    kt.attribute[0].ints[:] = [0, 2, 1, 3]
    kt.output[0] = "kt0"
    g.node.insert(list(g.node).index(kt) + 1, mk("Transpose", ["kt0"], ["kt"], perm=[0, 1, 3, 2]))
    m, _ = run(proto, "transpose_fold", "attention_fusion", "dead_code")
    assert ops(m) == ["Attention"]
    check_same(proto, m, _feeds("none"))


def test_mismatched_patterns_are_left_alone() -> None:
    # softmax over the queries, and a runtime weight
    assert run(_model("none", axis=2), "attention_fusion")[1] == []
    proto = _model("hf")
    w = next(i for i in proto.graph.initializer if i.name == "wq")
    proto.graph.initializer.remove(w)
    proto.graph.input.append(helper.make_tensor_value_info("wq", TensorProto.FLOAT, [H, H]))
    assert run(proto, "attention_fusion")[1] == []


def test_dynamo_export_form() -> None:
    # torch.onnx.export(dynamo=True): allowzero Reshapes to [-1, S, N, D], K^T as a 3-D
    # reshape/transpose/reshape, both sides scaled, a boolean mask turned into a bias by Where.
    def proj(p: str) -> list:  # type: ignore[type-arg]
        return [
            mk("MatMul", ["x", f"w{p}"], [f"{p}m"]),
            mk("Add", [f"{p}m", f"b{p}"], [f"{p}a"]),
            mk("Reshape", [f"{p}a", "split"], [f"{p}r"], allowzero=1),
            mk("Transpose", [f"{p}r"], [f"{p}t"], perm=[0, 2, 1, 3]),
        ]

    nodes = [
        *proj("q"),
        *proj("k"),
        *proj("v"),
        mk("Reshape", ["kt", "m3"], ["k3"]),
        mk("Transpose", ["k3"], ["k3t"], perm=[0, 2, 1]),
        mk("Reshape", ["k3t", "s4"], ["kT"]),
        mk("Mul", ["qt", "root"], ["qs"]),
        mk("Mul", ["kT", "root"], ["ks"]),
        mk("Where", ["keep", "zero", "lowest"], ["bias"]),
        mk("MatMul", ["qs", "ks"], ["qk"]),
        mk("Add", ["qk", "bias"], ["sc"]),
        mk("Softmax", ["sc"], ["p"], axis=-1),
        mk("MatMul", ["p", "vt"], ["ctx"]),
        mk("Transpose", ["ctx"], ["ctx_t"], perm=[0, 2, 1, 3]),
        mk("Reshape", ["ctx_t", "merge"], ["y"], allowzero=1),
    ]
    inits = {
        "split": np.array([-1, S, N, D], I64),
        "m3": np.array([-1, S, D], I64),
        "s4": np.array([-1, N, D, S], I64),
        "merge": np.array([-1, S, H], I64),
        "root": np.array(D**-0.25, F32),
        "zero": np.array(0.0, F32),
        "lowest": np.array(np.finfo(np.float32).min, F32),
    }
    for i, p in enumerate("qkv"):
        inits[f"w{p}"] = rand(H, H, seed=10 + i, scale=0.5)
        inits[f"b{p}"] = rand(H, seed=20 + i, scale=0.5)
    inputs = {"x": (F32, ["B", S, H]), "keep": (np.bool_, ["B", 1, S, S])}
    proto = make_model(nodes, inputs, {"y": (F32, ["B", S, H])}, inits)
    m, _ = run(proto, "transpose_fold", "attention_fusion", "dead_code")
    assert sorted(ops(m)) == ["Attention", "Where"], ops(m)
    keep = np.ones((3, 1, S, S), bool)
    keep[1, :, :, 4:] = False
    feeds = {"x": rand(3, S, H, seed=1), "keep": keep}
    check_same(proto, m, feeds)
    check_ort(m, feeds, run_lite(proto, feeds))
