"""`prism chat`: a GGUF model or an OpenAI-compatible server, with every turn moderated."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer

from prism_cli.commands.common import ModeratorOpt, PolicyOpt

REPL_MAX_TOKENS = 512
BATCH_MAX_TOKENS = 256
"""Batch replies are capped lower: a file of prompts should not cost 512 tokens each of a model that rambles."""


def register(app: typer.Typer) -> None:
    app.command("chat")(chat)


def chat(
    model: Optional[str] = typer.Argument(None, help="GGUF file, or a Hub reference hf:ORG/REPO[:QUANT] / hf:ORG/REPO/FILE.gguf (downloaded once); with --server: the model name to ask for."),
    server: Optional[str] = typer.Option(None, "--server", help="URL of a llama.cpp / llama_cpp.server / Ollama / OpenAI-compatible server."),
    ctx: Optional[int] = typer.Option(None, "--ctx", "-c", help="Context window in tokens (default 4096)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for the model (no -t: that is --text)."),
    gpu_layers: Optional[int] = typer.Option(None, "--gpu-layers", "-ngl", help="Layers to offload to a GPU (llama.cpp builds with GPU support)."),
    temp: float = typer.Option(0.7, "--temp", help="Sampling temperature; 0 is greedy (deterministic)."),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", "-n", help=f"Most tokens per reply (default {REPL_MAX_TOKENS} interactive, {BATCH_MAX_TOKENS} batch)."),
    system: Optional[str] = typer.Option(None, "--system", "-s", help="System prompt."),
    chat_format: Optional[str] = typer.Option(None, "--chat-format", help="Chat template when the GGUF has none (or to override it)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Sampling seed (reproducible replies with --temp > 0)."),
    batch: Optional[str] = typer.Option(None, "--batch", "-b", help="Run the prompts in FILE (txt lines, JSONL or CSV; text, then prompt) as a batch session."),
    independent: Optional[bool] = typer.Option(None, "--independent/--conversation", help="Each input its own conversation (batch default), or one conversation that remembers earlier turns (interactive default)."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Write the JSONL transcript here (batch: instead of stdout; REPL: on exit)."),
    policy: Optional[str] = PolicyOpt,
    moderator: Optional[str] = ModeratorOpt,
    no_moderation: bool = typer.Option(False, "--no-moderation", help="Check nothing (benchmarks, debugging). Says so loudly."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="REPL: show scores and timings after each turn."),
    log_text: bool = typer.Option(False, "--log-text", help="Also store the texts in the local decision log."),
    no_history: bool = typer.Option(False, "--no-history", help="REPL: keep no input history file this time (config key history: false turns it off for good)."),
    offline: bool = typer.Option(False, "--offline", help="Forbid the network: an hf: reference must be downloaded already."),
) -> None:
    """Chat with a local model; p(x) checks every prompt, q(Y) gates the streamed reply.

    Interactive on a terminal; a batch session (JSONL transcript on stdout or --out) when
    stdin is piped or with --batch, each input its own conversation unless --conversation. Batch exit codes: 0 all allowed, 1 something blocked,
    2 bad input, 3 moderator failed (the turn was blocked).

    Examples:

    \b
      prism chat hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M
      prism chat gemma.gguf --temp 0
      prism chat gemma.gguf < prompts.txt > transcript.jsonl
      prism chat --server http://127.0.0.1:8080 --policy strict
    """
    from prism_cli.audit import log_verdicts
    from prism_cli.batch import read_turns, run_batch
    from prism_cli.build import ModeratorOptions, build_gate
    from prism_cli.engines.loader import check_limits
    from prism_cli.commands.common import err_console, notice
    from prism_cli.errors import InputError
    from prism_cli.loading import preload_guards
    from prism_cli.session import ChatSession, unscored_notice

    batch_mode = batch is not None or sys.stdin is None or not sys.stdin.isatty()
    if max_tokens is None:
        max_tokens = BATCH_MAX_TOKENS if batch_mode else REPL_MAX_TOKENS
    _validate(model, server, temp, max_tokens)
    check_limits(n_ctx=ctx, threads=threads)
    turns, name = read_turns(batch) if batch_mode else ([], "")
    if no_moderation:
        if policy or moderator:
            raise InputError("--no-moderation cannot be combined with --policy or --moderator")
        notice("WARNING: moderation is OFF (--no-moderation): prompts and replies are NOT checked against any policy")
        gate, make_gate = None, None
    else:
        mod_opts = ModeratorOptions(threads=threads)  # --threads serves a guard model as well as the chat model
        gate = build_gate(policy, moderator, mod_opts)
        make_gate = lambda name: preload_guards(build_gate(name, moderator, mod_opts))  # noqa: E731 - /policy NAME
    if model and not server:
        model = _local_model(model, offline)
    engine = _open(model, server, n_ctx=ctx, threads=threads, gpu_layers=gpu_layers, chat_format=chat_format, seed=seed)
    try:
        preload_guards(gate)
        if getattr(engine, "notice", None):
            notice(engine.notice)
        warning = unscored_notice(gate)  # a banner line: categories this gate can never flag
        if warning:
            notice(warning)
        session = ChatSession(
            engine, gate, system=system, max_tokens=max_tokens, temperature=temp, seed=seed, on_notice=notice,
            on_verdict=lambda v, text: log_verdicts("chat", [v], [text], include_text=log_text),
            independent=batch_mode if independent is None else independent,
        )
        if batch_mode:
            code = run_batch(session, turns, name, out, on_turn=_turn_notice(session))
            raise typer.Exit(code)
        from prism_cli.repl import Repl

        console = err_console()
        where = gate and f"policy {gate.policy.name}, moderator {gate.name}, window {gate.policy.stream.window}/holdback {gate.policy.stream.holdback}"
        console.print(f"[bold]prism chat[/] · {engine.name} · " + (where or "[bold red]moderation OFF[/]"), highlight=False)
        history = None if no_history or not _history_on() else _history_file()
        Repl(session, console, make_gate=make_gate, verbose=verbose, save_on_exit=out, history=history).run()
    finally:
        engine.close()


def _local_model(model: str, offline: bool) -> str:
    """A path as given; an hf: reference resolved to its downloaded GGUF (fetched now if it is not yet)."""
    from prism_cli import config
    from prism_cli.commands.common import notice
    from prism_cli.hub_ref import is_hub_ref, parse, resolve

    if not is_hub_ref(model):
        return model
    return str(resolve(parse(model), offline=offline or config.offline(), notice=notice))


def _history_on() -> bool:
    from prism_cli import config

    return config.get_bool("history", True)


def _history_file() -> Any:
    from prism_cli.paths import data_dir

    return data_dir() / "chat_history"


def _validate(model: str | None, server: str | None, temp: float, max_tokens: int) -> None:
    """What only chat knows; the engine's limits (--ctx, --threads) are engines/loader.py's, shared with serve."""
    from prism_cli.errors import InputError

    if not model and not server:
        raise InputError("give a GGUF model file or --server URL (prism chat model.gguf)")
    if temp < 0:
        raise InputError(f"--temp must be >= 0, got {temp}")
    if max_tokens < 1:
        raise InputError(f"--max-tokens must be >= 1, got {max_tokens}")


def _open(model: str | None, server: str | None, **opts: Any) -> Any:
    """The engine, with only the options the user gave (the engine keeps its own defaults)."""
    from prism_cli.engines.loader import open_engine
    from prism_cli.loading import loading

    given = {k: v for k, v in opts.items() if v is not None}
    if server:
        return open_engine(model, server, **given)
    with loading(f"model {Path(model or '').stem}"):
        return open_engine(model, server, **given)


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
