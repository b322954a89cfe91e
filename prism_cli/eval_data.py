"""Labeled data for `prism eval`: JSONL or CSV rows of text, label and an optional category.

Rows stream one at a time (files can be large) through the shared reader core (records.py:
the text is in `text`, else `prompt`), and the first malformed row stops the run with an
InputError naming file:line and the key, because a silently skipped row would change the
metrics without anyone noticing.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Iterator

from prism_cli.errors import InputError
from prism_cli.records import Record, Source, detect_format

_UNSAFE = {"1", "unsafe", "harmful", "true"}
_SAFE = {"0", "safe", "benign", "false"}
_LABEL_HELP = "expected 0/1, safe/unsafe, benign/harmful or true/false"


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


def _row(rec: Record) -> LabeledRow:
    where = f"{rec.file}:{rec.line}"
    if rec.error is not None:
        raise rec.fail()
    assert rec.text is not None and rec.data is not None
    if not rec.text.strip():
        raise InputError(f"{where}: empty text")
    if "label" not in rec.data:
        raise InputError(f"{where}: no 'label' field")
    return LabeledRow(rec.text, parse_label(rec.data["label"], where), _category(rec.data.get("category"), where), where)


def read_labeled(path: str | Path, limit: int | None = None) -> Iterator[LabeledRow]:
    """Stream the labeled rows of a JSONL or CSV file (by extension, else sniffed), at most `limit`.

    The file is opened and its format checked now; row errors surface while iterating.
    """
    unknown = f"{path}: unknown format (expected .jsonl, .ndjson or .csv, or JSONL / CSV with a header)"
    if detect_format(str(path), None) == "txt":
        raise InputError(unknown)
    src = Source(str(path))
    if src.fmt == "txt":
        raise InputError(unknown)
    rows = (_row(rec) for rec in src.records(require=("label",)))
    return rows if limit is None else islice(rows, limit)
