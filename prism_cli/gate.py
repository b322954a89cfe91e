"""Gate: policy + moderators -> Verdict. Pure logic, no runtime imports, no I/O.

Every part of a text is scored: each moderator gets the text in windows of its own input
limit (windows.py: overlapping context windows and, for a text of several sentences, each
sentence), and every window in its normalized and decoded forms too (normalize.py). A text's
score per category, and overall, is the maximum over all of them.

A moderator that raises never lets a text through: the verdict carries the error and
the policy's on_error decision (block unless the user chose otherwise).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Callable, Iterable, Sequence

from prism_cli.moderators.base import Message, Moderator, Role
from prism_cli.normalize import variants
from prism_cli.policy import Policy
from prism_cli.verdict import ALLOWLISTED, OVERALL, REFUSED, Decision, Scores, Verdict, controversial_key, overall_score
from prism_cli.windows import Cursor, Window, split_to_fit

_ACTION = {"block": Decision.BLOCK, "warn": Decision.WARN, "log": Decision.ALLOW}
_ON_ERROR = {"block": Decision.BLOCK, "warn": Decision.WARN, "allow": Decision.ALLOW}


def merge_scores(parts: Sequence[Scores]) -> Scores:
    """Several backends' scores for one text: the highest probability per key wins."""
    out: Scores = {}
    for s in parts:
        for k, v in s.items():
            if k not in out or v > out[k]:
                out[k] = v
    return out


class Gate:
    """Decides allow / warn / block for texts under one policy.

    `moderators` run in order and their scores merge by max; the policy's own rules
    (moderators/rules.py) are added automatically when it declares any.
    """

    def __init__(self, policy: Policy, moderators: Sequence[Moderator], include_rules: bool = True):
        mods = list(moderators)
        if include_rules and any(c.rules for c in policy.categories):
            from prism_cli.moderators.rules import RulesModerator

            if not any(isinstance(m, RulesModerator) for m in mods):
                mods.append(RulesModerator(policy))
        if not mods:
            raise ValueError("a gate needs at least one moderator")
        self.policy = policy
        self.moderators = mods
        self.name = "+".join(m.name for m in mods)
        self.allowed: Callable[[str, str], bool] | None = None
        """The user's allow-list (build.py sets it): a whole text it covers is allowed, its scores kept."""

    def decide(self, scores: Scores, role: str) -> tuple[Decision, list[str], Scores]:
        """Apply thresholds and actions; returns (decision, flagged ids, the scores the policy reads)."""
        flagged: list[str] = []
        decisions: list[Decision] = []
        kept: Scores = {}
        contro: Scores = {}
        for c in self.policy.active(role):
            p = scores.get(c.id)
            if p is None:
                continue
            kept[c.id] = p
            pc = scores.get(controversial_key(c.id), 0.0) if c.controversial == "warn" else 0.0
            if pc:
                contro[controversial_key(c.id)] = pc
            if p >= c.threshold:
                flagged.append(c.id)
                decisions.append(_ACTION[c.action])
            elif p + pc >= c.threshold:  # a guard's "Controversial" verdict counted: never more than a warning
                flagged.append(c.id)
                decisions.append(min(_ACTION[c.action], Decision.WARN, key=lambda d: d.rank))
        unsafe = overall_score(scores, kept)
        kept.update(contro)
        kept[OVERALL] = unsafe
        o = self.policy.overall
        if o is not None and role in o.applies_to and unsafe >= o.threshold:
            flagged.append(OVERALL)
            decisions.append(_ACTION[o.action])
        return Decision.worst(decisions), flagged, kept

    def unscored(self, role: str | None = None) -> list[str]:
        """Enabled policy categories (for `role`, if given) that no moderator or rule scores.

        Their thresholds can never fire: only the overall threshold, if the policy has one,
        can catch such harm. Commands report them instead of passing them silently."""
        covered: set[str] = set()
        for m in self.moderators:
            covered |= set(m.categories())
        cats = self.policy.active(role) if role else [c for c in self.policy.categories if c.enabled]
        return [c.id for c in cats if c.id not in covered]

    def open(self, role: Role, id: str = "0", context: Sequence[Message] | None = None) -> "GateStream":
        """A text that arrives in pieces (a streamed reply, a large document)."""
        return GateStream(self, role, id, context)

    def check_batch(
        self,
        texts: Sequence[str],
        role: Role,
        ids: Sequence[str] | None = None,
        context: Sequence[Message] | None = None,
    ) -> list[Verdict]:
        ids = list(ids) if ids is not None else [str(i) for i in range(len(texts))]
        if not texts:
            return []
        t0 = time.perf_counter()
        try:
            streams = [GateStream(self, role, vid, context) for vid in ids]
            self._score(streams, [s.plan(t, end=True) for s, t in zip(streams, texts)], role, context)
        except Exception as e:  # noqa: BLE001 - any failure of a backend must fail closed
            ms = (time.perf_counter() - t0) * 1000 / len(texts)
            return [self._error_verdict(i, role, e, ms) for i in ids]
        ms = (time.perf_counter() - t0) * 1000 / len(texts)
        return [s.verdict(ms) for s in streams]

    def check(self, text: str, role: Role, id: str = "0", context: Sequence[Message] | None = None) -> Verdict:
        return self.check_batch([text], role, [id], context)[0]

    def check_chunks(
        self, chunks: Iterable[str], role: Role, id: str = "0", context: Sequence[Message] | None = None
    ) -> Verdict:
        """One document read in pieces: memory stays bounded by a chunk and a window, every window scored."""
        stream = self.open(role, id, context)
        for chunk in chunks:
            stream.feed(chunk)
            if stream.failed is not None:
                break
        return replace(stream.finish(), ms=stream.ms)  # the time of every step, not only the last

    def _score(
        self,
        streams: Sequence["GateStream"],
        plans: Sequence[list[list[Window]]],
        role: Role,
        context: Sequence[Message] | None,
    ) -> None:
        """Score planned windows, one call per moderator: each window in all its variants, each
        variant cut to the moderator's limit, identical texts once; a window keeps the max."""
        for k, m in enumerate(self.moderators):
            texts: list[str] = []
            index: dict[str, int] = {}
            owners: list[list[list[int]]] = []
            for plan in plans:
                per_window = []
                for w in plan[k]:
                    mine: list[int] = []
                    for n, v in enumerate(variants(w.text)):  # the window itself first: it fits
                        for piece in [v] if n == 0 else split_to_fit(v, m):
                            j = index.setdefault(piece, len(texts))
                            if j == len(texts):
                                texts.append(piece)
                            mine.append(j)
                    per_window.append(mine)
                owners.append(per_window)
            out = m.score(texts, role, context) if texts else []
            if len(out) != len(texts):
                raise RuntimeError(f"{m.name} returned {len(out)} scores for {len(texts)} texts")
            for stream, plan, per_window in zip(streams, plans, owners):
                stream.cursors[k].commit(plan[k], [merge_scores([out[j] for j in mine]) for mine in per_window])

    def _error_verdict(self, vid: str, role: str, e: Exception, ms: float) -> Verdict:
        msg = str(e) or type(e).__name__
        return Verdict(
            id=vid,
            role=role,
            decision=_ON_ERROR[self.policy.on_error],
            flagged=[],
            moderator=self.name,
            policy=self.policy.name,
            ms=ms,
            error=f"moderator failed: {msg}",
        )


