"""Choosing the overall head's operating point on the validation split.

The bars that decide whether people keep a moderator switched on are false positives on everyday
prompts and reply openings (the stream gate checks every few tokens) and on benign look-alikes; the
bar that decides whether it protects anyone is recall on clearly harmful requests. The operating point
is the *lowest* threshold (most recall) that keeps both false-positive budgets on validation rows.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

import recipe_data as rd

FPR_EVERYDAY = 0.01  # everyday prompts, reply openings, safe responses, multilingual benign
# 0.01 lets one of the ~150 validation rows through: at 0.005 (none) a single borderline prompt set the
# point alone, and it moved from 0.64 to 0.69 and 0.87 between runs that differed in a few hundred rows
FPR_LOOKALIKE = 0.03  # benign look-alikes (public and hand-written)
CLEAR_SOURCES = ("advbench/harmful_behaviors", "harmbench", "strongreject", "tdc2023", "refusal_direction_splits/harmful",
                 "cyberseceval/interpreter", "handwritten/")
_EVERYDAY = ("everyday", "reply_openings", "responses_safe", "multilingual")


def groups(rows: list[rd.Row]) -> dict[str, np.ndarray]:
    src = [r.source for r in rows]
    lab = np.array([r.label for r in rows])
    return {
        "clear_harmful": np.array([r.label == 1 and r.kind == "request" and s.startswith(CLEAR_SOURCES) for r, s in zip(rows, src)]),
        "everyday": (lab == 0) & np.array([s.startswith("handwritten/") and any(k in s for k in _EVERYDAY) for s in src]),
        "lookalike": (lab == 0) & np.array([r.kind == "lookalike" for r in rows]),
        "all_unsafe": lab == 1,
        "all_safe": lab == 0,
    }


def choose_operating_point(p: np.ndarray, val: list[rd.Row], log: Callable[[str], None] = print) -> tuple[float, dict]:
    g = groups(val)
    grid = np.round(np.linspace(0.02, 0.98, 97), 3)

    def stats(t: float) -> dict:
        hit = p >= t
        return {k: float(hit[m].mean()) if m.any() else float("nan") for k, m in g.items()} | {"t": float(t)}

    table = [stats(t) for t in grid]
    ok = [s for s in table if (np.isnan(s["everyday"]) or s["everyday"] <= FPR_EVERYDAY)
          and (np.isnan(s["lookalike"]) or s["lookalike"] <= FPR_LOOKALIKE)]
    chosen = ok[0] if ok else table[-1]
    log("validation (rate flagged): " + ", ".join(f"{k} n={int(m.sum())}" for k, m in g.items()))
    for s in table[::8] + [chosen]:
        log("  t={t:.2f} clear_harmful {clear_harmful:.3f} all_unsafe {all_unsafe:.3f} everyday {everyday:.3f} "
            "lookalike {lookalike:.3f} all_safe {all_safe:.3f}".format(**s))
    log(f"operating point: P(unsafe) >= {chosen['t']:.3f} (mapped to 0.5)")
    return chosen["t"], {"chosen": chosen, "fpr_budget_everyday": FPR_EVERYDAY, "fpr_budget_lookalike": FPR_LOOKALIKE}
