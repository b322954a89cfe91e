"""The default model's operating-point rule (models/default/recipe_calibrate.py), on made-up scores."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "models" / "default"))

from recipe_calibrate import FPR_EVERYDAY, FPR_LOOKALIKE, choose_operating_point  # noqa: E402
from recipe_rows import Row  # noqa: E402


def _rows(n: int, label: int, source: str, kind: str) -> list[Row]:
    return [Row(f"{source} {i}", label, frozenset({"violent"}) if label else frozenset(), source, kind) for i in range(n)]


def _val(everyday: list[float], lookalike: list[float], harmful: list[float]):
    rows = (_rows(len(everyday), 0, "handwritten/everyday", "request") + _rows(len(lookalike), 0, "handwritten/hard_negatives", "lookalike")
            + _rows(len(harmful), 1, "advbench/harmful_behaviors", "request"))
    return np.array(everyday + lookalike + harmful), rows


def test_one_borderline_everyday_prompt_does_not_set_the_point_alone():
    """150 everyday rows, one of them scored 0.9: a one-row budget keeps the point where the rest decide."""
    assert FPR_EVERYDAY * 150 >= 1
    p, rows = _val([0.05] * 149 + [0.9], [0.1] * 100, list(np.linspace(0.3, 1.0, 100)))
    t, report = choose_operating_point(p, rows, log=lambda _: None)
    assert t < 0.35 and report["chosen"]["everyday"] <= FPR_EVERYDAY
    p2, rows2 = _val([0.05] * 148 + [0.9, 0.92], [0.1] * 100, list(np.linspace(0.3, 1.0, 100)))
    t2, _ = choose_operating_point(p2, rows2, log=lambda _: None)
    assert t2 > 0.9  # two of 150 is over budget: the point moves past them


def test_the_lookalike_budget_binds_too():
    look = [0.1] * 90 + [0.6] * 10  # 10 % of look-alikes at 0.6
    p, rows = _val([0.05] * 150, look, list(np.linspace(0.3, 1.0, 100)))
    t, report = choose_operating_point(p, rows, log=lambda _: None)
    assert t > 0.6 and report["chosen"]["lookalike"] <= FPR_LOOKALIKE
