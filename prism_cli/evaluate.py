"""`prism eval`: how well moderators separate labeled safe and unsafe texts under a policy.

Two kinds of figure, both per moderator, overall and per data category:

* At the policy's thresholds: precision, recall, F1 and false-positive rate of the
  gate's own decision. A row counts as flagged when the gate says warn or block,
  exactly what `prism check` / `scan` would do with it (a `log` action is not flagged).
* Threshold-free: average precision (AP, also reported as `auprc`), defined as
  scikit-learn's `average_precision_score`: sort by score, one step per *distinct*
  score (tied rows enter together), AP = sum over steps of (R_k - R_{k-1}) * P_k.
  It is a step sum, not the trapezoid under the PR curve, which over-rewards
  interpolating between operating points that do not exist.

Per category (rows whose `category` is set), because "how often is *this* harm caught":
* positives are the rows of that category labeled unsafe;
* negatives are the category's own safe rows when the file has any (a matched contrast
  set, e.g. benign look-alikes of the same topic), otherwise every safe row of the file
  (this harm against all benign text). `negatives_from` says which was used;
* the decision is still the gate's decision on the whole text: a hateful text blocked
  under another category is stopped all the same, which is what the user sees;
* AP ranks rows by the moderator's score for the policy category the data category
  maps to (by id or name, case-insensitive, or `--map data=POLICY_ID`), when the
  moderator scores that category for this role; otherwise by its overall P(unsafe).
  `score` says which was used, so a generic score is never mistaken for a per-category one.

A figure whose denominator is empty (recall with no positives, precision with nothing
flagged, FPR with no negatives, AP with no positives) is None, never a made-up 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from prism_cli.errors import InputError, ModeratorError
from prism_cli.eval_data import LabeledRow
from prism_cli.gate import Gate
from prism_cli.policy import Policy
from prism_cli.verdict import OVERALL, Decision, Scores

FLAGGED = (Decision.WARN, Decision.BLOCK)


# ---------------------------------------------------------------- metrics


def average_precision(labels: Sequence[int], scores: Sequence[float]) -> float | None:
    """Step-wise AP as scikit-learn defines it; tied scores form one step. None without positives."""
    if len(labels) != len(scores):
        raise ValueError("labels and scores differ in length")
    positives = sum(labels)
    if positives == 0:
        return None
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    ap = prev_recall = 0.0
    tp = fp = 0
    for k, i in enumerate(order):
        if labels[i]:
            tp += 1
        else:
            fp += 1
        last_of_tie = k + 1 == len(order) or scores[order[k + 1]] != scores[i]
        if last_of_tie:
            recall = tp / positives
            ap += (recall - prev_recall) * (tp / (tp + fp))
            prev_recall = recall
    return ap


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def metrics(labels: Sequence[int], flagged: Sequence[bool], scores: Sequence[float]) -> dict[str, Any]:
    """Counts, precision, recall, F1 and FPR of the decisions, and AP of the scores."""
    tp = sum(1 for y, f in zip(labels, flagged) if y and f)
    fp = sum(1 for y, f in zip(labels, flagged) if not y and f)
    pos = sum(labels)
    neg = len(labels) - pos
    ap = average_precision(labels, scores)
    return {
        "n": len(labels), "positives": pos, "negatives": neg,
        "tp": tp, "fp": fp, "fn": pos - tp, "tn": neg - fp,
        "precision": _ratio(tp, tp + fp), "recall": _ratio(tp, pos),
        # 2TP / (2TP + FP + FN): equals 2PR / (P + R), and is 0 (not undefined) when nothing is flagged.
        "f1": _ratio(2 * tp, 2 * tp + fp + (pos - tp)), "fpr": _ratio(fp, neg),
        "ap": ap, "auprc": ap,
    }


# ---------------------------------------------------------------- moderators


def _norm(s: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", s.casefold())


def parse_map(items: Iterable[str], policy: Policy) -> dict[str, str]:
    """`--map data_category=POLICY_ID` pairs, each id checked against the policy."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, pid = item.partition("=")
        if not sep or not name.strip() or not pid.strip():
            raise InputError(f"--map {item!r}: expected DATA_CATEGORY=POLICY_CATEGORY_ID")
        if policy.category(pid.strip()) is None:
            ids = ", ".join(c.id for c in policy.categories)
            raise InputError(f"--map {item!r}: policy {policy.name!r} has no category {pid.strip()!r} (ids: {ids})")
        out[name.strip()] = pid.strip()
    return out


