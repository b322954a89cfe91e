"""Helpers every command shares: stderr console, one-line errors, shared options."""

from __future__ import annotations

from typing import Any

import typer

from prism_cli.out import err_console, notice, warning  # noqa: F401 - every command's one output (out.py)
from prism_cli.out import error as error_line  # noqa: F401

PolicyOpt = typer.Option(None, "--policy", "-p", help="Policy name (prism policy list) or YAML file.")
ModeratorOpt = typer.Option(None, "--moderator", "-m", help="Moderator: registry name, model folder, .gguf file, 'rules', 'profanity-check' or cascade:FIRST,SECOND[,LOW,HIGH].")


ROLES = ("prompt", "response")


def _check_role(value: str) -> str:
    """The role is checked once, where it is parsed: a bad one is a one-line usage error (exit 2)."""
    if value not in ROLES:
        from prism_cli.errors import InputError

        raise InputError(f"--role must be 'prompt' or 'response', got {value!r}")
    return value


def role_option(default: str) -> Any:
    """--role / -r: whose text it is, prompt (user input, p(x)) or response (model output, q(Y))."""
    return typer.Option(default, "--role", "-r", help="prompt (user input, p(x)) or response (model output, q(Y)).",
                        callback=_check_role)


IncludeTextOpt = typer.Option(False, "--include-text", help="Echo the text in its verdict (JSON output).")




def verdict_line(verdict: Any, policy: Any) -> str:
    """One human line: decision, flagged category names, overall score (and the error, if any)."""
    if verdict.error:
        return f"{verdict.decision.value}: {verdict.error} (prism fails closed)"
    names = policy.labels(verdict.flagged)
    head = verdict.decision.value + (" (allow-listed by you)" if verdict.extra.get("allowlisted") else "")
    if names:
        head += f": {names}"
    return f"{head} (unsafe={verdict.unsafe:.2f}, {verdict.moderator}, policy {verdict.policy})"
