"""Training and calibration: loss targets, the training loop of one text CNN, and the per-head
operating points chosen on the validation split (folded into the output bias by train.py)."""

from __future__ import annotations

import math
import time

import numpy as np

import recipe_data as rd
from recipe_config import SEED
from recipe_metrics import CLEAR_SOURCES
from recipe_model import pad


def targets(rows: list[rd.Row]) -> tuple[np.ndarray, np.ndarray]:
    """Label matrix and loss weights. Unsafe rows: their categories are 1; the others are
    probably 0 (sources label one category) so they get a lower weight."""
    y = np.zeros((len(rows), len(rd.LABELS)), dtype=np.float32)
    w = np.ones_like(y)
    for i, r in enumerate(rows):
        y[i, 0] = r.label
        for c in r.cats:
            y[i, rd.LABELS.index(c)] = 1.0
        if r.label:
            w[i, 1:] = np.where(y[i, 1:] > 0, 1.0, 0.3)
        # benign look-alikes are the scarce, important negatives
        if r.kind == "lookalike":
            w[i] *= 2.0
    return y, w


def train(model, tr_ids, y, w, epochs: int, lr: float, bs: int = 64, log=print, teacher=None, aux_weight: float = 1.0,
          seed: int = SEED):
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    emb_params = [p for p in model.emb.parameters() if p.requires_grad]
    other = [p for n, p in model.named_parameters() if not n.startswith("emb.")]
    groups = [{"params": other, "lr": lr, "weight_decay": 1e-2}]
    if emb_params:  # a fine-tuned token table moves more slowly than the head
        groups.append({"params": emb_params, "lr": lr * 0.3, "weight_decay": 0.0})
    opt = torch.optim.AdamW(groups)
    steps = epochs * math.ceil(len(tr_ids) / bs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[g["lr"] for g in groups], total_steps=steps, pct_start=0.1)
    lengths = np.array([len(x) for x in tr_ids])
    for ep in range(epochs):
        model.train()
        # bucket by length for speed: shuffle, then sort within chunks of 50 batches
        perm = rng.permutation(len(tr_ids))
        chunks = [perm[i : i + bs * 50] for i in range(0, len(perm), bs * 50)]
        batches = []
        for c in chunks:
            c = c[np.argsort(lengths[c])]
            batches += [c[i : i + bs] for i in range(0, len(c), bs)]
        rng.shuffle(batches)
        tot, t0 = 0.0, time.time()
        for b in batches:
            ids, mask = pad([tr_ids[i] for i in b])
            ids_t = torch.tensor(ids)
            # token dropout: replace 10% of tokens with [UNK] so no single topic word decides
            drop = (torch.rand(ids_t.shape) < 0.1) & (ids_t > 102)
            ids_t = torch.where(drop, torch.full_like(ids_t, 100), ids_t)
            feats = model.features(ids_t, torch.tensor(mask))
            logits = model.head(feats) - model.calib
            loss = (torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.tensor(y[b]), reduction="none")
                    * torch.tensor(w[b])).mean()
            if teacher is not None:
                cos = torch.nn.functional.cosine_similarity(model.aux(feats), torch.tensor(teacher[b]), dim=1)
                loss = loss + aux_weight * (1.0 - cos).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += loss.item() * len(b)
        log(f"epoch {ep + 1}/{epochs}: loss {tot / len(tr_ids):.4f} ({time.time() - t0:.0f}s)")


# ---------------------------------------------------------------- calibration on val
RECALL_TARGET = 0.96


def choose_thresholds(pv: np.ndarray, val: list[rd.Row]) -> np.ndarray:
    """Per head, the probability that will be mapped to 0.5, chosen on the validation split.
    Category heads: at most 2% of safe validation requests (benign + look-alikes) may reach
    it, and never below 0.5. Overall head: the policy's decision (overall or any category)
    keep recall >= RECALL_TARGET on clearly harmful validation requests; the highest such
    threshold is taken (fewest false positives)."""
    lab = np.array([r.label for r in val])
    clear = np.array([r.label == 1 and r.source in CLEAR_SOURCES for r in val])
    safe_req = (lab == 0) & np.array([r.kind in ("benign", "lookalike") for r in val])
    th = np.full(len(rd.LABELS), 0.5)
    for j in range(1, len(rd.LABELS)):
        th[j] = max(0.5, float(np.quantile(pv[safe_req, j], 0.98)))
    mapped = [rd.LABELS.index(k) for k in rd.CATEGORY_MAP]
    cat_hit = (pv[:, mapped] >= th[mapped]).any(1)
    best_t = 0.05
    for t in np.linspace(0.05, 0.9, 171):  # the highest threshold that still keeps the recall target
        pred = (pv[:, 0] >= t) | cat_hit
        if pred[clear].mean() >= RECALL_TARGET:
            best_t = float(t)
    th[0] = best_t
    return th
