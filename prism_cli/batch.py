"""Batch chat: every input line is one user turn; the transcript is JSONL, the exit code the worst turn.

Inputs are read and validated in full before the model runs, so a bad line costs no
generation and leaves no output file. A transcript file is written atomically (temp file
+ rename): it exists complete or not at all.
"""

from __future__ import annotations

from typing import Callable, Iterable

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
) -> int:
    """Run every turn in order; returns the exit code. A prompt too long for the context names its line."""
    results: list[TurnResult] = []
    with jsonl_output(out, "--out") as f:
        for lineno, prompt in turns:
            try:
                r = session.turn(prompt)
            except InputError as e:
                raise InputError(f"{name}:{lineno}: {e}") from None
            results.append(r)
            f.write(r.to_record())
            f.flush()
            if on_turn is not None:
                on_turn(lineno, r)
    return exit_code(results)
