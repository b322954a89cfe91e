"""Policy regex patterns, compiled by RE2: matching time is linear in the text, always.

A policy is a file someone else may have written. With a backtracking engine (Python's
`re`) a pattern such as `^(a+)+$` takes seconds per check on a short text, which stalls
every check that uses the policy. RE2 (google-re2) guarantees linear time by leaving out
the features that need backtracking: backreferences (\\1) and lookaround ((?=, (?!, (?<=,
(?<!). Those are refused when the policy is validated. In RE2 \\w, \\d, \\s and \\b are
ASCII-only; \\pL (any letter) and \\pN (any digit) cover every script.
"""

from __future__ import annotations

from typing import Any, Sequence

MAX_MEM = 8 << 20  # a compiled pattern may use this much memory (RE2's own default)


class PatternError(ValueError):
    """A pattern RE2 cannot compile; the message says why in one line."""


def _options(case_sensitive: bool) -> Any:
    import re2

    o = re2.Options()
    o.log_errors = False  # RE2 would print its own copy of the error on stderr
    o.case_sensitive = case_sensitive
    o.max_mem = MAX_MEM
    return o


def _compile(source: str, case_sensitive: bool) -> Any:
    import re2

    try:
        return re2.compile(source, _options(case_sensitive))
    except re2.error as e:
        raise PatternError(_reason(e)) from None


def check(pattern: str) -> None:
    """Raise PatternError when RE2 cannot compile `pattern` on its own (as the policy wrote it)."""
    _compile(pattern, False)


def compile_any(patterns: Sequence[str], case_sensitive: bool = False) -> Any:
    """One RE2 regexp matching any of `patterns` (leftmost first), each checked alone first."""
    for p in patterns:
        check(p)
    return _compile("|".join(f"(?:{p})" for p in patterns), case_sensitive)


def _reason(e: Exception) -> str:
    msg = e.args[0] if e.args else str(e)
    if isinstance(msg, bytes):
        msg = msg.decode("utf-8", "replace")
    msg = str(msg)
    if "invalid perl operator: (?<" in msg or "invalid perl operator: (?=" in msg or "invalid perl operator: (?!" in msg:
        msg += " (lookaround is not supported)"
    elif "invalid escape sequence: \\" in msg and msg.rstrip()[-1:].isdigit():
        msg += " (backreferences are not supported)"
    return msg