def map_category(name: str, policy: Policy, explicit: dict[str, str]) -> str | None:
    """The policy category a data category stands for: --map, then id, then name (case-insensitive)."""
    if name in explicit:
        return explicit[name]
    key = _norm(name)
    for c in policy.categories:
        if _norm(c.id) == key:
            return c.id
    for c in policy.categories:
        if _norm(c.name) == key:
            return c.id
    return None


# ---------------------------------------------------------------- running


@dataclass
class _Run:
    """What one moderator said about every row (scores kept so per-category AP can pick a key)."""

    gate: Gate
    covered: set[str]
    flagged: list[bool] = field(default_factory=list)
    unsafe: list[float] = field(default_factory=list)
    scores: list[Scores] = field(default_factory=list)


def _covered(gate: Gate, role: str) -> set[str]:
    cats: set[str] = set()
    for m in gate.moderators:
        cats |= set(m.categories())
    return cats & {c.id for c in gate.policy.active(role)}


def _batches(rows: Iterable[LabeledRow], size: int) -> Iterable[list[LabeledRow]]:
    batch: list[LabeledRow] = []
    for r in rows:
        batch.append(r)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def evaluate(
    rows: Iterable[LabeledRow],
    gates: Sequence[Gate],
    role: str = "prompt",
    batch_size: int = 64,
    category_map: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run every gate over the rows (streamed in batches) and return the report as one JSON-able dict.

    A moderator that fails on any batch raises ModeratorError: a partial evaluation would
    report figures for data it never saw.
    """
    if not gates:
        raise ValueError("evaluate needs at least one gate")
    policy = gates[0].policy
    runs = [_Run(g, _covered(g, role)) for g in gates]
    labels: list[int] = []
    categories: list[str | None] = []
    for batch in _batches(rows, batch_size):
        texts = [r.text for r in batch]
        ids = [r.where for r in batch]
        for run in runs:
            verdicts = run.gate.check_batch(texts, role, ids)  # type: ignore[arg-type]
            for v in verdicts:
                if v.error is not None:
                    raise ModeratorError(f"{run.gate.name} could not run on {v.id}: {v.error}")
                run.flagged.append(v.decision in FLAGGED)
                run.unsafe.append(v.unsafe)
                run.scores.append(v.scores)
        labels.extend(r.label for r in batch)
        categories.extend(r.category for r in batch)
    if not labels:
        raise InputError("no labeled rows to evaluate")

    cmap = category_map or {}
    names = sorted({c for c in categories if c is not None})
    safe_rows = [i for i, y in enumerate(labels) if not y]
    report_mods = []
    for run in runs:
        cats: dict[str, Any] = {}
        for name in names:
            pid = map_category(name, policy, cmap)
            key = pid if pid is not None and pid in run.covered else OVERALL
            mine = [i for i, c in enumerate(categories) if c == name]
            own_safe = [i for i in mine if not labels[i]]
            idx = [i for i in mine if labels[i]] + (own_safe or safe_rows)
            scores = [run.unsafe[i] if key == OVERALL else run.scores[i].get(key, run.unsafe[i]) for i in idx]
            m = metrics([labels[i] for i in idx], [run.flagged[i] for i in idx], scores)
            m.update(policy_category=pid, score=key, negatives_from="category" if own_safe else "all_safe")
            cats[name] = m
        report_mods.append({
            "moderator": run.gate.name,
            "overall": metrics(labels, run.flagged, run.unsafe),
            "categories": cats,
        })
    return {
        "policy": policy.name,
        "role": role,
        "n": len(labels),
        "positives": sum(labels),
        "flagged_when": "the gate decides warn or block",
        "moderators": report_mods,
    }


def rounded(obj: Any, digits: int = 6) -> Any:
    """The report with floats rounded, for JSON output."""
    if isinstance(obj, float):
        return round(obj, digits)
    if isinstance(obj, dict):
        return {k: rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, list):
        return [rounded(v, digits) for v in obj]
    return obj
