"""Keyword and regex rules declared in the policy: deterministic, instant, no model.

Text is NFKC-normalized and case-folded before matching, so full-width letters,
ligatures and case tricks do not slip past a keyword. Keywords match whole words.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Sequence

from prism_cli.moderators.base import Message, Role
from prism_cli.policy import Policy
from prism_cli.verdict import Scores


def normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


class RulesModerator:
    name = "rules"

    def __init__(self, policy: Policy):
        self._rules: list[tuple[str, tuple[str, ...], re.Pattern[str]]] = []
        for c in policy.categories:
            if not c.rules:
                continue
            parts = [r"(?<!\w)" + re.escape(normalize(k)) + r"(?!\w)" for k in c.rules.keywords]
            parts += [f"(?:{p})" for p in c.rules.patterns]
            self._rules.append((c.id, c.applies_to, re.compile("|".join(parts), re.IGNORECASE)))

    def categories(self, role: Role | None = None) -> set[str]:
        return {cid for cid, _, _ in self._rules}

    def score(self, texts: Sequence[str], role: Role, context: Sequence[Message] | None = None) -> list[Scores]:
        out: list[Scores] = []
        for t in texts:
            n = normalize(t)
            s: Scores = {}
            for cid, roles, rx in self._rules:
                if role in roles:
                    s[cid] = 1.0 if rx.search(n) else 0.0
            out.append(s)
        return out

    def first_match(self, text: str, role: Role) -> tuple[str, int] | None:
        """(category id, end offset in the normalized text) of the earliest match, for streaming."""
        n = normalize(text)
        best: tuple[str, int] | None = None
        for cid, roles, rx in self._rules:
            if role not in roles:
                continue
            m = rx.search(n)
            if m and (best is None or m.end() < best[1]):
                best = (cid, m.end())
        return best
