"""The shared vocabulary in verdict.py: one overall rule, one exit-code rule, used by every caller."""

from __future__ import annotations

import pytest

from prism_cli.batch import exit_code as batch_exit_code
from prism_cli.policy import parse_policy
from prism_cli.scan import Summary
from prism_cli.verdict import OVERALL, Decision, Verdict, exit_code, overall_score


@pytest.mark.parametrize("failed, blocked, code", [(False, False, 0), (False, True, 1), (True, False, 3), (True, True, 3)])
def test_a_moderator_failure_beats_a_block_beats_an_allow(failed, blocked, code):
    assert exit_code(failed, blocked) == code


def test_scan_and_batch_use_the_one_rule():
    s = Summary()
    s.tally(Verdict("1", "prompt", Decision.BLOCK))
    assert s.exit_code == 1 and (s.allowed, s.warned, s.blocked) == (0, 0, 1)
    s.tally(Verdict("2", "prompt", Decision.BLOCK, error="moderator failed: x"))
    assert s.exit_code == 3

    class Turn:
        def __init__(self, failed: bool, blocked: bool):
            self.moderator_failed, self.blocked = failed, blocked

    assert batch_exit_code(iter([Turn(False, True), Turn(True, False)])) == 3  # an iterator, read once
    assert batch_exit_code([Turn(False, True)]) == 1 and batch_exit_code([]) == 0


def test_overall_is_the_backends_own_else_the_highest_category():
    assert overall_score({"a": 0.9, OVERALL: 0.2}) == 0.2
    assert overall_score({"a": 0.9, "b": 0.3}) == 0.9
    assert overall_score({"a": 0.9, "b": 0.3}, among={"b"}) == 0.3
    assert overall_score({}) == 0.0


def test_flagged_labels_name_categories_and_the_overall_score():
    pol = parse_policy("name: t\ncategories:\n  - id: S1\n    name: Violent Crimes\n    description: d\n", "t.yaml")
    assert pol.labels(["S1", OVERALL, "x"]) == "Violent Crimes [S1], unsafe (overall), x [x]"
