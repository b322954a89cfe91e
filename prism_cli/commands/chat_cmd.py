"""`prism chat`: a GGUF model or an OpenAI-compatible server, with every turn moderated."""

from __future__ import annotations

import sys
from typing import Any, Optional

import typer

from prism_cli.commands.common import ModeratorOpt, PolicyOpt


def register(app: typer.Typer) -> None:
    app.command("chat")(chat)


def chat(
    model: Optional[str] = typer.Argument(None, help="GGUF file to run in process (with --server: the model name to ask for)."),
    server: Optional[str] = typer.Option(None, "--server", help="URL of a llama.cpp / llama_cpp.server / Ollama / OpenAI-compatible server."),
    ctx: Optional[int] = typer.Option(None, "--ctx", "-c", help="Context window in tokens (default 4096)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for the model (no -t: that is --text)."),
    gpu_layers: Optional[int] = typer.Option(None, "--gpu-layers", "-ngl", help="Layers to offload to a GPU (llama.cpp builds with GPU support)."),
    temp: float = typer.Option(0.7, "--temp", help="Sampling temperature; 0 is greedy (deterministic)."),
    max_tokens: int = typer.Option(512, "--max-tokens", "-n", help="Most tokens per reply."),
    system: Optional[str] = typer.Option(None, "--system", "-s", help="System prompt."),
    chat_format: Optional[str] = typer.Option(None, "--chat-format", help="Chat template when the GGUF has none (or to override it)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Sampling seed (reproducible replies with --temp > 0)."),
    batch: Optional[str] = typer.Option(None, "--batch", "-b", help="Run the prompts in FILE (txt lines, JSONL or CSV; text, then prompt) as a batch session."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Write the JSONL transcript here (batch: instead of stdout; REPL: on exit)."),
    policy: Optional[str] = PolicyOpt,
    moderator: Optional[str] = ModeratorOpt,
    no_moderation: bool = typer.Option(False, "--no-moderation", help="Check nothing (benchmarks, debugging). Says so loudly."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="REPL: show scores and timings after each turn."),
    log_text: bool = typer.Option(False, "--log-text", help="Also store the texts in the local decision log."),
) -> None:
    """Chat with a local model; p(x) checks every prompt, q(Y) gates the streamed reply.

    Interactive on a terminal; a batch session (JSONL transcript on stdout or --out) when
    stdin is piped or with --batch. Batch exit codes: 0 all allowed, 1 something blocked,
    2 bad input, 3 moderator failed (the turn was blocked).

    Examples:

    \b
      prism chat gemma.gguf --temp 0
      prism chat gemma.gguf < prompts.txt > transcript.jsonl
      prism chat --server http://127.0.0.1:8080 --policy strict
    """
    from prism_cli.audit import log_verdicts
    from prism_cli.batch import read_turns, run_batch
    from prism_cli.build import build_gate
    from prism_cli.commands.common import err_console, notice
    from prism_cli.errors import InputError
    from prism_cli.session import ChatSession, unscored_notice

    _validate(model, server, ctx, threads, temp, max_tokens)
    batch_mode = batch is not None or sys.stdin is None or not sys.stdin.isatty()
    turns, name = read_turns(batch) if batch_mode else ([], "")
    if no_moderation:
        if policy or moderator:
            raise InputError("--no-moderation cannot be combined with --policy or --moderator")
        notice("WARNING: moderation is OFF (--no-moderation): prompts and replies are NOT checked against any policy")
        gate, make_gate = None, None
    else:
        gate = build_gate(policy, moderator)
        make_gate = lambda name: build_gate(name, moderator)  # noqa: E731 - /policy NAME in the REPL
    engine = _open(model, server, n_ctx=ctx, threads=threads, gpu_layers=gpu_layers, chat_format=chat_format, seed=seed)
    try:
        if getattr(engine, "notice", None):
            notice(engine.notice)
        warning = unscored_notice(gate)  # a banner line: categories this gate can never flag
        if warning:
            notice(warning)
        session = ChatSession(
            engine, gate, system=system, max_tokens=max_tokens, temperature=temp, seed=seed, on_notice=notice,
            on_verdict=lambda v, text: log_verdicts("chat", [v], [text], include_text=log_text),
        )
        if batch_mode:
            code = run_batch(session, turns, name, out, on_turn=_turn_notice(session))
            raise typer.Exit(code)
        from prism_cli.repl import Repl

        console = err_console()
        where = gate and f"policy {gate.policy.name}, moderator {gate.name}, window {gate.policy.stream.window}/holdback {gate.policy.stream.holdback}"
        console.print(f"[bold]prism chat[/] · {engine.name} · " + (where or "[bold red]moderation OFF[/]"), highlight=False)
        Repl(session, console, make_gate=make_gate, verbose=verbose, save_on_exit=out).run()
    finally:
        engine.close()


def _validate(model: str | None, server: str | None, ctx: Any, threads: Any, temp: float, max_tokens: int) -> None:
    from prism_cli.errors import InputError

    if not model and not server:
        raise InputError("give a GGUF model file or --server URL (prism chat model.gguf)")
    if temp < 0:
        raise InputError(f"--temp must be >= 0, got {temp}")
    if max_tokens < 1:
        raise InputError(f"--max-tokens must be >= 1, got {max_tokens}")
    if ctx is not None and ctx < 64:
        raise InputError(f"--ctx must be at least 64 tokens, got {ctx}")
    if threads is not None and threads < 1:
        raise InputError(f"--threads must be >= 1, got {threads}")


def _open(model: str | None, server: str | None, **opts: Any) -> Any:
    """The engine, with only the options the user gave (the engine keeps its own defaults)."""
    from prism_cli.engines.base import EngineError
    from prism_cli.engines.loader import open_engine
    from prism_cli.errors import EngineFailed

    given = {k: v for k, v in opts.items() if v is not None}
    try:
        return open_engine(model, server, **given)
    except EngineError as e:
        raise EngineFailed(str(e)) from None


def _turn_notice(session: Any) -> Any:
    """Batch: one stderr line per turn that was not simply allowed (stdout holds only the transcript)."""
    from prism_cli.commands.common import notice
    from prism_cli.session import labels

    def on_turn(lineno: int, r: Any) -> None:
        v = r.blocking_verdict
        if v is not None:
            why = f"{v.error} (prism fails closed)" if v.error else labels(v, session.gate)
            notice(f"turn {r.turn} (line {lineno}): {r.outcome}: {why}")

    return on_turn
