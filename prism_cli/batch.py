"""Batch chat: every input line is one user turn; the transcript is JSONL, the exit code the worst turn.

Inputs are read and validated in full before the model runs, so a bad line costs no
generation and leaves no output file. A transcript file is written atomically (temp file
+ rename): it exists complete or not at all.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Callable, Iterable, Iterator

from prism_cli.errors import EXIT_ALLOW, EXIT_BLOCK, EXIT_MODERATOR, InputError
from prism_cli.session import ChatSession, TurnResult
from prism_cli.textio import decode, open_user_file

MAX_INPUT_BYTES = 64 * 1024 * 1024
PROMPT_KEYS = ("prompt", "text")


def read_turns(path: str | None) -> tuple[list[tuple[int, str]], str]:
    """(line number, prompt) pairs from a txt or JSONL file, or stdin; and the input's name.

    JSONL when the name ends in .jsonl/.ndjson, or when the first non-blank line starts
    with "{". Blank lines are skipped; a JSONL object gives its "prompt" (or "text") field.
    """
    if path and path != "-":
        name = path
        with open_user_file(path) as f:
            raw = f.read(MAX_INPUT_BYTES + 1)
    else:
        name = "<stdin>"
        raw = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
    if len(raw) > MAX_INPUT_BYTES:
        raise InputError(f"{name}: too large (over {MAX_INPUT_BYTES} bytes)")
    lines = decode(raw, name).splitlines()
    first = next((ln.lstrip() for ln in lines if ln.strip()), "")
    jsonl = name.endswith((".jsonl", ".ndjson")) or first.startswith("{")
    turns = [(i, _parse_jsonl(ln, name, i) if jsonl else ln) for i, ln in enumerate(lines, 1) if ln.strip()]
    if not turns:
        raise InputError(f"{name}: no prompts (one per line, or JSONL objects with a 'prompt' field)")
    return turns, name


def _parse_jsonl(line: str, name: str, lineno: int) -> str:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise InputError(f"{name}:{lineno}: invalid JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(obj, dict):
        raise InputError(f"{name}:{lineno}: expected a JSON object with a 'prompt' field")
    key = next((k for k in PROMPT_KEYS if k in obj), None)
    if key is None:
        raise InputError(f"{name}:{lineno}: missing key 'prompt' (or 'text')")
    value = obj[key]
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{name}:{lineno}: key '{key}' must be a non-empty string")
    return value


@contextmanager
def transcript_out(path: str | None) -> Iterator[IO[str]]:
    """stdout, or a file that appears (by rename) only when the block finishes without error."""
    if path is None or path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    target = Path(path)
    if target.is_dir():
        raise InputError(f"{path}: is a directory")
    folder = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as e:
        raise InputError(f"{path}: cannot write ({e.strerror})") from None
    try:
        os.chmod(tmp, _file_mode(target))
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _file_mode(target: Path) -> int:
    """The mode a plain open() would give (mkstemp makes 0600): the old file's, or 0666 minus umask."""
    try:
        return target.stat().st_mode & 0o777
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def write_transcript(path: str, turns: Iterable[TurnResult]) -> int:
    """/save: the turns as JSONL, atomically. Returns the number of lines written."""
    n = 0
    with transcript_out(path) as f:
        for r in turns:
            f.write(json.dumps(r.to_record(), ensure_ascii=False) + "\n")
            n += 1
    return n


def exit_code(results: Iterable[TurnResult]) -> int:
    """3 if a moderator failed on any turn, else 1 if anything was blocked, else 0."""
    code = EXIT_ALLOW
    for r in results:
        if r.moderator_failed:
            return EXIT_MODERATOR
        if r.blocked:
            code = EXIT_BLOCK
    return code


def run_batch(
    session: ChatSession,
    turns: list[tuple[int, str]],
    name: str,
    out: str | None,
    on_turn: Callable[[int, TurnResult], None] | None = None,
) -> int:
    """Run every turn in order; returns the exit code. A prompt too long for the context names its line."""
    results: list[TurnResult] = []
    with transcript_out(out) as f:
        for lineno, prompt in turns:
            try:
                r = session.turn(prompt)
            except InputError as e:
                raise InputError(f"{name}:{lineno}: {e}") from None
            results.append(r)
            f.write(json.dumps(r.to_record(), ensure_ascii=False) + "\n")
            f.flush()
            if on_turn is not None:
                on_turn(lineno, r)
    return exit_code(results)
