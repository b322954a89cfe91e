"""The one writer of every file prism writes: scan --out, chat transcripts, config, policies, manifests.

A regular file is written atomically: a hidden temp file beside it, fsynced, renamed over
the target only when the block completes; on an error, Ctrl-C, SIGTERM, SIGHUP or SIGPIPE
the temp file is removed and the old file is untouched. A new file gets the umask's mode,
a replaced one keeps its mode, and a symlink keeps pointing at its (replaced) target. A
device, FIFO, socket, /dev/stdout or /proc/self/fd/N is written through, never replaced.
A write that fails (full disk, closed stdout) is one InputError naming the path: exit 2.
"""

from __future__ import annotations

import io
import json
import math
import os
import signal
import stat
import sys
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from prism_cli.errors import InputError

_LIVE: set[str] = set()
"""Temp files being written, removed by the signal handler if the process is killed."""
_CLEANUP_SIGNALS = ("SIGTERM", "SIGHUP", "SIGPIPE")
_armed = False


def _on_signal(signum: int, frame: Any) -> None:
    """Remove the temp files, then die of the same signal, as the default action would."""
    for tmp in list(_LIVE):
        try:
            os.unlink(tmp)
        except OSError:
            pass
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    os._exit(128 + signum)  # only if the signal did not end the process at once


def _arm_signals() -> None:
    """Install the cleanup handler where the default action (death) would leave a temp file behind.
    An application that set its own handlers keeps them; only the main thread may install any."""
    global _armed
    if _armed or threading.current_thread() is not threading.main_thread():
        return
    _armed = True
    for name in _CLEANUP_SIGNALS:
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) is signal.SIG_DFL:
            signal.signal(sig, _on_signal)


class OutFile:
    """A binary output whose OS errors become one line naming it (exit 2); a reader that went
    away (BrokenPipeError) is left to the caller, which ends like a Unix filter."""

    def __init__(self, f: BinaryIO, label: str, close: bool = True):
        self._f, self.label, self._close = f, label, close

    def _guard(self, e: OSError) -> InputError:
        return InputError(f"{self.label}: cannot write ({e.strerror or e})")

    def write(self, data: bytes) -> None:
        try:
            self._f.write(data)
        except BrokenPipeError:
            raise
        except OSError as e:
            raise self._guard(e) from None

    def flush(self, sync: bool = False) -> None:
        try:
            self._f.flush()
            if sync:
                os.fsync(self._f.fileno())
        except BrokenPipeError:
            raise
        except OSError as e:
            raise self._guard(e) from None

    def close(self) -> None:
        """Close without raising again: the error, if any, was already reported once."""
        if self._close:
            try:
                self._f.close()
            except OSError:
                pass


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FD_LINKS = ("/proc/", "/dev/fd/", "/dev/stdout", "/dev/stderr")


def _write_through(path: str) -> bool:
    """Special files, and the kernel's links to open descriptors (/dev/stdout, /proc/self/fd/1, or a
    symlink chain through them), are written into, never replaced."""
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
            return True
    except OSError:
        pass
    p = os.path.abspath(path)
    for _ in range(40):
        if p.startswith(_FD_LINKS):
            return True
        try:
            target = os.readlink(p)
        except OSError:
            return False
        p = os.path.normpath(os.path.join(os.path.dirname(p), target))
    return False


def _label(path: str, what: str | None) -> str:
    return f"{what} {path}" if what else path


