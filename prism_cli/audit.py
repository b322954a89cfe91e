"""The local decision log: one JSON line per verdict, appended to paths.audit_log().

Private by default: a record holds the decision and an HMAC-SHA256 of the text, never the
text itself unless the user asks (--log-text). The HMAC is keyed with a random per-install
secret (keyfile.py), so whoever holds the secret can answer "was this exact text checked
here, and what was decided", while a reader of the log alone cannot confirm a guessed text.
Each record goes out in a single write() on an O_APPEND descriptor, so lines from
concurrent prism processes never interleave. Turned off with the config key `log: false`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from prism_cli import config
from prism_cli.keyfile import load_or_create
from prism_cli.out import warning
from prism_cli.paths import audit_log, log_key
from prism_cli.verdict import Verdict

CONFIG_KEY = "log"


def enabled() -> bool:
    """Logging is on unless the config's `log` switch says false (config.py's boolean words)."""
    return config.get_bool(CONFIG_KEY, True)


def set_enabled(on: bool) -> Path:
    """Persist the switch in the user config; returns the config file's path."""
    return config.set_value(CONFIG_KEY, bool(on))


HASH_KEY = "hmac"  # the record key holding HMAC-SHA256(secret, text), hex


def text_hmac(text: str, key: bytes | None = None) -> str:
    """HMAC-SHA256 of the text under this install's secret (created on first use)."""
    secret = key if key is not None else load_or_create(log_key())
    return hmac.new(secret, text.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def record(
    command: str, verdict: Verdict, text: str, include_text: bool = False, key: bytes | None = None
) -> dict[str, Any]:
    """The log line for one verdict: when and by which command, the verdict object (Verdict.to_dict,
    the shape check --json and scan print) and the keyed hash of the text; the text only on request."""
    rec: dict[str, Any] = {"ts": _now(), "command": command, **verdict.to_dict(), HASH_KEY: text_hmac(text, key)}
    if include_text:
        rec["text"] = text
    return rec


def _write_all(fd: int, data: bytes) -> None:
    while data:
        n = os.write(fd, data)
        data = data[n:]


def log_verdicts(
    command: str, verdicts: Sequence[Verdict], texts: Sequence[str], include_text: bool = False
) -> Path | None:
    """Append one record per verdict; returns the log's path, or None when logging is off or failed.

    A log that cannot be written never changes a verdict or an exit code: the failure is
    one warning line on stderr.
    """
    if len(verdicts) != len(texts):
        raise ValueError(f"log_verdicts: {len(verdicts)} verdicts for {len(texts)} texts")
    if not verdicts or not enabled():
        return None
    path = audit_log()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = load_or_create(log_key())
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            for v, t in zip(verdicts, texts):
                line = json.dumps(record(command, v, t, include_text, key), ensure_ascii=False) + "\n"
                _write_all(fd, line.encode("utf-8", "surrogatepass"))
        finally:
            os.close(fd)
    except OSError as e:
        warning(f"decision log not written ({e.filename or path}: {e.strerror or e})")
        return None
    return path


def read_records(path: Path | None = None, last: int | None = None) -> tuple[list[dict[str, Any]], int]:
    """The last `last` readable records (all when None), oldest first, and how many lines were unreadable.

    A torn or hand-edited line is skipped, not fatal: the log must stay readable after a crash.
    """
    path = path or audit_log()
    if not path.is_file() or (last is not None and last < 1):
        return [], 0
    want = last
    while True:
        lines, whole = _tail_lines(path, want)
        out: list[dict[str, Any]] = []
        bad = 0
        for line in lines:
            try:
                rec = json.loads(line)
            except ValueError:
                rec = None
            if isinstance(rec, dict):
                out.append(rec)
            else:
                bad += 1
        if last is None or len(out) >= last or whole:
            return (out if last is None else out[-last:]), bad
        want = 2 * want + bad  # type: ignore[operator]


def records_of(text: str, last: int | None = None) -> tuple[list[dict[str, Any]], int]:
    """The records of exactly this text (HMAC match), the last `last` of them, and the unreadable count.

    Without this install's secret there is nothing to match: no secret, no records.
    """
    if not log_key().is_file():
        return [], 0
    h = text_hmac(text)
    records, bad = read_records()
    hits = [r for r in records if r.get(HASH_KEY) == h]
    return (hits if last is None else hits[-last:]), bad


def _tail_lines(path: Path, last: int | None, block: int = 65536) -> tuple[list[str], bool]:
    """The last `last` non-empty lines (reading backwards, so a large log costs little) and
    whether they are all the file has."""
    with path.open("rb") as f:
        if last is None:
            data, whole = f.read(), True
        else:
            f.seek(0, os.SEEK_END)
            pos = f.tell()
            data = b""
            while pos > 0 and data.count(b"\n") <= last:
                step = min(block, pos)
                pos -= step
                f.seek(pos)
                data = f.read(step) + data
            whole = pos == 0
    lines = [ln for ln in data.decode("utf-8", "replace").splitlines() if ln.strip()]
    if last is None:
        return lines, True
    return lines[-last:], whole and len(lines) <= last
