"""The default moderator's network: text CNNs over a shared token table, their batching helpers,
torch inference, ONNX export (token table stored fp16) and onnxruntime inference for parity
and evaluation. torch / onnx / onnxruntime are imported inside functions."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import recipe_data as rd
from recipe_config import MAX_LEN, WORK


def build_ensemble(table: np.ndarray, n_labels: int, members: int, freeze_emb: bool = True):
    """`members` text CNNs sharing one token table; the output is the mean of their logits."""
    import torch
    from torch import nn

    first = build_model(table, n_labels, freeze_emb=freeze_emb)
    models = [first] + [build_model(table, n_labels, freeze_emb=freeze_emb, emb=first.emb) for _ in range(members - 1)]

    class Ensemble(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.members = nn.ModuleList(models)
            self.register_buffer("calib", torch.zeros(n_labels))

        def forward(self, input_ids, attention_mask):
            return torch.stack([m(input_ids, attention_mask) for m in self.members]).mean(0) - self.calib

    return Ensemble()


def build_model(table: np.ndarray, n_labels: int, hidden: int = 256, freeze_emb: bool = False, emb=None):
    import torch
    from torch import nn

    class TextCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = emb if emb is not None else nn.Embedding.from_pretrained(torch.tensor(table), freeze=freeze_emb, padding_idx=0)
            d = table.shape[1]
            self.conv = nn.Conv1d(d, hidden, 3, padding=1)
            self.conv2 = nn.Conv1d(hidden, hidden, 3, padding=1)
            self.head = nn.Sequential(nn.Linear(2 * hidden + d, hidden), nn.GELU(), nn.Dropout(0.2), nn.Linear(hidden, n_labels))
            self.drop = nn.Dropout(0.1)
            self.register_buffer("calib", torch.zeros(n_labels))
            self.aux = nn.Linear(2 * hidden + d, 384)  # training only: predicts MiniLM's sentence embedding

        def forward(self, input_ids, attention_mask):
            return self.head(self.features(input_ids, attention_mask)) - self.calib

        def features(self, input_ids, attention_mask):
            m = attention_mask.unsqueeze(-1).to(torch.float32)  # [b, s, 1]
            e = self.emb(input_ids).to(torch.float32) * m
            mean = e.sum(1) / m.sum(1).clamp(min=1.0)
            h1 = torch.nn.functional.gelu(self.conv(self.drop(e).transpose(1, 2)))  # [b, h, s]
            mt = m.transpose(1, 2)
            h2 = torch.nn.functional.gelu(self.conv2(h1 * mt)) + h1
            neg = (1.0 - mt) * -1e4
            p1 = (h1 + neg).amax(2)
            p2 = (h2 + neg).amax(2)
            return torch.cat([p1, p2, mean], 1)

    return TextCNN()


def encode(tok, texts: list[str], max_len: int):
    tok.enable_truncation(max_len)
    tok.no_padding()
    return [e.ids for e in tok.encode_batch(texts)]


def pad(batch_ids: list[list[int]]):
    w = max(len(x) for x in batch_ids)
    ids = np.zeros((len(batch_ids), w), dtype=np.int64)
    mask = np.zeros_like(ids)
    for i, x in enumerate(batch_ids):
        ids[i, : len(x)] = x
        mask[i, : len(x)] = 1
    return ids, mask


def predict_torch(model, ids_list: list[list[int]], bs: int = 256) -> np.ndarray:
    import torch

    model.eval()
    order = np.argsort([len(x) for x in ids_list])
    out = np.zeros((len(ids_list), len(rd.LABELS)), dtype=np.float32)
    with torch.no_grad():
        for s in range(0, len(order), bs):
            idx = order[s : s + bs]
            ids, mask = pad([ids_list[i] for i in idx])
            out[idx] = torch.sigmoid(model(torch.tensor(ids), torch.tensor(mask))).numpy()
    return out


# ---------------------------------------------------------------- ONNX
def export_onnx(model, path: Path) -> None:
    import onnx
    import torch
    from onnx import numpy_helper

    model.eval()
    ids = torch.tensor([[101, 7592, 2088, 102]], dtype=torch.int64)
    mask = torch.ones_like(ids)
    tmp = WORK / "fp32.onnx"
    torch.onnx.export(model, (ids, mask), str(tmp), input_names=["input_ids", "attention_mask"], output_names=["logits"],
                      dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                                    "logits": {0: "batch"}}, opset_version=17, dynamo=False)
    m = onnx.load(str(tmp))
    # store the token table in fp16 (halves the file) and cast after the Gather
    g = m.graph
    emb_name = next(i.name for i in g.initializer if len(i.dims) == 2 and i.dims[0] > 10000)
    init = next(i for i in g.initializer if i.name == emb_name)
    arr16 = numpy_helper.to_array(init).astype(np.float16)
    init.CopyFrom(numpy_helper.from_array(arr16, emb_name))
    for node in g.node:
        if node.op_type == "Gather" and node.input[0] == emb_name:
            old = node.output[0]
            node.output[0] = old + "_fp16"
            cast = onnx.helper.make_node("Cast", [old + "_fp16"], [old], to=onnx.TensorProto.FLOAT, name="emb_cast")
            idx = list(g.node).index(node)
            g.node.insert(idx + 1, cast)
            break
    m.producer_name = "prism-default recipe"
    onnx.checker.check_model(m)
    onnx.save(m, str(path))


def ort_predict(path: Path, tok, texts: list[str], max_len: int = MAX_LEN) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ids_list = encode(tok, texts, max_len)
    order = np.argsort([len(x) for x in ids_list])
    out = np.zeros((len(texts), len(rd.LABELS)), dtype=np.float32)
    for s in range(0, len(order), 128):
        idx = order[s : s + 128]
        ids, mask = pad([ids_list[i] for i in idx])
        out[idx] = 1 / (1 + np.exp(-sess.run(None, {"input_ids": ids, "attention_mask": mask})[0]))
    return out