@contextmanager
def atomic_write(path: str | os.PathLike[str], what: str | None = None) -> Iterator[OutFile]:
    """Write `path` completely or not at all (see the module doc). `what` prefixes errors, e.g. '--out'."""
    path = os.fspath(path)
    label = _label(path, what)
    if os.path.isdir(path):
        raise InputError(f"{label}: is a directory")
    if _write_through(path):
        with _through(path, label) as out:
            yield out
        return
    real = os.path.realpath(path)  # a symlink to a file: replace the file, keep the link
    folder, name = os.path.split(real)
    try:
        mode = stat.S_IMODE(os.stat(real).st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    _arm_signals()
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    except OSError as e:
        raise InputError(f"{label}: cannot write there ({e.strerror})") from None
    _LIVE.add(tmp)
    out = OutFile(os.fdopen(fd, "wb", buffering=1 << 16), label)
    try:
        _os_step(out, os.fchmod, fd, mode)
        yield out
        out.flush(sync=True)
        out.close()
        _os_step(out, os.replace, tmp, real)
    except BaseException:
        out.close()
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    finally:
        _LIVE.discard(tmp)


def _os_step(out: OutFile, fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except OSError as e:
        raise out._guard(e) from None


@contextmanager
def _through(path: str, label: str) -> Iterator[OutFile]:
    try:
        f = open(path, "wb")  # noqa: SIM115 - closed below
    except OSError as e:
        raise InputError(f"{label}: cannot write ({e.strerror})") from None
    out = OutFile(f, label)
    try:
        yield out
        out.flush()
    finally:
        out.close()


def write_atomic(path: str | os.PathLike[str], data: bytes | str, what: str | None = None) -> None:
    """A small file in one go (config, a policy, a manifest), through atomic_write."""
    with atomic_write(path, what) as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)


# ---------------------------------------------------------------- stdout and JSON Lines


def silence_stdout() -> None:
    """Point fd 1 at /dev/null so the interpreter's final flush does not fail (and print) again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, AttributeError, ValueError):
        pass


_CLOSED = "<stdout>: closed; redirect stdout (or use --out where a command has it)"


class _ClosedStdout:
    """Stands in for a stdout that was closed before prism started (`prism ... >&-`): output
    that would have been lost without a word is an error (exit 2) instead."""

    encoding = "utf-8"

    def write(self, s: str) -> int:
        raise InputError(_CLOSED)

    @property
    def buffer(self) -> Any:
        raise InputError(_CLOSED)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


_KEPT: list[Any] = []


class _StdoutRaw(io.RawIOBase):
    """fd 1 underneath a new sys.stdout: a failing write is one InputError naming <stdout>."""

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return 1

    def isatty(self) -> bool:
        return os.isatty(1)

    def write(self, b: Any) -> int:
        try:
            return os.write(1, b)
        except (BrokenPipeError, BlockingIOError, InterruptedError):
            raise
        except OSError as e:
            silence_stdout()  # what is still buffered goes nowhere at exit instead of failing again
            raise InputError(f"<stdout>: cannot write ({e.strerror or e})") from None


def guard_stdout() -> None:
    """At CLI start-up: stdout's write errors (a full disk, /dev/full) become one line and exit 2
    instead of an internal error; a closed fd 1 is taken by /dev/null (so no file prism opens
    lands there) and writing to it becomes an error instead of output lost without a word."""
    old = sys.stdout
    if old is None:
        try:
            fd = os.open(os.devnull, os.O_WRONLY)
            if fd != 1:
                os.close(fd)
        except OSError:
            pass
        sys.stdout = _ClosedStdout()  # type: ignore[assignment]
        return
    try:
        old.flush()
        encoding, errors, tty = old.encoding, old.errors, old.isatty()
    except (AttributeError, OSError, ValueError):
        return  # not a real stream (an embedding application's): leave it alone
    _KEPT.append(old)  # fd 1 stays open: the old object must never be collected and close it
    sys.stdout = io.TextIOWrapper(
        io.BufferedWriter(_StdoutRaw()), encoding=encoding, errors=errors, line_buffering=tty, write_through=False
    )


def flush_stdout() -> None:
    """Flush now, where a failure is still one error line, not a message at interpreter exit."""
    if sys.stdout is not None:
        sys.stdout.flush()


def stdout_file() -> OutFile:
    """stdout as an OutFile; a closed stdout is an error now, not output lost without a word."""
    if sys.stdout is None:
        raise InputError(_CLOSED)
    return _StdoutFile(sys.stdout.buffer, "<stdout>", close=False)


class _StdoutFile(OutFile):
    def _guard(self, e: OSError) -> InputError:
        silence_stdout()  # the unwritten bytes must not fail again at exit
        return super()._guard(e)


def _finite(v: Any) -> Any:
    """NaN and infinities have no JSON form: null, so every line written is valid JSON."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    return v


class JsonlWriter:
    """One JSON object per line, UTF-8, always valid JSON (allow_nan=False)."""

    def __init__(self, out: OutFile):
        self._out = out

    def write(self, row: dict[str, Any]) -> None:
        try:
            line = json.dumps(row, ensure_ascii=False, allow_nan=False)
        except ValueError:
            line = json.dumps(_finite(row), ensure_ascii=False, allow_nan=False)
        self._out.write(line.encode("utf-8") + b"\n")

    def flush(self) -> None:
        self._out.flush()


@contextmanager
def jsonl_output(path: str | None, what: str | None = None) -> Iterator[JsonlWriter]:
    """JSON Lines to stdout (None or '-') or to `path` through atomic_write."""
    if path is None or path == "-":
        out = stdout_file()
        yield JsonlWriter(out)
        out.flush()
        return
    with atomic_write(path, what) as f:
        yield JsonlWriter(f)

def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """A JSON file replaced whole (a manifest is never half-written)."""
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
