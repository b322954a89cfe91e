"""Keyword and regex rules declared in the policy: deterministic, instant, no model.

Text is NFKC-normalized and case-folded before matching, so full-width letters,
ligatures and case tricks do not slip past a keyword. Keywords match whole words
(Unicode-aware, with Python's `re` on escaped literals: no backtracking blow-up is
possible). Patterns are the policy author's own regexes and run on RE2 (patterns.py),
so no pattern can take more than linear time on any text.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Sequence

from prism_cli.moderators.base import Message, Role
from prism_cli.patterns import compile_any
from prism_cli.policy import Policy
from prism_cli.verdict import Scores


def normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


class _Rule:
    """One category's keywords and patterns; either part may be absent."""

    def __init__(self, keywords: Sequence[str], patterns: Sequence[str]):
        parts = [r"(?<!\w)" + re.escape(normalize(k)) + r"(?!\w)" for k in keywords]
        self._kw: re.Pattern[str] | None = re.compile("|".join(parts), re.IGNORECASE) if parts else None
        self._pat: Any = compile_any(patterns) if patterns else None

    def matches(self, text: str) -> bool:
        return any(rx is not None and rx.search(text) for rx in (self._kw, self._pat))

    def first_end(self, text: str) -> int | None:
        """End offset of the leftmost match of either part, None without a match."""
        ends = [m.end() for rx in (self._kw, self._pat) if rx is not None and (m := rx.search(text))]
        return min(ends, default=None)


class RulesModerator:
    name = "rules"

    def __init__(self, policy: Policy):
        self._rules: list[tuple[str, tuple[str, ...], _Rule]] = [
            (c.id, c.applies_to, _Rule(c.rules.keywords, c.rules.patterns)) for c in policy.categories if c.rules
        ]

    def categories(self, role: Role | None = None) -> set[str]:
        return {cid for cid, _, _ in self._rules}

    def score(self, texts: Sequence[str], role: Role, context: Sequence[Message] | None = None) -> list[Scores]:
        out: list[Scores] = []
        for t in texts:
            n = normalize(t)
            s: Scores = {}
            for cid, roles, rule in self._rules:
                if role in roles:
                    s[cid] = 1.0 if rule.matches(n) else 0.0
            out.append(s)
        return out

    def first_match(self, text: str, role: Role) -> tuple[str, int] | None:
        """(category id, end offset in the normalized text) of the earliest match, for streaming."""
        n = normalize(text)
        best: tuple[str, int] | None = None
        for cid, roles, rule in self._rules:
            if role not in roles:
                continue
            end = rule.first_end(n)
            if end is not None and (best is None or end < best[1]):
                best = (cid, end)
        return best
