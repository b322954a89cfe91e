"""Batch chat: every input line is one user turn; the transcript is JSONL, the exit code the worst turn.

Each line is its own conversation unless the session keeps one (--conversation): a file of
prompts is usually a list of separate questions, whose replies should not depend on their order
or grow slower as the context fills. On a terminal, stderr shows turn i/n and the token rate.

Inputs are read and validated in full before the model runs, so a bad line costs no
generation and leaves no output file. A transcript file is written atomically (temp file
+ rename): it exists complete or not at all.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Callable, Iterable

from prism_cli.errors import InputError
from prism_cli.outputs import jsonl_output
from prism_cli.records import Source
from prism_cli.session import ChatSession, TurnResult
from prism_cli.verdict import exit_code as verdict_exit_code

MAX_INPUT_BYTES = 64 * 1024 * 1024


def read_turns(path: str | None) -> tuple[list[tuple[int, str]], str]:
    """(line number, prompt) pairs from a txt, JSONL or CSV file, or stdin; and the input's name.

    The shared reader core decides the format (extension, else the first line) and the text
    key (`text`, then `prompt`); the first malformed line stops here, before any generation.
    """
    src = Source(path or "-")
    turns: list[tuple[int, str]] = []
    for rec in src.records():
        if rec.error is not None:
            raise rec.fail()
        if src.pos > MAX_INPUT_BYTES:
            raise InputError(f"{src.name}: too large (over {MAX_INPUT_BYTES} bytes)")
        assert rec.text is not None
        if not rec.text.strip():
            raise InputError(f"{rec.file}:{rec.line}: empty text")
        turns.append((rec.line, rec.text))
    if not turns:
        raise InputError(f"{src.name}: no prompts (one per line, or JSONL objects with a 'text' or 'prompt' field)")
    return turns, src.name


def write_transcript(path: str, turns: Iterable[TurnResult]) -> int:
    """/save: the turns as JSONL, atomically. Returns the number of lines written."""
    n = 0
    with jsonl_output(path) as w:
        for r in turns:
            w.write(r.to_record())
            n += 1
    return n


def exit_code(results: Iterable[TurnResult]) -> int:
    """3 if a moderator failed on any turn, else 1 if anything was blocked, else 0."""
    done = list(results)
    return verdict_exit_code(any(r.moderator_failed for r in done), any(r.blocked for r in done))


def run_batch(
    session: ChatSession,
    turns: list[tuple[int, str]],
    name: str,
    out: str | None,
    on_turn: Callable[[int, TurnResult], None] | None = None,
    progress: IO[str] | None = None,
) -> int:
    """Run every turn in order; returns the exit code. A prompt too long for the context names its line.

    `progress`: where the turn i/n line goes (default stderr, and only when it is a terminal).
    """
    results: list[TurnResult] = []
    bar = Progress(len(turns), progress)
    notify = session.on_notice

    def on_notice(msg: str) -> None:  # a notice mid-turn must not be glued to the progress line
        bar.clear()
        notify(msg)

    session.on_notice = on_notice
    try:
        with jsonl_output(out, "--out") as f:
            for i, (lineno, prompt) in enumerate(turns, 1):
                bar.show(i)
                try:
                    r = session.turn(prompt, bar.tick)
                except InputError as e:
                    raise InputError(f"{name}:{lineno}: {e}") from None
                finally:
                    bar.clear()
                results.append(r)
                f.write(r.to_record())
                f.flush()
                bar.add(r)
                if on_turn is not None:
                    on_turn(lineno, r)
    finally:
        session.on_notice = notify
        bar.clear()
    bar.summary()
    return exit_code(results)


class Progress:
    """`turn 3/20 · 412 tokens · 18.2 tok/s` on one rewritten stderr line, on a terminal only."""

    def __init__(self, total: int, stream: IO[str] | None = None):
        self.total, self.out = total, stream or sys.stderr
        self.on = bool(getattr(self.out, "isatty", lambda: False)())
        self.tokens, self.gen_s, self.t0, self._shown = 0, 0.0, time.perf_counter(), False
        self._turn, self._drawn = 0, 0.0

    def show(self, i: int) -> None:
        if not self.on:
            return
        self._turn, self._drawn = i, time.perf_counter()
        rate = f" · {self.tokens / self.gen_s:.1f} tok/s" if self.gen_s > 0 and self.tokens else ""
        self.out.write(f"\r\x1b[Kprism: turn {i}/{self.total} · {self.tokens} tokens{rate} · {self._elapsed()}")
        self.out.flush()
        self._shown = True

    def tick(self, text: str) -> None:
        """Approved reply text arrived: redraw (at most once a second) so a long turn shows time passing."""
        if self._shown and time.perf_counter() - self._drawn >= 1.0:
            self.show(self._turn)

    def add(self, r: TurnResult) -> None:
        self.tokens += r.timings.tokens
        self.gen_s += r.timings.gen_ms / 1000

    def clear(self) -> None:
        if self._shown:
            self.out.write("\r\x1b[K")
            self.out.flush()
            self._shown = False

    def summary(self) -> None:
        if self.on:
            rate = f", {self.tokens / self.gen_s:.1f} tok/s" if self.gen_s > 0 and self.tokens else ""
            self.out.write(f"prism: {self.total} turns, {self.tokens} tokens{rate}, {self._elapsed()}\n")
            self.out.flush()

    def _elapsed(self) -> str:
        return f"{time.perf_counter() - self.t0:.0f} s"
