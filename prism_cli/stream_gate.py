"""StreamGate: q(Y) on a token stream. Text reaches the user only after a safe check covered it.

Every `window` tokens (and once at `holdback + 1`, the first point where anything could be
shown) the response so far (up to its last finished word) is checked; what
was judged safe is released, except the last `holdback` tokens, any word still being written
and the beginning of a multi-word keyword ("kill sw..."). So a policy keyword that window
boundaries split never leaks its first half, and "detonators" is not blocked as "detonator"
just because a check came before the "s". Releases never split a word. On a block the
engine's iterator is closed at once, so generation stops; nothing released is withdrawn and
the rest never appears. When the engine finishes, the complete response gets a final check
before the held tail is released.

Checks go through one GateStream (gate.py): each scores only the moderator windows that new
tokens touched (plus the open tail window), so a check costs O(new tokens) however long the
reply grows, and every part of it is scored, past any moderator's input limit.
"""

from __future__ import annotations

import re
import time
from typing import Callable, Iterable, Iterator, Sequence

from prism_cli.gate import Gate
from prism_cli.moderators.base import Message
from prism_cli.verdict import BLOCKED, COMPLETE, INTERRUPTED, Decision, Verdict  # noqa: F401 (outcome names, re-exported)


def _is_word(c: str) -> bool:
    """Python's regex \\w for one character: what the rules' (?<!\\w)...(?!\\w) boundaries test."""
    return c.isalnum() or c == "_"


