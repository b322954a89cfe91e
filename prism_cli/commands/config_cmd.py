"""`prism config get | set | unset | list`: the user's defaults (moderator, policy) and switches (offline, log)."""

from __future__ import annotations

import typer

config_app = typer.Typer(help="Your defaults: moderator, policy, offline, log.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


@config_app.command("get")
def get(key: str = typer.Argument(..., help="moderator, policy, offline or log")) -> None:
    """Print one value (empty when unset)."""
    from prism_cli import config

    print(_show(config.get(config.check_key(key))))


@config_app.command("set")
def set_(key: str = typer.Argument(...), value: str = typer.Argument(...)) -> None:
    """Set a value; it is checked first. Example: prism config set moderator llama-guard-3-1b"""
    from prism_cli import config
    from prism_cli.build import check_config_value
    from prism_cli.commands.common import notice

    parsed, note = check_config_value(key, config.parse_value(key, value))
    path = config.set_value(key, parsed)
    if note:
        notice(f"note: {note}")
    notice(f"{key} = {_show(parsed)} ({path})")


@config_app.command("unset")
def unset(key: str = typer.Argument(...)) -> None:
    """Remove a value, going back to the built-in default."""
    from prism_cli import config

    config.unset(key)


@config_app.command("list")
def list_() -> None:
    """Every key with its value and what it does."""
    from prism_cli import config

    data = config.load()
    for key, doc in config.KEYS.items():
        print(f"{key} = {_show(data.get(key))}    # {doc}")
