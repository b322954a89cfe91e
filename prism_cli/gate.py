"""Gate: policy + moderators -> Verdict. Pure logic, no runtime imports, no I/O.

A moderator that raises never lets a text through: the verdict carries the error and
the policy's on_error decision (block unless the user chose otherwise).
"""

from __future__ import annotations

import time
from typing import Sequence

from prism_cli.moderators.base import Message, Moderator, Role
from prism_cli.policy import OVERALL, Policy
from prism_cli.verdict import Decision, Scores, Verdict

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

    def decide(self, scores: Scores, role: str) -> tuple[Decision, list[str], Scores]:
        """Apply thresholds and actions; returns (decision, flagged ids, the scores the policy reads)."""
        flagged: list[str] = []
        decisions: list[Decision] = []
        kept: Scores = {}
        for c in self.policy.active(role):
            p = scores.get(c.id)
            if p is None:
                continue
            kept[c.id] = p
            if p >= c.threshold:
                flagged.append(c.id)
                decisions.append(_ACTION[c.action])
        unsafe = scores.get(OVERALL, max(kept.values(), default=0.0))
        kept[OVERALL] = unsafe
        o = self.policy.overall
        if o is not None and role in o.applies_to and unsafe >= o.threshold:
            flagged.append(OVERALL)
            decisions.append(_ACTION[o.action])
        return Decision.worst(decisions), flagged, kept

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
            per_mod = [m.score(texts, role, context) for m in self.moderators]
            for m, out in zip(self.moderators, per_mod):
                if len(out) != len(texts):
                    raise RuntimeError(f"{m.name} returned {len(out)} scores for {len(texts)} texts")
        except Exception as e:  # noqa: BLE001 - any failure of a backend must fail closed
            ms = (time.perf_counter() - t0) * 1000 / len(texts)
            return [self._error_verdict(i, role, e, ms) for i in ids]
        ms = (time.perf_counter() - t0) * 1000 / len(texts)
        verdicts = []
        for j, vid in enumerate(ids):
            merged = merge_scores([out[j] for out in per_mod])
            decision, flagged, kept = self.decide(merged, role)
            verdicts.append(
                Verdict(
                    id=vid,
                    role=role,
                    decision=decision,
                    flagged=flagged,
                    scores={k: v for k, v in kept.items() if k != OVERALL},
                    unsafe=kept[OVERALL],
                    moderator=self.name,
                    policy=self.policy.name,
                    ms=ms,
                )
            )
        return verdicts

    def check(self, text: str, role: Role, id: str = "0", context: Sequence[Message] | None = None) -> Verdict:
        return self.check_batch([text], role, [id], context)[0]

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
