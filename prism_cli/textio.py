"""Text in and out for the commands: one document for `check`, many records for `scan`, JSONL out.

The reader core lives in inputs.py (bytes: open once, strict UTF-8, numbered lines) and
records.py (txt / JSONL / CSV records, shared with chat batch and eval); the one writer in
outputs.py. This module is the commands' entry to both.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator

from prism_cli.errors import InputError
from prism_cli.inputs import (  # noqa: F401 - the decoding helpers, reusable from here
    MAX_LINE_BYTES,
    SNIFF_BYTES,
    decode,
    decode_line,
    open_user_file,
    read_bounded,
    sniff_error,
)
from prism_cli.outputs import JsonlWriter, jsonl_output
from prism_cli.records import FORMATS, TEXT_KEYS, Record, Source, detect_format, open_sources  # noqa: F401

MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
_decode_line = decode_line
_sniff_error = sniff_error


def read_document(path: str | None, text: str | None = None, limit: int = MAX_DOCUMENT_BYTES) -> tuple[str, str]:
    """One text for `check`: from --text, a file, or stdin ('-' or nothing). Returns (text, name)."""
    too_large = "(use prism scan for many texts)"
    if text is not None:
        name, raw = "--text", text.encode("utf-8", "surrogatepass")
    elif path and path != "-":
        name = path
        raw = read_bounded(path, limit, name, f"document {too_large}")
    else:
        name = "<stdin>"
        if sys.stdin is None or sys.stdin.isatty():
            raise InputError("no input: pipe text in, give a FILE, or use --text")
        raw = sys.stdin.buffer.read(limit + 1)
        if len(raw) > limit:
            raise InputError(f"{name}: too large for a document {too_large} (over {limit} bytes)")
    doc = decode(raw, name)
    if not doc.strip():
        raise InputError(f"{name}: empty input")
    return doc, name


@contextmanager
def open_output(path: str | None) -> Iterator[JsonlWriter]:
    """scan's verdicts: stdout, or --out FILE written by the one atomic writer (outputs.py)."""
    with jsonl_output(path, "--out") as w:
        yield w
