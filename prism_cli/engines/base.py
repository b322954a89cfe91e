"""The engine protocol: a chat model that streams text pieces and can be stopped at once."""

from __future__ import annotations

from typing import Iterator, Protocol, Sequence

from prism_cli.errors import EngineError  # noqa: F401 (re-exported: engines raise it)

ChatMessage = dict[str, str]
"""{"role": "system"|"user"|"assistant", "content": "..."}"""


class Engine(Protocol):
    name: str
    n_ctx: int
    """Context window in tokens (0 when unknown, e.g. some servers)."""

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int = 512,
        temperature: float = 0.7,
        seed: int | None = None,
    ) -> Iterator[str]:
        """Yield the reply as text pieces (about one token each).

        Closing the iterator (`.close()`, or leaving a for-loop over it) stops generation
        immediately: no further tokens are decoded and a server connection is dropped.
        """
        ...

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """Tokens the prompt for these messages takes (for trimming old turns)."""
        ...

    def close(self) -> None: ...
