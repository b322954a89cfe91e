"""`prism scan`: moderate files of texts (txt, JSONL, CSV, stdin) into JSONL verdicts."""

from __future__ import annotations

import sys
from typing import Any, List, Optional

import typer

from prism_cli.commands.common import IncludeTextOpt, ModeratorOpt, PolicyOpt, role_option


def register(app: typer.Typer) -> None:
    app.command("scan")(scan)


def scan(
    files: List[str] = typer.Argument(..., metavar="FILE...", help="Files to moderate (.txt, .jsonl, .csv) or '-' for stdin."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Write verdicts to FILE (atomically) instead of stdout."),
    fmt: Optional[str] = typer.Option(None, "--format", "-f", help="txt, jsonl or csv; by extension otherwise (stdin and other names: sniffed from the first line)."),
    field: Optional[str] = typer.Option(None, "--field", help="JSONL key holding the text (default: text, then prompt)."),
    column: Optional[str] = typer.Option(None, "--column", help="CSV column holding the text (default: text, then prompt)."),
    role: str = role_option("prompt"),
    batch_size: int = typer.Option(64, "--batch-size", "-b", help="Most texts per moderator call (batches start at 1 and grow while calls are quick)."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Record malformed lines as error rows and go on."),
    include_text: bool = IncludeTextOpt,
    only_flagged: bool = typer.Option(False, "--only-flagged", help="Write only rows that were flagged, warned, blocked or failed."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar and no summary on stderr."),
    policy: Optional[str] = PolicyOpt,
    moderator: Optional[str] = ModeratorOpt,
) -> None:
    """Moderate many texts; one JSONL verdict per input. Exit 0 all allowed, 1 something blocked,
    2 bad input (no --out file is left), 3 the moderator failed (those texts count as blocked).

    Example: prism scan prompts.jsonl --field prompt --out verdicts.jsonl
    """
    from prism_cli.build import build_gate
    from prism_cli.outputs import silence_stdout
    from prism_cli.scan import ScanOptions, run_scan
    from prism_cli.textio import open_output, open_sources

    opts = ScanOptions(role, batch_size, field, column, skip_bad, include_text, only_flagged)
    sources = open_sources(files, fmt, column=column)
    _check_out(out, files)
    gate = build_gate(policy, moderator)
    show = not quiet and sys.stderr is not None and sys.stderr.isatty()
    try:
        with open_output(out) as writer, _progress(sources, show) as progress:
            summary = run_scan(sources, gate, writer.write, opts, progress, writer.flush)
    except BrokenPipeError:
        silence_stdout()
        raise typer.Exit(EXIT_SIGPIPE) from None
    if not quiet:
        _print_summary(summary, gate, out)
    raise typer.Exit(summary.exit_code)


EXIT_SIGPIPE = 141
"""The reader of stdout went away (`prism scan big.txt | head`): not every text was scanned, so
neither 0 nor 1 is true; 128 + SIGPIPE is what a shell reports for a pipe cut short."""


def _check_out(out: Optional[str], files: List[str]) -> None:
    """Refuse an --out that is one of the inputs: the rename at the end would destroy it."""
    if not out or out == "-":
        return
    from pathlib import Path

    from prism_cli.errors import InputError

    target = Path(out)
    for f in files:
        if f != "-" and target.exists() and Path(f).exists() and target.samefile(f):
            raise InputError(f"--out {out}: is also an input; choose another file")


class _Bar:
    """A rich progress bar on stderr: bytes read against the total size, texts/s and ETA."""

    def __init__(self, total: Optional[int]):
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        from prism_cli.commands.common import err_console

        self._p = Progress(
            TextColumn("scanning"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[texts]:,} texts"),
            TextColumn("{task.fields[rate]:,.0f} texts/s"),
            TextColumn("{task.fields[blocked]:,} blocked"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=err_console(),
            transient=True,
        )
        self._task = self._p.add_task("scan", total=total, texts=0, rate=0.0, blocked=0)

    def __enter__(self) -> "_Bar":
        self._p.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._p.stop()

    def __call__(self, s: Any) -> None:
        self._p.update(self._task, completed=s.bytes_read, texts=s.texts, rate=s.rate, blocked=s.blocked)


class _NoBar:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def _progress(sources: Any, show: bool) -> Any:
    if not show:
        return _NoBar()
    sizes = [s.size for s in sources]
    return _Bar(None if any(x is None for x in sizes) else sum(sizes))


def _print_summary(s: Any, gate: Any, out: Optional[str]) -> None:
    from rich.table import Table

    from prism_cli.commands.common import err_console

    console = err_console()
    console.print(f"prism scan: {s.texts:,} texts in {s.seconds:.1f} s, {s.rate:,.1f} texts/s", soft_wrap=True)
    table = Table()
    table.add_column("category")
    table.add_column("name")
    table.add_column("flagged", justify="right")
    for cid, n in sorted(s.flagged.items(), key=lambda kv: (-kv[1], kv[0])):
        table.add_row(cid, gate.policy.label(cid), f"{n:,}")
    if not s.flagged:
        table.add_row("-", "nothing flagged", "0")
    console.print(table)
    line = f"allowed {s.allowed:,} · warned {s.warned:,} · blocked {s.blocked:,} · errors {s.errors:,}"
    if s.bad:
        line += f" · bad lines {s.bad:,} (error rows)"
    line += f" · moderator {gate.name} · policy {gate.policy.name}"
    if out:
        line += f" · wrote {out}"
    console.print(line, soft_wrap=True)
    if s.errors:
        console.print(
            f"prism: {s.errors:,} texts could not be moderated and count as blocked (prism fails closed); first error: "
            f"{s.first_error}",
            soft_wrap=True,
        )
