"""Which pieces of a text a moderator scores, so that no part of it goes unscored or drowned out.

A moderator that declares `max_tokens` reads at most that many of its own tokens per input.
Its text is covered at two levels, both measured with the moderator's own tokenizer
(`token_spans`), never guessed from characters:

  context   overlapping windows of `max_tokens` tokens (a quarter shared with the next), so
            harm that spans sentences is read together and nothing is truncated;
  sentence  each sentence on its own (split into windows of FOCUS_TOKENS when longer), when a
            text over SENTENCE_MIN_CHARS has more than one: a harmful request after fifteen
            harmless sentences is not averaged away by them.

A moderator without a limit (rules) gets the text whole, or in CHAR_WINDOW-character windows
sharing CHAR_OVERLAP characters when it arrives in pieces. Window edges fall between words.

`Cursor` follows one moderator over a text that grows (a streamed reply, a document read in
chunks): a window is final once text follows it, is scored once, and only its score is kept;
each step scores the windows that new text touches, so a step costs O(new text), never the
whole text again. Pure logic: tokenizing is the moderator's job.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass
from typing import Any, Sequence

from prism_cli.verdict import Scores

Span = tuple[int, int]

CONTEXT_OVERLAP = 4
"""A context window shares 1/CONTEXT_OVERLAP of its tokens with the next one."""
FOCUS_TOKENS = 64
"""Sentence-level windows hold at most this many tokens (or the moderator's limit, if lower)."""
SENTENCE_MIN_CHARS = 128
"""Texts up to this long are scored whole only: short prompts keep their speed (one model input)."""
CHAR_WINDOW = 1 << 16
CHAR_OVERLAP = 1 << 12
"""Moderators without a limit, on text that arrives in pieces: windows of characters."""
_SNAP = 8
"""Tokens a window edge may move back to fall between words."""
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)\s*|[。！？]+[」』”）]*\s*|\n\s*")


def input_limit(moderator: Any) -> int | None:
    """The moderator's declared input limit in tokens; None when it reads any length."""
    n = getattr(moderator, "max_tokens", None)
    return int(n) if n else None


def fits(text: str, limit: int) -> bool:
    """True when `text` surely has at most `limit` tokens, without tokenizing it: no tokenizer
    makes more than 1.5 tokens per UTF-8 byte (byte-level BPE: 1; SentencePiece: 1 + a word marker)."""
    if 8 * len(text) + 2 <= limit:
        return True
    return 2 * len(text.encode("utf-8", "surrogatepass")) + 2 <= limit


def _is_word(c: str) -> bool:
    return c.isalnum() or c == "_"


def _joined(text: str, spans: Sequence[Span], k: int) -> bool:
    """Token k continues the word of token k-1 (no gap, word characters on both sides)."""
    a = spans[k][0]
    return a == spans[k - 1][1] and 0 < a < len(text) and _is_word(text[a - 1]) and _is_word(text[a])


def _word_start(text: str, spans: Sequence[Span], k: int, floor: int) -> int:
    """The first token of the word that token k belongs to, if within reach; else k."""
    j = k
    while j > floor and k - j < _SNAP and _joined(text, spans, j):
        j -= 1
    return j if j == floor or not _joined(text, spans, j) else k


