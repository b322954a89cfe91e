"""What every command shares: -h, --version, shell completion, one meaning of -t."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def prism(*args: str, env: dict[str, str] | None = None, prog: str | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "prism_cli"] if prog is None else [
        sys.executable, "-c", f"import sys; sys.argv[0] = {prog!r}; from prism_cli.cli import main; main()"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})},
                          stdin=subprocess.DEVNULL)


def command_paths() -> list[list[str]]:
    """Every command and group of the real CLI, as argv prefixes."""
    import typer

    from prism_cli.cli import app

    out: list[list[str]] = []

    def walk(cmd: object, path: list[str]) -> None:
        out.append(path)
        for name, sub in getattr(cmd, "commands", {}).items():  # a group (typer vendors its own click)
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return out


def test_every_command_takes_dash_h_as_help():
    paths = command_paths()
    assert len(paths) > 20 and ["policy", "edit"] in paths
    from typer.testing import CliRunner

    from prism_cli.cli import app

    runner = CliRunner()
    for path in paths:
        short, long = runner.invoke(app, [*path, "-h"]), runner.invoke(app, [*path, "--help"])
        assert short.exit_code == 0, (path, short.output)
        assert short.output == long.output and "Usage:" in short.output, path


def test_version_names_the_bundled_model():
    meta = json.loads((ROOT / "models" / "default" / "prism.json").read_text(encoding="utf-8"))
    from prism_cli import __version__

    r = prism("--version")
    assert r.returncode == 0
    assert r.stdout.strip() == f"prism {__version__}, bundled moderator {meta['name']} {meta['version']}"


def test_shell_completion_completes_commands_and_policy_names():
    r = prism(env={"_PRISM_COMPLETE": "complete_bash", "COMP_WORDS": "prism pol", "COMP_CWORD": "1"}, prog="prism")
    assert r.returncode == 0 and r.stdout.split() == ["policy"]
    r = prism(env={"_PRISM_COMPLETE": "complete_bash", "COMP_WORDS": "prism policy show st", "COMP_CWORD": "3"},
              prog="prism")
    assert r.stdout.split() == ["strict"]
    r = prism("--show-completion", "bash", prog="prism")
    assert r.returncode == 0 and "_PRISM_COMPLETE=complete_bash" in r.stdout


def test_dash_t_means_text_and_never_threads():
    r = prism("check", "-t", "How do I bake bread?", "--role", "prompt")
    assert r.returncode == 0, r.stderr
    assert r.stderr.startswith("allow")
    r = prism("chat", "-t", "4", "model.gguf")
    assert r.returncode == 2 and "-t" in r.stderr
