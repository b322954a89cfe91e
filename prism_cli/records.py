"""The record layer of the reader core: txt lines, JSON Lines objects and CSV rows become Records.

scan, chat batch and eval all read through Source, so they agree on formats, on which key
holds the text (TEXT_KEYS: `text`, then `prompt`), and on what is malformed: bad JSON, a
line nested too deeply, NaN/Infinity, a duplicate key or CSV column. A malformed line is a
Record with an `error`; the caller stops at it (Record.fail) or, like scan --skip-bad, goes on.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from prism_cli.errors import InputError
from prism_cli.inputs import MAX_LINE_BYTES, Input, decode_line, first_line

INPUT_FORMATS = ("txt", "jsonl", "csv")
TEXT_KEYS = ("text", "prompt")
"""Where the text is when --field/--column is not given: the first of these keys present."""
_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".txt": "txt"}


@dataclass
class Record:
    """One input text, or the reason its line could not be read (`error`)."""

    file: str
    line: int
    text: str | None = None
    error: str | None = None
    row: int | None = None
    """CSV only: the data row number (1 = first row after the header)."""
    rid: Any = None
    has_id: bool = False
    data: dict[str, Any] | None = None
    """The whole JSON object or CSV row (eval reads its label from here)."""

    def where(self) -> dict[str, Any]:
        """Where the record came from, as output keys: file and line, plus row for CSV."""
        if self.row is None:
            return {"file": self.file, "line": self.line}
        return {"file": self.file, "row": self.row, "line": self.line}

    def fail(self) -> InputError:
        return InputError(f"{self.file}:{self.line}: {self.error}")


# ---------------------------------------------------------------- JSON, strictly


class _Refused(ValueError):
    """JSON that Python would accept but that is not valid JSON or is ambiguous."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for k, v in pairs:
        if k in obj:
            raise _Refused(f"duplicate key {k!r}")
        obj[k] = v
    return obj


def _no_constant(name: str) -> Any:
    raise _Refused(f"invalid JSON ({name} is not a JSON number)")


def _finite(s: str) -> float:
    f = float(s)
    if not math.isfinite(f):
        raise _Refused(f"invalid JSON (number {s[:40]} is out of range)")
    return f


def parse_json(text: str) -> tuple[Any, str | None]:
    """(value, None) or (None, why): duplicate keys, NaN/Infinity and overflowing numbers are refused,
    so whatever prism echoes back (an id) is valid JSON again."""
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant, parse_float=_finite), None
    except _Refused as e:
        return None, str(e)
    except json.JSONDecodeError as e:
        return None, f"invalid JSON ({e.msg} at column {e.colno})"
    except RecursionError:
        return None, "invalid JSON (nested too deeply)"
    except ValueError as e:  # e.g. an integer of more than 4300 digits
        return None, f"invalid JSON ({(str(e).splitlines() or ['bad value'])[0][:120]})"


def json_type(v: Any) -> str:
    """What a JSON value is, in the words an error message uses ("an object", "an array")."""
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(v), "a number"
    )


def _has_surrogates(v: Any) -> bool:
    """A lone surrogate escape (\\ud800) decodes to a str that cannot be written as UTF-8."""
    if isinstance(v, str):
        try:
            v.encode("utf-8")
            return False
        except UnicodeEncodeError:
            return True
    if isinstance(v, dict):
        return any(_has_surrogates(k) or _has_surrogates(x) for k, x in v.items())
    if isinstance(v, list):
        return any(_has_surrogates(x) for x in v)
    return False


def pick_text(obj: dict[str, Any], key: str | None, what: str = "field") -> tuple[str | None, str | None]:
    """(text, None) from `key`, or the first of TEXT_KEYS present; (None, why) otherwise."""
    if key is None:
        key = next((k for k in TEXT_KEYS if k in obj), None)
        if key is None:
            return None, f"no 'text' or 'prompt' {what}"
    elif key not in obj:
        return None, f"no {key!r} {what}"
    value = obj[key]
    if not isinstance(value, str):
        return None, f"{what} {key!r} is {json_type(value)}, expected a string"
    return value, None


# ---------------------------------------------------------------- formats


def detect_format(name: str, explicit: str | None) -> str | None:
    """The format from --format or the extension; None means: sniff the first line."""
    if explicit:
        if explicit not in INPUT_FORMATS:
            raise InputError(f"--format must be one of {', '.join(INPUT_FORMATS)}, got {explicit!r}")
        return explicit
    if name == "-":
        return None
    suffix = Path(name).suffix.lower()
    if suffix == ".json":
        raise InputError(f"{name}: a .json file is not JSON Lines; use --format jsonl if it has one object per line")
    return _EXTENSIONS.get(suffix)


def sniff_format(head: bytes, column: str | None = None) -> str:
    """stdin and unknown extensions: a first line opening with '{' is JSONL; a CSV header naming
    a text column (TEXT_KEYS or --column) is CSV; anything else is one text per line."""
    line = first_line(head)
    if line is None:
        line = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if line.startswith(b"{"):
        return "jsonl"
    text, err = decode_line(line)
    if err is None and text and "," in text:
        fields = {f.strip() for f in next(csv.reader([text]), [])}
        if len(fields) >= 2 and fields & ({column} if column else set(TEXT_KEYS)):
            return "csv"
    return "txt"