class GateStream:
    """One text under a gate as it grows. `check(text)` after each piece judges everything so far,
    scoring only the windows new text touched; `feed(chunk)` scores only windows that are complete
    (a document read in chunks); `finish()` scores the rest and gives the final verdict."""

    def __init__(self, gate: Gate, role: Role, id: str, context: Sequence[Message] | None):
        self.gate, self.role, self.id = gate, role, id
        self.context = list(context) if context is not None else None
        self.cursors = [Cursor(m) for m in gate.moderators]
        self.seen = 0
        """Characters received so far."""
        self.failed: Exception | None = None
        self.ms = 0.0
        """Time spent scoring this text, all steps together."""
        self._tail_fresh = False
        self._text: list[str] = []  # kept only for the allow-list

    def plan(self, delta: str, end: bool) -> list[list[Window]]:
        self.seen += len(delta)
        if self.gate.allowed is not None:
            self._text.append(delta)
        return [c.plan(delta, end) for c in self.cursors]

    def _step(self, delta: str, end: bool, tail: bool) -> float:
        t0 = time.perf_counter()
        if self.failed is None:
            try:
                plans = self.plan(delta, end)
                if not tail:
                    plans = [[w for w in p if w.final] for p in plans]
                self.gate._score([self], [plans], self.role, self.context)
            except Exception as e:  # noqa: BLE001 - a failing backend fails the whole text closed
                self.failed = e
        self._tail_fresh = tail and not end
        ms = (time.perf_counter() - t0) * 1000
        self.ms += ms
        return ms

    def check(self, text: str) -> Verdict:
        """The verdict on `text`, which extends every text checked before."""
        if len(text) < self.seen:
            raise ValueError("GateStream.check: the text must extend the text checked before")
        return self.verdict(self._step(text[self.seen :], end=False, tail=True))

    def feed(self, chunk: str) -> None:
        self._step(chunk, end=False, tail=False)

    def finish(self, text: str | None = None) -> Verdict:
        """The final verdict: every window of the text scored (the tail of a last check is reused)."""
        delta = "" if text is None else text[self.seen :]
        if not delta and self._tail_fresh and self.failed is None:
            for c in self.cursors:
                c.final = c.current()
            return self.verdict(0.0)
        return self.verdict(self._step(delta, end=True, tail=True))

    def verdict(self, ms: float) -> Verdict:
        if self.failed is not None:
            return self.gate._error_verdict(self.id, self.role, self.failed, ms)
        merged = merge_scores([c.current() for c in self.cursors])
        decision, flagged, kept = self.gate.decide(merged, self.role)
        refused = {REFUSED: round(merged[REFUSED], 6)} if REFUSED in merged else {}
        if self.gate.allowed is not None and self.gate.allowed("".join(self._text), self.role):
            decision, flagged, refused = Decision.ALLOW, [], {**refused, ALLOWLISTED: True}
        return Verdict(
            id=self.id,
            role=self.role,
            decision=decision,
            flagged=flagged,
            scores={k: v for k, v in kept.items() if k != OVERALL},
            unsafe=kept[OVERALL],
            moderator=self.gate.name,
            policy=self.gate.policy.name,
            ms=ms,
            extra=refused,
        )
