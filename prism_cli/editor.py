"""Run the user's text editor on a file, the way git and crontab do: $VISUAL, then $EDITOR, then a
sensible editor found on PATH."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

from prism_cli.errors import InputError

_FALLBACKS = ("editor", "nano", "vim", "vi", "notepad")


def editor_command() -> list[str]:
    """The editor as argv: $VISUAL or $EDITOR (may carry options, e.g. "code --wait"), else the first
    of `editor` (Debian's alternative), nano, vim, vi, notepad on PATH."""
    for var in ("VISUAL", "EDITOR"):
        value = os.environ.get(var, "").strip()
        if value:
            try:
                argv = shlex.split(value)
            except ValueError as e:
                raise InputError(f"${var}: cannot parse {value!r} ({e})") from None
            if shutil.which(argv[0]) is None:
                raise InputError(f"${var}: editor {argv[0]!r} not found")
            return argv
    for name in _FALLBACKS:
        if shutil.which(name):
            return [name]
    raise InputError("no text editor found: set $EDITOR (for example: export EDITOR=nano)")


def run_editor(path: Path) -> None:
    """Open `path` in the editor and wait for it; an editor that fails is an error (the caller keeps
    the original file)."""
    argv = editor_command()
    try:
        status = subprocess.run([*argv, str(path)], check=False).returncode
    except OSError as e:
        raise InputError(f"cannot run the editor {argv[0]!r}: {e.strerror or e}") from None
    if status != 0:
        raise InputError(f"the editor {argv[0]!r} exited with status {status}")
