"""Writes prism_cli/lexicon.txt, the word list prism's spelling repair (prism_cli/spelling.py) corrects to.

Why from the training data: a general English list lacks the words harmful requests are made of
(meth, phishing, ransomware, grooming), so 'phising' would be "repaired" into something else; the
MiniLM vocabulary lacks them too. The Train sets of ../shared/data and the hand-written rows hold
them. Only words and their rank are written, never a text.

    python models/default/recipe_lexicon.py      # ~1 min; reads ../shared/data (or $PRISM_DATA)

Kept: ASCII words of 2-24 letters seen in at least MIN_COUNT rows, most frequent first, then the
whole words of the bundled tokenizer's vocabulary (general English) not among them; the order is the
tie-break between repairs that are equally close.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import handwritten  # noqa: E402
import recipe_data as rd  # noqa: E402

MIN_COUNT = 3
DEST = HERE.parents[1] / "prism_cli" / "lexicon.txt"
_WORD = re.compile(r"(?<![A-Za-z0-9'])[A-Za-z]{2,24}(?![A-Za-z0-9])")


def count_words(texts) -> Counter:
    c: Counter = Counter()
    for t in texts:
        c.update({w.lower() for w in _WORD.findall(t)})
    return c


def tokenizer_words() -> list[str]:
    """Whole-word entries of the bundled WordPiece vocabulary, in its order (roughly by frequency)."""
    vocab = json.loads((HERE / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    return [w for w, _ in sorted(vocab.items(), key=lambda kv: kv[1]) if _WORD.fullmatch(w)]


def main() -> None:
    handwritten.ENABLED.update(handwritten.SHIPPED_WITH)  # the rows the shipped model trained on
    rows = rd.load_all()
    c = count_words(r.text for r in rows)
    words = sorted((w for w, n in c.items() if n >= MIN_COUNT), key=lambda w: (-c[w], w))
    seen = set(words)
    words += [w for w in tokenizer_words() if w not in seen]
    header = ("# prism spelling lexicon: words of the Train sets of ../shared/data and models/default/data, most frequent\n"
              f"# first, each seen in >= {MIN_COUNT} rows, then the bundled tokenizer's whole words. Written by models/default/recipe_lexicon.py; do not edit.\n")
    tmp = DEST.with_suffix(".tmp")
    tmp.write_text(header + "\n".join(words) + "\n", encoding="utf-8")
    tmp.replace(DEST)
    print(f"{len(words)} words -> {DEST} ({DEST.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
