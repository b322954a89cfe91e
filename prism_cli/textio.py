"""Input readers and output writers: every byte from the user is checked here, with file and line in errors.

`check` reads one document (read_document). `scan` streams records out of txt / JSONL /
CSV files or stdin one physical line at a time (constant memory on any file size), decodes
each line on its own so an error names its line, and writes JSONL atomically.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from prism_cli.errors import InputError

MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
MAX_LINE_BYTES = 1024 * 1024
SNIFF_BYTES = 8192
FORMATS = ("txt", "jsonl", "csv")
DEFAULT_KEYS = ("prompt", "text")
_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".txt": "txt"}
_BOM = b"\xef\xbb\xbf"


def open_user_file(path: str | Path, name: str | None = None) -> BinaryIO:
    """Open a file the user named; OS errors become one-line InputErrors naming it."""
    name = name or str(path)
    try:
        if Path(path).is_dir():
            raise InputError(f"{name}: is a directory")
        return open(path, "rb")  # noqa: SIM115 - the caller closes it
    except FileNotFoundError:
        raise InputError(f"{name}: no such file") from None
    except OSError as e:
        raise InputError(f"{name}: cannot read ({e.strerror})") from None


def decode(raw: bytes, name: str) -> str:
    """Strict UTF-8 (BOM allowed); binary data and bad bytes are errors naming the line."""
    if b"\0" in raw:
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
        with open_user_file(path) as f:
            raw = f.read(limit + 1)
        if len(raw) > limit:
            raise InputError(f"{name}: too large (over {limit} bytes; use prism scan for many texts)")
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


# ---------------------------------------------------------------- scan: records


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

    def where(self) -> dict[str, Any]:
        """Where the record came from, as output keys: file and line, plus row for CSV."""
        if self.row is None:
            return {"file": self.file, "line": self.line}
        return {"file": self.file, "row": self.row, "line": self.line}


def detect_format(name: str, explicit: str | None) -> str:
    if explicit:
        if explicit not in FORMATS:
            raise InputError(f"--format must be one of {', '.join(FORMATS)}, got {explicit!r}")
        return explicit
    if name == "-":
        return "txt"
    suffix = Path(name).suffix.lower()
    if suffix == ".json":
        raise InputError(f"{name}: a .json file is not JSON Lines; use --format jsonl if it has one object per line")
    return _EXTENSIONS.get(suffix, "txt")


def _sniff_error(head: bytes, name: str) -> str | None:
    """Why the first bytes of an input are not UTF-8 text, or None."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return f"{name}: UTF-16 text; convert it to UTF-8 (iconv -f UTF-16 -t UTF-8)"
    if b"\0" in head:
        line = head[: head.index(b"\0")].count(b"\n") + 1
        return f"{name}:{line}: binary file (NUL byte in the first {SNIFF_BYTES // 1024} KB), expected UTF-8 text"
    return None


class _Prefixed(io.RawIOBase):
    """Bytes already read (the sniffed head) followed by the rest of a stream."""

    def __init__(self, head: bytes, rest: BinaryIO):
        self._head, self._rest = head, rest

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(b))
        b[: len(data)] = data
        return len(data)


def _read_head(stream: BinaryIO) -> bytes:
    """The first SNIFF_BYTES of a file; of a pipe, what has arrived (a live stream is not held up)."""
    if not stream.seekable() and hasattr(stream, "read1"):
        return stream.read1(SNIFF_BYTES)  # type: ignore[attr-defined]
    return stream.read(SNIFF_BYTES)


class Source:
    """One input of `scan`: a file or '-' (stdin), read lazily; `pos` counts the bytes consumed."""

    def __init__(self, name: str, fmt: str, size: int | None, line_limit: int = MAX_LINE_BYTES):
        self.name = "<stdin>" if name == "-" else name
        self.path = None if name == "-" else Path(name)
        self.fmt = fmt
        self.size = size
        self.pos = 0
        self.line_limit = line_limit

    @contextmanager
    def _open(self) -> Iterator[BinaryIO]:
        if self.path is None:
            raw: BinaryIO = sys.stdin.buffer
            close = False
        else:
            raw = open_user_file(self.path, self.name)
            close = True
        try:
            head = _read_head(raw)
            err = _sniff_error(head, self.name)
            if err:
                raise InputError(err)
            yield io.BufferedReader(_Prefixed(head, raw), buffer_size=1 << 16)  # type: ignore[arg-type]
        finally:
            if close:
                raw.close()

    def physical_lines(self) -> Iterator[tuple[int, bytes | None, str | None]]:
        """(line number, raw bytes with their line ending, error) for every line, never more than the limit in memory."""
        limit = self.line_limit
        with self._open() as f:
            lineno = 0
            while True:
                raw = f.readline(limit + 1)
                if not raw:
                    return
                lineno += 1
                self.pos += len(raw)
                if lineno == 1 and raw.startswith(_BOM):
                    raw = raw[len(_BOM) :]
                if len(raw) > limit and not raw.endswith(b"\n"):
                    while raw and not raw.endswith(b"\n"):  # drop the rest of the line in chunks
                        raw = f.readline(1 << 16)
                        self.pos += len(raw)
                    yield lineno, None, f"line longer than {limit} bytes"
                    continue
                yield lineno, raw, None

    def lines(self) -> Iterator[tuple[int, str | None, str | None]]:
        """(line number, decoded text with its line ending, error): NUL bytes and bad UTF-8 are errors of that line."""
        for lineno, raw, err in self.physical_lines():
            if raw is None:
                yield lineno, None, err
            else:
                text, err = _decode_line(raw)
                yield lineno, text, err

    def records(self, field: str | None = None, column: str | None = None) -> Iterator[Record]:
        if self.fmt == "jsonl":
            return _jsonl_records(self, field)
        if self.fmt == "csv":
            return _csv_records(self, column)
        return _txt_records(self)


