"""The byte layer of the reader core: open each input once, decode strictly, number the lines.

Every reader of user data (check, scan, chat batch, eval, policies, config) comes through
here, so UTF-8, NUL-byte and size checks agree everywhere and name the file and line.
An input is opened once and its first bytes (read to sniff binary data and the format)
are replayed, never read again: a pipe, FIFO or `<(process substitution)` loses nothing.
"""

from __future__ import annotations

import io
import os
import stat
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from prism_cli.errors import InputError

MAX_LINE_BYTES = 1024 * 1024
SNIFF_BYTES = 8192
BOM = b"\xef\xbb\xbf"
STDIN = "<stdin>"


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


def read_bounded(path: str | Path, limit: int, name: str | None = None, what: str = "file") -> bytes:
    """All of a (small) file in one read of at most limit + 1 bytes: /dev/zero cannot fill memory."""
    name = name or str(path)
    with open_user_file(path, name) as f:
        try:
            raw = f.read(limit + 1)
        except OSError as e:
            raise InputError(f"{name}: cannot read ({e.strerror})") from None
    if len(raw) > limit:
        raise InputError(f"{name}: too large for a {what} (over {limit} bytes)")
    return raw


def sniff_error(head: bytes, name: str) -> str | None:
    """Why the first bytes of an input are not UTF-8 text, or None."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return f"{name}: UTF-16 text; convert it to UTF-8 (iconv -f UTF-16 -t UTF-8)"
    if b"\0" in head:
        line = head[: head.index(b"\0")].count(b"\n") + 1
        return f"{name}:{line}: binary file (NUL byte in the first {SNIFF_BYTES // 1024} KB), expected UTF-8 text"
    return None


def decode(raw: bytes, name: str) -> str:
    """Strict UTF-8 (BOM allowed); UTF-16, binary data and bad bytes are errors naming the line."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(f"{name}: UTF-16 text; convert it to UTF-8 (iconv -f UTF-16 -t UTF-8)")
    if b"\0" in raw:
        line = raw[: raw.index(b"\0")].count(b"\n") + 1
        raise InputError(f"{name}:{line}: binary data (NUL byte), expected UTF-8 text")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise InputError(f"{name}:{line}: invalid UTF-8 (byte 0x{raw[e.start]:02x} at offset {e.start})") from None
    return text.removeprefix("\ufeff")


def decode_line(raw: bytes) -> tuple[str | None, str | None]:
    """One line's text, or why it is not UTF-8 text (the caller adds file:line)."""
    nul = raw.find(b"\0")
    if nul >= 0:
        return None, f"binary data (NUL byte at column {nul + 1})"
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as e:
        return None, f"invalid UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1})"


def first_line(head: bytes) -> bytes | None:
    """The first non-blank line of the head, once it is complete (or the head is all there is)."""
    body = head.removeprefix(BOM).lstrip()
    end = body.find(b"\n")
    return body[:end] if end >= 0 else None


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


def _read_head(f: BinaryIO, regular: bool) -> bytes:
    """A file's first SNIFF_BYTES; a stream's bytes up to its first complete non-blank line
    (or SNIFF_BYTES), so a live pipe is not held up waiting for 8 KB."""
    if regular:
        return f.read(SNIFF_BYTES)
    head = b""
    read1 = getattr(f, "read1", f.read)
    while len(head) < SNIFF_BYTES:
        chunk = read1(SNIFF_BYTES - len(head))
        if not chunk:
            break
        head += chunk
        if first_line(head) is not None:
            break
    return head


class Input:
    """One input, opened once. A regular file is closed after the sniff and reopened at the
    same inode past the head (thousands of inputs need no thousands of descriptors); a
    pipe, FIFO, device or stdin stays open, since it cannot be read twice."""

    def __init__(self, name: str, line_limit: int = MAX_LINE_BYTES):
        self.name = STDIN if name == "-" else name
        self.line_limit = line_limit
        self.pos = 0
        """Bytes consumed so far (for progress)."""
        self.size: int | None = None
        self._stream: BinaryIO | None = None
        self._identity: tuple[int, int] | None = None
        if name == "-":
            if sys.stdin is None or sys.stdin.isatty():
                raise InputError("-: stdin is a terminal; pipe the texts in")
            self._stream = sys.stdin.buffer
            self.head = _read_head(self._stream, regular=False)
        else:
            self.head = self._open_path(name)
        err = sniff_error(self.head, self.name)
        if err:
            raise InputError(err)

    def _open_path(self, name: str) -> bytes:
        f = open_user_file(name)
        try:
            st = os.fstat(f.fileno())
            regular = stat.S_ISREG(st.st_mode)
            head = _read_head(f, regular)
        except OSError as e:
            f.close()
            raise InputError(f"{name}: cannot read ({e.strerror})") from None
        if not regular:
            self._stream = f
            return head
        f.close()
        if st.st_size == 0:
            raise InputError(f"{name}: no texts (empty file)")
        self.size, self._identity = st.st_size, (st.st_dev, st.st_ino)
        return head

    @contextmanager
    def _open(self) -> Iterator[BinaryIO]:
        rest = self._stream
        if rest is None:  # a regular file: the same inode again, just past the head
            rest = open_user_file(self.name)
            st = os.fstat(rest.fileno())
            if (st.st_dev, st.st_ino) != self._identity:
                rest.close()
                raise InputError(f"{self.name}: replaced by another file while prism was reading it")
            rest.seek(len(self.head))
        try:
            yield io.BufferedReader(_Prefixed(self.head, rest), buffer_size=1 << 16)  # type: ignore[arg-type]
        finally:
            if rest is not sys.stdin.buffer:
                rest.close()

    def physical_lines(self) -> Iterator[tuple[int, bytes | None, str | None]]:
        """(line number, raw bytes with their line ending, error) for every line; never more than
        the line limit in memory."""
        limit = self.line_limit
        with self._open() as f:
            lineno = 0
            while True:
                raw = self._readline(f, limit + 1)
                if not raw:
                    return
                lineno += 1
                self.pos += len(raw)
                if lineno == 1 and raw.startswith(BOM):
                    raw = raw[len(BOM) :]
                if len(raw) > limit and not raw.endswith(b"\n"):
                    while raw and not raw.endswith(b"\n"):  # drop the rest of the line in chunks
                        raw = self._readline(f, 1 << 16)
                        self.pos += len(raw)
                    yield lineno, None, f"line longer than {limit} bytes"
                    continue
                yield lineno, raw, None

    def _readline(self, f: BinaryIO, limit: int) -> bytes:
        try:
            return f.readline(limit)
        except OSError as e:
            raise InputError(f"{self.name}: cannot read ({e.strerror})") from None

    def lines(self) -> Iterator[tuple[int, str | None, str | None]]:
        """(line number, decoded text with its line ending, error): NUL bytes and bad UTF-8 are
        errors of that line only."""
        for lineno, raw, err in self.physical_lines():
            if raw is None:
                yield lineno, None, err
            else:
                text, err = decode_line(raw)
                yield lineno, text, err
