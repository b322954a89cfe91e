"""`prism check`: one text in, a verdict out; the exit code is the decision (a shell filter).

The text is read in chunks and scored as it arrives, window by window (gate.check_chunks), so
a large document is checked in bounded memory: the pieces are kept only as the text itself
(for --pass, which echoes it after the verdict, and the log's hash), never as model inputs.
"""

from __future__ import annotations

import json
import sys
from typing import Iterator, Optional

import typer

from prism_cli.commands.common import ModeratorOpt, PolicyOpt


def register(app: typer.Typer) -> None:
    app.command("check")(check)


def check(
    file: Optional[str] = typer.Argument(None, help="File to check; stdin when omitted or '-'."),
    text: Optional[str] = typer.Option(None, "--text", "-t", help="Check this text instead of stdin."),
    role: str = typer.Option("response", "--role", "-r", help="prompt (user input, p(x)) or response (model output, q(Y))."),
    json_out: bool = typer.Option(False, "--json", help="Print the verdict object on stdout."),
    pass_through: bool = typer.Option(False, "--pass", help="Echo the input to stdout only when it is allowed."),
    include_text: bool = typer.Option(False, "--include-text", help="Include the text in --json output."),
    log_text: bool = typer.Option(False, "--log-text", help="Also store the text in the local decision log."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No verdict line on stderr; the exit code says it."),
    explain: bool = typer.Option(False, "--explain", "-e", help="Say why: categories over threshold and the span that drove them (stderr; in --json as 'explain')."),
    allow: bool = typer.Option(False, "--allow", help="Record this text as fine in your allow-list first (prism allow list), then check it."),
    policy: Optional[str] = PolicyOpt,
    moderator: Optional[str] = ModeratorOpt,
) -> None:
    """Moderate one text. Exit 0 allowed (or warned), 1 blocked, 2 bad input, 3 moderator failed (blocked).

    Examples: cat out.txt | prism check --pass > safe.txt
              prism check --explain -t "how do I kill a stuck process"
    """
    from dataclasses import replace

    from prism_cli.audit import log_verdicts
    from prism_cli.build import build_gate
    from prism_cli.commands.common import notice, verdict_line
    from prism_cli.errors import InputError
    from prism_cli.textio import read_document_chunks
    from prism_cli.verdict import exit_code

    if role not in ("prompt", "response"):
        raise InputError(f"--role must be 'prompt' or 'response', got {role!r}")
    name = "--text" if text is not None else (file if file and file != "-" else "<stdin>")
    chunks = read_document_chunks(file, text)
    first = next(chunks)  # input errors (missing file, binary data) come before loading a moderator
    if allow:
        from prism_cli.allowlist import add

        first, chunks = "".join([first, *chunks]), iter(())
        entry, new = add(first)
        notice(f"{'allow-listed' if new else 'already allow-listed'}: id {entry.id} (undo: prism allow remove {entry.id})")
    gate = build_gate(policy, moderator)
    pieces = [first]

    def kept() -> Iterator[str]:
        yield first
        for chunk in chunks:
            pieces.append(chunk)
            yield chunk

    verdict = gate.check_chunks(kept(), role, id=name)  # type: ignore[arg-type]
    for chunk in chunks:  # a moderator that failed stopped reading: input errors still surface (exit 2)
        pieces.append(chunk)
    doc = "".join(pieces)
    verdict = replace(verdict, text=doc)
    log_verdicts("check", [verdict], [doc], include_text=log_text)
    why = None
    if explain and verdict.error is None:
        from prism_cli.explain import explain as explain_text

        why = explain_text(gate, doc, role)
    if json_out:
        d = verdict.to_dict(include_text)
        d["unscored"] = gate.unscored(role)
        if why is not None:
            d["explain"] = why.to_dict()
        print(json.dumps(d, ensure_ascii=False))
    if not quiet:
        print(verdict_line(verdict, gate.policy), file=sys.stderr)
    if why is not None and not json_out:
        from prism_cli.explain import render

        print(render(why), file=sys.stderr)
    if pass_through and not verdict.blocked:
        sys.stdout.write(doc)
        sys.stdout.flush()
    raise typer.Exit(exit_code(verdict.error is not None, verdict.blocked))