def _decode_line(raw: bytes) -> tuple[str | None, str | None]:
    nul = raw.find(b"\0")
    if nul >= 0:
        return None, f"binary data (NUL byte at column {nul + 1})"
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as e:
        return None, f"invalid UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1})"


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


def _has_surrogates(s: str) -> bool:
    try:
        s.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


def _kind(v: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(v), "a number"
    )


def _jsonl_records(src: Source, field: str | None) -> Iterator[Record]:
    for lineno, text, err in src.lines():
        if err is None:
            assert text is not None
            if not text.strip():
                continue
            rec = _json_record(src.name, lineno, _strip_eol(text), field)
        else:
            rec = Record(src.name, lineno, error=err)
        yield rec


def _json_record(name: str, lineno: int, text: str, field: str | None) -> Record:
    bad = Record(name, lineno)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        bad.error = f"invalid JSON ({e.msg} at column {e.colno})"
        return bad
    except (ValueError, RecursionError) as e:
        bad.error = f"invalid JSON ({str(e).splitlines()[0][:120] if str(e) else 'nested too deeply'})"
        return bad
    if not isinstance(obj, dict):
        bad.error = f"expected a JSON object, got {_kind(obj)}"
        return bad
    key = field or next((k for k in DEFAULT_KEYS if k in obj), None)
    if key is None or key not in obj:
        bad.error = f"no {key!r} field" if key else "no 'prompt' or 'text' field (choose one with --field)"
        return bad
    value = obj[key]
    if not isinstance(value, str):
        bad.error = f"field {key!r} is {_kind(value)}, expected a string"
        return bad
    rid = obj.get("id")
    if _has_surrogates(value) or (isinstance(rid, str) and _has_surrogates(rid)):
        bad.error = "invalid Unicode (a lone surrogate escape such as \\ud800)"
        return bad
    return Record(name, lineno, text=value, rid=rid, has_id=rid is not None)


def _csv_records(src: Source, column: str | None) -> Iterator[Record]:
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
    col = id_col = -1
    row_no = 0
    last = 0
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
            if not fields:
                continue
            header = fields
            col, id_col = _choose_column(header, column, src.name, start)
            continue
        if err is None and not fields:
            continue  # a blank line
        row_no += 1
        if err is None and len(fields) != len(header):
            err = f"row has {len(fields)} fields, the header has {len(header)}"
        if err is not None:
            yield Record(src.name, start, error=err, row=row_no)
            continue
        rid = fields[id_col] if id_col >= 0 else ""
        yield Record(src.name, start, text=fields[col], row=row_no, rid=rid or None, has_id=bool(rid))


def _choose_column(header: list[str], column: str | None, name: str, line: int) -> tuple[int, int]:
    names = [h.strip() for h in header]
    if column is not None:
        if column not in names:
            raise InputError(f"{name}:{line}: no column {column!r} in the header (columns: {', '.join(names)})")
        col = names.index(column)
    else:
        found = next((k for k in DEFAULT_KEYS if k in names), None)
        if found is None:
            raise InputError(
                f"{name}:{line}: no 'prompt' or 'text' column in the header (columns: {', '.join(names)}); use --column"
            )
        col = names.index(found)
    return col, names.index("id") if "id" in names else -1


def open_sources(names: list[str], fmt: str | None = None, line_limit: int = MAX_LINE_BYTES) -> list[Source]:
    """Check every input before any moderation starts: exists, is a file, not empty, not binary."""
    if names.count("-") > 1:
        raise InputError("'-' (stdin) can be given only once")
    sources = []
    for name in names:
        kind = detect_format(name, fmt)
        if name == "-":
            if sys.stdin is None or sys.stdin.isatty():
                raise InputError("-: stdin is a terminal; pipe the texts in")
            sources.append(Source(name, kind, None, line_limit))
            continue
        p = Path(name)
        try:
            st = p.stat()
            if p.is_dir():
                raise InputError(f"{name}: is a directory")
            with open(p, "rb") as f:
                err = _sniff_error(_read_head(f), name)
        except FileNotFoundError:
            raise InputError(f"{name}: no such file") from None
        except OSError as e:
            raise InputError(f"{name}: cannot read ({e.strerror})") from None
        if err:
            raise InputError(err)
        regular = p.is_file()
        if regular and st.st_size == 0:
            raise InputError(f"{name}: no texts (empty file)")
        sources.append(Source(name, kind, st.st_size if regular else None, line_limit))
    return sources


# ---------------------------------------------------------------- scan: output


class JsonlWriter:
    """One JSON object per line, UTF-8, to a binary stream."""

    def __init__(self, stream: BinaryIO):
        self._stream = stream

    def write(self, row: dict[str, Any]) -> None:
        self._stream.write(json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n")

    def flush(self) -> None:
        self._stream.flush()


@contextmanager
def open_output(path: str | None) -> Iterator[JsonlWriter]:
    """stdout, or FILE written atomically: a temp file beside it, renamed only when the block completes.

    On any exception (an input error, a crash, Ctrl-C) the temp file is removed and FILE is untouched.
    """
    if path is None or path == "-":
        w = JsonlWriter(sys.stdout.buffer)
        yield w
        w.flush()
        return
    target = Path(path)
    if target.is_dir():
        raise InputError(f"--out {path}: is a directory")
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent or Path("."), prefix=f".{target.name}.", suffix=".tmp")
    except OSError as e:
        raise InputError(f"--out {path}: cannot write there ({e.strerror})") from None
    try:
        with os.fdopen(fd, "wb", buffering=1 << 16) as f:
            yield JsonlWriter(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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
            if done and piece.startswith(_BOM):
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
