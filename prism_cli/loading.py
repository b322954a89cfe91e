"""A "loading ..." line on stderr while a model loads, so seconds of silence are explained.

Shown only when stderr is a terminal, as Ollama shows its spinner: a script reading stderr or a
log file gets no progress chatter. Guard models load lazily on their first check (a cold guard
takes ~10 s); `preload_guards` moves that wait to startup, under this line, instead of into the
user's first turn.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import IO, Any, Iterator


@contextlib.contextmanager
def loading(what: str, stream: IO[str] | None = None) -> Iterator[None]:
    """`prism: loading WHAT...` then ` 1.2 s` on the same line when done (terminal only)."""
    out = stream or sys.stderr
    tty = bool(getattr(out, "isatty", lambda: False)())
    t0 = time.perf_counter()
    if tty:
        out.write(f"prism: loading {what}...")
        out.flush()
    try:
        yield
    except BaseException:
        if tty:
            out.write("\n")
            out.flush()
        raise
    if tty:
        out.write(f" {time.perf_counter() - t0:.1f} s\n")
        out.flush()


def guard_models(moderators: Any) -> list[Any]:
    """The guard LLMs (objects with a lazily loading `llm` property) among moderators, cascades opened."""
    found: list[Any] = []
    for m in moderators:
        parts = [getattr(m, "first", None), getattr(m, "second", None)]
        if any(p is not None for p in parts):
            found += guard_models(p for p in parts if p is not None)
        elif isinstance(getattr(type(m), "llm", None), property):
            found.append(m)
    return found


def preload_guards(gate: Any, stream: IO[str] | None = None) -> Any:
    """Load every guard model of a gate now, under a loading line; returns the gate."""
    for m in guard_models(getattr(gate, "moderators", ()) if gate is not None else ()):
        with loading(f"guard model {m.name}", stream):
            m.llm  # noqa: B018 - the property loads the weights
    return gate
