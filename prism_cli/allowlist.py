"""The user's allow-list: texts the user vouched for, so a false positive does not recur.

An entry is an HMAC-SHA256 of the text's normalized form (NFKC, invisible characters out,
look-alike letters folded, case folded, runs of whitespace as one space), keyed with the
install's secret that also keys the decision log (keyfile.py). So the file holds no text
(unless the user asked for a note or `--keep-text`), and a reader of it alone cannot
confirm a guessed text. Only a whole text matches: a harmful text that merely contains an
allow-listed sentence hashes differently and is judged as usual.

An entry covers both roles ("any") unless it was added for one role ("prompt" or
"response"): the user judged the words themselves, whoever says them.

The file (paths.data_dir()/allowlist.jsonl) is JSON Lines, a header line first; mode 0600,
replaced atomically under a lock, so two prism processes adding at once lose nothing.
A malformed file is an InputError naming the file and line (exit 2), never ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

from prism_cli.errors import InputError
from prism_cli.paths import data_dir, log_key

FILE = "allowlist.jsonl"
FORMAT = 1
ROLES = ("any", "prompt", "response")
_DOMAIN = b"prism-allowlist\x00"
"""Prefix under the HMAC: an allow-list hash never equals a decision-log hash of the same text."""
_HEX64 = re.compile(r"[0-9a-f]{64}")
_KEYS = {"hmac", "role", "added", "note", "text"}
MIN_ID = 4
"""Shortest id prefix `remove` accepts."""


def path() -> Path:
    return data_dir() / FILE


def canonical(text: str) -> str:
    """The form that is hashed: what a reader sees as the same text hashes the same."""
    from prism_cli.normalize import clean

    return " ".join(clean(text).casefold().split())


def _fingerprint(key: bytes) -> str:
    """Names the secret without revealing it: entries made under another secret can never match."""
    return hmac.new(key, _DOMAIN + b"key-check", hashlib.sha256).hexdigest()[:16]


def digest(text: str, key: bytes) -> str:
    return hmac.new(key, _DOMAIN + canonical(text).encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


@dataclass
class Entry:
    hmac: str
    role: str = "any"
    added: str = ""
    note: str | None = None
    text: str | None = None

    @property
    def id(self) -> str:
        """Short id for `list` and `remove`, like a short git hash."""
        return self.hmac[:12]

    def covers(self, role: str) -> bool:
        return self.role == "any" or self.role == role

    def to_dict(self) -> dict[str, object]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _key(create: bool) -> bytes | None:
    from prism_cli.keyfile import load_or_create

    if not create and not log_key().is_file():
        return None
    try:
        return load_or_create(log_key())
    except OSError as e:
        raise InputError(f"{e.filename or log_key()}: {e.strerror or e}") from None


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise InputError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    return role


class AllowList:
    """The entries of one allow-list file, in the order they were added."""

    def __init__(self, file: Path, entries: list[Entry], key_check: str | None):
        self.file = file
        self.entries = entries
        self.key_check = key_check

    # ------------------------------------------------------------------ reading

    @classmethod
    def load(cls, file: Path | None = None) -> "AllowList":
        """The list at `file` (default: PRISM_HOME's); an empty one when there is no file."""
        from prism_cli.inputs import decode, read_bounded

        file = file or path()
        if not file.is_file():
            return cls(file, [], None)
        lines = decode(read_bounded(file, 64 * 1024 * 1024, what="allow-list"), str(file)).splitlines()
        entries: list[Entry] = []
        key_check: str | None = None
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as e:
                raise InputError(f"{file}:{n}: not JSON ({e.msg}); fix or remove the line (prism allow list)") from None
            if not isinstance(obj, dict):
                raise InputError(f"{file}:{n}: expected a JSON object")
            if "prism_allowlist" in obj:
                if n != 1 or obj.get("prism_allowlist") != FORMAT or not isinstance(obj.get("key"), str):
                    raise InputError(f"{file}:{n}: bad header (expected {{\"prism_allowlist\": {FORMAT}, \"key\": ...}} on line 1)")
                key_check = obj["key"]
                continue
            entries.append(_entry(obj, f"{file}:{n}"))
        if entries and key_check is None:
            raise InputError(f"{file}:1: missing header line {{\"prism_allowlist\": {FORMAT}, \"key\": ...}}")
        return cls(file, entries, key_check)

    def _verified_key(self, create: bool) -> bytes | None:
        """The secret, checked against the one the entries were made with."""
        key = _key(create or bool(self.entries))
        if key is not None and self.key_check is not None and _fingerprint(key) != self.key_check:
            raise InputError(f"{self.file}:1: made with another secret than {log_key()}, so no entry can match "
                             "(prism allow clear --yes, then allow the texts again)")
        return key

    def matcher(self) -> Callable[[str, str], bool] | None:
        """A fast test `(text, role) -> allow-listed?` for the gate; None when the list is empty."""
        if not self.entries:
            return None
        key = self._verified_key(False)
        assert key is not None
        table: dict[str, set[str]] = {}
        for e in self.entries:
            table.setdefault(e.hmac, set()).add(e.role)

        def allowed(text: str, role: str) -> bool:
            roles = table.get(digest(text, key))
            return bool(roles) and ("any" in roles or role in roles)

        return allowed

    def select(self, ref: str) -> list[Entry]:
        """Entries named by an id prefix (at least MIN_ID hex digits) or by their exact text."""
        ref_l = ref.strip().lower()
        if len(ref_l) >= MIN_ID and all(c in "0123456789abcdef" for c in ref_l):
            hits = [e for e in self.entries if e.hmac.startswith(ref_l)]
            if hits:
                return hits
        if not self.entries:
            return []
        h = digest(ref, self._verified_key(False))  # type: ignore[arg-type]
        return [e for e in self.entries if e.hmac == h]

    # ------------------------------------------------------------------ writing

    def save(self) -> None:
        """Write the whole list atomically (mode 0600); an empty list removes the file."""
        from prism_cli.outputs import write_atomic

        if not self.entries:
            self.file.unlink(missing_ok=True)
            return
        key = self._verified_key(True)
        assert key is not None
        head = json.dumps({"prism_allowlist": FORMAT, "key": _fingerprint(key)})
        body = "".join(json.dumps(e.to_dict(), ensure_ascii=False) + "\n" for e in self.entries)
        _private(self.file)
        write_atomic(self.file, head + "\n" + body, "allow-list")


def _entry(obj: dict[str, object], where: str) -> Entry:
    unknown = sorted(set(obj) - _KEYS)
    if unknown:
        raise InputError(f"{where}: unknown key {unknown[0]!r} (expected {', '.join(sorted(_KEYS))})")
    h = obj.get("hmac")
    if not isinstance(h, str) or not _HEX64.fullmatch(h):
        raise InputError(f"{where}: 'hmac' must be 64 lowercase hex digits")
    role = obj.get("role", "any")
    if role not in ROLES:
        raise InputError(f"{where}: 'role' must be one of {', '.join(ROLES)}, got {role!r}")
    for k in ("added", "note", "text"):
        if obj.get(k) is not None and not isinstance(obj[k], str):
            raise InputError(f"{where}: {k!r} must be a string")
    return Entry(h, str(role), str(obj.get("added") or ""), obj.get("note"), obj.get("text"))  # type: ignore[arg-type]


def _private(file: Path) -> None:
    """A new file starts as an empty 0600 file, so the atomic writer keeps that mode; an old one is tightened."""
    file.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
    except FileExistsError:
        if file.stat().st_mode & 0o077:
            os.chmod(file, 0o600)
    except OSError as e:
        raise InputError(f"{file}: cannot write ({e.strerror})") from None


@contextmanager
def editing(file: Path | None = None) -> Iterator[AllowList]:
    """Read, change and save the list under an exclusive lock (a failed block saves nothing)."""
    file = file or path()
    file.parent.mkdir(parents=True, exist_ok=True)
    lock = file.with_name(f".{file.name}.lock")
    fd = os.open(lock, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        except ImportError:  # no flock (Windows): the atomic write still never leaves a torn file
            pass
        al = AllowList.load(file)
        yield al
        al.save()
    finally:
        os.close(fd)


def add(text: str, role: str = "any", note: str | None = None, keep_text: bool = False) -> tuple[Entry, bool]:
    """Allow-list a text; returns the entry and whether it is new. Widens an entry's role to "any" when
    the same text is allowed for the other role too; a new note or kept text replaces the old one."""
    _check_role(role)
    if not text.strip():
        raise InputError("nothing to allow: the text is empty")
    with editing() as al:
        h = digest(text, al._verified_key(True))  # type: ignore[arg-type]
        for e in al.entries:
            if e.hmac == h:
                if e.role != role:
                    e.role = "any"
                e.note = note if note is not None else e.note
                e.text = text if keep_text else e.text
                return e, False
        entry = Entry(h, role, _now(), note, text if keep_text else None)
        al.entries.append(entry)
        return entry, True


def remove(refs: list[str]) -> list[Entry]:
    """Remove the entries each ref names (id prefix or text); a ref that names none is an error (nothing removed)."""
    with editing() as al:
        gone: list[Entry] = []
        for ref in refs:
            hits = al.select(ref)
            if not hits:
                raise InputError(f"no allow-list entry matches {ref!r} (prism allow list shows the ids)")
            gone += [e for e in hits if e not in gone]
        al.entries = [e for e in al.entries if e not in gone]
        return gone


def clear() -> int:
    """Remove every entry; returns how many there were. Works on a damaged file too (the way out)."""
    file = path()
    try:
        n = len(AllowList.load(file).entries)
    except InputError:
        n = -1
    file.unlink(missing_ok=True)
    return n


def gate_matcher() -> Callable[[str, str], bool] | None:
    """What build.py gives the gate: None (no cost at all) when the user allow-listed nothing."""
    return AllowList.load().matcher()
