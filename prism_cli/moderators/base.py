"""The moderator protocol: the paper's p(x) and q(Y) as one batched scoring call.

Every backend (classifier, guard_llm, rules, cascade) implements `score`. A backend
raises ModeratorError when it cannot run; the gate turns that into the policy's
on_error decision (block by default), never into an allow.

A backend that reads a bounded input declares it (the `Limited` protocol: `max_tokens` and
`token_spans`); the gate then gives it windows that fit, measured in its own tokens, so it
never has to truncate. A backend without `max_tokens` gets texts of any length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol, Sequence, TypedDict, runtime_checkable

from prism_cli.errors import ModeratorError
from prism_cli.verdict import Scores

Role = Literal["prompt", "response"]


class Message(TypedDict):
    """One chat turn, OpenAI style: {"role": "user"|"assistant"|"system", "content": "..."}."""

    role: str
    content: str


def runtime(module: str, needed: str) -> Any:
    """A model runtime, imported when a backend first needs it; a missing one is a one-line
    ModeratorError (`needed` says what to install), so the text fails closed."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ModeratorError(f"{needed} ({e})") from None


@dataclass(frozen=True)
class ModeratorOptions:
    """What a user may tune on any backend; a backend reads the fields it has a use for.

    None keeps the backend's own default (PRISM_THREADS, the model's context size...)."""

    threads: int | None = None
    """CPU threads for the model runtime (classifier and guard model)."""
    n_ctx: int | None = None
    """A guard model's context window in tokens."""
    prompt_format: str | None = None
    """A guard model's prompt format, when it cannot be detected from the file."""


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


@runtime_checkable
class Limited(Protocol):
    """Optional: a moderator whose input is limited (the classifier: prism.json max_length)."""

    max_tokens: int | None
    """Most tokens of text one input may hold, not counting the model's own special tokens."""

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """(start, end) character offsets of each token of `text`, cut by the moderator's tokenizer."""
        ...
