"""`prism eval`: precision / recall / F1 / FPR / AP of moderators on a labeled file, side by side."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Optional

import typer

from prism_cli.commands.common import PolicyOpt, role_option


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_file)


def eval_file(
    file: str = typer.Argument(..., metavar="FILE", help="Labeled .jsonl or .csv: text, label (0/1, safe/unsafe, benign/harmful, true/false), optional category."),
    moderator: Optional[list[str]] = typer.Option(
        None, "--moderator", "-m", metavar="NAME",
        help="Moderator to measure (registry name, model folder, .gguf, 'rules', 'profanity-check'); repeat to compare.",
    ),
    policy: Optional[str] = PolicyOpt,
    role: str = role_option("prompt"),
    batch_size: int = typer.Option(64, "--batch-size", help="Texts per moderator call."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N rows."),
    cmap: Optional[list[str]] = typer.Option(None, "--map", metavar="CAT=ID", help="DATA_CATEGORY=POLICY_ID: which policy score a data category is ranked by."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object on stdout instead of the table."),
) -> None:
    """Measure moderators on labeled data at the policy's thresholds. Exit 0 done, 2 bad input, 3 moderator failed.

    Example: prism eval labeled.jsonl -m prism-default -m profanity-check --json
    """
    from prism_cli.errors import InputError
    from prism_cli.eval_data import read_labeled
    from prism_cli.build import build_gate, resolve_policy
    from prism_cli.evaluate import evaluate, parse_map, rounded

    if batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {batch_size}")
    if limit is not None and limit < 1:
        raise InputError(f"--limit must be at least 1, got {limit}")
    rows = read_labeled(file, limit)
    pol = resolve_policy(policy)
    mapping = parse_map(cmap or [], pol)
    specs = list(dict.fromkeys(moderator or [None]))
    gates = [build_gate(pol, s) for s in specs]
    report = evaluate(rows, gates, role=role, batch_size=batch_size, category_map=mapping)
    report = {"file": file, **rounded(report)}
    if json_out:
        print(json.dumps(report, ensure_ascii=False))
    else:
        _print_table(report)


def _fmt(v: Any) -> str:
    return "-" if v is None else f"{v:.3f}"


def _print_table(report: dict[str, Any]) -> None:
    """One row per moderator, grouped by scope (all rows, then each category), so they compare line by line."""
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"{report['file']}: {report['n']} rows, {report['positives']} unsafe "
        f"(policy {report['policy']}, role {report['role']}; flagged = warn or block)",
        title_justify="left",
    )
    for col in ("rows", "moderator", "n", "pos", "precision", "recall", "F1", "FPR", "AP", "AP score"):
        left = col in ("rows", "moderator", "AP score")
        table.add_column(col, justify="left" if left else "right", overflow="fold" if left else "ellipsis")
    mods = report["moderators"]
    scopes = [("all", None)] + [(c, c) for c in mods[0]["categories"]]
    for k, (label, cat) in enumerate(scopes):
        for j, mod in enumerate(mods):
            m = mod["overall"] if cat is None else mod["categories"][cat]
            key = "unsafe" if cat is None else m["score"] + ("" if m["negatives_from"] == "category" else " vs all safe")
            table.add_row(
                label if j == 0 else "", mod["moderator"], str(m["n"]), str(m["positives"]),
                _fmt(m["precision"]), _fmt(m["recall"]), _fmt(m["f1"]), _fmt(m["fpr"]), _fmt(m["ap"]), key,
                end_section=j == len(mods) - 1 and k < len(scopes) - 1,
            )
    # A pipe or file gets the table unwrapped; a terminal gets it fitted to its width.
    width = None if sys.stdout.isatty() else 240
    Console(file=sys.stdout, no_color=bool(os.environ.get("NO_COLOR")), highlight=False, width=width).print(table)
