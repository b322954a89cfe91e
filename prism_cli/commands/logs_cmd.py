"""`prism logs`: read the local decision log, find it, switch it on or off."""

from __future__ import annotations

import json
import os
import sys
from typing import Optional

import typer

logs_app = typer.Typer(help="The local decision log (hashes, not texts, unless --log-text).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(logs_app, name="logs")


@logs_app.command("list")
def list_logs(
    n: int = typer.Option(20, "-n", "--last", help="How many of the latest records."),
    json_out: bool = typer.Option(False, "--json", help="One JSON record per line on stdout."),
    text: Optional[str] = typer.Option(None, "--text", "-t", help="Only the records of this exact text (matched by its keyed hash)."),
) -> None:
    """Show the latest decisions, oldest first. Example: prism logs list -n 5"""
    from prism_cli.audit import enabled, read_records, records_of
    from prism_cli.commands.common import notice
    from prism_cli.errors import InputError

    if n < 1:
        raise InputError(f"-n must be at least 1, got {n}")
    records, bad = read_records(last=n) if text is None else records_of(text, last=n)
    if bad:
        notice(f"skipped {bad} unreadable line(s) in the log")
    if json_out:
        for r in records:
            print(json.dumps(r, ensure_ascii=False))
        return
    if not records:
        notice("the decision log is empty" + ("" if enabled() else " (logging is off: prism logs on)"))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for col in ("time (UTC)", "command", "id", "role", "decision", "flagged", "unsafe", "moderator", "policy", "hash"):
        table.add_column(col, justify="right" if col == "unsafe" else "left")
    for r in records:
        unsafe = r.get("unsafe")
        table.add_row(
            str(r.get("ts", "")).replace("T", " ").rstrip("Z"), str(r.get("command", "")), str(r.get("id", "")),
            str(r.get("role", "")), str(r.get("decision", "")) + (" (error)" if r.get("error") else ""),
            ", ".join(r.get("flagged") or []), f"{unsafe:.2f}" if isinstance(unsafe, (int, float)) else "",
            str(r.get("moderator", "")), str(r.get("policy", "")), str(r.get("hmac") or r.get("sha256") or "")[:12],
        )
    width = None if sys.stdout.isatty() else 240
    Console(file=sys.stdout, no_color=bool(os.environ.get("NO_COLOR")), highlight=False, width=width).print(table)


@logs_app.command("path")
def log_path() -> None:
    """Print where the log is kept (PRISM_HOME moves it)."""
    from prism_cli.paths import audit_log

    print(audit_log())


@logs_app.command("off")
def log_off() -> None:
    """Stop logging decisions (config key `log: false`); the existing log is kept."""
    from prism_cli.audit import set_enabled
    from prism_cli.commands.common import notice

    notice(f"decision log off (set in {set_enabled(False)})")


@logs_app.command("on")
def log_on() -> None:
    """Log decisions again (the default)."""
    from prism_cli.audit import set_enabled
    from prism_cli.commands.common import notice

    notice(f"decision log on (set in {set_enabled(True)})")
