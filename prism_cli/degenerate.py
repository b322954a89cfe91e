"""Replies that are not answers: empty, or one short piece (a word, a line) over and over.

A server whose chat template does not fit its model (a default `python -m llama_cpp.server`
with a base model) streams zero tokens and reports success; a base model or a wrong template
loops ("the the the", blank lines). Both look like a "complete" turn. Pure string work, so the
session can say what to fix instead of passing them off silently.
"""

from __future__ import annotations

MAX_UNIT = 40
"""Longest repeated piece looked for, in characters."""
MIN_REPEATS = 3


def repeated_unit(text: str, max_unit: int = MAX_UNIT, min_share: float = 0.5) -> str | None:
    """The piece that the reply's tail repeats, when that run covers at least `min_share` of the reply.

    A run with period p is the longest suffix where every character equals the one p before it;
    it must span MIN_REPEATS copies of the piece and at least 12 characters.
    """
    s = text
    n = len(s)
    for p in range(1, min(max_unit, n // MIN_REPEATS) + 1):
        i = n - 1
        while i >= p and s[i] == s[i - p]:
            i -= 1
        run = n - 1 - i + p  # the matched tail plus the first copy it matched against
        if run >= max(MIN_REPEATS * p, 12) and run >= min_share * n:
            return s[n - p :]
    return None


def problem(text: str, tokens: int) -> str | None:
    """A short description of what is wrong with a finished reply, or None when it looks like an answer."""
    if tokens == 0 or not text.strip():
        return "an empty reply" if tokens == 0 else f"a reply of {tokens} tokens of white space"
    unit = repeated_unit(text)
    if unit is not None:
        return f"a reply that repeats {unit!r} over and over"
    return None
