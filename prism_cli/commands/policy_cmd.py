"""Placeholder: filled in by the issue that builds this command."""

import typer


def register(app: typer.Typer) -> None:
    pass
