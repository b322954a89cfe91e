"""Benchmark `prism check` cold start: wall time of `echo hi | prism check` against
`python -c "import onnxruntime"`, run interleaved in one process so both see the same machine load.

    python bench/bench_cold_start.py            # median of 9 pairs
    python bench/bench_cold_start.py -n 15 --importtime

The moderator is the bundled default (models/default) when present, else the tiny ONNX
classifier from tests/onnx_fixture.py: either way the check loads onnxruntime, so the ratio
says what prism adds on top of the runtime it cannot avoid. --importtime lists the imports
that cost most (python -X importtime), to find an eager import that could be lazy.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def timed(cmd: list[str], stdin: bytes, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    wall = time.perf_counter() - t0
    if r.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} exited {r.returncode}: {r.stderr.decode(errors='replace').strip()}")
    return wall


def importtime(cmd: list[str], env: dict[str, str], top: int) -> None:
    """Print the modules with the largest cumulative import time."""
    r = subprocess.run([sys.executable, "-X", "importtime", *cmd[1:]], input=b"hi\n", capture_output=True, env=env, cwd=ROOT)
    rows = []
    for line in r.stderr.decode(errors="replace").splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, cum_us, name = _split(line)
        rows.append((int(cum_us), int(self_us), name))
    total = sum(c for c, _, n in rows if not n.startswith(" "))
    print(f"\n# python -X importtime {' '.join(cmd[1:])}: top-level imports total {total / 1000:.0f} ms")
    print(f"{'cumulative ms':>14} {'self ms':>8}  module (indent = imported by the line above)")
    for cum, own, name in sorted(rows, reverse=True)[:top]:
        print(f"{cum / 1000:>14.1f} {own / 1000:>8.1f}  {name}")
    wanted = ("typer", "rich", "yaml", "onnxruntime", "tokenizers", "numpy", "click", "pydantic", "llama_cpp", "huggingface_hub")
    found = {n.strip(): cum for cum, _, n in rows if n.strip() in wanted}
    print("# selected packages (cumulative ms): " + ", ".join(f"{k} {v / 1000:.0f}" for k, v in sorted(found.items())))


def _split(line: str) -> tuple[str, str, str]:
    """'import time:   self |   cumulative | name' -> (self, cumulative, name with its indent)."""
    head, cum, name = line.split("|", 2)
    return head.split(":", 1)[1].strip(), cum.strip(), name[1:].rstrip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=9, help="pairs of runs (median reported)")
    ap.add_argument("--moderator", help="moderator spec; default: models/default, else the test fixture classifier")
    ap.add_argument("--importtime", action="store_true")
    ap.add_argument("--top", type=int, default=25)
    a = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="prism-cold-") as d:
        env = {**os.environ, "PRISM_HOME": str(Path(d) / "home")}
        spec = a.moderator
        if spec is None:
            default = ROOT / "models" / "default"
            if (default / "model.onnx").is_file():
                spec, label = str(default), "bundled default"
            else:
                from tests.onnx_fixture import build_classifier

                spec, label = str(build_classifier(Path(d) / "fixture")), "test fixture classifier (no bundled default yet)"
        else:
            label = spec
        check = [sys.executable, "-m", "prism_cli", "check", "-m", spec, "-q"]
        rules = [sys.executable, "-m", "prism_cli", "check", "-m", "rules", "-q"]
        ort = [sys.executable, "-c", "import onnxruntime"]
        bare = [sys.executable, "-c", "pass"]
        timed(check, b"hi\n", env)  # warm the page cache once
        times: dict[str, list[float]] = {"check": [], "rules": [], "ort": [], "bare": []}
        for _ in range(a.n):
            times["ort"].append(timed(ort, b"", env))
            times["check"].append(timed(check, b"hi\n", env))
            times["bare"].append(timed(bare, b"", env))
            times["rules"].append(timed(rules, b"hi\n", env))
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"# moderator: {label}; {a.n} interleaved runs each, medians; {os.cpu_count()} CPUs")
        print(f"python -c pass                        {med['bare'] * 1000:8.0f} ms")
        print(f"python -c 'import onnxruntime'        {med['ort'] * 1000:8.0f} ms")
        print(f"echo hi | prism check (classifier)    {med['check'] * 1000:8.0f} ms")
        print(f"echo hi | prism check -m rules        {med['rules'] * 1000:8.0f} ms")
        print(f"ratio check / import onnxruntime      {med['check'] / med['ort']:8.2f}")
        if a.importtime:
            importtime(check, env, a.top)


if __name__ == "__main__":
    main()
