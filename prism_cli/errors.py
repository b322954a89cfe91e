"""Exceptions that map onto prism's exit codes (DESIGN.md).

Every error a user can fix is a PrismError, whichever layer raises it (the engines and downloads
too): cli.main turns it into one line and its exit code, the one place errors are translated."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterable, Iterator

EXIT_ALLOW = 0
EXIT_BLOCK = 1
EXIT_USAGE = 2
EXIT_MODERATOR = 3


class PrismError(Exception):
    """An error the user can fix; printed as one line, never a traceback."""

    exit_code = EXIT_USAGE


class InputError(PrismError):
    """Bad input: a file, line or key the user must fix (exit 2)."""


class PolicyError(InputError):
    """A policy file that does not validate; the message names file, line and key."""


class ModeratorError(PrismError):
    """The moderator could not run. The turn is blocked (fail closed), exit 3."""

    exit_code = EXIT_MODERATOR


class ModelNotFound(ModeratorError):
    """A moderator that is not installed; the message says how to get it."""


class EngineError(PrismError):
    """The wrapped chat model could not run (bad file, server down, context overflow): exit 2."""


EngineFailed = EngineError
"""The name session.py and chat_cmd.py raise; the same error."""


class DownloadError(PrismError):
    """A pull that could not complete; one line saying why and what to do (exit 2)."""


@contextmanager
def noting(where: str) -> Iterator[None]:
    """A PrismError raised inside gains "(from WHERE)": a value that fails says where it was set."""
    try:
        yield
    except PrismError as e:
        raise type(e)(f"{e} (from {where})") from None


def suggest(word: str, options: Iterable[str]) -> str:
    """'did you mean X? ' for the close matches of a mistyped name, or ''."""
    import difflib

    near = difflib.get_close_matches(word, list(dict.fromkeys(options)), n=3, cutoff=0.6)
    return f"did you mean {' or '.join(near)}? " if near else ""
