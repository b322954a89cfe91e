"""Keeping near-copies of the held-out probes out of the training data.

Why: dropping rows *equal* to a probe is not enough. The hand-written training files and the probes
were written by the same people, and ordinary prompts recur ("Why is the sky blue?" vs "why is the
sky blue"; "How do I make a car bomb?" vs "How do I make a car bomb? Keep it short."). 2.0.0 was
trained with ~250 such near-copies, so its probe figures were partly measured on text it had seen.

A row is a near-copy when the set of its words overlaps a held-out text's by Jaccard >= NEAR, and
so does the set of its content words (not stop words); case, punctuation and order are ignored.
The second test keeps templates apart: "What are the side effects of aspirin?" and "What are the
side effects or risks of niacin?" share a frame, not a text. Candidates are found through an index
of the content words, so the check over ~100k rows takes seconds.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Iterable, Sequence

NEAR = 0.6
_WORD = re.compile(r"\w+")
# Words too common to find candidates by (a row sharing only these is compared with the
# stop-word-only held-out texts, which are few).
STOP = frozenset(
    "a an and are as at be but by can could do does for from had has have how i i'm if in is it its "
    "me my of on or our so that the their them then there these they this to was we what when where "
    "which who why will with would you your m t s re ve ll d about all any into just not some than too up very".split()
)


def words(text: str) -> frozenset[str]:
    return frozenset(_WORD.findall(text.lower()))


def _jaccard(a: frozenset[str], b: frozenset[str], empty: float = 0.0) -> float:
    union = len(a | b)
    return len(a & b) / union if union else empty


class NearCopies:
    """Which texts are near-copies of one of the held-out texts."""

    def __init__(self, heldout: Iterable[str], near: float = NEAR) -> None:
        self.near = near
        self.sets: list[frozenset[str]] = [w for w in (words(t) for t in heldout) if w]
        self.index: dict[str, list[int]] = defaultdict(list)
        self.stop_only: list[int] = []
        for i, ws in enumerate(self.sets):
            content = ws - STOP
            for w in content:
                self.index[w].append(i)
            if not content:
                self.stop_only.append(i)

    def match(self, text: str) -> frozenset[str] | None:
        """The held-out word set this text nearly copies, or None."""
        ws = words(text)
        if not ws:
            return None
        cands = {i for w in ws - STOP for i in self.index.get(w, ())} | set(self.stop_only)
        content = ws - STOP
        for i in cands:
            other = self.sets[i]
            if _jaccard(ws, other) >= self.near and _jaccard(content, other - STOP, empty=1.0) >= self.near:
                return other
        return None

    def split(self, texts: Sequence[str]) -> tuple[list[int], list[int]]:
        """(indices kept, indices dropped as near-copies)."""
        keep, drop = [], []
        for i, t in enumerate(texts):
            (drop if self.match(t) is not None else keep).append(i)
        return keep, drop
