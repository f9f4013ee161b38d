"""Optimization levels end to end: the light models and a small BERT stay within 1e-5 relative of
level 0 at every level, and the optimized models pass onnx.checker and run in onnxruntime."""

from __future__ import annotations

import glob
import io
import itertools
import os
import warnings
from typing import Any

import numpy as np
import onnx
import pytest
from onnx.backend.test.runner import Runner

import onnxlite
from onnxlite.errors import InvalidArgument
from onnxlite.ir.load import load_model
from onnxlite.ir.save import model_to_proto
from onnxlite.optimizer import ALL_PASSES, LEVELS, ORT_NAMES, optimize

from .helpers import assert_close, check_ort, ops

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
MODELS = sorted(os.path.basename(p)[6:-5] for p in glob.glob(os.path.join(LIGHT, "light_*.onnx")))
LEVEL_IDS = sorted(LEVELS)


def _session(model: onnx.ModelProto | str) -> Any:
    """An onnxlite session that runs the model exactly as given (no session-side optimization)."""
    so = onnxlite.SessionOptions()
    so.graph_optimization_level = onnxlite.GraphOptimizationLevel.ORT_DISABLE_ALL
    src = model if isinstance(model, str) else model.SerializeToString()
    return onnxlite.InferenceSession(src, so, providers=["CPUExecutionProvider"])


# ------------------------------------------------------------------------------------------ API


def test_levels_are_cumulative() -> None:
    assert LEVEL_IDS == [0, 1, 2, 3, 99] and LEVELS[0] == []
    for lo, hi in itertools.pairwise(LEVEL_IDS):
        assert LEVELS[hi][: len(LEVELS[lo])] == LEVELS[lo]
    assert set(LEVELS[99]) == set(ALL_PASSES)


def test_unknown_disabled_names_and_levels_are_refused() -> None:
    m = load_model(os.path.join(LIGHT, "light_squeezenet.onnx"))
    with pytest.raises(InvalidArgument, match=r"known: .*constant_folding"):
        optimize(m, 99, ["NoSuchPass"])
    with pytest.raises(InvalidArgument):
        optimize(m, 5)
    assert optimize(m, 0) == []


@pytest.mark.parametrize(
    "names", [["activation_fusion", "identity_elimination"], ["ConvActivationFusion", "EliminateDropout"]]
)
def test_disabled_passes_do_not_run(names: list[str]) -> None:
    m = load_model(os.path.join(LIGHT, "light_squeezenet.onnx"))
    changed = optimize(m, 2, disabled=names)
    assert "activation_fusion" not in changed and "Dropout" in ops(m)
    assert "FusedConv" not in ops(m)
    assert set(ORT_NAMES.values()) <= set(ALL_PASSES)


# --------------------------------------------------------------------------------- light models


@pytest.mark.parametrize("name", MODELS)
def test_light_model_every_level(name: str) -> None:
    path = os.path.join(LIGHT, f"light_{name}.onnx")
    proto = onnx.load(path)
    inits = {i.name for i in proto.graph.initializer}
    feeds = {
        x.name: Runner.generate_dummy_data(x, seed=0, random=True)
        for x in proto.graph.input
        if x.name not in inits
    }
    want = _session(path).run(None, feeds)
    done: dict[tuple[str, ...], onnx.ModelProto] = {}
    for level in LEVEL_IDS[1:]:
        key = tuple(LEVELS[level])
        if key not in done:  # levels with the same passes give the same model
            m = load_model(path)
            optimize(m, level)
            opt = model_to_proto(m)
            onnx.checker.check_model(opt)
            assert_close(_session(opt).run(None, feeds), want)
            check_ort(m, feeds, want, rel=1e-4)
            done[key] = opt
        assert len(done[key].graph.node) < len(proto.graph.node)


# ------------------------------------------------------------------------------------ BERT-like


@pytest.fixture(scope="module")
def bert_proto() -> onnx.ModelProto:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    bert = transformers.BertModel(config).eval()
    with torch.no_grad():  # fresh biases are zeros and LayerNorms identities: make every op count
        for p in bert.parameters():
            p.add_(torch.randn_like(p) * 0.1)

    class Wrap(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask)
            return out.last_hidden_state, out.pooler_output

    ids = torch.randint(0, 100, (2, 16))
    mask = torch.ones(2, 16, dtype=torch.int64)
    buf = io.BytesIO()
    names = ["input_ids", "attention_mask", "last_hidden_state", "pooler_output"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Wrap().eval(),
            (ids, mask),
            buf,
            dynamo=False,
            opset_version=17,
            input_names=names[:2],
            output_names=names[2:],
            dynamic_axes={n: {0: "batch"} for n in names},
        )
    return onnx.load_from_string(buf.getvalue())


def _bert_feeds() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    mask = np.ones((3, 16), np.int64)
    mask[1, 9:] = 0
    return {"input_ids": rng.integers(0, 100, (3, 16)).astype(np.int64), "attention_mask": mask}


@pytest.mark.parametrize("level", LEVEL_IDS[1:])
def test_bert_encoder_fusions(bert_proto: onnx.ModelProto, level: int) -> None:
    feeds = _bert_feeds()
    want = _session(bert_proto).run(None, feeds)
    m = load_model(bert_proto.SerializeToString())
    changed = optimize(m, level)
    kinds = ops(m)
    assert kinds.count("Gelu") + kinds.count("BiasGelu") == 2
    assert "layernorm_fusion" not in changed  # the exporter already wrote LayerNormalization at opset 17
    if level == 1:
        assert kinds.count("LayerNormalization") == 5 and "Gelu" in kinds
    else:
        assert {"gelu_fusion", "skip_layernorm_fusion", "attention_fusion", "bias_gelu_fusion"} <= set(
            changed
        )
        assert kinds.count("Attention") == 2 and kinds.count("SkipLayerNormalization") == 4
        assert kinds.count("LayerNormalization") == 1 and kinds.count("BiasGelu") == 2
    opt = model_to_proto(m)
    onnx.checker.check_model(opt)
    assert_close(_session(opt).run(None, feeds), want)
    check_ort(m, feeds, want, rel=1e-5)
