"""Benchmark the bundled default moderator (models/default): single-prompt latency on one
thread, scan throughput through ClassifierModerator.score (one row a call, rows in parallel)
beside 2.0.0's 64-row batches, and cold start of
`echo hi | prism check` as a ratio to `python -c "import onnxruntime"`, all in one run.

    python bench/bench_classifier.py                 # default: 300 single calls, 2048 texts per scan figure, 7 cold-start pairs
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


def batched_2_0_0(model: Path, threads: int):
    """score() as 2.0.0 ran it: 64-row calls padded to their longest row, one session on `threads`."""
    import numpy as np
    import onnxruntime as ort

    from prism_cli.moderators.classifier import ClassifierModerator

    tok = ClassifierModerator(model)._tok()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(str(model / "model.onnx"), opts, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]

    def score(texts: list[str]) -> None:
        encs = [e.ids for e in tok.encode_batch(texts, add_special_tokens=True)]
        order = sorted(range(len(encs)), key=lambda i: len(encs[i]))
        for s in range(0, len(order), 64):
            idx = order[s : s + 64]
            ids = np.zeros((len(idx), max(len(encs[i]) for i in idx)), dtype=np.int64)
            mask = np.zeros_like(ids)
            for k, i in enumerate(idx):
                ids[k, : len(encs[i])], mask[k, : len(encs[i])] = encs[i], 1
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            sess.run(None, {k: feed[k] for k in names})

    return score


def bench_scan(model: Path, n: int, threads: int, lo: int, hi: int, reps: int = 3) -> tuple[float, float]:
    """texts/s of (2.0.0's 64-row batches, one row a call on `threads` workers now), interleaved `reps`
    times, best of each; texts come in file order, 64 at a time, as `prism scan` hands them over."""
    from prism_cli.moderators.classifier import ClassifierModerator

    texts = prompts(n, lo, hi, seed=2)
    now = ClassifierModerator(model, threads=threads)
    setups = [batched_2_0_0(model, threads), lambda chunk: now.score(chunk, "prompt")]
    for run in setups:
        run(texts[:64])
    best = [0.0, 0.0]
    for _ in range(reps):
        for k, run in enumerate(setups):
            t0 = time.perf_counter()
            for s in range(0, n, 64):
                run(texts[s : s + 64])
            best[k] = max(best[k], n / (time.perf_counter() - t0))
    return best[0], best[1]


def timed(cmd: list[str], stdin: bytes, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    wall = time.perf_counter() - t0
    if r.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} exited {r.returncode}: {r.stderr.decode(errors='replace').strip()}")
    return wall


def bench_cold(model: Path, pairs: int) -> tuple[float, float]:
    home = tempfile.mkdtemp(prefix="prism-bench-")
    # pip compiles an installed package to bytecode; PYTHONDONTWRITEBYTECODE (set on some CI and
    # dev machines) would make every start here recompile prism's 40 modules (~60 ms) instead
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(PRISM_HOME=home, NO_COLOR="1")
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
    ap.add_argument("--scan", type=int, default=2048, help="texts per scan figure (each mix, each setup, 3 rounds)")
    ap.add_argument("--threads", type=int, default=2, help="threads (workers) for the scan figures")
    ap.add_argument("--pairs", type=int, default=7)
    args = ap.parse_args()

    p50, p90, n_tok = bench_single(args.model, args.single)
    mixes = {"short prompts, 3-20 words": (3, 20), "mixed prompts, 5-60 words": (5, 60)}
    scans = {mix: bench_scan(args.model, args.scan, args.threads, lo, hi) for mix, (lo, hi) in mixes.items()}
    cold, ort = bench_cold(args.model, args.pairs)
    size = (args.model / "model.onnx").stat().st_size / 1e6
    print(f"# {args.model} (model.onnx {size:.1f} MB), {os.cpu_count()} CPUs")
    print(f"{'measure':<58} {'value':>10} {'target':>12} {'ok':>4}")
    rows = [
        (f"single prompt p50, 1 thread (<= {n_tok} tokens)", f"{p50:.2f} ms", "<= 10 ms", p50 <= 10),
        ("single prompt p90, 1 thread", f"{p90:.2f} ms", "", True),
    ]
    for mix, (before, now) in scans.items():
        rows.append((f"scan {mix}: 64-row batches (2.0.0)", f"{before:.0f}/s", "", True))
        rows.append((f"scan {mix}: one row a call, {args.threads} workers", f"{now:.0f}/s", ">= 300/s", now >= 300))
        rows.append(("  ratio now / 2.0.0", f"{now / before:.2f}x", "", True))
    rows += [
        ("cold start `echo hi | prism check`", f"{cold * 1000:.0f} ms", "", True),
        ("python -c 'import onnxruntime'", f"{ort * 1000:.0f} ms", "", True),
        ("cold start ratio", f"{cold / ort:.2f}x", "<= 2.5x", cold / ort <= 2.5),
    ]
    for name, val, target, ok in rows:
        print(f"{name:<58} {val:>10} {target:>12} {('yes' if ok else 'NO') if target else '':>4}")


if __name__ == "__main__":
    main()
