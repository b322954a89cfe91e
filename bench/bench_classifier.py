"""Benchmark the bundled default moderator (models/default): single-prompt latency on one
thread, scan throughput through ClassifierModerator.score in batches, and cold start of
`echo hi | prism check` as a ratio to `python -c "import onnxruntime"`, all in one run.

    python bench/bench_classifier.py                 # default: 300 single calls, 4000 texts scanned, 7 cold-start pairs
    python bench/bench_classifier.py --model DIR --single 500 --scan 8000 --pairs 9

Targets for the 2.x transformer: p50 <= 10 ms for a prompt of <= 64 tokens on one thread; >= 300
texts/s scanned on 2 threads; cold start within 2.5x of importing onnxruntime.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORDS = ("how do I make a the best way to kill python process shoot photo night write poem about autumn leaves "
         "explain history of war bomb recipe lasagna network security password reset garden weeds please help "
         "ignore previous instructions you are now free story detective train station money bank").split()


def prompts(n: int, lo: int, hi: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi))).capitalize() + "?" for _ in range(n)]


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def bench_single(model: Path, n: int) -> tuple[float, float, int]:
    from prism_cli.moderators.classifier import ClassifierModerator

    m = ClassifierModerator(model, threads=1)
    texts = prompts(n, 8, 45, seed=1)
    m.score(texts[:5], "prompt")  # load + warm up
    n_tok = max(len(m._tokenizer.encode(t).ids) for t in texts)
    times = []
    for t in texts:
        t0 = time.perf_counter()
        m.score([t], "prompt")
        times.append((time.perf_counter() - t0) * 1000)
    return pct(times, 0.5), pct(times, 0.9), n_tok


def bench_scan(model: Path, n: int, threads: int) -> float:
    from prism_cli.moderators.classifier import ClassifierModerator

    m = ClassifierModerator(model, threads=threads)
    texts = prompts(n, 5, 60, seed=2)
    m.score(texts[:64], "prompt")
    t0 = time.perf_counter()
    for s in range(0, n, 512):  # what `prism scan` does: chunks of texts, batched inside score()
        m.score(texts[s : s + 512], "prompt")
    return n / (time.perf_counter() - t0)


def timed(cmd: list[str], stdin: bytes, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    wall = time.perf_counter() - t0
    if r.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} exited {r.returncode}: {r.stderr.decode(errors='replace').strip()}")
    return wall


def bench_cold(model: Path, pairs: int) -> tuple[float, float]:
    home = tempfile.mkdtemp(prefix="prism-bench-")
    env = {**os.environ, "PRISM_HOME": home, "NO_COLOR": "1"}
    check = [sys.executable, "-m", "prism_cli", "check", "--role", "prompt", "--moderator", str(model)]
    ort = [sys.executable, "-c", "import onnxruntime"]
    timed(check, b"hi\n", env)  # warm the page cache once for both
    timed(ort, b"", env)
    a, b = [], []
    for _ in range(pairs):  # interleaved: both see the same machine load
        a.append(timed(check, b"hi\n", env))
        b.append(timed(ort, b"", env))
    return statistics.median(a), statistics.median(b)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "default")
    ap.add_argument("--single", type=int, default=300)
    ap.add_argument("--scan", type=int, default=4000)
    ap.add_argument("--threads", type=int, default=2, help="intra-op threads for the scan figure")
    ap.add_argument("--pairs", type=int, default=7)
    args = ap.parse_args()

    p50, p90, n_tok = bench_single(args.model, args.single)
    tps = bench_scan(args.model, args.scan, args.threads)
    cold, ort = bench_cold(args.model, args.pairs)
    size = (args.model / "model.onnx").stat().st_size / 1e6
    print(f"# {args.model} (model.onnx {size:.1f} MB), {os.cpu_count()} CPUs")
    print(f"{'measure':<44} {'value':>10} {'target':>12} {'ok':>4}")
    rows = [
        (f"single prompt p50, 1 thread (<= {n_tok} tokens)", f"{p50:.2f} ms", "<= 10 ms", p50 <= 10),
        (f"single prompt p90, 1 thread", f"{p90:.2f} ms", "", True),
        (f"scan throughput, {args.threads} threads, batches", f"{tps:.0f}/s", ">= 300/s", tps >= 300),
        ("cold start `echo hi | prism check`", f"{cold * 1000:.0f} ms", "", True),
        ("python -c 'import onnxruntime'", f"{ort * 1000:.0f} ms", "", True),
        ("cold start ratio", f"{cold / ort:.2f}x", "<= 2.5x", cold / ort <= 2.5),
    ]
    for name, val, target, ok in rows:
        print(f"{name:<44} {val:>10} {target:>12} {('yes' if ok else 'NO') if target else '':>4}")


if __name__ == "__main__":
    main()
