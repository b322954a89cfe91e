"""The per-install secret that keys the decision log's text hashes (HMAC-SHA256).

32 random bytes in one file, mode 0600, created on first use. Creation is atomic and
never replaces an existing secret: the bytes go to a private temporary file which is
then hard-linked into place, so two prism processes starting at once agree on one
secret (the loser of the race reads the winner's). Replacing the secret would silently
stop old log records from matching new ones, so a damaged file is an error, not a reset.
The secret itself is never printed or logged.
"""

from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path

SIZE = 32


def _read(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        st = os.fstat(fd)
        if st.st_mode & 0o077:  # ours to keep private; tighten rather than trust
            os.fchmod(fd, 0o600)
        data = os.read(fd, SIZE + 1)
    finally:
        os.close(fd)
    if len(data) != SIZE:
        raise OSError(errno.EINVAL, f"not a {SIZE}-byte prism secret (delete it to start a new one; "
                      "earlier log hashes will then no longer match)", str(path))
    return data


def load_or_create(path: Path) -> bytes:
    """The secret at `path`, creating it (0600, atomically) when there is none. Raises OSError."""
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        try:
            os.write(fd, secrets.token_bytes(SIZE))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # fails if another process got there first: keep theirs
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)
    return _read(path)
