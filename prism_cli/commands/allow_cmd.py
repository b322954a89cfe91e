"""`prism allow`: the user's allow-list, so a false positive does not recur (prism_cli/allowlist.py).

`prism allow TEXT` is short for `prism allow add TEXT`; list, remove, clear and path manage the list.
"""

from __future__ import annotations

import json
import os
import sys
from typing import List, Optional

import typer
from typer.core import TyperGroup


class _AddByDefault(TyperGroup):
    """`prism allow "some text"` runs `add`: anything that is not a subcommand (or --help) is add's input."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["add", *args]
        return super().parse_args(ctx, args)

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return ["add", "list", "remove", "clear", "path"]


allow_app = typer.Typer(
    cls=_AddByDefault,
    no_args_is_help=True,
    help="Your allow-list: texts you vouched for are allowed wherever prism checks (keyed hashes, not texts). "
    'Example: prism allow "how do I kill a stuck process"',
)


def register(app: typer.Typer) -> None:
    app.add_typer(allow_app, name="allow")


@allow_app.command("add")
def add(
    text: Optional[str] = typer.Argument(None, help="The text; '-' or nothing reads stdin."),
    file: Optional[str] = typer.Option(None, "--file", "-f", help="Read the text from this file."),
    role: str = typer.Option("any", "--role", "-r", help="any (default), prompt or response: where the entry applies."),
    note: Optional[str] = typer.Option(None, "--note", help="Your words on why it is fine, kept with the entry."),
    keep_text: bool = typer.Option(False, "--keep-text", help="Also store the text itself (default: only its keyed hash)."),
) -> None:
    """Allow a text: the gate then allows it (the verdict says "allowlisted": true). Only the whole text
    matches, after case, spacing and look-alike letters are normalized.

    Examples: prism allow "kill the child processes"   ·   echo "$REPLY" | prism allow add -r response -
    """
    from prism_cli.allowlist import add as add_entry
    from prism_cli.commands.common import notice
    from prism_cli.errors import InputError
    from prism_cli.textio import read_document

    if file is not None and text not in (None, "-"):
        raise InputError("give the text or --file, not both")
    doc, _ = read_document(file if file is not None else "-" if text in (None, "-") else None,
                           None if text in (None, "-") or file is not None else text)
    entry, new = add_entry(doc, role=role, note=note, keep_text=keep_text)
    where = "" if entry.role == "any" else f" as a {entry.role}"
    notice(f"{'allowed' if new else 'already allowed'}{where}: id {entry.id} (undo: prism allow remove {entry.id})")


@allow_app.command("list")
def list_entries(json_out: bool = typer.Option(False, "--json", help="One JSON object per entry on stdout.")) -> None:
    """Show the entries, oldest first: id, role, when added, and your note (or the text, if kept)."""
    from prism_cli.allowlist import AllowList
    from prism_cli.commands.common import notice

    al = AllowList.load()
    if json_out:
        for e in al.entries:
            print(json.dumps({"id": e.id, **e.to_dict()}, ensure_ascii=False))
        return
    if not al.entries:
        notice('the allow-list is empty (prism allow "TEXT" adds one)')
        return
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for col in ("id", "role", "added (UTC)", "note", "text"):
        table.add_column(col)
    for e in al.entries:
        table.add_row(e.id, e.role, e.added.replace("T", " ").rstrip("Z"), e.note or "", e.text if e.text is not None else "(hash only)")
    width = None if sys.stdout.isatty() else 240
    Console(file=sys.stdout, no_color=bool(os.environ.get("NO_COLOR")), highlight=False, width=width).print(table)


@allow_app.command("remove")
def remove(refs: List[str] = typer.Argument(..., help="Entry ids (or a prefix of 4+ digits) or the texts themselves.")) -> None:
    """Remove entries; the texts are then checked as usual again. Example: prism allow remove 3f2a9c"""
    from prism_cli.allowlist import remove as remove_entries
    from prism_cli.commands.common import notice

    gone = remove_entries(refs)
    notice(f"removed {len(gone)} entr{'y' if len(gone) == 1 else 'ies'}: {', '.join(e.id for e in gone)}")


@allow_app.command("clear")
def clear(yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask.")) -> None:
    """Remove every entry (also the way out of a damaged allow-list file)."""
    from prism_cli.allowlist import clear as clear_all, path
    from prism_cli.commands.common import notice
    from prism_cli.errors import InputError

    if not yes:
        if sys.stdin is None or not sys.stdin.isatty():
            raise InputError("clear removes every entry: add --yes to confirm")
        if not typer.confirm(f"Remove every entry of {path()}?", default=False, err=True):
            raise typer.Exit(1)
    n = clear_all()
    notice("cleared the allow-list" + (f" ({n} entr{'y' if n == 1 else 'ies'})" if n >= 0 else " (it was damaged)"))


@allow_app.command("path")
def show_path() -> None:
    """Print where the allow-list lives (PRISM_HOME, or your data folder)."""
    from prism_cli.allowlist import path

    print(path())
