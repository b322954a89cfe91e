"""Cascade: a cheap moderator first; only texts it is unsure about go to an expensive one.

Spec: "cascade:FIRST,SECOND[,low,high]", parsed in build.py, which loads both stages. A text
whose FIRST unsafe score is in [low, high) is sent to SECOND and gets SECOND's scores for the categories SECOND declares it really scores (its
`categories(role)`) and its overall score; FIRST keeps every other category (a guard that was
never trained on jailbreaks does not overwrite the classifier's jailbreak score). Every other
text keeps FIRST's scores. Most traffic is clearly safe, so the guard model's cost is
paid only on the uncertain band.
"""

from __future__ import annotations

from typing import Sequence

from prism_cli.errors import ModeratorError
from prism_cli.moderators.base import Message, Moderator, Role
from prism_cli.verdict import OVERALL, Scores, overall_score

DEFAULT_BAND = (0.1, 0.9)


class CascadeModerator:
    def __init__(self, first: Moderator, second: Moderator, low: float = DEFAULT_BAND[0], high: float = DEFAULT_BAND[1]):
        if not 0.0 <= low <= high <= 1.0:
            raise ModeratorError(f"cascade band must satisfy 0 <= low <= high <= 1, got [{low}, {high})")
        self.first, self.second, self.low, self.high = first, second, low, high
        self.name = f"cascade[{first.name}>{second.name}]@{low:g}-{high:g}"
        self.texts_first = 0
        """Texts scored by FIRST, and (below) by SECOND: how much the band saves."""
        self.texts_second = 0

    def categories(self, role: Role | None = None) -> set[str]:
        return set(self.first.categories(role)) | set(self.second.categories(role))

    def _limited(self) -> Moderator | None:
        """The stage with the smaller declared input limit: its tokens measure the gate's windows."""
        stages = [m for m in (self.first, self.second) if getattr(m, "max_tokens", None)]
        return min(stages, key=lambda m: m.max_tokens, default=None)  # type: ignore[attr-defined]

    @property
    def max_tokens(self) -> int | None:
        m = self._limited()
        return m.max_tokens if m is not None else None  # type: ignore[attr-defined]

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        m = self._limited()
        assert m is not None, "token_spans is only asked of a moderator with max_tokens"
        return m.token_spans(text)  # type: ignore[attr-defined]

    def in_band(self, scores: Scores) -> bool:
        return self.low <= overall_score(scores) < self.high

    def score(self, texts: Sequence[str], role: Role, context: Sequence[Message] | None = None) -> list[Scores]:
        out = [dict(s) for s in self.first.score(texts, role, context)]
        self.texts_first += len(texts)
        unsure = [i for i, s in enumerate(out) if self.in_band(s)]
        if unsure:
            second = self.second.score([texts[i] for i in unsure], role, context)
            self.texts_second += len(unsure)
            covered = set(self.second.categories(role)) | {OVERALL}
            owned = set(self.first.categories(role))
            for i, s in zip(unsure, second):
                taken = {k: v for k, v in s.items() if k in covered or k not in owned}
                out[i] = {**out[i], **taken}
        return out