class StreamGate:
    """Gate one streamed response. Iterate `run(pieces)`; read the outcome from the attributes after.

    `should_stop` is polled between tokens (Ctrl-C in the REPL): the engine is closed and the
    unchecked tail is dropped. Attributes: released (text shown), verdict (final or blocking),
    outcome (complete / blocked / interrupted), tokens, checks, moderation_ms, gen_ms, warnings.
    """

    def __init__(
        self,
        gate: Gate,
        *,
        context: Sequence[Message] | None = None,
        window: int | None = None,
        holdback: int | None = None,
        should_stop: Callable[[], bool] | None = None,
        id: str = "response",
    ):
        self.gate = gate
        self.context = list(context or [])
        self.window = max(1, window if window is not None else gate.policy.stream.window)
        self.holdback = max(0, holdback if holdback is not None else gate.policy.stream.holdback)
        self._first = self.holdback + 1 if self.holdback + 1 < self.window else 0
        """An extra first check as soon as anything could be released (one token past the holdback):
        the reply starts to show `window - holdback - 1` tokens sooner, for one short check."""
        self.should_stop = should_stop
        self.id = id
        keywords = self._keywords()
        self._keyword_rx = (
            re.compile("|".join(r"(?<!\w)" + re.escape(k) + r"(?!\w)" for k in keywords)) if keywords else None
        )
        self._multiword = [k for k in keywords if any(not _is_word(ch) for ch in k)]
        """Keywords like "kill switch" can begin before the trailing word: their prefixes are searched."""
        self._cap = max([32] + [len(k) + 1 for k in keywords])
        self.released = ""
        self.verdict: Verdict | None = None
        self.outcome: str | None = None
        self.warnings: list[Verdict] = []
        self.tokens = 0
        self.checks = 0
        self.moderation_ms = 0.0
        self.gen_ms = 0.0
        self._checked_len = -1
        self._stream = gate.open("response", id=id, context=self.context)

    # ------------------------------------------------------------------ setup

    def _keywords(self) -> list[str]:
        """The normalized keywords of the rules that apply to responses, when a RulesModerator runs."""
        from prism_cli.moderators.rules import RulesModerator, normalize

        if not any(isinstance(m, RulesModerator) for m in self.gate.moderators):
            return []
        found = {normalize(k) for c in self.gate.policy.active("response") for k in c.rules.keywords}
        return sorted(found, key=len)

    def _keyword_start(self, text: str) -> int | None:
        """Where the earliest keyword match begins in the normalized text (as rules.py matches it)."""
        if self._keyword_rx is None:
            return None
        from prism_cli.moderators.rules import normalize

        m = self._keyword_rx.search(normalize(text))
        return m.start() if m else None

    # ------------------------------------------------------------------ the loop

    @property
    def blocked(self) -> bool:
        return self.outcome == BLOCKED

    def run(self, pieces: Iterable[str]) -> Iterator[str]:
        """Yield released text; closes the engine's iterator whatever happens (block, stop, abandon)."""
        it = iter(pieces)
        parts: list[str] = []
        ends: list[int] = []  # character offset after each token
        length = 0
        clock = time.perf_counter
        try:
            while True:
                if self.should_stop is not None and self.should_stop():
                    self.outcome = INTERRUPTED
                    return
                t0 = clock()
                try:
                    piece = next(it)
                except StopIteration:
                    self.gen_ms += (clock() - t0) * 1000
                    break
                self.gen_ms += (clock() - t0) * 1000
                if not piece:
                    continue
                parts.append(piece)
                length += len(piece)
                ends.append(length)
                self.tokens += 1
                if self.tokens % self.window == 0 or self.tokens == self._first:
                    text = "".join(parts)
                    # Judge only finished words: "detonator" may still become "detonators".
                    head = text[: self._word_start(text, len(text))]
                    if not head:
                        continue
                    v = self._check(head)
                    if v.blocked:
                        self._block(v, head)
                        return
                    out = self._advance(head, ends)
                    if out:
                        yield out
            text = "".join(parts)
            v = self._check(text, final=True)
            if v.blocked:
                self._block(v, text)
                return
            self.verdict = v
            self.outcome = COMPLETE
            out = text[len(self.released):]
            self.released = text
            if out:
                yield out
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    def _check(self, text: str, final: bool = False) -> Verdict:
        """Judge the response so far (the final check reuses a window check of the same text)."""
        t0 = time.perf_counter()
        if final:
            if self._checked_len == len(text) and self.verdict is not None:
                self._stream.finish(text)  # the last window check saw this very text: its verdict stands
                return self.verdict
            v = self._stream.finish(text)
            self.checks += 1
        else:
            v = self._stream.check(text)
            self.checks += 1
        self.moderation_ms += (time.perf_counter() - t0) * 1000
        self._checked_len = len(text)
        if v.decision is Decision.WARN and not v.error:
            self.warnings.append(v)
        self.verdict = v
        return v

    def _block(self, v: Verdict, text: str) -> None:
        self.verdict = v
        self.outcome = BLOCKED
        start = self._keyword_start(text)
        if start is not None:
            # The guarantee this class exists for: no released character belongs to the match.
            from prism_cli.moderators.rules import normalize

            assert len(normalize(self.released)) <= start, "StreamGate released the start of a rule match"

    # ------------------------------------------------------------------ what may be released

    def _word_start(self, text: str, i: int) -> int:
        """Start of the run of word characters that ends at position i (i when there is none).
        A run longer than any keyword cannot become one (CJK text, long identifiers): i then."""
        j = i
        while j > 0 and _is_word(text[j - 1]):
            j -= 1
            if i - j > self._cap:
                return i
        return j

    def _advance(self, text: str, ends: list[int]) -> str:
        """Release checked text up to min(holdback boundary, start of any possibly unfinished match),
        never splitting a word: "a bomb|astic" must not flash "a bomb"."""
        k = len(ends) - self.holdback
        bound = min(ends[k - 1] if k > 0 else 0, self.safe_prefix(text))
        if 0 < bound < len(text) and _is_word(text[bound]):
            bound = self._word_start(text, bound)
        if bound <= len(self.released):
            return ""
        out = text[len(self.released):bound]
        self.released = text[:bound]
        return out

    def safe_prefix(self, text: str) -> int:
        """Length of the prefix of `text` that no continuation can turn into a keyword match.

        The trailing word is unfinished ("detona" may become "detonator"), and a suffix that
        is the beginning of a multi-word keyword ("kill sw") may complete later: both stay held.
        """
        cut = self._word_start(text, len(text))
        if self._multiword:
            from prism_cli.moderators.rules import normalize

            longest = len(self._multiword[-1])
            for s in range(max(0, len(text) - 2 * longest - 8), cut):
                if s > 0 and _is_word(text[s - 1]):
                    continue
                tail = normalize(text[s:])
                if tail and any(kw.startswith(tail) for kw in self._multiword):
                    return s
        return cut
