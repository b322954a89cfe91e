"""`prism policy list | show | init | validate | path | edit`: read, copy, check and edit acceptable use policies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

policy_app = typer.Typer(help="List, show, create, edit and validate policies.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(policy_app, name="policy")


def _names(incomplete: str) -> list[str]:
    """Shell completion: policy names (shipped and yours) that start with what was typed."""
    from prism_cli.policy_store import list_policies

    return [n for n in list_policies() if n.startswith(incomplete)]


@policy_app.command("list")
def list_cmd(json_out: bool = typer.Option(False, "--json", help="One JSON object per policy.")) -> None:
    """Shipped and user policies. Example: prism policy list"""
    from prism_cli.paths import shipped_policies_dir
    from prism_cli.policy_store import list_policies, load_policy

    rows = []
    for name, path in list_policies().items():
        origin = "shipped" if path.parent.resolve() == shipped_policies_dir().resolve() else "user"
        try:
            p = load_policy(str(path))
            rows.append({"name": name, "origin": origin, "categories": len(p.categories), "description": p.description, "path": str(path)})
        except Exception as e:  # noqa: BLE001 - a broken user policy must not hide the others
            rows.append({"name": name, "origin": origin, "categories": None, "description": f"INVALID: {e}", "path": str(path)})
    if json_out:
        for r in rows:
            print(json.dumps(r, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table("name", "origin", "categories", "description", box=None, pad_edge=False)
    for r in rows:
        t.add_row(r["name"], r["origin"], str(r["categories"] or "-"), r["description"])
    Console().print(t)


@policy_app.command("show")
def show_cmd(
    name: str = typer.Argument("default", help="Policy name or YAML file.", autocompletion=_names),
    yaml_out: bool = typer.Option(False, "--yaml", help="Print the resolved policy (after extends) as YAML."),
    moderator: Optional[str] = typer.Option(
        None, "--moderator", "-m", help="Show coverage with this moderator (default: the one check would use)."
    ),
) -> None:
    """Show a policy's categories, thresholds, actions and what scores each. Example: prism policy show strict"""
    from prism_cli.policy import policy_to_dict
    from prism_cli.policy_store import load_policy

    p = load_policy(name)
    if yaml_out:
        import yaml

        print(yaml.safe_dump(policy_to_dict(p), sort_keys=False, allow_unicode=True, width=100), end="")
        return
    from rich.console import Console
    from rich.table import Table

    c = Console()
    c.print(f"[bold]{p.name}[/bold]: {p.description}")
    c.print(f"based on: {p.based_on or '-'}   moderator: {p.moderator or '(default)'}   on error: {p.on_error}   "
            f"stream: window {p.stream.window}, holdback {p.stream.holdback}   source: {p.source}")
    if p.overall:
        c.print(f"overall P(unsafe) >= {p.overall.threshold} -> {p.overall.action}")
    scorers, why = _scorers(p, moderator)
    t = Table("id", "name", "applies to", "threshold", "action", "rules", "scored by", "description")
    for cat in p.categories:
        rules = len(cat.rules.keywords) + len(cat.rules.patterns)
        by = ", ".join(scorers.get(cat.id, [])) or ("[bold red]nothing[/]" if scorers else "?")
        t.add_row(cat.id, cat.name + ("" if cat.enabled else " (off)"), ",".join(cat.applies_to), f"{cat.threshold:g}",
                  cat.action, str(rules) if rules else "", by if cat.enabled else "-", cat.description)
    c.print(t)
    if why:
        c.print(f"[yellow]coverage unknown: {why}[/]")
        return
    missing = [cat.id for cat in p.categories if cat.enabled and not scorers.get(cat.id)]
    if missing:
        fallback = (f"only the overall threshold ({p.overall.threshold:g}) can catch them" if p.overall
                    else "no overall threshold: nothing catches them")
        c.print(f"[bold red]not scored by any moderator or rule:[/] {', '.join(missing)} ({fallback})")


def _scorers(p: object, moderator: Optional[str]) -> tuple[dict[str, list[str]], Optional[str]]:
    """Category id -> names of the gate's backends that score it; or why the moderator cannot be built."""
    from prism_cli.build import build_gate
    from prism_cli.errors import PrismError

    try:
        gate = build_gate(p, moderator)  # type: ignore[arg-type]
    except PrismError as e:
        return {}, str(e)
    out: dict[str, list[str]] = {}
    for m in gate.moderators:
        for cid in sorted(m.categories()):
            out.setdefault(cid, []).append(m.name)
    return out, None


@policy_app.command("init")
def init_cmd(
    name: str = typer.Argument("my-policy", help="Name of the new policy."),
    base: str = typer.Option("default", "--from", help="Policy to start from.", autocompletion=_names),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write here instead of the user policy folder."),
    full: bool = typer.Option(False, "--full", help="Copy every category instead of extending the base."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Create a policy you can edit; prints the file it wrote. Example: prism policy init family --from strict"""
    from prism_cli.commands.common import notice
    from prism_cli.policy_store import init_policy

    path = init_policy(name, base, out, full, force)
    print(path)
    ref = name if out is None else str(path)
    notice(f"wrote policy '{name}' to {path}; edit it with `prism policy edit {ref}`, use it with --policy {ref}")


@policy_app.command("validate")
def validate_cmd(
    specs: list[str] = typer.Argument(..., metavar="NAME|FILE...", help="Policy names or YAML files.",
                                      autocompletion=_names),
) -> None:
    """Check policies by name or file; errors name the file, line and key (exit 2). Example: prism policy validate family"""
    from prism_cli.policy_store import find_policy, load_policy

    for spec in specs:
        p = load_policy(spec)
        print(f"{find_policy(spec)}: ok ({p.name}: {len(p.categories)} categories)")


@policy_app.command("path")
def path_cmd(name: str = typer.Argument(..., help="Policy name or YAML file.", autocompletion=_names)) -> None:
    """Print the file a policy name stands for (yours shadow shipped ones). Example: prism policy path family"""
    from prism_cli.policy_store import find_policy

    print(find_policy(name).resolve())


@policy_app.command("edit")
def edit_cmd(name: str = typer.Argument(..., help="Your policy's name or a YAML file.", autocompletion=_names)) -> None:
    """Open a policy in $VISUAL / $EDITOR; it is saved only if it validates. Example: prism policy edit family"""
    from prism_cli.policy_edit import edit_policy

    edit_policy(name)
