"""What prism says to the person at the terminal: one line each on stderr, always prefixed `prism: `.

stdout carries only results (verdicts, transcripts, tables a pipe reads); every notice, warning and
error goes through here, so the prefix and the stream are decided in one place and any layer can
speak without importing the CLI.
"""

from __future__ import annotations

import os
import sys
from typing import Any

PREFIX = "prism: "


def notice(msg: str) -> None:
    """Something the user should know; not a problem."""
    print(PREFIX + msg, file=sys.stderr, flush=True)


def warning(msg: str) -> None:
    """Something went wrong but the command goes on (and says what it did instead)."""
    notice(f"warning: {msg}")


def error(msg: str) -> None:
    """Why the command stops: one line, naming the file, line or key."""
    notice(f"error: {msg}")


def err_console() -> Any:
    """A rich console on stderr for tables and colour; colour only on a TTY and never with NO_COLOR."""
    from rich.console import Console

    return Console(stderr=True, no_color=bool(os.environ.get("NO_COLOR")), highlight=False)
