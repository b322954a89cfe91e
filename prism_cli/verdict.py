"""The shared vocabulary: Verdict and Decision (the one JSON shape of check, scan, chat and the
audit log), the overall score key and rule, the outcome names of a chat turn, the exit-code rule."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Collection, Mapping

from prism_cli.errors import EXIT_ALLOW, EXIT_BLOCK, EXIT_MODERATOR

Scores = dict[str, float]
"""Category id -> probability in [0, 1]; the key OVERALL holds the overall probability."""

OVERALL = "unsafe"
"""The score key (and the flagged id) of the overall P(unsafe); no policy category may use it."""


def overall_score(scores: Mapping[str, float], among: Collection[str] | None = None) -> float:
    """The overall P(unsafe): the backend's own when it gives one, else the highest category score
    (of the keys `among`, when given). Every backend and the gate use this one rule."""
    if OVERALL in scores:
        return scores[OVERALL]
    return max((v for k, v in scores.items() if among is None or k in among), default=0.0)


def exit_code(moderator_failed: bool, blocked: bool) -> int:
    """A command's exit status: 3 when a moderator failed (the text counts as blocked: prism fails
    closed), else 1 when something was blocked, else 0. check, scan and batch chat share it."""
    if moderator_failed:
        return EXIT_MODERATOR
    return EXIT_BLOCK if blocked else EXIT_ALLOW


COMPLETE, BLOCKED, INTERRUPTED = "complete", "blocked", "interrupted"
"""How a gated stream ended (StreamGate.outcome)."""
PROMPT_BLOCKED, RESPONSE_BLOCKED = "prompt blocked", "response blocked"
"""How a chat turn ended, besides COMPLETE and INTERRUPTED (TurnResult.outcome, the transcript's `outcome`)."""


class Decision(str, Enum):
    ALLOW = "allow"
    WARN = "warn"
    BLOCK = "block"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @classmethod
    def worst(cls, decisions: "list[Decision]") -> "Decision":
        return max(decisions, key=lambda d: d.rank, default=cls.ALLOW)


_RANK = {Decision.ALLOW: 0, Decision.WARN: 1, Decision.BLOCK: 2}


REFUSED = "refused"
"""Score key a guard model (Qwen3Guard) gives for "the assistant refused": P(refusal) of a response. It is
no harm category: the gate reports it in the verdict as `refused` and never blocks on it."""


ALLOWLISTED = "allowlisted"
"""Verdict field set (true) when the user's allow-list covers the whole text: decision allow, scores kept."""


def controversial_key(category: str) -> str:
    """Score key for a guard's "Controversial" mass on a category whose policy says `controversial: warn`.

    Such mass is kept apart from the category's own score, so it can warn but never block."""
    return f"{category}/controversial"


@dataclass
class Verdict:
    """What the gate decided about one text.

    `error` is set when the moderator could not run; the decision is then the
    policy's `on_error` action (block by default: prism fails closed).
    """

    id: str
    role: str
    decision: Decision
    flagged: list[str] = field(default_factory=list)
    scores: Scores = field(default_factory=dict)
    unsafe: float = 0.0
    moderator: str = ""
    policy: str = ""
    ms: float = 0.0
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    text: str | None = None

    @property
    def blocked(self) -> bool:
        return self.decision is Decision.BLOCK

    def to_dict(self, include_text: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "role": self.role,
            "decision": self.decision.value,
            "flagged": list(self.flagged),
            "scores": {k: round(v, 6) for k, v in self.scores.items()},
            "unsafe": round(self.unsafe, 6),
            "moderator": self.moderator,
            "policy": self.policy,
            "ms": round(self.ms, 3),
        }
        if self.error is not None:
            d["error"] = self.error
        d.update(self.extra)
        if include_text and self.text is not None:
            d["text"] = self.text
        return d

    def to_json(self, include_text: bool = False) -> str:
        return json.dumps(self.to_dict(include_text), ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Verdict":
        known = {"id", "role", "decision", "flagged", "scores", "unsafe", "moderator", "policy", "ms", "error", "text"}
        return cls(
            id=str(d["id"]),
            role=d["role"],
            decision=Decision(d["decision"]),
            flagged=list(d.get("flagged", [])),
            scores=dict(d.get("scores", {})),
            unsafe=float(d.get("unsafe", 0.0)),
            moderator=d.get("moderator", ""),
            policy=d.get("policy", ""),
            ms=float(d.get("ms", 0.0)),
            error=d.get("error"),
            text=d.get("text"),
            extra={k: v for k, v in d.items() if k not in known},
        )
