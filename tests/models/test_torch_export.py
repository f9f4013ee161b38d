"""Models exported with torch.onnx.export run in onnxlite and match torch's own outputs.

Two models, each through both exporters: the TorchScript exporter (dynamo=False) at opset 17 and
the dynamo exporter (dynamo=True, which needs onnxscript) at opset 18.

- a small ResNet-style CNN defined here (conv/bn/relu/maxpool, residual blocks with a strided 1x1
  downsample, adaptive average pool, a BatchNorm1d neck that no exporter can fold into a conv,
  linear head), random weights and randomised BatchNorm statistics;
- a transformers BertModel with a tiny random-weight config, fed input_ids and an attention_mask
  that pads part of one sequence.

Both are exported with a dynamic batch axis and then run at the traced batch size and another one.
The comparisons use rtol 1e-4 / atol 1e-5: float32 all the way, and onnxlite only sums in a
different order than torch.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

import onnxlite  # noqa: E402

nn = torch.nn

RTOL, ATOL = 1e-4, 1e-5
EXPORTERS = [
    pytest.param("torchscript", 17, id="torchscript-opset17"),
    pytest.param("dynamo", 18, id="dynamo-opset18"),
]


def _export(
    model: Any,
    args: tuple[Any, ...],
    exporter: str,
    opset: int,
    input_names: list[str],
    output_names: list[str],
) -> onnx.ModelProto:
    """Export with a dynamic axis 0 ("batch") on every input and output."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            pytest.importorskip("onnxscript")
            batch = torch.export.Dim("batch", min=1, max=64)
            program = torch.onnx.export(
                model,
                args,
                dynamo=True,
                opset_version=opset,
                input_names=input_names,
                output_names=output_names,
                dynamic_shapes={name: {0: batch} for name in input_names},
                verbose=False,
            )
            proto = program.model_proto
        else:
            buf = io.BytesIO()
            torch.onnx.export(
                model,
                args,
                buf,
                dynamo=False,
                opset_version=opset,
                input_names=input_names,
                output_names=output_names,
                dynamic_axes={name: {0: "batch"} for name in input_names + output_names},
            )
            proto = onnx.load_from_string(buf.getvalue())
    assert {o.domain: o.version for o in proto.opset_import}.get("") == opset
    return proto


def _assert_close(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape, (g.dtype, g.shape, w.dtype, w.shape)
        np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL)


# --------------------------------------------------------------------------------------------- CNN


class BasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock: two 3x3 conv-bn, a 1x1 conv-bn shortcut when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: Any) -> Any:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class TinyResNet(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 16, 7, 2, 3, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )
        self.layer1 = BasicBlock(16, 16, 1)
        self.layer2 = BasicBlock(16, 32, 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        # Follows a pool, not a conv: exporters keep it as a BatchNormalization node.
        self.neck = nn.BatchNorm1d(32)
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x: Any) -> Any:
        x = self.layer2(self.layer1(self.stem(x)))
        return self.fc(self.neck(torch.flatten(self.avgpool(x), 1)))


def _tiny_resnet() -> TinyResNet:
    torch.manual_seed(0)
    net = TinyResNet()
    with torch.no_grad():
        # Fresh BatchNorm layers are the identity in eval mode; give them real statistics.
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return net.eval()


@pytest.fixture(scope="module")
def resnet() -> TinyResNet:
    return _tiny_resnet()


@pytest.mark.parametrize(("exporter", "opset"), EXPORTERS)
def test_cnn(resnet: TinyResNet, exporter: str, opset: int, tmp_path: Any) -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 64, 64, generator=gen)
    proto = _export(resnet, (x,), exporter, opset, ["x"], ["logits"])
    ops = {n.op_type for n in proto.graph.node}
    assert {"Conv", "MaxPool", "Relu", "Add", "BatchNormalization", "Gemm"} <= ops, ops

    path = tmp_path / "cnn.onnx"
    onnx.save(proto, str(path))
    sess = onnxlite.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["x"]
    assert sess.get_inputs()[0].shape[0] == "batch"

    for batch in (2, 3):  # the traced size, then another one through the dynamic axis
        xb = torch.randn(batch, 3, 64, 64, generator=gen)
        with torch.no_grad():
            want = resnet(xb).numpy()
        got = sess.run(None, {"x": xb.numpy()})
        _assert_close(got, [want])
        # The model does classify: the argmax agrees too.
        np.testing.assert_array_equal(got[0].argmax(1), want.argmax(1))


# -------------------------------------------------------------------------------------------- BERT

SEQ, VOCAB = 16, 100


class BertOutputs(nn.Module):
    """Keyword call and a plain tuple out: BertModel.forward's signature is not positional-friendly."""

    def __init__(self, bert: Any) -> None:
        super().__init__()
        self.bert = bert

    def forward(self, input_ids: Any, attention_mask: Any) -> tuple[Any, Any]:
        out = self.bert(input_ids=input_ids, attention_mask=attention_mask)
        return out.last_hidden_state, out.pooler_output


@pytest.fixture(scope="module")
def bert() -> BertOutputs:
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    return BertOutputs(transformers.BertModel(config).eval()).eval()


def _bert_feeds(batch: int, gen: Any) -> dict[str, Any]:
    ids = torch.randint(0, VOCAB, (batch, SEQ), generator=gen)
    mask = torch.ones(batch, SEQ, dtype=torch.int64)
    mask[-1, SEQ // 2 + 2 :] = 0  # the last sequence is padded
    return {"input_ids": ids, "attention_mask": mask}


@pytest.mark.parametrize(("exporter", "opset"), EXPORTERS)
def test_bert_encoder(bert: BertOutputs, exporter: str, opset: int) -> None:
    gen = torch.Generator().manual_seed(2)
    feeds = _bert_feeds(2, gen)
    names = ["input_ids", "attention_mask"]
    outputs = ["last_hidden_state", "pooler_output"]
    proto = _export(bert, (feeds["input_ids"], feeds["attention_mask"]), exporter, opset, names, outputs)
    ops = {n.op_type for n in proto.graph.node}
    assert {"Gather", "MatMul", "Softmax", "LayerNormalization", "Erf", "Tanh"} <= ops, ops

    sess = onnxlite.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    inputs = sess.get_inputs()
    assert [i.name for i in inputs] == names
    assert all(i.type == "tensor(int64)" and i.shape[1] == SEQ for i in inputs)
    assert all(isinstance(i.shape[0], str) for i in inputs)  # symbolic batch
    assert [o.name for o in sess.get_outputs()] == outputs

    for batch in (2, 3):
        if batch != 2:
            feeds = _bert_feeds(batch, gen)
        with torch.no_grad():
            want = [t.numpy() for t in bert(feeds["input_ids"], feeds["attention_mask"])]
        got = sess.run(None, {k: v.numpy() for k, v in feeds.items()})
        _assert_close(got, want)
        # Same outputs by name, one at a time.
        (pooled,) = sess.run(["pooler_output"], {k: v.numpy() for k, v in feeds.items()})
        np.testing.assert_array_equal(pooled, got[1])
