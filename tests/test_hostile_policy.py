"""Policy files written by someone else: alias bombs, recursive YAML, catastrophic regexes,
and a fail-open on_error are refused with file:line:key (exit 2), quickly and in one line."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from prism_cli.errors import PolicyError
from prism_cli.moderators.rules import RulesModerator
from prism_cli.policy import parse_policy

# 9 laughs, 9 times over, six levels deep: ~600k nodes once expanded, under 300 bytes on disk
BOMB = """name: bomb
a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
categories: [{id: x, name: *f}]
"""

BASE = """name: p
categories:
  - id: a
    name: A
    description: d
"""


def _fails(text: str, expect: str) -> float:
    t0 = time.perf_counter()
    with pytest.raises(PolicyError) as e:
        parse_policy(text, "p.yaml")
    took = time.perf_counter() - t0
    assert str(e.value).startswith(expect), str(e.value)
    assert "\n" not in str(e.value)
    return took


def test_alias_bomb_is_refused_at_the_line_that_explodes():
    assert len(BOMB.encode()) < 300
    took = _fails(BOMB, "p.yaml:7: expands to more than 100,000 YAML nodes through aliases")
    assert took < 5.0  # refused in milliseconds; unbounded, this file took 13.8 s and 188 MB (a guard, not a speed test)


def test_wide_alias_of_a_long_string_is_refused():
    # 50k aliases of one 100 kB keyword: 0.3 MB on disk, 5 GB of regex source once expanded
    text = BASE + "    rules:\n      keywords: [&k " + "x" * 100_000 + ", " + ", ".join(["*k"] * 50_000) + "]\n"
    assert len(text) < 1_000_000
    took = _fails(text, "p.yaml:7: expands to more than 4,000,000 characters through aliases")
    assert took < 10.0  # unbounded: a 5 GB regex source


def test_recursive_and_deep_yaml_are_refused():
    _fails("name: r\ncategories: &c [*c]\n", "p.yaml:2: a YAML alias refers to a node that contains it")
    _fails("name: d\ncategories: " + "[" * 200 + "]" * 200 + "\n", "p.yaml:2: nested deeper than 32 levels")


def test_ordinary_aliases_still_work():
    text = BASE + "    threshold: &t 0.3\n  - id: b\n    name: B\n    description: d\n    threshold: *t\n"
    p = parse_policy(text, "p.yaml")
    assert p.category("a").threshold == p.category("b").threshold == 0.3


@pytest.mark.parametrize("value", ["allow", "warn"])
def test_on_error_must_fail_closed(value):
    _fails(BASE + f"defaults:\n  on_error: {value}\n",
           f"p.yaml:7: defaults.on_error: must be block, got '{value}': prism fails closed")
    assert parse_policy(BASE + "defaults: {on_error: block}\n", "p.yaml").on_error == "block"


@pytest.mark.parametrize("pattern, why", [
    (r"(a)\1", "backreferences are not supported"),
    (r"(?<!x)a", "lookaround is not supported"),
    (r"a(?=b)", "lookaround is not supported"),
    (r"a{5000}", "invalid repetition size"),
])
def test_patterns_re2_cannot_run_name_file_line_key(pattern, why):
    text = BASE + f"    rules:\n      patterns: ['ok', '{pattern}']\n"
    _fails(text, "p.yaml:7: categories[0].rules.patterns[1]: invalid regular expression (RE2 syntax): ")
    with pytest.raises(PolicyError, match=why.replace("(", r"\(")):
        parse_policy(text, "p.yaml")


def test_catastrophic_pattern_runs_in_linear_time():
    p = parse_policy(BASE + "    rules:\n      patterns: ['^(a+)+$']\n", "p.yaml")
    r = RulesModerator(p)
    evil = "a" * 100_000 + "b"
    t0 = time.perf_counter()
    scores = r.score([evil, "a" * 50_000, "b"], "prompt")
    assert time.perf_counter() - t0 < 10.0  # Python's re needs longer than the universe for 30 a's and a b
    assert [s["a"] for s in scores] == [0.0, 1.0, 0.0]
    assert r.first_match("aaaa", "response") == ("a", 4)


def test_unicode_patterns_and_keywords_still_match():
    text = BASE + "    rules:\n      keywords: [убить]\n      patterns: ['\\pL+ été', 'ending (is|was) that']\n"
    r = RulesModerator(parse_policy(text, "p.yaml"))
    got = [s["a"] for s in r.score(["Я хочу УБИТЬ", "убитьё", "un ÉTÉ", "THE ENDING WAS THAT", "ending is not"], "prompt")]
    assert got == [1.0, 0.0, 1.0, 1.0, 0.0]


@pytest.mark.parametrize("content, expect", [
    (BOMB, ":7: expands to more than 100,000 YAML nodes"),
    (BASE + "defaults: {on_error: allow}\n", ":6: defaults.on_error: must be block"),
    (BASE + "    rules: {patterns: ['(x)\\1']}\n", ":6: categories[0].rules.patterns[0]: invalid regular expression"),
])
def test_check_refuses_hostile_policy_in_one_line(tmp_path, content, expect):
    f = tmp_path / "hostile.yaml"
    f.write_text(content)
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "prism_cli", "check", "--policy", str(f), "-m", "rules", "--text", "hi"],
                       capture_output=True, text=True, timeout=60, env={**os.environ, "NO_COLOR": "1"})
    assert time.perf_counter() - t0 < 20
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith(f"prism: error: {f}{expect}"), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