def token_windows(text: str, spans: Sequence[Span], limit: int) -> list[Span]:
    """Character ranges of windows of at most `limit` tokens covering `text`; the last reaches its end.

    Consecutive windows share about a quarter of their tokens; edges move back to a word start.
    """
    n = len(spans)
    if n <= limit:
        return [(0, len(text))]
    stride = max(1, limit - limit // CONTEXT_OVERLAP)
    out: list[Span] = []
    i = 0
    while True:
        start = 0 if i == 0 else spans[i][0]
        if i + limit >= n:
            out.append((start, len(text)))
            return out
        j = _word_start(text, spans, i + limit, i + 1)
        out.append((start, spans[j][0]))
        i = _word_start(text, spans, min(i + stride, j), i + 1)


def char_windows(text: str) -> list[Span]:
    """Windows of CHAR_WINDOW characters sharing CHAR_OVERLAP, cut at whitespace where there is some."""
    if len(text) <= CHAR_WINDOW:
        return [(0, len(text))]
    out: list[Span] = []
    start = 0
    while start + CHAR_WINDOW < len(text):
        end = start + CHAR_WINDOW
        ws = max(text.rfind(" ", end - 256, end), text.rfind("\n", end - 256, end))
        end = ws if ws > start + CHAR_OVERLAP else end
        out.append((start, end))
        nxt = end - CHAR_OVERLAP
        ws = max(text.rfind(" ", nxt - 256, nxt), text.rfind("\n", nxt - 256, nxt))
        start = ws + 1 if ws > start else nxt
    out.append((start, len(text)))
    return out


def sentences(text: str) -> list[Span]:
    """Sentence ranges (each with its trailing space); one range when the text is one sentence."""
    out: list[Span] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        if m.end() > start and text[start : m.start()].strip():
            out.append((start, m.end()))
            start = m.end()
    if start < len(text) and (text[start:].strip() or not out):
        out.append((start, len(text)))
    elif out:
        out[-1] = (out[-1][0], len(text))
    return out


def sentence_windows(text: str, spans: Sequence[Span] | None, focus: int) -> list[Span]:
    """Each sentence as a window; a sentence over `focus` tokens split into token windows."""
    out: list[Span] = []
    for a, b in sentences(text):
        if spans is None or fits(text[a:b], focus):
            out.append((a, b))
            continue
        lo, hi = bisect_left(spans, (a, -1)), bisect_left(spans, (b, -1))
        sub = [(s - a, e - a) for s, e in spans[lo:hi]]
        out += [(a + s, a + e) for s, e in token_windows(text[a:b], sub, focus)]
    return out


def _cap_chars(text: str, wins: list[Span]) -> list[Span]:
    """Windows longer than CHAR_WINDOW characters (a few huge tokens: a run with no spaces) cut
    into character windows, so memory and time stay bounded on any input."""
    if all(b - a <= CHAR_WINDOW for a, b in wins):
        return wins
    out: list[Span] = []
    for a, b in wins:
        out += [(a, b)] if b - a <= CHAR_WINDOW else [(a + x, a + y) for x, y in char_windows(text[a:b])]
    return out


def split_to_fit(text: str, moderator: Any) -> list[str]:
    """`text` as pieces the moderator reads whole: itself when it fits, else its context windows."""
    limit = input_limit(moderator)
    if limit is None or fits(text, limit):
        return [text]
    return [text[a:b] for a, b in token_windows(text, moderator.token_spans(text), limit)]


@dataclass
class Window:
    text: str
    final: bool
    """A final window is scored once and kept; the others (the tail) are scored again as text grows."""


class Cursor:
    """One moderator's windows over a text that grows; keeps only the open tail and the final scores."""

    def __init__(self, moderator: Any, sentence_level: bool = True):
        self.moderator = moderator
        self.sentence_level = sentence_level
        self.limit: int | None = None
        self.focus: int | None = None
        self.starts: list[int] = []
        """Absolute offset where each level's first open window begins (set on the first plan:
        asking a moderator its limit may load its tokenizer, which may fail)."""
        self.base = 0
        self.pending = ""
        """The text from `base` = min(starts) on: nothing before it will be scored again."""
        self.final: Scores = {}
        self.tail: Scores = {}

    def plan(self, delta: str, end: bool) -> list[Window]:
        """Add text; the windows to score now (final ones once, the tail again). `end`: no more text."""
        if not self.starts:
            self.limit = input_limit(self.moderator)
            self.focus = min(self.limit, FOCUS_TOKENS) if self.limit else None
            self.starts = [0] * (2 if (self.limit and self.sentence_level) else 1)
        self.pending += delta
        text = self.pending
        if self.limit is None:
            return self._finalize([char_windows(text[self.starts[0] - self.base :])], end)
        spans: list[Span] | None = None
        if not fits(text, self.limit):
            spans = list(self.moderator.token_spans(text))
        levels: list[list[Span]] = []
        for k, start in enumerate(self.starts):
            off = start - self.base
            sub = text[off:]
            sub_spans = None
            if spans is not None:
                lo = bisect_left(spans, (off, -1))
                sub_spans = [(s - off, e - off) for s, e in spans[lo:]]
            if k == 0:
                levels.append(token_windows(sub, sub_spans, self.limit) if sub_spans is not None else [(0, len(sub))])
            else:
                assert self.focus is not None
                if self.base + len(text) <= SENTENCE_MIN_CHARS:
                    levels.append([])  # a short text is read whole (its own sentences would cost a model input each)
                else:
                    levels.append(sentence_windows(sub, sub_spans, self.focus))  # one sentence: the same text, once
            levels[-1] = _cap_chars(sub, levels[-1])
        return self._finalize(levels, end)

    def _finalize(self, levels: list[list[Span]], end: bool) -> list[Window]:
        out: list[Window] = []
        new_starts = list(self.starts)
        for k, wins in enumerate(levels):
            off = self.starts[k] - self.base
            for i, (a, b) in enumerate(wins):
                last = i == len(wins) - 1
                out.append(Window(self.pending[off + a : off + b], final=end or not last))
                if last and not end:
                    new_starts[k] = self.starts[k] + a
        self.starts = new_starts
        return out

    def commit(self, windows: Sequence[Window], scores: Sequence[Scores]) -> Scores:
        """Record the scores of planned windows; returns the max over every window so far."""
        tail: Scores = {}
        for w, s in zip(windows, scores):
            _max_into(self.final if w.final else tail, s)
        self.tail = tail
        base = min(self.starts)
        self.pending = self.pending[base - self.base :]
        self.base = base
        return self.current()

    def current(self) -> Scores:
        out = dict(self.final)
        _max_into(out, self.tail)
        return out


def _max_into(out: Scores, s: Scores) -> None:
    for k, v in s.items():
        if k not in out or v > out[k]:
            out[k] = v
