"""A real, tiny, deterministic ONNX text classifier for tests and benchmarks.

`build_classifier(folder)` writes model.onnx (built with the `onnx` helper API),
tokenizer.json (a `tokenizers` WordLevel tokenizer) and prism.json into `folder`, in
the format prism_cli/moderators/classifier.py reads, so tests exercise onnxruntime and
tokenizers for real without the bundled default model.

The graph: Gather(embedding) -> masked max over tokens -> MatMul -> Add(bias) -> logits.
Each trigger word's embedding row pushes its category's logit (and the overall
"unsafe" logit) up by `push`; every other word, padding and [UNK] push nothing. With
sigmoid activation a text scores ~sigmoid(push + bias) for a category when it contains
one of its words and ~sigmoid(bias) when it does not, whatever its length.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

# Category ids of the shipped default policy (default_policies/default.yaml).
DEFAULT_TRIGGERS: dict[str, tuple[str, ...]] = {
    "S1": ("kill", "murder", "stab"),
    "S9": ("bomb", "explosive", "sarin"),
    "S11": ("suicide",),
    "S12": ("explicit",),
    "jailbreak": ("jailbreak", "dan"),
}
FILLER = ("the", "a", "how", "to", "i", "you", "make", "write", "poem", "about", "cake", "weather", "hello", "hi")
PUSH = 10.0
BIAS = -5.0
PAD_PENALTY = 50.0  # padding must never win the max; small enough that sigmoid(-55) does not overflow float32
UNSAFE_LABEL = "unsafe"


def safe_score() -> float:
    """P for a label none of whose words occur (about 0.0067)."""
    return _sigmoid(BIAS)


def trigger_score() -> float:
    """P for a label one of whose words occurs (about 0.9933)."""
    return _sigmoid(PUSH + BIAS)


def _sigmoid(x: float) -> float:
    import math

    return 1.0 / (1.0 + math.exp(-x))


def build_classifier(
    folder: Path,
    triggers: Mapping[str, Sequence[str]] = DEFAULT_TRIGGERS,
    unsafe_words: Sequence[str] | None = None,
    name: str = "prism-fixture",
    version: str = "1",
    max_length: int = 64,
) -> Path:
    """Write a classifier model folder and return it.

    `triggers` maps a label (named after the policy category it scores) to the words that
    flag it. `unsafe_words` push the overall "unsafe" label; by default every trigger word.
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    labels = [UNSAFE_LABEL] + list(triggers)
    if unsafe_words is None:
        unsafe_words = [w for words in triggers.values() for w in words]

    words = list(dict.fromkeys([*FILLER, *unsafe_words, *(w for ws in triggers.values() for w in ws)]))
    vocab = {"[PAD]": 0, "[UNK]": 1}
    for w in words:
        vocab.setdefault(w.lower(), len(vocab))

    emb = np.zeros((len(vocab), len(labels)), dtype=np.float32)
    for j, label in enumerate(labels[1:], start=1):
        for w in triggers[label]:
            emb[vocab[w.lower()], j] = PUSH
    for w in unsafe_words:
        emb[vocab[w.lower()], 0] = PUSH

    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(folder / "tokenizer.json"))

    n = len(labels)
    inits = [
        numpy_helper.from_array(emb, "embedding"),
        numpy_helper.from_array(np.eye(n, dtype=np.float32), "weight"),
        numpy_helper.from_array(np.full((n,), BIAS, dtype=np.float32), "bias"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2"),
        numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one"),
        numpy_helper.from_array(np.array(PAD_PENALTY, dtype=np.float32), "big"),
    ]
    nodes = [
        helper.make_node("Gather", ["embedding", "input_ids"], ["tok_emb"], axis=0),  # [B,S,L]
        helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),  # [B,S]
        helper.make_node("Unsqueeze", ["mask_f", "axis2"], ["mask3"]),  # [B,S,1]
        helper.make_node("Mul", ["tok_emb", "mask3"], ["kept"]),
        helper.make_node("Sub", ["mask3", "one"], ["mask_m1"]),  # 0 for tokens, -1 for padding
        helper.make_node("Mul", ["mask_m1", "big"], ["pad_penalty"]),
        helper.make_node("Add", ["kept", "pad_penalty"], ["masked"]),
        helper.make_node("ReduceMax", ["masked"], ["pooled"], axes=[1], keepdims=0),  # [B,L]
        helper.make_node("MatMul", ["pooled", "weight"], ["proj"]),
        helper.make_node("Add", ["proj", "bias"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "prism_fixture_classifier",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", n])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="prism-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(folder / "model.onnx"))

    cfg = {
        "name": name,
        "version": version,
        "labels": labels,
        "activation": "sigmoid",
        "max_length": max_length,
        "output": "logits",
        "category_map": {label: label for label in labels[1:]},
        "unsafe": UNSAFE_LABEL,
    }
    (folder / "prism.json").write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")
    return folder


def corrupt_model(folder: Path) -> Path:
    """Truncate model.onnx in place so loading it fails (a moderator that cannot run)."""
    model = Path(folder) / "model.onnx"
    data = model.read_bytes()
    model.write_bytes(data[: len(data) // 3])
    return folder
