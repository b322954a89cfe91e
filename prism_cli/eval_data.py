"""Labeled data for `prism eval`: JSONL or CSV rows of text, label and an optional category.

Rows stream one at a time (files can be large), and the first malformed row stops the
run with an InputError naming file:line and the key, because a silently skipped row
would change the metrics without anyone noticing.
"""

from __future__ import annotations

import csv
import json
from itertools import islice
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from prism_cli.errors import InputError
from prism_cli.textio import open_user_file

TEXT_KEYS = ("text", "prompt")
"""Column holding the text; "prompt" is accepted because many prompt sets use it."""

_UNSAFE = {"1", "unsafe", "harmful", "true"}
_SAFE = {"0", "safe", "benign", "false"}
_LABEL_HELP = "expected 0/1, safe/unsafe, benign/harmful or true/false"
FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}


@dataclass(frozen=True)
class LabeledRow:
    text: str
    label: int
    """1 = unsafe (should be flagged), 0 = safe."""
    category: str | None
    where: str
    """"file:line", for error messages."""


def parse_label(value: Any, where: str) -> int:
    """0/1 (int or string), booleans, safe/unsafe, benign/harmful; anything else is an error."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) and value in (0, 1):
        return value
    if isinstance(value, float) and value in (0.0, 1.0):
        return int(value)
    if isinstance(value, str):
        v = value.strip().lower()
        if v in _UNSAFE:
            return 1
        if v in _SAFE:
            return 0
    raise InputError(f"{where}: label: {_LABEL_HELP}, got {value!r}")


def _category(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InputError(f"{where}: category: must be a string, got {value!r}")
    s = str(value).strip()
    return s or None


def _row(rec: dict[str, Any], where: str) -> LabeledRow:
    key = next((k for k in TEXT_KEYS if k in rec), None)
    if key is None:
        raise InputError(f"{where}: missing key 'text'")
    text = rec[key]
    if not isinstance(text, str):
        raise InputError(f"{where}: {key}: must be a string, got {type(text).__name__}")
    if not text.strip():
        raise InputError(f"{where}: {key}: empty text")
    if "label" not in rec:
        raise InputError(f"{where}: missing key 'label'")
    return LabeledRow(text, parse_label(rec["label"], where), _category(rec.get("category"), where), where)


def _lines(path: Path, name: str) -> Iterator[tuple[int, str]]:
    """(line number, decoded line) with strict UTF-8, a leading BOM dropped, NUL bytes refused."""
    with open_user_file(path, name) as f:
        for no, raw in enumerate(f, 1):
            if b"\0" in raw:
                raise InputError(f"{name}:{no}: binary data (NUL byte), expected UTF-8 text")
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise InputError(f"{name}:{no}: invalid UTF-8 (byte 0x{raw[e.start]:02x})") from None
            yield no, line.removeprefix("\ufeff") if no == 1 else line


def _read_jsonl(path: Path, name: str) -> Iterator[LabeledRow]:
    for no, line in _lines(path, name):
        if not line.strip():
            continue
        where = f"{name}:{no}"
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{where}: invalid JSON ({e.msg})") from None
        if not isinstance(rec, dict):
            raise InputError(f"{where}: expected a JSON object with 'text' and 'label'")
        yield _row(rec, where)


def _read_csv(path: Path, name: str) -> Iterator[LabeledRow]:
    numbered = _lines(path, name)
    current = [0]

    def texts() -> Iterator[str]:
        for no, line in numbered:
            current[0] = no
            yield line

    reader = csv.reader(texts(), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as e:
        raise InputError(f"{name}:{current[0]}: malformed CSV ({e})") from None
    if header is None:
        raise InputError(f"{name}: empty file (expected a header row with text,label)")
    header = [h.strip() for h in header]
    if not any(k in header for k in TEXT_KEYS) or "label" not in header:
        raise InputError(f"{name}:1: header must name the columns 'text' and 'label' (got {','.join(header)})")
    while True:
        start = current[0] + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise InputError(f"{name}:{start}: malformed CSV ({e})") from None
        if not cells or all(not c.strip() for c in cells):
            continue
        where = f"{name}:{start}"
        if len(cells) != len(header):
            raise InputError(f"{where}: expected {len(header)} fields, got {len(cells)}")
        yield _row(dict(zip(header, cells)), where)


def read_labeled(path: str | Path, limit: int | None = None) -> Iterator[LabeledRow]:
    """Stream the labeled rows of a .jsonl/.ndjson or .csv file, at most `limit` of them.

    The format and the file's existence are checked now; row errors surface while iterating.
    """
    p = Path(path)
    fmt = FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise InputError(f"{path}: unknown format (expected {', '.join(FORMATS)})")
    if not p.exists():
        raise InputError(f"{path}: no such file")
    rows = _read_jsonl(p, str(path)) if fmt == "jsonl" else _read_csv(p, str(path))
    return rows if limit is None else islice(rows, limit)
