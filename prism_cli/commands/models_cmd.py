"""`prism models list | pull | add | rm | verify | path`: the moderators on this machine and how to get more."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from prism_cli.out import notice

models_app = typer.Typer(help="Installed and downloadable moderators.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")


def _default_name() -> str:
    from prism_cli.build import default_moderator

    return default_moderator()


def _bundled_dir() -> Path:
    from prism_cli.moderators.loader import bundled_default_dir

    return bundled_default_dir()


def _rows() -> list[dict[str, Any]]:
    from prism_cli.model_store import find_installed, list_installed
    from prism_cli.registry import load_catalogue

    default = _default_name()
    rows = []
    catalogue = load_catalogue()
    for e in catalogue.values():
        inst = None if e.bundled else find_installed(e.name)
        present = (_bundled_dir() / "model.onnx").is_file() if e.bundled else inst is not None
        categories = list(e.categories) or (_bundled_categories() if e.bundled else [])
        rows.append({
            "name": e.name, "status": ("bundled" if present else "missing") if e.bundled else
            ("installed" if present else "available"), "default": e.name == default, "kind": e.kind, "format": e.format,
            "prompt_format": e.prompt_format, "size": e.size, "size_bytes": inst.size if inst else e.size_bytes,
            "licence": e.licence, "gated": e.gated, "languages": list(e.languages), "categories": categories,
            "choose_when": e.choose_when, "sha256": "bundled" if e.bundled else "published" if e.sha_pinned else
            "pinned on first download", "path": str(_bundled_dir() if e.bundled else inst.path) if present else None,
        })
    for inst in list_installed():
        if inst.name not in catalogue:
            rows.append({
                "name": inst.name, "status": "installed", "default": inst.name == default, "kind": inst.kind,
                "format": inst.manifest.get("format"), "prompt_format": inst.prompt_format, "size": None,
                "size_bytes": inst.size, "licence": None, "gated": None, "languages": [], "categories": [],
                "choose_when": f"added from {inst.manifest.get('source', 'a local file')}", "sha256": "recorded at add",
                "path": str(inst.path),
            })
    return rows


def _bundled_categories() -> list[str]:
    try:
        cfg = json.loads((_bundled_dir() / "prism.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    cats: set[str] = set()
    for v in (cfg.get("category_map") or {}).values():
        cats.update([v] if isinstance(v, str) else v)
    return sorted(cats)


def _human_size(row: dict[str, Any]) -> str:
    if row["size_bytes"]:
        return f"{row['size_bytes'] / 1e6:.1f} MB"
    return str(row["size"] or "?")


@models_app.command("list")
def list_models(json_out: bool = typer.Option(False, "--json", help="One JSON object per model (JSONL), like every list command.")) -> None:
    """Installed and available moderators; * marks the default (config `moderator`, else prism-default)."""
    rows = _rows()
    if json_out:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
        return
    width = max(len(r["name"]) for r in rows) + 2
    for r in rows:
        mark = "*" if r["default"] else " "
        extra = [r["sha256"] if r["sha256"] == "pinned on first download" else "", "gated: needs a token" if r["gated"] else ""]
        print(f"{mark} {r['name']:<{width}}{r['status']:<10} {r['kind']:<10} {r['format'] or '?':<5} "
              f"{_human_size(r):>12}  {r['licence'] or ''}" + "".join(f"; {x}" for x in extra if x))
        if r["choose_when"]:
            print(f"  {'':<{width}}{r['choose_when']}")
    if not any(r["default"] for r in rows):
        print(f"* default: {_default_name()} (not in this list: a path or an uninstalled model)")


@models_app.command("pull")
def pull(
    name: str = typer.Argument(..., help="A name from `prism models list`."),
    offline: bool = typer.Option(False, "--offline", help="Forbid any network access (only the shared HF cache)."),
    allow_unpinned: bool = typer.Option(False, "--allow-unpinned", help="Accept an entry without a pinned commit."),
    force: bool = typer.Option(False, "--force", help="Download again even if installed."),
) -> None:
    """Download a moderator: resumable, retried, sha256-verified before it becomes visible.

    Example: prism models pull llama-guard-3-1b
    """
    from prism_cli import config
    from prism_cli.download import pull as do_pull
    from prism_cli.errors import InputError
    from prism_cli.registry import load_catalogue

    catalogue = load_catalogue()
    entry = catalogue.get(name)
    if entry is None:
        raise InputError(f"unknown model {name!r} (available: {', '.join(catalogue)})")
    inst, what = do_pull(entry, offline=offline or config.offline(), allow_unpinned=allow_unpinned, force=force)
    notice(f"{name} {what}: {inst.path}")


@models_app.command("add")
def add(
    path: Path = typer.Argument(..., help="A .gguf file, or an ONNX classifier folder (model.onnx, tokenizer.json, prism.json)."),
    name: str = typer.Option(..., "--name", "-n", help="The name to install it under."),
    prompt_format: Optional[str] = typer.Option(None, "--prompt-format", help="Guard prompt format of a .gguf: llama-guard-3-1b, llama-guard-3 (8B), qwen3guard or shieldgemma (default: told by its chat template or name)."),
) -> None:
    """Sideload a model from a local file (air-gapped machines); its format is checked and its sha256 recorded."""
    from prism_cli.sideload import add_local

    inst = add_local(path.expanduser(), name, prompt_format)
    gg = inst.manifest.get("gguf") or {}
    detail = f" ({gg.get('architecture')}, {gg.get('name') or 'unnamed'})" if gg else ""
    notice(f"added {name}{detail}: {inst.path}")


@models_app.command("rm")
def rm(name: str = typer.Argument(...)) -> None:
    """Remove an installed model."""
    from prism_cli.errors import InputError
    from prism_cli.model_store import remove
    from prism_cli.registry import load_catalogue

    entry = load_catalogue().get(name)
    if entry is not None and entry.bundled:
        raise InputError(f"{name} is bundled with prism and cannot be removed")
    notice(f"removed {remove(name)}")


@models_app.command("verify")
def verify(name: Optional[str] = typer.Argument(None, help="One model; all installed when omitted.")) -> None:
    """Re-hash installed files against their manifest. Exit 1 on any mismatch."""
    from prism_cli.errors import InputError
    from prism_cli.model_store import find_installed, list_installed, verify as check

    if name:
        inst = find_installed(name)
        if inst is None:
            raise InputError(f"model {name!r} is not installed (prism models list)")
        targets = [inst]
    else:
        targets = list_installed()
    bad = 0
    for inst in targets:
        problems = check(inst)
        bad += bool(problems)
        for p in problems:
            print(f"MISMATCH {p}")
        if not problems:
            print(f"ok {inst.name} ({len(inst.manifest.get('files', []))} files)")
    if bad:
        raise typer.Exit(1)


@models_app.command("path")
def path(name: str = typer.Argument(...)) -> None:
    """Print where a model lives (what --moderator would open)."""
    from prism_cli.errors import InputError
    from prism_cli.model_store import find_installed
    from prism_cli.registry import load_catalogue

    entry = load_catalogue().get(name)
    if entry is not None and entry.bundled:
        print(_bundled_dir())
        return
    inst = find_installed(name)
    if inst is None:
        raise InputError(f"model {name!r} is not installed (prism models pull {name})")
    print(inst.path)
