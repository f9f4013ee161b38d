"""manager: passes run round after round to a fixed point, with types refreshed in between."""

from __future__ import annotations

import numpy as np
from onnx import helper

from onnxlite.ir.load import load_model
from onnxlite.optimizer import ALL_PASSES, PassContext, manager, run_passes

from .helpers import F32, I64, check_same, make_model, ops, rand, run

mk = helper.make_node


def _noop_reshape_model(computed: bool = False):  # type: ignore[no-untyped-def]
    # Reshape(v, Concat(Shape(v)[0:1], [4])) is a no-op once the target folds to [2, 4]; v is
    # the input x, or Relu(x) when ``computed`` (its shape then known only from inference).
    v = "x2" if computed else "x"
    nodes = [mk("Relu", ["x"], ["x2"])] if computed else []
    nodes += [
        mk("Shape", [v], ["s"]),
        mk("Slice", ["s", "st", "en"], ["s0"]),
        mk("Concat", ["s0", "four"], ["t"], axis=0),
        mk("Reshape", [v, "t"], ["r"]),
        mk("Relu", ["r"], ["y"]),
    ]
    inits = {"st": np.array([0], I64), "en": np.array([1], I64), "four": np.array([4], I64)}
    return make_model(nodes, {"x": (F32, [2, 4])}, ["y"], inits)


def test_rounds_continue_until_nothing_changes() -> None:
    proto = _noop_reshape_model()
    m, changed = run(proto, "identity_elimination", "constant_folding", "dead_code")
    assert ops(m) == ["Relu"]
    assert changed == ["constant_folding", "dead_code", "identity_elimination"]
    check_same(proto, m, {"x": rand(2, 4)})


def test_rounds_are_bounded() -> None:
    # The reshaped value is computed (its shape is known only from inference, which runs
    # before each round): its Shape folds in round 1 and the no-op Reshape goes in round 2.
    m = load_model(_noop_reshape_model(computed=True).SerializeToString(), infer_types=False)
    passes = [ALL_PASSES[n] for n in ("identity_elimination", "constant_folding", "dead_code")]
    run_passes(m, passes, PassContext.for_model(m), max_rounds=1)
    assert ops(m) == ["Relu", "Reshape", "Relu"]
    run_passes(m, passes, PassContext.for_model(m), max_rounds=1)
    assert ops(m) == ["Relu", "Relu"]


def _run_counting_inferences(monkeypatch, m, *names):  # type: ignore[no-untyped-def]
    """run_passes over ``m``; (passes that changed it, the node op types at each inference)."""
    seen: list[list[str]] = []
    orig = manager.refresh_types

    def spy(model):  # type: ignore[no-untyped-def]
        seen.append(ops(model))
        orig(model)

    monkeypatch.setattr(manager, "refresh_types", spy)
    return run_passes(m, [ALL_PASSES[n] for n in names], PassContext.for_model(m)), seen


