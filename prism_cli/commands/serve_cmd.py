"""`prism serve`: an OpenAI-compatible server that moderates every prompt and reply (prism_cli/serve/)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Optional

import typer

from prism_cli.commands.common import ModeratorOpt, PolicyOpt

if TYPE_CHECKING:
    from prism_cli.serve.limits import ServeOptions

MISSING_DEPS = "prism serve needs starlette, uvicorn and httpx, which came with prism: pip install {} ({})"


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    model: Optional[str] = typer.Argument(None, help="GGUF file to serve in process (instead of --upstream)."),
    upstream: Optional[str] = typer.Option(None, "--upstream", "-u", help="URL of the OpenAI-compatible server to moderate (llama.cpp, Ollama, LM Studio, ...)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; anything but loopback needs --api-key."),
    port: int = typer.Option(8787, "--port", help="Port to listen on."),
    api_key: Optional[str] = typer.Option(None, "--api-key", envvar="PRISM_API_KEY", help="Key clients must send (Bearer)."),
    upstream_key: Optional[str] = typer.Option(None, "--upstream-key", envvar="PRISM_UPSTREAM_KEY", help="Key prism sends upstream (default: the client's own, when prism has no --api-key)."),
    policy: Optional[str] = PolicyOpt,
    moderator: Optional[str] = ModeratorOpt,
    slots: int = typer.Option(8, "--slots", help="Requests generating at once (in-process mode: 1)."),
    queue: int = typer.Option(32, "--queue", help="Requests that may wait for a slot; more get HTTP 429."),
    connect_timeout: float = typer.Option(10.0, "--connect-timeout", help="Seconds to connect to the upstream (504 after)."),
    read_timeout: float = typer.Option(300.0, "--read-timeout", help="Seconds the upstream may stay silent (504 / error event after)."),
    max_body: int = typer.Option(4 << 20, "--max-body", help="Largest request body in bytes (413 above)."),
    grace: float = typer.Option(10.0, "--grace", help="On SIGTERM, seconds open streams get to finish before they are cancelled."),
    ctx: Optional[int] = typer.Option(None, "--ctx", "-c", help="In-process: context window in tokens (default 4096)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="In-process: CPU threads for the model (no -t: that is --text)."),
    gpu_layers: Optional[int] = typer.Option(None, "--gpu-layers", "-ngl", help="In-process: layers to offload to a GPU."),
    chat_format: Optional[str] = typer.Option(None, "--chat-format", help="In-process: chat template when the GGUF has none."),
    log_text: bool = typer.Option(False, "--log-text", help="Also store the texts in the local decision log."),
) -> None:
    """Serve the OpenAI API with every prompt and reply moderated; point any chat app at it.

    A blocked prompt gets HTTP 400 (code content_filter) and never reaches the model; a blocked
    reply stops the model and ends with finish_reason "content_filter". Verdicts go to the
    decision log as hashes (prism logs).

    Examples:

    \b
      prism serve --upstream http://127.0.0.1:8080
      prism serve gemma.gguf --port 8787
      PRISM_API_KEY=secret prism serve --upstream http://127.0.0.1:11434 --host 0.0.0.0
    """
    from prism_cli.errors import InputError
    from prism_cli.serve.limits import ServeOptions, is_loopback

    if bool(model) == bool(upstream):
        raise InputError("give either a GGUF model file or --upstream URL (prism serve --upstream http://127.0.0.1:8080)")
    for name, value, low in (("--slots", slots, 1), ("--queue", queue, 0), ("--max-body", max_body, 1024), ("--port", port, 0)):
        if value < low:
            raise InputError(f"{name} must be >= {low}, got {value}")
    for name, secs in (("--connect-timeout", connect_timeout), ("--read-timeout", read_timeout), ("--grace", grace)):
        if not secs > 0:
            raise InputError(f"{name} must be a positive number of seconds, got {secs}")
    if api_key is not None and not api_key.strip():
        raise InputError("--api-key / PRISM_API_KEY is empty")
    if not is_loopback(host) and not api_key:
        raise InputError(f"binding to {host} opens prism to the network: set --api-key or PRISM_API_KEY")
    try:
        import httpx  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise InputError(MISSING_DEPS.format("'starlette>=0.37' 'uvicorn>=0.30' 'httpx>=0.27'", e)) from None
    opts = ServeOptions(host=host, port=port, api_key=api_key, upstream=upstream, upstream_key=upstream_key,
                        connect_timeout=connect_timeout, read_timeout=read_timeout, max_body=max_body, slots=slots,
                        queue=queue, grace=grace, log_text=log_text)  # fmt: skip
    run(opts, policy, moderator, model, dict(n_ctx=ctx, threads=threads, gpu_layers=gpu_layers, chat_format=chat_format))


def run(opts: "ServeOptions", policy: Optional[str], moderator: Optional[str], model: Optional[str], engine_opts: dict) -> None:
    """Build gate and backend, then let uvicorn serve until SIGTERM / Ctrl-C (streams get --grace seconds)."""
    import signal

    import uvicorn

    from prism_cli.build import ModeratorOptions, build_gate
    from prism_cli.commands.common import notice
    from prism_cli.serve.app import Prism, build_app
    from prism_cli.session import unscored_notice

    gate = build_gate(policy, moderator, ModeratorOptions(threads=engine_opts.get("threads")))
    warning = unscored_notice(gate)
    if warning:
        notice(warning)
    engine = local = None
    if model:
        from prism_cli.engines.loader import open_engine
        from prism_cli.serve.local import LocalBackend

        engine = open_engine(model, None, **engine_opts)
        local = LocalBackend(engine)
    try:
        prism = Prism(opts, gate, local)
        where = f"http://{opts.host}:{opts.port}/v1"
        behind = f"model {engine.name} in process" if engine is not None else f"upstream {prism.upstream.base_url}"
        notice(f"serving {where} · {behind} · policy {gate.policy.name}, moderator {gate.name}"
               + (" · api key required" if opts.api_key else ""))  # fmt: skip
        config = uvicorn.Config(build_app(prism), host=opts.host, port=opts.port, log_level=os.environ.get("PRISM_SERVE_LOG", "warning"),
                                access_log=False, timeout_graceful_shutdown=opts.grace, lifespan="on")  # fmt: skip
        # uvicorn shuts down gracefully on SIGTERM, then re-raises it to the handler it found: a no-op
        # here, so a stopped server exits 0 (Ctrl-C still ends as an interrupt, exit 130).
        signal.signal(signal.SIGTERM, lambda signum, frame: None)
        uvicorn.Server(config).run()
    finally:
        if engine is not None:
            engine.close()
