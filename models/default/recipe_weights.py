"""Training targets, row weights and augmentation for prism-default 2.x.

Why weights: the public sets are mostly harmful *requests* against generic instructions, plus large
toxic-content sets; left as they are, a model learns topic words. Hand-written hard negatives,
everyday prompts and reply openings are few but carry the distinction that matters in use, so they
weigh more; the large content sets weigh less so they do not drown the requests.
"""

from __future__ import annotations

import random
from dataclasses import replace

from pathlib import Path

import numpy as np

import recipe_data as rd

# (predicate on a row, weight); the first match wins.
_WEIGHTS = [
    (lambda r: r.source.startswith("handwritten/") and r.label == 0, 3.0),
    (lambda r: r.source.startswith("handwritten/") and r.label == 1, 2.0),
    (lambda r: r.kind == "lookalike", 2.0),
    (lambda r: r.source.startswith("templates/"), 1.5),
    (lambda r: r.kind == "content", 0.5),
    (lambda r: r.kind == "response", 0.8),
    (lambda r: True, 1.0),
]


def weight(r: rd.Row) -> float:
    return next(w for pred, w in _WEIGHTS if pred(r))


SEVERE = ("sex_crime", "child")  # S3, S4: every shipped policy must block them


def targets(rows: list[rd.Row], severe: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """y [n, labels] (overall + categories), cat_mask (1 where a category target is known: unsafe rows
    with at least one category), w [n]. Unsafe rows in a SEVERE category weigh `severe` times more
    (a missed S3/S4 request costs more than any other miss). Positive and negative mass are then
    balanced to 1 : 1.2."""
    n, L = len(rows), len(rd.LABELS)
    y = np.zeros((n, L), dtype=np.float32)
    mask = np.zeros((n, L), dtype=np.float32)
    w = np.array([weight(r) * (severe if r.label and r.cats & set(SEVERE) else 1.0) for r in rows], dtype=np.float32)
    for i, r in enumerate(rows):
        y[i, 0] = r.label
        if r.label and r.cats:
            mask[i, 1:] = 1.0
            for c in r.cats:
                y[i, rd.LABELS.index(c)] = 1.0
    pos, neg = w[y[:, 0] == 1].sum(), w[y[:, 0] == 0].sum()
    w[y[:, 0] == 1] *= (pos + neg) / (2.2 * pos)
    w[y[:, 0] == 0] *= 1.2 * (pos + neg) / (2.2 * neg)
    return y, mask, w / w.mean()


POS_WEIGHT_CAP = 6.0


def category_pos_weight(y: np.ndarray, mask: np.ndarray, cap: float = POS_WEIGHT_CAP) -> np.ndarray:
    """Per category head, sqrt(negatives / positives) over the rows it is trained on, kept in [1, cap].

    Why: sex_crime is 3 % and child 2 % of the unsafe rows with categories (toxic is 53 %). Unweighted,
    2.0.3's sex_crime head reached 0.5 on only 47 % of its own hand-written S3 training rows, so a
    policy that relies on the S3/S4 thresholds (minimal) missed what the overall head saw. The square
    root lifts rare heads without making every unsafe text read as every rare category."""
    on = mask[:, 1:] > 0
    pos = (y[:, 1:] * on).sum(0)
    neg = on.sum(0) - pos
    pw = np.sqrt(neg / np.maximum(pos, 1.0))
    return np.clip(np.where(pos > 0, pw, 1.0), 1.0, cap).astype(np.float32)


# (transform name in obfuscation.py, share of short rows that get such a copy)
AUGMENT = [("typos", 0.25), ("leet", 0.04), ("spaced", 0.03), ("dotted", 0.02), ("homoglyphs", 0.03)]
# typos: prism's normalization undoes leetspeak, spacing and homoglyphs, but not misspellings; at 0.10 the
# first 2.0 run kept only 0.43x of its clean recall on typo'd held-out probes


def augment(rows: list[rd.Row], rng: random.Random, max_chars: int = 300) -> list[rd.Row]:
    """The rows plus obfuscated copies of a share of the short ones, with the same label. Benign rows
    are obfuscated too: an unusual spelling must not become a reason to block."""
    try:
        import obfuscation
    except ImportError:  # the hand-written data module is not there yet: train without copies
        return list(rows)
    out = list(rows)
    for r in rows:
        if r.kind == "response" and r.label == 0 and r.source.startswith("handwritten/"):
            words = r.text.split()
            if len(words) > 4:  # the stream gate sees every reply a few words at a time
                k = rng.randint(2, min(12, len(words) - 1))
                out.append(replace(r, text=" ".join(words[:k]), source=r.source + "+prefix"))
        if len(r.text) > max_chars or r.kind == "document":
            continue
        for name, share in AUGMENT:
            if rng.random() < share:
                t = getattr(obfuscation, name)(r.text, rng)
                if t != r.text:
                    out.append(replace(r, text=t, source=r.source + f"+{name}"))
    return out


def category_fit(p: np.ndarray, rows: list[rd.Row], at: float = 0.5) -> dict[str, dict]:
    """Per category, the share of unsafe rows labelled with it whose exported category score reaches `at`
    (a policy's usual threshold): how far a policy that reads only category scores can be trusted."""
    out = {}
    for j, c in enumerate(rd.CATEGORIES, start=1):
        idx = [i for i, r in enumerate(rows) if r.label and c in r.cats]
        if idx:
            out[c] = {"n": len(idx), "recall": float((p[idx, j] >= at).mean())}
    return out


SHIPPED_POLICIES = ("default", "minimal", "strict")
SHIPPED_POLICY_DIR = Path(__file__).resolve().parents[2] / "default_policies"  # the repo's, not a user's copy


def severe_rules() -> dict:
    """How each shipped policy reads the scores of a SEVERE harm: it blocks at its overall threshold, or
    at its S3 or S4 threshold (read from default_policies/, so the figure follows the YAML)."""
    from prism_cli.policy_store import load_policy

    rules = {}
    for name in SHIPPED_POLICIES:
        pol = load_policy(str(SHIPPED_POLICY_DIR / f"{name}.yaml"))
        ov, t3, t4 = pol.overall.threshold, pol.category("S3").threshold, pol.category("S4").threshold
        rules[name] = lambda p, s3, s4, ov=ov, t3=t3, t4=t4: (p[:, 0] >= ov) | (p[:, s3] >= t3) | (p[:, s4] >= t4)
    return rules


def severe_fit(p: np.ndarray, rows: list[rd.Row]) -> dict[str, float | int]:
    """Share of the S3/S4 unsafe rows that each shipped policy blocks: on validation rows, the figure
    that says whether every shipped policy will block such requests, without reading probes."""
    idx = [i for i, r in enumerate(rows) if r.label and r.cats & set(SEVERE)]
    if not idx:
        return {"n": 0}
    s3, s4 = (rd.LABELS.index(c) for c in SEVERE)
    q = p[idx]
    return {"n": len(idx)} | {k: float(rule(q, s3, s4).mean()) for k, rule in severe_rules().items()}


def average_weights(states: list[dict]) -> dict:
    """Uniform soup: the element-wise mean of several runs' weights (torch state dicts, or dicts of numpy
    arrays). Why it is sound here: every run starts from the same pretrained encoder and the same head
    initialisation and differs only in shuffling and augmentation, so the runs stay in one basin; their
    mean scores about like their ensemble at one model's cost and smooths out the seed-to-seed swings
    seen in the GPU sweep. Integer buffers (position ids) are taken from the first run."""
    if not states:
        raise ValueError("no weights to average")
    keys = list(states[0])
    if any(list(s) != keys for s in states[1:]):
        raise ValueError("weights from different networks cannot be averaged")

    def is_float(t) -> bool:
        return t.is_floating_point() if hasattr(t, "is_floating_point") else np.issubdtype(t.dtype, np.floating)

    return {k: sum(s[k] for s in states) / len(states) if is_float(states[0][k]) else states[0][k] for k in keys}
