"""What input normalization costs beside a model check, side by side in one run.

For each kind of text: normalize.variants() time per text, the bundled classifier's score()
time for the same text (1 thread, warm), their ratio, and how many texts the gate then scores
(variants that differ from the original cost one more model input each).

    python bench/bench_normalize.py                 # 300 repetitions per text kind
    python bench/bench_normalize.py --model DIR -n 1000
"""

from __future__ import annotations

import argparse
import base64
import codecs
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROSE = (
    "The library opens at nine on weekdays and closes early on Sundays. My grandmother grows tomatoes, "
    "beans and sunflowers in her garden every summer. The train to the coast leaves from platform four. "
)
KINDS = {
    "short prompt": "How do I reset my router after a power cut?",
    "leetspeak": "h0w d0 1 r3537 my r0u73r 4f73r 4 p0w3r cu7?",
    "homoglyphs": "Ноw dо I rеsеt my rоutеr аftеr а роwеr сut?",
    "spaced": "h o w  d o  I  r e s e t  m y  r o u t e r",
    "base64": "Decode: " + base64.b64encode(b"How do I reset my router after a power cut?").decode(),
    "rot13": codecs.encode("How do I reset my router after a power cut?", "rot13"),
    "typos": "Hwo do I rseet my ruoter aftr a pwoer cut?",
    "Spanish": "¿Cómo reinicio mi router después de un corte de luz?",
    "Russian": "Как сбросить настройки роутера после отключения питания?",
    "paragraph (~600 chars)": PROSE * 2,
    "page (~6,000 chars)": PROSE * 20,
}


def timed(fn, n: int) -> float:
    """Median seconds per call."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def fresh_typos(n: int) -> list[str]:
    """n sentences of 8 common words (lexicon ranks 300-8000), two neighbouring letters swapped in every
    word of 4+ letters: almost every typo'd word is new, so the repair cache rarely helps. Seeded."""
    import random

    from prism_cli.spelling import lexicon

    rng = random.Random(5)
    words = [w for w, rank in lexicon().items() if 300 <= rank < 8000 and len(w) >= 4]
    out = []
    for _ in range(n):
        picked = rng.sample(words, 8)
        for k, w in enumerate(picked):
            i = rng.randrange(len(w) - 1)
            picked[k] = w[:i] + w[i + 1] + w[i] + w[i + 2:]
        out.append(" ".join(picked))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "models" / "default"))
    ap.add_argument("-n", type=int, default=300)
    args = ap.parse_args()

    from prism_cli.moderators.classifier import ClassifierModerator
    from prism_cli import spelling
    from prism_cli.normalize import variants

    t0 = time.perf_counter()
    spelling.lexicon()
    t1 = time.perf_counter()
    spelling._index()
    t2 = time.perf_counter()
    print(f"spelling lexicon: load {(t1 - t0) * 1e3:.0f} ms, index {(t2 - t1) * 1e3:.0f} ms (once per process, "
          "at the first text with enough unknown words; word repairs are then cached)")
    clf = ClassifierModerator(args.model, threads=1)
    clf.score(["warm up"], "prompt")
    print(f"{'text':<24} {'chars':>6} {'variants':>9} {'normalize':>11} {'model check':>12} {'ratio':>7}")
    t_short = timed(lambda: clf.score([KINDS["short prompt"]], "prompt"), max(10, args.n // 10))
    for kind, text in KINDS.items():
        n_var = len(variants(text))
        t_norm = timed(lambda: variants(text), args.n)
        t_model = timed(lambda: clf.score([text], "prompt"), max(10, args.n // 10))
        print(f"{kind:<24} {len(text):>6} {n_var:>9} {t_norm * 1e6:>8.1f} us {t_model * 1e3:>9.2f} ms "
              f"{t_norm / t_model:>7.1%}")
    print("ratio = normalization time / one model check of the same text; each extra variant adds a model input")
    fresh = fresh_typos(200)
    spelling.repair.cache_clear()
    t0 = time.perf_counter()
    for text in fresh:
        variants(text)
    per = (time.perf_counter() - t0) / len(fresh)
    print(f"typo'd 8-word prompts of words not repaired before (cache cleared, {len(fresh)} texts): "
          f"{per * 1e6:.0f} us each, {per / t_short:.1%} of a model check of the short prompt")


if __name__ == "__main__":
    main()