# ---------------------------------------------------------------- sources


class Source(Input):
    """One input of scan, chat batch or eval, opened once, with its format decided."""

    def __init__(self, name: str, fmt: str | None = None, line_limit: int = MAX_LINE_BYTES, column: str | None = None):
        kind_ = detect_format(name, fmt)
        super().__init__(name, line_limit)
        self.fmt = kind_ or sniff_format(self.head, column)

    def records(self, field: str | None = None, column: str | None = None, require: tuple[str, ...] = ()) -> Iterator[Record]:
        """Every record in order. `field`/`column` name the text's key; `require` lists CSV columns
        the header must have (a JSONL object's keys are checked by the caller)."""
        if self.fmt == "jsonl":
            return _jsonl_records(self, field)
        if self.fmt == "csv":
            return _csv_records(self, column, require)
        return _txt_records(self)


def open_sources(names: list[str], fmt: str | None = None, line_limit: int = MAX_LINE_BYTES, column: str | None = None) -> list[Source]:
    """Open and check every input before any moderation starts: exists, readable, not empty, not binary."""
    if names.count("-") > 1:
        raise InputError("'-' (stdin) can be given only once")
    return [Source(name, fmt, line_limit, column) for name in names]


def _strip_eol(text: str) -> str:
    return text.rstrip("\r\n") if text.endswith("\n") else text.removesuffix("\r")


def _txt_records(src: Source) -> Iterator[Record]:
    for lineno, text, err in src.lines():
        if err is not None:
            yield Record(src.name, lineno, error=err)
            continue
        assert text is not None
        body = _strip_eol(text)
        if body.strip():
            yield Record(src.name, lineno, text=body)


def _jsonl_records(src: Source, field: str | None) -> Iterator[Record]:
    for lineno, text, err in src.lines():
        if err is not None:
            yield Record(src.name, lineno, error=err)
            continue
        assert text is not None
        if text.strip():
            yield _json_record(src.name, lineno, _strip_eol(text), field)


def _json_record(name: str, lineno: int, text: str, field: str | None) -> Record:
    rec = Record(name, lineno)
    obj, rec.error = parse_json(text)
    if rec.error is not None:
        return rec
    if not isinstance(obj, dict):
        rec.error = f"expected a JSON object, got {json_type(obj)}"
        return rec
    rec.text, rec.error = pick_text(obj, field)
    if rec.error is None:
        rid = obj.get("id")
        if _has_surrogates(rec.text) or _has_surrogates(rid):
            rec.text, rec.error = None, "invalid Unicode (a lone surrogate escape such as \\ud800)"
        else:
            rec.rid, rec.has_id, rec.data = rid, rid is not None, obj
    return rec


def _csv_records(src: Source, column: str | None, require: tuple[str, ...]) -> Iterator[Record]:
    bad_lines: dict[int, str] = {}

    def feed() -> Iterator[str]:
        for lineno, text, err in src.lines():
            if err is not None:
                bad_lines[lineno] = err
                yield "\n"  # keeps the reader's line count; the row spanning it is reported bad
            else:
                assert text is not None
                yield text

    csv.field_size_limit(src.line_limit)
    reader = csv.reader(feed(), strict=True)
    header: list[str] | None = None
    row_no = last = 0
    while True:
        start = last + 1
        try:
            fields = next(reader)
            err: str | None = None
        except StopIteration:
            return
        except csv.Error as e:
            fields, err = [], f"malformed CSV ({e})"
        last = reader.line_num
        bad = sorted(n for n in bad_lines if n <= last)
        if bad:
            err, start = bad_lines[bad[0]], bad[0]
            for n in bad:
                del bad_lines[n]
        if header is None:
            if err is not None:
                raise InputError(f"{src.name}:{start}: cannot read the CSV header: {err}")
            if fields:
                header = _check_header(fields, column, require, f"{src.name}:{start}")
            continue
        if err is None and not fields:
            continue  # a blank line
        row_no += 1
        if err is None and len(fields) != len(header):
            err = f"row has {len(fields)} fields, the header has {len(header)}"
        if err is not None:
            yield Record(src.name, start, error=err, row=row_no)
            continue
        data = dict(zip(header, fields))
        text, _ = pick_text(data, column, "column")
        rid = data.get("id") or None
        yield Record(src.name, start, text=text, row=row_no, rid=rid, has_id=rid is not None, data=data)


def _check_header(header: list[str], column: str | None, require: tuple[str, ...], where: str) -> list[str]:
    """The stripped column names; a duplicate name, or no text column, is an error naming the header line."""
    names = [h.strip() for h in header]
    seen: set[str] = set()
    for n in names:
        if n and n in seen:
            raise InputError(f"{where}: duplicate column {n!r} in the header")
        seen.add(n)
    cols = ", ".join(names)
    if column is not None and column not in seen:
        raise InputError(f"{where}: no column {column!r} in the header (columns: {cols})")
    if column is None and not seen & set(TEXT_KEYS):
        raise InputError(f"{where}: no 'text' or 'prompt' column in the header (columns: {cols}); use --column")
    for k in require:
        if k not in seen:
            raise InputError(f"{where}: no column {k!r} in the header (columns: {cols})")
    return names
