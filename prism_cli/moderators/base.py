"""The moderator protocol: the paper's p(x) and q(Y) as one batched scoring call.

Every backend (classifier, guard_llm, rules, cascade) implements `score`. A backend
raises ModeratorError when it cannot run; the gate turns that into the policy's
on_error decision (block by default), never into an allow.
"""

from __future__ import annotations

from typing import Literal, Protocol, Sequence, TypedDict, runtime_checkable

from prism_cli.verdict import Scores

Role = Literal["prompt", "response"]


class Message(TypedDict):
    """One chat turn, OpenAI style: {"role": "user"|"assistant"|"system", "content": "..."}."""

    role: str
    content: str


@runtime_checkable
class Moderator(Protocol):
    name: str
    """"name@version", as it appears in verdicts."""

    def score(self, texts: Sequence[str], role: Role, context: Sequence[Message] | None = None) -> list[Scores]:
        """One Scores per text: category id -> probability in [0, 1], plus "unsafe" overall.

        Categories the backend does not cover are absent (not 0). `context` is the
        conversation before the texts (for a response: the prompt it answers).
        """
        ...

    def categories(self, role: Role | None = None) -> set[str]:
        """Policy category ids this backend really scores for `role` (None: for either role).

        The one way a backend declares its coverage: the cascade combines only these, and a
        category no backend declares is one nothing scores (DESIGN: reported, never passed).
        """
        ...
