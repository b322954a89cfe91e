"""Input readers and output writers: every byte from the user is checked here, with file and line in errors."""

from __future__ import annotations

import sys
from pathlib import Path

from prism_cli.errors import InputError

MAX_DOCUMENT_BYTES = 16 * 1024 * 1024


def decode(raw: bytes, name: str) -> str:
    """Strict UTF-8 (BOM allowed); binary data and bad bytes are errors naming the line."""
    if b"\0" in raw[:8192] or b"\0" in raw:
        line = raw[: raw.index(b"\0")].count(b"\n") + 1
        raise InputError(f"{name}:{line}: binary data (NUL byte), expected UTF-8 text")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise InputError(f"{name}:{line}: invalid UTF-8 (byte 0x{raw[e.start]:02x} at offset {e.start})") from None
    return text.removeprefix("\ufeff")


def read_document(path: str | None, text: str | None = None, limit: int = MAX_DOCUMENT_BYTES) -> tuple[str, str]:
    """One text for `check`: from --text, a file, or stdin ('-' or nothing). Returns (text, name)."""
    if text is not None:
        name, raw = "--text", text.encode("utf-8", "surrogatepass")
    elif path and path != "-":
        name = path
        p = Path(path)
        try:
            if p.stat().st_size > limit:
                raise InputError(f"{name}: too large ({p.stat().st_size} bytes; the limit is {limit}; use prism scan)")
            raw = p.read_bytes()
        except FileNotFoundError:
            raise InputError(f"{name}: no such file") from None
        except IsADirectoryError:
            raise InputError(f"{name}: is a directory") from None
        except OSError as e:
            raise InputError(f"{name}: cannot read ({e.strerror})") from None
    else:
        name = "<stdin>"
        if sys.stdin is None or sys.stdin.isatty():
            raise InputError("no input: pipe text in, give a FILE, or use --text")
        raw = sys.stdin.buffer.read(limit + 1)
        if len(raw) > limit:
            raise InputError(f"{name}: too large (over {limit} bytes; use prism scan for many texts)")
    doc = decode(raw, name)
    if not doc.strip():
        raise InputError(f"{name}: empty input")
    return doc, name
