"""prism's command line: the typer app and one error handler. Commands live in prism_cli/commands/."""

from __future__ import annotations

import os
import sys

import typer

from prism_cli import __version__
from prism_cli.commands import COMMAND_MODULES
from prism_cli.errors import EXIT_MODERATOR, EXIT_USAGE, PrismError

app = typer.Typer(
    name="prism",
    help="Moderate prompts and outputs of local language models against a policy you can read, offline.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    context_settings={"help_option_names": ["-h", "--help"]},  # inherited by every subcommand
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        print(f"prism {__version__}, bundled moderator {_bundled_model()}")
        raise typer.Exit()


def _bundled_model() -> str:
    """NAME VERSION of the shipped classifier, from its prism.json (no runtime is loaded)."""
    import json

    from prism_cli.paths import shipped_models_dir

    try:
        meta = json.loads((shipped_models_dir() / "default" / "prism.json").read_text(encoding="utf-8"))
        return f"{meta['name']} {meta['version']}"
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"unreadable ({type(e).__name__})"


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """PRISM: Private, Robust, Independent Safety at Minimal marginal compute."""


for _module in COMMAND_MODULES:
    _module.register(app)


def main() -> None:
    """Entry point: PrismError becomes one line on stderr and its exit code; never a traceback."""
    import signal

    from prism_cli.commands.common import error_line
    from prism_cli.outputs import flush_stdout, guard_stdout

    guard_stdout()
    if hasattr(signal, "SIGPIPE"):  # `prism ... | head` ends quietly, like other Unix filters
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        app()
    except PrismError as e:
        error_line(str(e))
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(0)
    except SystemExit:
        try:
            flush_stdout()
        except PrismError as e:
            error_line(str(e))
            sys.exit(e.exit_code)
        raise
    except UnicodeDecodeError as e:
        error_line(f"invalid UTF-8 input ({e.reason})")
        sys.exit(EXIT_USAGE)
    except Exception as e:  # noqa: BLE001 - a bug must still end in one line and a non-allow exit code
        if os.environ.get("PRISM_DEBUG"):
            raise
        error_line(f"internal error: {type(e).__name__}: {e} (PRISM_DEBUG=1 shows the traceback)")
        sys.exit(EXIT_MODERATOR)

