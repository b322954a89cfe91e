"""Every benchmark in bench/ still runs, on the smallest inputs it takes.

Benchmarks print figures for people to read, so nothing else calls them, and two of them broke
unnoticed when build_gate's signature changed. This runs each one end to end against the real
parts (bundled classifier, Gemma 3 270M, a real upstream) and checks it printed its table. Nothing
here is timed: the figures themselves are read by people, from full runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

RUNS = {
    "bench_classifier.py": (["--single", "5", "--scan", "64", "--pairs", "1"], "cold start ratio"),
    "bench_cold_start.py": (["-n", "1"], "ratio check / import onnxruntime"),
    "bench_normalize.py": (["-n", "5"], "ratio = normalization time"),
    "bench_scan.py": (["--lines", "200", "--small", "100", "--backends", "rules,fixture,default"], "bundled default"),
    "bench_serve.py": (["--tokens", "8", "--rate", "0", "--rounds", "1"], "tokens/s, 16 clients"),
    "bench_chat_overhead.py": (["--prompts", "1", "--max-tokens", "4"], "moder. share"),
    "bench_decode.py": (["--tokens", "4", "--rounds", "1"], "prism LocalEngine.stream"),
    "bench_guard.py": (["--checks", "1", "--windows", "2"], "guard tokens per response token"),
    "bench_explain.py": (["--rounds", "1"], "ratio explain/check"),
}


def test_every_bench_is_listed_here():
    assert sorted(RUNS) == sorted(p.name for p in (ROOT / "bench").glob("bench_*.py"))


@pytest.mark.parametrize("name", sorted(RUNS))
def test_bench_runs_on_tiny_inputs(name, tmp_path):
    args, expect = RUNS[name]
    env = {**os.environ, "PRISM_HOME": str(tmp_path / "home"), "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, str(ROOT / "bench" / name), *args], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, f"{name} exited {r.returncode}:\n{r.stderr[-2000:]}"
    assert expect in r.stdout, f"{name} printed no {expect!r}:\n{r.stdout[-2000:]}"
    assert "Traceback" not in r.stderr
