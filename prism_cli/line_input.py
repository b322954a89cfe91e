"""Reading the REPL's lines: stdlib readline (arrow keys, Ctrl-R search, Tab for /commands) and a
private history file, like Ollama and llm.

Readline only edits when stdin and stdout are both a terminal (Python's input() uses it then, and
writes the prompt to stdout); otherwise the prompt goes to stderr through rich and lines are read
plainly. stdlib readline serves: it is present wherever Python has a terminal worth editing on
(Linux, macOS), costs no dependency, and prism's prompt needs no more than line editing.

The history holds what you typed, prompts included: it is written with mode 0600, capped at
MAX_HISTORY lines, and can be turned off (`--no-history`, config key `history: false`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Iterable

MAX_HISTORY = 1000


def _readline() -> Any:
    try:
        import readline
    except ImportError:  # Windows without pyreadline: plain input
        return None
    return readline


class LineReader:
    def __init__(self, console: Any, history: Path | None = None, words: Iterable[str] = ()):
        self.console = console
        self.history = history
        self.rl = _readline() if sys.stdin.isatty() and sys.stdout.isatty() else None
        self._start = 0
        if self.rl is not None:
            self._setup(sorted(words))

    def _setup(self, words: list[str]) -> None:
        rl = self.rl
        rl.clear_history()
        if self.history is not None and self.history.is_file():
            try:
                rl.read_history_file(str(self.history))
            except OSError:
                pass  # an unreadable history is no reason to refuse a chat
        self._start = rl.get_current_history_length()

        def complete(text: str, state: int) -> str | None:
            hits = [w + " " for w in words if w.startswith(text)] if text.startswith("/") else []
            return hits[state] if state < len(hits) else None

        rl.set_completer(complete)
        rl.set_completer_delims(" \t\n")
        libedit = "libedit" in (rl.__doc__ or "")
        rl.parse_and_bind("bind ^I rl_complete" if libedit else "tab: complete")

    def input(self, markup: str, plain: str, style: str = "bold cyan") -> str:
        """One line (EOFError on Ctrl-D, KeyboardInterrupt on Ctrl-C)."""
        if self.rl is None:
            return self.console.input(markup)
        return input(self._prompt(plain, style))

    def _prompt(self, plain: str, style: str) -> str:
        """The prompt for readline, coloured only where rich would colour; escapes marked invisible."""
        if self.console.no_color or self.console.color_system is None:
            return plain
        from rich.style import Style

        start = Style.parse(style).render("x").split("x")[0]
        return f"\001{start}\002{plain.rstrip()}\001\x1b[0m\002" + " " * (len(plain) - len(plain.rstrip()))

    def close(self) -> None:
        """Add this session's lines to the history file (0600), or rewrite it as the last MAX_HISTORY when full."""
        rl, path = self.rl, self.history
        if rl is None or path is None:
            return
        new = rl.get_current_history_length() - self._start
        if new <= 0:
            return
        old = os.umask(0o077)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.is_file() and _count_lines(path) + new > MAX_HISTORY:
                rl.set_history_length(MAX_HISTORY)
                rl.write_history_file(str(path))
            else:
                path.touch(mode=0o600)
                rl.append_history_file(new, str(path))
            os.chmod(path, 0o600)
        except OSError as e:
            self.console.print(f"[yellow]could not save the input history to {path}: {e.strerror or e}[/]")
        finally:
            os.umask(old)


def _count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for _ in f)
