"""Text in and out for the commands: one document for `check`, many records for `scan`, JSONL out.

The reader core lives in inputs.py (bytes: open once, strict UTF-8, numbered lines) and
records.py (txt / JSONL / CSV records, shared with chat batch and eval); the one writer in
outputs.py. This module is the commands' entry to both.
"""

from __future__ import annotations

import io
import re
import sys
from contextlib import contextmanager
from typing import Iterator

from prism_cli.errors import InputError
from prism_cli.inputs import (  # noqa: F401 - the decoding helpers, reusable from here
    BOM,
    MAX_LINE_BYTES,
    SNIFF_BYTES,
    decode,
    decode_line,
    open_user_file,
    read_bounded,
    sniff_error,
)
from prism_cli.outputs import JsonlWriter, jsonl_output
from prism_cli.records import INPUT_FORMATS, TEXT_KEYS, Record, Source, detect_format, open_sources  # noqa: F401

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


def read_document_chunks(
    path: str | None, text: str | None = None, limit: int = MAX_DOCUMENT_BYTES, chunk_bytes: int = 1 << 18
) -> Iterator[str]:
    """read_document in pieces of about `chunk_bytes`, so a large document is checked as it is read.

    Same sources, limit and errors as read_document (exit 2 naming the line of a NUL byte or
    bad UTF-8, "empty input" once the end shows there was no text). Each piece ends after a
    newline where one is near, and never inside a UTF-8 sequence.
    """
    if text is not None:
        name, stream = "--text", io.BytesIO(text.encode("utf-8", "surrogatepass"))
    elif path and path != "-":
        name, stream = path, open_user_file(path)
    else:
        name = "<stdin>"
        if sys.stdin is None or sys.stdin.isatty():
            raise InputError("no input: pipe text in, give a FILE, or use --text")
        stream = sys.stdin.buffer
    total = lines = done = 0
    carry = b""
    seen_text = False
    try:
        while True:
            raw = stream.read(chunk_bytes)
            total += len(raw)
            if total > limit:
                raise InputError(f"{name}: too large (over {limit} bytes; use prism scan for many texts)")
            data = carry + raw
            if not raw:
                cut = len(data)
            else:
                cut = data.rfind(b"\n", max(0, len(data) - chunk_bytes // 4)) + 1
                if cut == 0:  # no newline near the end: stop before a partial UTF-8 sequence
                    cut = len(data)
                    while cut > len(data) - 4 and cut > 0 and data[cut - 1] & 0xC0 == 0x80:
                        cut -= 1
                    if cut > 0 and data[cut - 1] >= 0xC0:
                        cut -= 1
            piece, carry = data[:cut], data[cut:]
            try:
                out = decode(piece, name)
            except InputError as e:  # decode counts within the piece: count lines and bytes in the document
                where, _, why = str(e).removeprefix(f"{name}:").partition(": ")
                why = re.sub(r"at offset (\d+)", lambda m: f"at offset {int(m.group(1)) + done}", why)
                raise InputError(f"{name}:{int(where) + lines}: {why}") from None
            if done and piece.startswith(BOM):
                out = "\ufeff" + out  # decode drops a BOM; past the first piece it is text (U+FEFF)
            lines += piece.count(b"\n")
            done += len(piece)
            if out:
                seen_text = seen_text or bool(out.strip())
                yield out
            if not raw:
                break
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    if not seen_text:
        raise InputError(f"{name}: empty input")
