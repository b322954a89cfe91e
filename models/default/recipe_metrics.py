"""Numpy-only metrics for the recipe (AP, precision/recall/FPR, the default policy's block
decision) and the held-out evaluation sets built from the test split."""

from __future__ import annotations

import numpy as np

import recipe_data as rd
from recipe_config import REPO


# ---------------------------------------------------------------- metrics (numpy only)
def average_precision(y: np.ndarray, s: np.ndarray) -> float:
    y = np.asarray(y)
    if y.sum() == 0 or y.sum() == len(y):
        return float("nan")
    o = np.argsort(-np.asarray(s), kind="mergesort")
    y = y[o]
    tp = np.cumsum(y)
    prec = tp / np.arange(1, len(y) + 1)
    return float((prec * y).sum() / y.sum())


def rates(y: np.ndarray, pred: np.ndarray) -> dict:
    y, pred = np.asarray(y).astype(bool), np.asarray(pred).astype(bool)
    tp, fp = int((y & pred).sum()), int((~y & pred).sum())
    fn, tn = int((y & ~pred).sum()), int((~y & ~pred).sum())
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else float("nan")
    return {"n": len(y), "pos": tp + fn, "precision": p, "recall": r,
            "f1": 2 * p * r / (p + r) if p + r else 0.0, "fpr": fp / (fp + tn) if fp + tn else float("nan")}


def block_decision(probs: np.ndarray, overall: float = 0.5, cat: float = 0.5) -> np.ndarray:
    """What the default policy does with these scores: block if P(unsafe) or any mapped
    category reaches its threshold (toxic has no category: it only feeds P(unsafe))."""
    mapped = [rd.LABELS.index(k) for k in rd.CATEGORY_MAP]
    return (probs[:, 0] >= overall) | (probs[:, mapped] >= cat).any(1)


# ---------------------------------------------------------------- evaluation sets
from recipe_calibrate import CLEAR_SOURCES  # noqa: E402


PRIMARY = ("child", "sex_crime", "self_harm", "weapons", "cyber", "elections", "privacy", "ip", "defamation",
           "specialized_advice", "sexual", "hate", "violent", "crime", "jailbreak", "toxic")


def primary_category(r: rd.Row) -> str | None:
    """One category per unsafe row for `prism eval`: the policy id of its most specific label
    (toxic, which no policy category holds, stays "toxic"); safe rows have none, so they are
    the negatives of every category."""
    if not r.label:
        return None
    for c in PRIMARY:
        if c in r.cats:
            m = rd.CATEGORY_MAP.get(c, c)
            return m if isinstance(m, str) else m[-1]
    return "other"


def eval_sets(test: list[rd.Row]) -> dict[str, list[dict]]:
    def row(r: rd.Row) -> dict:
        return {"text": r.text, "label": r.label, "category": primary_category(r), "source": r.source}

    test = [r for r in test if not r.source.startswith("templates/")]  # templated rows: training aids, not test data
    responses = [r for r in test if r.kind == "response"]
    clear = [r for r in test if r.kind == "request" and r.label and r.source.startswith(CLEAR_SOURCES)]
    requests = [r for r in test if r.kind == "request" and r.label]
    benign_req = [r for r in test if r.kind == "benign"]
    look = [r for r in test if r.kind == "lookalike" and not r.source.startswith("templates/")]
    hand = [rd.Row(t.strip(), 0, frozenset(), "tests/data/benign_lookalikes", "lookalike")
            for t in (REPO / "tests" / "data" / "benign_lookalikes.txt").read_text(encoding="utf-8").splitlines() if t.strip()]
    content = [r for r in test if r.kind == "content"]
    jail = [r for r in test if r.kind == "jailbreak"]
    docs = [r for r in test if r.kind == "document"]
    return {
        "harmful_requests": [row(r) for r in requests + benign_req],
        "clear_harmful_vs_lookalikes": [row(r) for r in clear + look + hand],
        "handwritten_lookalikes": [row(r) for r in clear + hand],
        "toxic_content": [row(r) for r in content],
        "jailbreak_injection": [row(r) for r in jail + docs + benign_req],
        "responses": [row(r) for r in responses],
    }