def test_constants_fold_before_the_first_inference(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # a ConstantOfShape weight folds, and the shape vector it read goes, before types are inferred
    nodes = [
        mk("ConstantOfShape", ["shape"], ["w"], value=helper.make_tensor("v", 1, [1], [0.5])),
        mk("Mul", ["x", "w"], ["y"]),
    ]
    proto = make_model(nodes, {"x": (F32, [2, 3])}, ["y"], {"shape": np.array([2, 3], I64)})
    m = load_model(proto.SerializeToString(), infer_types=False)
    changed, seen = _run_counting_inferences(monkeypatch, m, "constant_folding", "dead_code")
    assert seen[0] == ["Mul"] and list(m.graph.initializers) == ["w"]
    assert changed == ["constant_folding", "dead_code"]
    check_same(proto, m, {"x": rand(2, 3)})


def test_legacy_ir_leaves_subgraphs_alone() -> None:
    then = helper.make_graph(
        [mk("Identity", ["x"], ["a"]), mk("Neg", ["a"], ["t"])],
        "then",
        [],
        [helper.make_tensor_value_info("t", 1, [2])],
    )
    other = helper.make_graph(
        [mk("Neg", ["x"], ["e"])], "else", [], [helper.make_tensor_value_info("e", 1, [2])]
    )
    proto = make_model(
        [mk("If", ["c"], ["y"], then_branch=then, else_branch=other)],
        {"x": (F32, [2]), "c": (bool, [])},
        {"y": (F32, [2])},
        ir_version=3,
        opset=9,
    )
    m = load_model(proto.SerializeToString())
    run_passes(m, [ALL_PASSES["identity_elimination"]], PassContext.for_model(m))
    assert [n.op_type for n in m.graph.nodes[0].attrs["then_branch"].nodes] == ["Identity", "Neg"]


def test_new_domains_are_imported() -> None:
    nodes = [mk("Conv", ["x", "w"], ["c"]), mk("Relu", ["c"], ["y"])]
    m, _ = run(
        make_model(nodes, {"x": (F32, [1, 2, 4, 4])}, ["y"], {"w": rand(3, 2, 1, 1)}), "activation_fusion"
    )
    assert m.opsets == {"": 17, "com.microsoft": 1}


def test_types_are_not_inferred_again_after_a_round_that_only_removed_nodes(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    nodes = [mk("Relu", ["x"], ["a"]), mk("Relu", ["x"], ["b"]), mk("Add", ["a", "b"], ["y"])]
    proto = make_model(nodes, {"x": (F32, [2, 3])}, ["y"])
    m = load_model(proto.SerializeToString())
    changed, refreshes = _run_counting_inferences(monkeypatch, m, "cse", "dead_code")
    # round 1 merges the Relus (cse); round 2 finds nothing more, on round 1's types
    assert changed == ["cse"] and refreshes == [["Relu", "Relu", "Add"]]
    check_same(proto, m, {"x": rand(2, 3)})


def test_types_are_not_inferred_again_after_a_round_of_type_keeping_fusions(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    nodes = [
        mk("Conv", ["x", "w"], ["c"]),
        mk("BatchNormalization", ["c", "s", "b", "m", "v"], ["n"]),
        mk("Relu", ["n"], ["y"]),
    ]
    inits = {"w": rand(3, 2, 1, 1), "s": rand(3) + 2, "b": rand(3), "m": rand(3), "v": rand(3) + 2}
    proto = make_model(nodes, {"x": (F32, [1, 2, 4, 4])}, ["y"], inits)
    m = load_model(proto.SerializeToString())
    changed, refreshes = _run_counting_inferences(
        monkeypatch, m, "conv_bn_fold", "activation_fusion", "dead_code"
    )
    assert changed[:2] == ["conv_bn_fold", "activation_fusion"] and len(refreshes) == 1
    assert m.graph.type_of("y") is not None
    check_same(proto, m, {"x": rand(1, 2, 4, 4)})


def test_type_keeping_passes_leave_the_types_a_fresh_inference_gives() -> None:
    # every pass that skips the next inference (keeps_types) must leave each value with the type
    # inference would give it: checked over the light models, which all those passes rewrite
    import glob
    import os

    import onnx

    from onnxlite.optimizer import optimize
    from onnxlite.optimizer._types import refresh_types

    light = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
    for path in sorted(glob.glob(os.path.join(light, "*.onnx"))):
        m = load_model(path, infer_types=False)
        optimize(m, 99, [])
        kept = {k: v.SerializeToString() for k, v in m.graph.value_info.items()}
        refresh_types(m)
        fresh = {k: v.SerializeToString() for k, v in m.graph.value_info.items()}
        produced = {o for n in m.graph.nodes for o in n.outputs}
        differ = [k for k in produced if kept.get(k) != fresh.get(k)]
        assert not differ, (os.path.basename(path), differ[:5])
